// Request validation and response shapes of the runner's HTTP dialects.
#include "runner/openai.h"

#include <gtest/gtest.h>

#include <cmath>

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
  auto r = parse_chat_request(chat_body({{"temperature", 0.5},
                                         {"top_p", 0.9},
                                         {"top_k", 7},
                                         {"min_p", 0.1},
                                         {"seed", 42},
                                         {"max_tokens", 20},
                                         {"stop", "END"},
                                         {"stream", true},
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
  ASSERT_EQ(r->chat.messages.size(), 1u);
  EXPECT_EQ(r->chat.messages[0]["content"], "hi");
}

TEST(OpenAiParse, MessagesKeepTheirOpenAiShapeForTheTemplate) {
  Json body{{"messages", Json::array({Json{{"role", "developer"}, {"content", "rules"}},
                                      Json{{"role", "user"},
                                           {"content", Json::array({Json{{"type", "text"}, {"text", "a"}},
                                                                    Json{{"type", "text"}, {"text", "b"}}})}},
                                      Json{{"role", "function"}, {"name", "f"}, {"content", "42"}}})}};
  auto r = parse_chat_request(body, 512);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->chat.messages[0]["role"], "developer");  // the template layer maps it
  EXPECT_EQ(r->chat.messages[1]["content"].size(), 2u);
  EXPECT_EQ(r->chat.messages[2]["role"], "tool");  // a legacy function result
  Json image{
      {"messages", Json::array({Json{{"role", "user"}, {"content", Json::array({Json{{"type", "image_url"}}})}}})}};
  EXPECT_EQ(parse_chat_request(image, 512).error().reason, "unsupported_parameter");
}

Json weather_tool(std::string name = "get_weather") {
  return Json{
      {"type", "function"},
      {"function",
       {{"name", name}, {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};
}

TEST(OpenAiParse, ToolsToolChoiceAndLegacyFunctions) {
  auto r = parse_chat_request(chat_body({{"tools", Json::array({weather_tool(), weather_tool("other")})},
                                         {"tool_choice", "required"},
                                         {"parallel_tool_calls", false}}),
                              512);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->chat.tools.size(), 2u);
  EXPECT_EQ(r->chat.tool_choice, ToolChoice::kRequired);
  EXPECT_EQ(r->chat.parallel_tool_calls, false);
  // A named choice offers only that function, and forces a call.
  auto named =
      parse_chat_request(chat_body({{"tools", Json::array({weather_tool(), weather_tool("other")})},
                                    {"tool_choice", {{"type", "function"}, {"function", {{"name", "other"}}}}}}),
                         512);
  ASSERT_TRUE(named) << named.error().message;
  ASSERT_EQ(named->chat.tools.size(), 1u);
  EXPECT_EQ(named->chat.tools[0]["function"]["name"], "other");
  EXPECT_EQ(named->chat.tool_choice, ToolChoice::kRequired);
  EXPECT_NE(chat_error({{"tools", Json::array({weather_tool()})},
                        {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}})
                .message.find("nope"),
            std::string::npos);
  // Legacy functions + function_call map to tools + tool_choice.
  auto legacy = parse_chat_request(chat_body({{"functions", Json::array({weather_tool()["function"]})},
                                              {"function_call", {{"name", "get_weather"}}}}),
                                   512);
  ASSERT_TRUE(legacy) << legacy.error().message;
  EXPECT_EQ(legacy->chat.tools[0]["type"], "function");
  EXPECT_EQ(legacy->chat.tool_choice, ToolChoice::kRequired);
  EXPECT_FALSE(parse_chat_request(chat_body({{"tools", Json::array({Json{{"type", "function"}}})}}), 512));
  EXPECT_FALSE(parse_chat_request(chat_body({{"tool_choice", "sometimes"}}), 512));
  EXPECT_FALSE(parse_chat_request(chat_body({{"tool_choice", "required"}}), 512));
  // Tools bring their own grammar: a second constraint is refused.
  EXPECT_FALSE(parse_chat_request(
      chat_body({{"tools", Json::array({weather_tool()})}, {"response_format", {{"type", "json_object"}}}}), 512));
}

TEST(OpenAiParse, ThinkingSwitchesReachTheTemplate) {
  auto off = parse_chat_request(chat_body({{"chat_template_kwargs", {{"enable_thinking", false}}}}), 512);
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->chat.enable_thinking);
  EXPECT_EQ(off->chat.template_kwargs.at("enable_thinking"), "false");
  auto effort = parse_chat_request(chat_body({{"reasoning_effort", "high"}}), 512);
  ASSERT_TRUE(effort);
  EXPECT_EQ(effort->chat.template_kwargs.at("reasoning_effort"), "\"high\"");
  auto none = parse_chat_request(chat_body({{"reasoning_effort", "none"}}), 512);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->chat.enable_thinking);
  EXPECT_FALSE(parse_chat_request(chat_body({{"reasoning_effort", "extreme"}}), 512));
  EXPECT_FALSE(parse_chat_request(chat_body({{"chat_template_kwargs", {{"enable_thinking", "yes"}}}}), 512));
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

TEST(OpenAiParse, PenaltiesDryXtcMirostatAndLogitBiasAreMapped) {
  auto r = parse_chat_request(chat_body({{"presence_penalty", 0.5},
                                         {"frequency_penalty", -0.5},
                                         {"repeat_penalty", 1.3},
                                         {"repeat_last_n", 32},
                                         {"typical_p", 0.9},
                                         {"dry_multiplier", 0.8},
                                         {"dry_sequence_breakers", Json::array({"\n"})},
                                         {"xtc_probability", 0.5},
                                         {"xtc_threshold", 0.2},
                                         {"mirostat", 2},
                                         {"mirostat_tau", 4},
                                         {"logit_bias", {{"15", -100}, {"7", 3}}}}),
                              512);
  ASSERT_TRUE(r) << r.error().message;
  const auto& s = r->request.sampling;
  EXPECT_FLOAT_EQ(s.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(s.repeat_penalty, 1.3f);
  EXPECT_EQ(s.repeat_last_n, 32);
  EXPECT_FLOAT_EQ(s.typical_p, 0.9f);
  EXPECT_FLOAT_EQ(s.dry_multiplier, 0.8f);
  EXPECT_EQ(s.dry_sequence_breakers, std::vector<std::string>{"\n"});
  EXPECT_FLOAT_EQ(s.xtc_probability, 0.5f);
  EXPECT_EQ(s.mirostat, 2);
  ASSERT_EQ(s.logit_bias.size(), 2u);
  // -100 bans (OpenAI's documented meaning), other values add to the logit.
  EXPECT_TRUE(std::isinf(s.logit_bias[0].second) && s.logit_bias[0].second < 0);
  EXPECT_EQ(s.logit_bias[1], (std::pair<llama_token, float>{7, 3.0f}));
  // llama-server's array form, with text entries resolved later against the vocabulary.
  auto arr = parse_chat_request(
      chat_body({{"logit_bias", Json::array({Json::array({"Hello", false}), Json::array({5, 2})})}}), 512);
  ASSERT_TRUE(arr) << arr.error().message;
  ASSERT_EQ(arr->logit_bias_text.size(), 1u);
  EXPECT_EQ(arr->logit_bias_text[0].first, "Hello");
  for (const Json& extra : {Json{{"presence_penalty", 3}}, Json{{"repeat_penalty", 0}}, Json{{"mirostat", 3}},
                            Json{{"logit_bias", {{"1", 101}}}}, Json{{"logit_bias", "x"}}, Json{{"typical_p", 2}},
                            Json{{"xtc_probability", -1}}}) {
    const Error e = chat_error(extra);
    EXPECT_NE(e.message.find(extra.begin().key()), std::string::npos) << extra.dump() << " " << e.message;
  }
}

TEST(OpenAiParse, UnsupportedFeaturesAreRefusedNotIgnored) {
  // best_of and echo belong to /v1/completions, suffix to /infill.
  for (const Json& extra : {Json{{"best_of", 3}}, Json{{"echo", true}}, Json{{"suffix", "}"}}}) {
    EXPECT_EQ(chat_error(extra).reason, "unsupported_parameter") << extra.dump();
  }
  // Their neutral values are fine (clients send them by default).
  EXPECT_TRUE(parse_chat_request(chat_body({{"logprobs", false}, {"n", 1}, {"presence_penalty", 0}}), 512));
}

TEST(OpenAiParse, ChoicesByNAndBestOf) {
  auto chat = parse_chat_request(chat_body({{"n", 3}}), 512);
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ(chat->n, 3);
  EXPECT_EQ(chat->best_of, 3);
  auto text = parse_text_completion_request(Json{{"prompt", "x"}, {"n", 2}, {"best_of", 4}}, 512);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(text->n, 2);
  EXPECT_EQ(text->best_of, 4);
  for (const Json& bad : {Json{{"prompt", "x"}, {"n", 3}, {"best_of", 2}}, Json{{"prompt", "x"}, {"n", 0}},
                          Json{{"prompt", "x"}, {"n", kMaxChoices + 1}}, Json{{"prompt", "x"}, {"n", "2"}},
                          Json{{"prompt", "x"}, {"best_of", 3}, {"stream", true}}}) {
    auto r = parse_text_completion_request(bad, 512);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad.dump();
  }
  auto llama = parse_llama_completion_request(Json{{"prompt", "x"}, {"n", 2}}, 512);
  ASSERT_FALSE(llama);
  EXPECT_EQ(llama.error().reason, "unsupported_parameter");
}

TEST(OpenAiParse, LogprobsByEachDialectsNames) {
  EXPECT_EQ(parse_chat_request(chat_body(), 512)->request.n_probs, -1);
  EXPECT_EQ(parse_chat_request(chat_body({{"logprobs", true}}), 512)->request.n_probs, 0);
  EXPECT_EQ(parse_chat_request(chat_body({{"logprobs", true}, {"top_logprobs", 5}}), 512)->request.n_probs, 5);
  EXPECT_NE(chat_error({{"top_logprobs", 5}}).message.find("top_logprobs"), std::string::npos);
  EXPECT_NE(chat_error({{"logprobs", true}, {"top_logprobs", 21}}).message.find("top_logprobs"), std::string::npos);
  EXPECT_EQ(parse_text_completion_request(Json{{"prompt", "x"}, {"logprobs", 2}}, 512)->request.n_probs, 2);
  EXPECT_EQ(parse_llama_completion_request(Json{{"prompt", "x"}, {"n_probs", 3}}, 512)->request.n_probs, 3);
  EXPECT_EQ(parse_llama_completion_request(Json{{"prompt", "x"}, {"n_probs", 0}}, 512)->request.n_probs, -1);
}

TEST(OpenAiParse, ResponseFormatBecomesAGrammar) {
  // A chat request's constraint goes to the template layer (ChatInput::grammar).
  auto obj = parse_chat_request(chat_body({{"response_format", {{"type", "json_object"}}}}), 512);
  ASSERT_TRUE(obj);
  EXPECT_FALSE(obj->chat.grammar.empty());
  EXPECT_TRUE(obj->request.sampling.grammar.empty());
  auto schema = parse_chat_request(
      chat_body(
          {{"response_format",
            {{"type", "json_schema"},
             {"json_schema",
              {{"name", "x"}, {"schema", {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}}}}}}}}),
      512);
  ASSERT_TRUE(schema) << schema.error().message;
  EXPECT_NE(schema->chat.grammar.find("root"), std::string::npos);
  EXPECT_TRUE(parse_chat_request(chat_body({{"response_format", {{"type", "text"}}}}), 512));
  EXPECT_FALSE(parse_chat_request(chat_body({{"response_format", {{"type", "json_schema"}}}}), 512));
}

TEST(OpenAiParse, RawGrammarsAreVettedBeforeLlamaCppSeesThem) {
  auto ok = parse_llama_completion_request(Json{{"prompt", "x"}, {"grammar", "root ::= [0-9]+"}}, 512);
  ASSERT_TRUE(ok);
  // Left recursion through a nullable rule would hang llama.cpp's parser.
  auto left =
      parse_llama_completion_request(Json{{"prompt", "x"}, {"grammar", "root ::= a \"x\"\na ::= root | \"\""}}, 512);
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
  for (const Json& lengths :
       {Json{{"max_tokens", 1}, {"n_predict", 300}}, Json{{"n_predict", 300}, {"max_tokens", 1}},
        Json{{"max_completion_tokens", 1}, {"n_predict", 300}}, Json{{"n_predict", 1}, {"max_tokens", 300}},
        Json{{"max_tokens", 1}, {"n_predict", -1}}}) {
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
  const Json j = chat_completion_json(meta, c, ChatReply{.content = "hello"});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "hello");
  EXPECT_FALSE(j["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["total_tokens"], 8);
  // A reply that called a tool: content null, tool_calls, finish_reason tool_calls.
  c.finish = FinishReason::kStop;
  const ChatReply called{.reasoning_content = "think", .tool_calls = {{"call_1", "f", "{\"a\":1}"}}};
  const Json t = chat_completion_json(meta, c, called);
  EXPECT_TRUE(t["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(t["choices"][0]["message"]["reasoning_content"], "think");
  EXPECT_EQ(t["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
  EXPECT_EQ(t["choices"][0]["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(t["choices"][0]["finish_reason"], "tool_calls");
  const Json first = chat_chunk_json(meta, Json{{"role", "assistant"}}, std::nullopt, true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["usage"].is_null());
  const Json last = chat_chunk_json(meta, Json::object(), "stop", false);
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

TEST(OpenAiParse, RerankTakesJinaOrTeiFieldsAndRefusesBadDocuments) {
  auto jina = parse_rerank_request(Json{{"query", "q"}, {"documents", {"a", "b"}}, {"top_n", 1}});
  ASSERT_TRUE(jina) << jina.error().message;
  EXPECT_FALSE(jina->tei);
  EXPECT_EQ(jina->documents, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(jina->top_n, 1u);
  auto tei = parse_rerank_request(Json{{"query", "q"}, {"texts", {"a"}}, {"return_text", true}});
  ASSERT_TRUE(tei);
  EXPECT_TRUE(tei->tei);
  EXPECT_TRUE(tei->return_text);
  for (const Json& bad :
       {Json{{"documents", {"a"}}}, Json{{"query", 1}, {"documents", {"a"}}},
        Json{{"query", "q"}, {"documents", Json::array()}}, Json{{"query", "q"}},
        Json{{"query", "q"}, {"documents", {"a", ""}}}, Json{{"query", "q"}, {"documents", "a"}},
        Json{{"query", "q"}, {"texts", {1}}}, Json{{"query", "q"}, {"documents", {"a"}}, {"top_n", 1.5}},
        Json{{"query", "q"}, {"documents", std::vector<std::string>(257, "d")}}}) {
    auto r = parse_rerank_request(bad);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad.dump();
  }
}

TEST(OpenAiShape, RerankSortsByScoreCutsToTopNAndSumsTheTokens) {
  auto req = parse_rerank_request(Json{{"query", "q"}, {"documents", {"a", "b", "c"}}, {"top_n", 2}}).value();
  const std::vector<RankedDocument> ranked{{0, 0.2f, 5}, {1, 0.9f, 6}, {2, 0.5f, 7}};
  const Json j = rerank_json(req, "m", ranked);
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 18);  // every document was evaluated, not only the top 2
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["index"], 1);
  EXPECT_EQ(j["results"][1]["index"], 2);
  EXPECT_FLOAT_EQ(j["results"][0]["relevance_score"].get<float>(), 0.9f);

  auto tei = parse_rerank_request(Json{{"query", "q"}, {"texts", {"a", "b", "c"}}, {"return_text", true}}).value();
  const Json t = rerank_json(tei, "m", ranked);
  ASSERT_TRUE(t.is_array());
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0], (Json{{"index", 1}, {"score", 0.9f}, {"text", "b"}}));
  EXPECT_EQ(t[2]["index"], 0);
}

TEST(OpenAiParse, LoraListsPerRequestAndForTheAdaptersEndpoint) {
  auto r = parse_chat_request(chat_body({{"lora", {{{"id", 0}, {"scale", 0.5}}, {{"id", 2}, {"scale", -1}}}}}), 512);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->request.lora);
  ASSERT_EQ(r->request.lora->size(), 2u);
  EXPECT_EQ((*r->request.lora)[1].id, 2);
  EXPECT_FLOAT_EQ((*r->request.lora)[1].scale, -1.0f);
  EXPECT_FALSE(parse_chat_request(chat_body(), 512)->request.lora) << "no list: the runner's defaults";
  for (const Json& bad : {Json{{"lora", "x"}}, Json{{"lora", {1}}}, Json{{"lora", {{{"id", 0}}}}},
                          Json{{"lora", {{{"id", -1}, {"scale", 1}}}}}, Json{{"lora", {{{"id", "0"}, {"scale", 1}}}}},
                          Json{{"lora", {{{"id", 0}, {"scale", "1"}}}}}}) {
    EXPECT_EQ(chat_error(bad).code, ErrorCode::kInvalidArgument) << bad.dump();
  }
  auto body = parse_lora_adapters_body(R"([{"id": 1, "scale": 0.25}])");
  ASSERT_TRUE(body);
  ASSERT_EQ(body->size(), 1u);
  EXPECT_FLOAT_EQ(body->front().scale, 0.25f);
  EXPECT_TRUE(parse_lora_adapters_body("[]")->empty());
  EXPECT_FALSE(parse_lora_adapters_body(R"({"id": 1, "scale": 1})"));
  EXPECT_FALSE(parse_lora_adapters_body("[{\"id\": 1, \"scale\": 1}"));
  EXPECT_FALSE(parse_lora_adapters_body("[\"\xff\"]"));
}

TEST(OpenAiParse, EmbeddingInputsAreOnePromptOrSeveralAsLlamaServerReadsThem) {
  auto count = [](const Json& input) { return parse_embeddings_request(Json{{"input", input}}).value().inputs.size(); };
  EXPECT_EQ(count("text"), 1u);
  EXPECT_EQ(count(Json{12, 34, 56}), 1u);          // token ids
  EXPECT_EQ(count(Json{12, 34, "text", 56}), 1u);  // ids mixed with text
  EXPECT_EQ(count(Json{"a", "b"}), 2u);            // strings: one each
  EXPECT_EQ(count(Json{"a", Json{12, 34}}), 2u);   // a string and an id list
  EXPECT_EQ(count(Json{Json{12}, Json{12, "x"}}), 2u);
  const auto mixed = parse_embeddings_request(Json{{"input", Json{12, "text"}}}).value().inputs[0];
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_EQ(std::get<llama_token>(mixed[0]), 12);
  EXPECT_EQ(std::get<std::string>(mixed[1]), "text");
  auto content = parse_embeddings_request(Json{{"content", "x"}, {"embd_normalize", -1}}).value();
  EXPECT_FALSE(content.oai) << "content is llama-server's field, answered in its shape";
  EXPECT_EQ(content.normalize, -1);
  for (const Json& bad :
       {Json{{"input", Json::array()}}, Json{{"input", Json{1, -2}}}, Json{{"input", Json{1, 2.5}}},
        Json{{"input", Json{Json::array()}}}, Json{{"input", 5}}, Json{{"input", "x"}, {"embd_normalize", 99}}}) {
    EXPECT_FALSE(parse_embeddings_request(bad)) << bad.dump();
  }
}

}  // namespace
}  // namespace llmd::runner
