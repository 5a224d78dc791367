// The runner's chat layer on llama.cpp's common library: real model templates
// render, tool calls and reasoning are read back out of generated text.
#include "runner/chat.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "test_models.h"
#include "tools/make_test_model.h"

namespace llmd::runner {
namespace {

using Json = nlohmann::ordered_json;
using testing::qwen2_model;

std::string read_template(const std::string& name) {
  std::ifstream in(tools::default_templates_dir() / (name + ".jinja"), std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Json user(std::string text) { return Json{{"role", "user"}, {"content", std::move(text)}}; }

Json weather_tools() {
  return Json::array({Json{{"type", "function"},
                           {"function",
                            {{"name", "get_weather"},
                             {"description", "Current weather in a city"},
                             {"parameters",
                              {{"type", "object"},
                               {"properties", {{"city", {{"type", "string"}}}}},
                               {"required", Json::array({"city"})}}}}}}});
}

ChatInput input_of(Json messages, Json tools = nullptr) {
  ChatInput in;
  in.messages = std::move(messages);
  in.tools = std::move(tools);
  return in;
}

TEST(ChatTemplates, Qwen2ModelTemplateRendersChatML) {
  auto t = ChatTemplates::create(*qwen2_model());
  ASSERT_TRUE(t) << t.error().message;
  auto p = t->apply(input_of(Json::array({Json{{"role", "system"}, {"content", "Be brief."}}, user("你好")})));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\n你好<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplates, ModelWithoutTemplateFallsBackToChatML) {
  auto m = Model::load(testing::llama_model_path(), {.vocab_only = true});
  ASSERT_TRUE(m);
  auto t = ChatTemplates::create(**m);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->apply(input_of(Json::array({user("hi")})))->prompt,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplates, BuiltinNamesStillWorkAndBrokenJinjaIsATemplateError) {
  auto llama3 = ChatTemplates::create(*qwen2_model(), "llama3");
  ASSERT_TRUE(llama3);
  auto p = llama3->apply(input_of(Json::array({user("hi")})));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_NE(p->prompt.find("<|start_header_id|>user<|end_header_id|>"), std::string::npos);
  // The legacy formatters know nothing of tools: refused, not ignored.
  auto tools = llama3->apply(input_of(Json::array({user("hi")}), weather_tools()));
  ASSERT_FALSE(tools);
  EXPECT_EQ(tools.error().reason, "template_error");
  auto broken = ChatTemplates::create(*qwen2_model(), "{% if messages %}unterminated");
  if (broken) {
    // Some parse errors surface only when rendering: still a 400-class error.
    auto r = broken->apply(input_of(Json::array({user("hi")})));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  } else {
    EXPECT_EQ(broken.error().reason, "template_error");
  }
  // A template that raises names the template's own error.
  auto raising = ChatTemplates::create(*qwen2_model(), "{{ raise_exception('no system role here') }}");
  ASSERT_TRUE(raising);
  auto raised = raising->apply(input_of(Json::array({user("hi")})));
  ASSERT_FALSE(raised);
  EXPECT_EQ(raised.error().reason, "template_error");
  EXPECT_NE(raised.error().message.find("no system role here"), std::string::npos) << raised.error().message;
}

// Every real template of the pinned release renders a conversation, with and
// without tools, or fails with a template_error (never a crash).
TEST(ChatTemplates, EveryBundledTemplateRendersOrFailsClearly) {
  const auto dir = tools::default_templates_dir();
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int total = 0;
  int rendered = 0;
  int with_tools = 0;
  std::string failures;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    ++total;
    const std::string name = entry.path().stem().string();
    auto t = ChatTemplates::create(*qwen2_model(), read_template(name));
    if (!t) {
      EXPECT_EQ(t.error().reason, "template_error") << name;
      failures += name + " (parse): " + t.error().message + "\n";
      continue;
    }
    const Json conversation = Json::array({Json{{"role", "system"}, {"content", "You are terse."}}, user("Hello"),
                                           Json{{"role", "assistant"}, {"content", "Hi!"}}, user("Weather?")});
    auto p = t->apply(input_of(conversation));
    if (!p) {
      EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument) << name;
      EXPECT_FALSE(p.error().message.empty()) << name;
      failures += name + ": " + p.error().message + "\n";
      continue;
    }
    ++rendered;
    EXPECT_NE(p->prompt.find("Weather?"), std::string::npos) << name;
    auto tp = t->apply(input_of(conversation, weather_tools()));
    if (tp) {
      ++with_tools;
    } else {
      EXPECT_EQ(tp.error().code, ErrorCode::kInvalidArgument) << name;
    }
  }
  std::printf("templates: %d, rendered: %d, rendered with tools: %d\n%s", total, rendered, with_tools,
              failures.c_str());
  EXPECT_GE(total, 60);
  // llama.cpp's own engine renders all but a handful of its own test templates.
  EXPECT_GE(rendered, total - 5);
  EXPECT_GE(with_tools, rendered - 5);
}

// The end-of-turn marker a template writes after a turn: the model emits it as
// an end-of-generation token, which never reaches the text.
std::string without_end_of_turn(std::string text) {
  static const std::regex kEnd(R"((<\|[a-z_]+\|>|</s>|<end_of_turn>|<turn\|>|<｜[^｜]+｜>|\[/?[A-Z_]+\])\s*$)");
  for (int i = 0; i < 2; ++i) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.pop_back();
    std::smatch m;
    if (!std::regex_search(text, m, kEnd)) break;
    text.resize(static_cast<std::size_t>(m.position(0)));
  }
  return text;
}

// What a model would write for `assistant`, in the template's own format: the
// template renders the turn, minus what the generation prompt already holds
// and the end-of-turn marker. None when the template renders earlier turns
// differently once a later one exists (Mistral moves tools to the last turn).
std::optional<std::string> template_written(const ChatTemplates& t, const Json& tools, const Json& assistant,
                                            bool thinking = true) {
  ChatInput before = input_of(Json::array({user("Weather in Paris?")}), tools);
  before.enable_thinking = thinking;
  ChatInput after = input_of(Json::array({user("Weather in Paris?"), assistant}), tools);
  after.add_generation_prompt = false;
  after.enable_thinking = thinking;
  auto a = t.apply(before);
  auto b = t.apply(after);
  if (!a || !b || !b->prompt.starts_with(a->prompt)) return std::nullopt;
  return without_end_of_turn(b->prompt.substr(a->prompt.size()));
}

const char* const kToolTemplates[] = {"Qwen-Qwen3-0.6B",
                                      "Qwen-Qwen2.5-7B-Instruct",
                                      "meta-llama-Llama-3.1-8B-Instruct",
                                      "meta-llama-Llama-3.3-70B-Instruct",
                                      "mistralai-Mistral-Nemo-Instruct-2407",
                                      "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
                                      "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
                                      "openai-gpt-oss-120b",
                                      "google-gemma-4-31B-it",
                                      "ibm-granite-granite-4.0"};

// Forced call → tool_calls, and the tool's result renders in the next turn:
// the template writes the call the way the model would, the template-derived
// parser reads it back (whole and streamed in small pieces).
TEST(ChatTemplates, ToolCallsRoundTripThroughRepresentativeTemplates) {
  const Json call =
      Json{{"role", "assistant"},
           {"content", ""},
           {"tool_calls",
            Json::array({Json{{"id", "call_1"},
                              {"type", "function"},
                              {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}})}};
  int round_trips = 0;
  for (const char* name : kToolTemplates) {
    SCOPED_TRACE(name);
    auto t = ChatTemplates::create(*qwen2_model(), read_template(name));
    ASSERT_TRUE(t) << t.error().message;
    ChatInput forced = input_of(Json::array({user("Weather in Paris?")}), weather_tools());
    forced.tool_choice = ToolChoice::kRequired;
    auto rendered = t->apply(forced);
    ASSERT_TRUE(rendered) << rendered.error().message;
    EXPECT_FALSE(rendered->grammar.empty());
    EXPECT_FALSE(rendered->grammar_lazy);
    // Templates that describe tools natively show them; the rest get llama.cpp's fallback.
    if (t->capabilities()["supports_tools"].get<bool>()) {
      EXPECT_NE(rendered->prompt.find("get_weather"), std::string::npos);
    }

    auto written = template_written(*t, weather_tools(), call);
    if (!written) continue;
    ChatOutputParser whole(*rendered);
    whole.feed(*written);
    const ChatReply reply = whole.finish();
    std::printf("%s: wrote %zu bytes, parsed %zu call(s)\n", name, written->size(), reply.tool_calls.size());
    if (reply.tool_calls.empty()) continue;
    ++round_trips;
    EXPECT_EQ(reply.tool_calls[0].name, "get_weather");
    EXPECT_EQ(Json::parse(reply.tool_calls[0].arguments), Json::parse("{\"city\":\"Paris\"}"));
    EXPECT_FALSE(reply.tool_calls[0].id.empty());

    // Streamed in 3-byte pieces, the deltas assemble to the same call.
    ChatOutputParser streamed(*rendered);
    std::string name_seen;
    std::string args;
    auto collect = [&](const std::vector<ChatDelta>& deltas) {
      for (const auto& d : deltas) {
        if (!d.tool_index) continue;
        EXPECT_EQ(*d.tool_index, 0u);
        name_seen += d.tool_call.name;
        args += d.tool_call.arguments;
      }
    };
    for (std::size_t i = 0; i < written->size(); i += 3) collect(streamed.feed(written->substr(i, 3)));
    std::vector<ChatDelta> rest;
    streamed.finish(&rest);
    collect(rest);
    EXPECT_EQ(name_seen, "get_weather");
    EXPECT_EQ(Json::parse(args), Json::parse("{\"city\":\"Paris\"}"));

    // The tool's result goes back as role "tool" and renders in the next turn.
    ChatInput next =
        input_of(Json::array({user("Weather in Paris?"), call,
                              Json{{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny, 21 C"}}}),
                 weather_tools());
    auto turn = t->apply(next);
    ASSERT_TRUE(turn) << turn.error().message;
    EXPECT_NE(turn->prompt.find("sunny, 21 C"), std::string::npos);
  }
  EXPECT_GE(round_trips, 8);
}

// A reasoning template: what follows the generation prompt's opening of the
// thinking block is reasoning_content, never content.
TEST(ChatTemplates, ThinkingGoesToReasoningContent) {
  auto t = ChatTemplates::create(*qwen2_model(), read_template("Qwen-Qwen3-0.6B"));
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->capabilities()["supports_thinking"].get<bool>());
  auto rendered = t->apply(input_of(Json::array({user("2+2?")})));
  ASSERT_TRUE(rendered);
  const Json answer{{"role", "assistant"}, {"reasoning_content", "Two and two."}, {"content", "4"}};
  auto written = template_written(*t, nullptr, answer);
  ASSERT_TRUE(written);
  ChatOutputParser parser(*rendered);
  std::string streamed_reasoning;
  std::string streamed_content;
  for (char c : *written) {
    for (const auto& d : parser.feed(std::string(1, c))) {
      streamed_reasoning += d.reasoning_content;
      streamed_content += d.content;
    }
  }
  std::vector<ChatDelta> rest;
  const ChatReply reply = parser.finish(&rest);
  for (const auto& d : rest) {
    streamed_reasoning += d.reasoning_content;
    streamed_content += d.content;
  }
  // The template writes "<think>\n...\n</think>\n\n"; the parser keeps the inner newline.
  EXPECT_EQ(reply.reasoning_content.substr(0, 12), "Two and two.") << *written;
  EXPECT_LE(reply.reasoning_content.size(), 13u);
  EXPECT_EQ(reply.content, "4") << *written;
  EXPECT_EQ(streamed_reasoning, reply.reasoning_content);
  EXPECT_EQ(streamed_content, reply.content);

  // Thinking switched off: the template closes the block itself.
  ChatInput off = input_of(Json::array({user("2+2?")}));
  off.enable_thinking = false;
  off.template_kwargs["enable_thinking"] = "false";
  auto no_think = t->apply(off);
  ASSERT_TRUE(no_think);
  EXPECT_NE(no_think->prompt, rendered->prompt);
}

}  // namespace
}  // namespace llmd::runner
