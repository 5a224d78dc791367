// Request validation and response shapes of the runner's HTTP dialects.
#include "runner/openai.h"

#include <gtest/gtest.h>

namespace llmd::runner {
namespace {

Json chat_body(Json extra = Json::object()) {
  Json b{{"messages", Json::array({Json{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

Error chat_error(Json extra) {
  auto r = parse_chat_request(chat_body(std::move(extra)), 512);
  EXPECT_FALSE(r.has_value());
  return r ? Error() : r.error();
}

TEST(OpenAiParse, ChatRequestMapsSamplingFieldsAndStop) {
  auto r = parse_chat_request(chat_body({{"temperature", 0.5}, {"top_p", 0.9}, {"top_k", 7}, {"min_p", 0.1},
                                         {"seed", 42}, {"max_tokens", 20}, {"stop", "END"}, {"stream", true},
                                         {"stream_options", {{"include_usage", true}}}}),
                              512);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FLOAT_EQ(r->request.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r->request.sampling.top_p, 0.9f);
  EXPECT_EQ(r->request.sampling.top_k, 7);
  EXPECT_EQ(r->request.sampling.seed, 42u);
  EXPECT_EQ(r->request.max_tokens, 20);
  EXPECT_EQ(r->request.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  ASSERT_EQ(r->messages.size(), 1u);
  EXPECT_EQ(r->messages[0].content, "hi");
}

TEST(OpenAiParse, TextPartsAreJoinedAndDeveloperIsSystem) {
  Json body{{"messages", Json::array({Json{{"role", "developer"}, {"content", "rules"}},
                                      Json{{"role", "user"},
                                           {"content", Json::array({Json{{"type", "text"}, {"text", "a"}},
                                                                    Json{{"type", "text"}, {"text", "b"}}})}}})}};
  auto r = parse_chat_request(body, 512);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->messages[0].role, "system");
  EXPECT_EQ(r->messages[1].content, "ab");
}

TEST(OpenAiParse, WrongTypesAndRangesNameTheField) {
  EXPECT_NE(chat_error({{"temperature", "warm"}}).message.find("temperature"), std::string::npos);
  EXPECT_NE(chat_error({{"temperature", -1}}).message.find("temperature"), std::string::npos);
  EXPECT_NE(chat_error({{"top_p", 1.5}}).message.find("top_p"), std::string::npos);
  EXPECT_NE(chat_error({{"top_k", 2.5}}).message.find("top_k"), std::string::npos);
  EXPECT_NE(chat_error({{"seed", -2}}).message.find("seed"), std::string::npos);
  EXPECT_NE(chat_error({{"max_tokens", 0}}).message.find("max_tokens"), std::string::npos);
  EXPECT_EQ(chat_error({{"max_tokens", 513}}).reason, "context_length_exceeded");
  EXPECT_NE(chat_error({{"stop", Json::array({1, 2})}}).message.find("stop"), std::string::npos);
  EXPECT_NE(chat_error({{"stop", ""}}).message.find("stop"), std::string::npos);
}

TEST(OpenAiParse, UnsupportedFeaturesAreRefusedNotIgnored) {
  for (const Json& extra : {Json{{"n_probs", 3}}, Json{{"logprobs", true}}, Json{{"n", 2}},
                            Json{{"tools", Json::array({Json{{"type", "function"}}})}},
                            Json{{"presence_penalty", 0.5}}, Json{{"logit_bias", {{"1", 5}}}}}) {
    EXPECT_EQ(chat_error(extra).reason, "unsupported_parameter") << extra.dump();
  }
  // Their neutral values are fine (clients send them by default).
  EXPECT_TRUE(parse_chat_request(chat_body({{"logprobs", false}, {"n", 1}, {"presence_penalty", 0}}), 512));
}

TEST(OpenAiParse, ResponseFormatBecomesAGrammar) {
  auto obj = parse_chat_request(chat_body({{"response_format", {{"type", "json_object"}}}}), 512);
  ASSERT_TRUE(obj);
  EXPECT_FALSE(obj->request.sampling.grammar.empty());
  auto schema = parse_chat_request(
      chat_body({{"response_format",
                  {{"type", "json_schema"},
                   {"json_schema", {{"name", "x"}, {"schema", {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}}}}}}}}),
      512);
  ASSERT_TRUE(schema) << schema.error().message;
  EXPECT_NE(schema->request.sampling.grammar.find("root"), std::string::npos);
  EXPECT_TRUE(parse_chat_request(chat_body({{"response_format", {{"type", "text"}}}}), 512));
  EXPECT_FALSE(parse_chat_request(chat_body({{"response_format", {{"type", "json_schema"}}}}), 512));
}

TEST(OpenAiParse, RawGrammarsAreVettedBeforeLlamaCppSeesThem) {
  auto ok = parse_llama_completion_request(Json{{"prompt", "x"}, {"grammar", "root ::= [0-9]+"}}, 512);
  ASSERT_TRUE(ok);
  // Left recursion through a nullable rule would hang llama.cpp's parser.
  auto left = parse_llama_completion_request(Json{{"prompt", "x"}, {"grammar", "root ::= a \"x\"\na ::= root | \"\""}}, 512);
  ASSERT_FALSE(left);
  EXPECT_EQ(left.error().reason, "invalid_grammar");
  EXPECT_FALSE(parse_llama_completion_request(Json{{"prompt", "x"}, {"grammar", std::string(200, '(')}}, 512));
  EXPECT_FALSE(parse_llama_completion_request(
      Json{{"prompt", "x"}, {"grammar", "root ::= [0-9]"}, {"json_schema", {{"type", "integer"}}}}, 512));
}

// One generation limit whatever the order of the aliases (issue 13, item 2):
// the smallest length given wins, so no alias can outrun another.
TEST(OpenAiParse, TheSmallestLengthAliasIsTheLimit) {
  const Json chat_messages = Json::array({Json{{"role", "user"}, {"content", "hi"}}});
  for (const Json& lengths : {Json{{"max_tokens", 1}, {"n_predict", 300}}, Json{{"n_predict", 300}, {"max_tokens", 1}},
                              Json{{"max_completion_tokens", 1}, {"n_predict", 300}},
                              Json{{"n_predict", 1}, {"max_tokens", 300}}, Json{{"max_tokens", 1}, {"n_predict", -1}}}) {
    Json chat{{"messages", chat_messages}};
    chat.update(lengths);
    auto c = parse_chat_request(chat, 512);
    ASSERT_TRUE(c) << lengths.dump();
    EXPECT_EQ(c->request.max_tokens, 1) << lengths.dump();
    Json text{{"prompt", "x"}};
    text.update(lengths);
    text.erase("max_completion_tokens");
    auto t = parse_llama_completion_request(text, 512);
    ASSERT_TRUE(t) << text.dump();
    const bool has_one = text.value("max_tokens", 0) == 1 || text.value("n_predict", 0) == 1;
    EXPECT_EQ(t->request.max_tokens, has_one ? 1 : 300) << text.dump();
  }
}

TEST(OpenAiParse, PromptsAreTextOrTokenIds) {
  auto text = parse_llama_completion_request(Json{{"prompt", "hello"}, {"n_predict", -1}}, 512);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->request.prompt, "hello");
  EXPECT_EQ(text->request.max_tokens, -1);
  auto tokens = parse_llama_completion_request(Json{{"prompt", Json::array({1, 2, 3})}}, 512);
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->request.prompt_tokens, (std::vector<llama_token>{1, 2, 3}));
  EXPECT_FALSE(parse_llama_completion_request(Json{{"prompt", Json::array({"a", "b"})}}, 512));
  EXPECT_FALSE(parse_llama_completion_request(Json{{"prompt", ""}}, 512));
  EXPECT_FALSE(parse_llama_completion_request(Json{{"prompt", Json::array({-1})}}, 512));
  auto legacy = parse_text_completion_request(Json{{"prompt", Json::array({"once"})}}, 512);
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->request.max_tokens, 16);  // OpenAI's default
}

TEST(OpenAiParse, BodiesMustBeUtf8JsonObjects) {
  EXPECT_EQ(parse_json_body("{\"a\":\"\xc3\x28\"}").error().reason, "invalid_utf8");
  EXPECT_EQ(parse_json_body("{\"a\":").error().reason, "invalid_json");
  EXPECT_FALSE(parse_json_body("[1]"));
  EXPECT_TRUE(parse_json_body("{\"a\":\"中文\"}"));
}

TEST(OpenAiShape, ChatCompletionAndChunks) {
  Completion c;
  c.text = "hello";
  c.finish = FinishReason::kLength;
  c.usage.prompt_tokens = 5;
  c.usage.completion_tokens = 3;
  const ResponseMeta meta{"chatcmpl-x", 1700000000, "tiny"};
  const Json j = chat_completion_json(meta, c);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["total_tokens"], 8);
  const Json first = chat_chunk_json(meta, "", true, std::nullopt, true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["usage"].is_null());
  const Json last = chat_chunk_json(meta, "", false, FinishReason::kStop, false);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last.contains("usage"));
  EXPECT_TRUE(usage_chunk_json(meta, "chat.completion.chunk", c.usage)["choices"].empty());
}

TEST(OpenAiShape, InvalidUtf8InGeneratedTextIsReplacedWhenDumped) {
  const std::string out = dump(llama_chunk_json("ok \xff"));
  EXPECT_NE(out.find("ok \xef\xbf\xbd"), std::string::npos);
}

TEST(OpenAiShape, EmbeddingsAsFloatsOrBase64) {
  const std::vector<std::vector<float>> v{{1.0f, 0.0f}};
  EXPECT_EQ(embeddings_json("m", v, false, 2)["data"][0]["embedding"].size(), 2u);
  // 1.0f = 00 00 80 3f, 0.0f = 00 00 00 00 → "AACAPwAAAAA="
  EXPECT_EQ(embeddings_json("m", v, true, 2)["data"][0]["embedding"], "AACAPwAAAAA=");
}

}  // namespace
}  // namespace llmd::runner
