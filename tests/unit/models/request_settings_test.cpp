// A model's configured defaults and forced values applied to request bodies.
#include <gtest/gtest.h>

#include "models/request_settings.h"

namespace llmd::models {
namespace {

using json = nlohmann::json;

json chat(json extra = json::object()) {
  json body = {{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  body.update(extra);
  return body;
}

// As the routes do it: note the client's limit, validate, apply.
json applied(json body, ApiKind kind, const config::RequestParams& defaults, const config::RequestParams& forced) {
  const bool client_limit = has_generation_limit(body);
  GatewayLimits limits;
  EXPECT_TRUE(validate_openai_request(kind, body, limits, "m"));
  apply_request_settings(body, kind, defaults, forced, client_limit, limits.max_tokens);
  return body;
}

TEST(RequestSettings, DefaultsFillOnlyWhatTheRequestLeavesOut) {
  config::RequestParams defaults;
  defaults.temperature = 0.3;
  defaults.top_k = 20;
  defaults.max_tokens = 100;
  defaults.seed = 7;
  const json mine = applied(chat({{"temperature", 1.2}, {"max_tokens", 40}}), ApiKind::kChat, defaults, {});
  EXPECT_EQ(mine["temperature"], 1.2);
  EXPECT_EQ(mine["max_tokens"], 40);
  EXPECT_EQ(mine["top_k"], 20);
  EXPECT_EQ(mine["seed"], 7);
  const json bare = applied(chat(), ApiKind::kChat, defaults, {});
  EXPECT_EQ(bare["temperature"], 0.3);
  EXPECT_EQ(bare["max_tokens"], 100) << "the model's default, not the gateway's";
  // max_completion_tokens is the client's own limit too.
  EXPECT_EQ(applied(chat({{"max_completion_tokens", 30}}), ApiKind::kChat, defaults, {})["max_tokens"], 30);
}

TEST(RequestSettings, ForcedValuesReplaceTheRequestsAndMaxTokensIsACeiling) {
  config::RequestParams forced;
  forced.temperature = 0.0;
  forced.max_tokens = 64;
  const json big = applied(chat({{"temperature", 1.5}, {"max_tokens", 1000}}), ApiKind::kChat, {}, forced);
  EXPECT_EQ(big["temperature"], 0.0);
  EXPECT_EQ(big["max_tokens"], 64);
  EXPECT_EQ(applied(chat({{"max_tokens", 10}}), ApiKind::kChat, {}, forced)["max_tokens"], 10);
  EXPECT_EQ(applied(chat(), ApiKind::kChat, {}, forced)["max_tokens"], 64);
  config::RequestParams huge;
  huge.max_tokens = 100000;
  EXPECT_EQ(applied(chat(), ApiKind::kChat, huge, {})["max_tokens"], GatewayLimits{}.max_tokens)
      << "never above the gateway's own limit";
}

TEST(RequestSettings, DefaultSystemOnlyWhenTheRequestHasNoneForcedSystemReplacesTheirs) {
  config::RequestParams with_system;
  with_system.system = "Be brief.";
  const json added = applied(chat(), ApiKind::kChat, with_system, {});
  ASSERT_EQ(added["messages"].size(), 2u);
  EXPECT_EQ(added["messages"][0], (json{{"role", "system"}, {"content", "Be brief."}}));
  const json own_system =
      chat({{"messages",
             json::array({{{"role", "developer"}, {"content", "Mine."}}, {{"role", "user"}, {"content", "hi"}}})}});
  const json kept = applied(own_system, ApiKind::kChat, with_system, {});
  EXPECT_EQ(kept["messages"], own_system["messages"]);
  const json replaced = applied(own_system, ApiKind::kChat, {}, with_system);
  ASSERT_EQ(replaced["messages"].size(), 2u);
  EXPECT_EQ(replaced["messages"][0]["content"], "Be brief.");
  EXPECT_EQ(replaced["messages"][1]["role"], "user");
}

TEST(RequestSettings, TemplateKwargsMergePerKeyAndReasoningEffortIsChatOnly) {
  config::RequestParams defaults, forced;
  defaults.chat_template_kwargs = {{"enable_thinking", "false"}, {"style", "\"terse\""}};
  forced.chat_template_kwargs = {{"safe", "true"}};
  defaults.reasoning_effort = "low";
  const json body = applied(chat({{"chat_template_kwargs", {{"enable_thinking", true}, {"safe", false}}}}),
                            ApiKind::kChat, defaults, forced);
  EXPECT_EQ(body["chat_template_kwargs"], (json{{"enable_thinking", true}, {"style", "terse"}, {"safe", true}}));
  EXPECT_EQ(body["reasoning_effort"], "low");
  json completion = {{"model", "m"}, {"prompt", "once upon"}};
  const json c = applied(completion, ApiKind::kCompletion, defaults, forced);
  EXPECT_FALSE(c.contains("reasoning_effort"));
  EXPECT_FALSE(c.contains("chat_template_kwargs"));
  EXPECT_FALSE(c.contains("messages"));
}

TEST(RequestSettings, EmbeddingsAreLeftAlone) {
  config::RequestParams defaults;
  defaults.temperature = 0.5;
  defaults.max_tokens = 5;
  json body = {{"model", "m"}, {"input", "text"}};
  const json before = body;
  apply_request_settings(body, ApiKind::kEmbedding, defaults, defaults, false, 4096);
  EXPECT_EQ(body, before);
}

TEST(RequestSettings, ListingShowsOnlyTheSetParameters) {
  config::RequestParams p;
  p.top_p = 0.5;
  p.chat_template_kwargs = {{"enable_thinking", "false"}};
  EXPECT_EQ(params_json(p), (json{{"top_p", 0.5}, {"chat_template_kwargs", {{"enable_thinking", false}}}}));
  EXPECT_EQ(params_json({}), json::object());
}

}  // namespace
}  // namespace llmd::models
