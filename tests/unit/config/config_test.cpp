#include "config/config.h"

#include <gtest/gtest.h>

#include <map>

namespace llmd::config {
namespace {

// Environment for tests: a fixed map instead of the process environment.
std::map<std::string, std::string>& fake_env() {
  static std::map<std::string, std::string> env;
  return env;
}
std::optional<std::string> lookup(const char* name) {
  auto it = fake_env().find(name);
  if (it == fake_env().end()) return std::nullopt;
  return it->second;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_env().clear(); }
  Result<LoadedConfig> load(const std::string& yaml) { return load_config_text(yaml, lookup); }
};

TEST_F(ConfigTest, TlsKeysAreReadWithTheirDefaults) {
  auto r = load("server:\n  tls: { cert: /etc/llmd/chain.pem, key: /etc/llmd/key.pem }\n");
  ASSERT_TRUE(r) << r.error().message;
  const TlsConfig& t = r->config.server.tls;
  EXPECT_EQ(t.cert, "/etc/llmd/chain.pem");
  EXPECT_EQ(t.key, "/etc/llmd/key.pem");
  EXPECT_EQ(t.plain_http, "refuse");
  EXPECT_EQ(t.hsts_max_age_seconds, 31536000);
  EXPECT_EQ(t.reload_check_seconds, 5);
  EXPECT_TRUE(r->warnings.empty());

  r = load(
      "server:\n  tls: { cert: c, key: k, plain_http: redirect, hsts_max_age_seconds: 0, reload_check_seconds: 2, "
      "ciphers: x }\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->config.server.tls.plain_http, "redirect");
  EXPECT_EQ(r->config.server.tls.hsts_max_age_seconds, 0);
  EXPECT_EQ(r->config.server.tls.reload_check_seconds, 2);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("server.tls.ciphers"), std::string::npos);
}

TEST_F(ConfigTest, BadTlsValuesNameTheKey) {
  auto r = load("server:\n  tls: { cert: c, key: k, plain_http: allow }\n");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("server.tls.plain_http: expected one of redirect|refuse"))
      << r.error().message;
  r = load("server:\n  tls: { cert: c, key: k, hsts_max_age_seconds: -1 }\n");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("server.tls.hsts_max_age_seconds:")) << r.error().message;
  r = load("server:\n  tls: { cert: c, key: k, reload_check_seconds: 0 }\n");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("server.tls.reload_check_seconds:")) << r.error().message;
  r = load("server:\n  tls: { cert: c }\n");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("server.tls.cert:")) << r.error().message;
}

TEST_F(ConfigTest, EmptyConfigGivesEmbeddedDefaults) {
  auto r = load("");
  ASSERT_TRUE(r) << r.error().message;
  const Config& c = r->config;
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.database, "sqlite:data/llmd.db");
  EXPECT_EQ(c.models.dir, "models");
  EXPECT_EQ(c.models.port_min, 8081);
  EXPECT_EQ(c.models.port_max, 8085);
  EXPECT_EQ(c.auth.initial_tokens, 1000);
  EXPECT_EQ(c.auth.bcrypt_cost, 12);
  EXPECT_EQ(c.balancer.strategy, "least_connections");
  EXPECT_TRUE(r->warnings.empty());
}

TEST_F(ConfigTest, ParsesTheSpecExample) {
  auto r = load(R"(
server:   { host: 127.0.0.1, port: 8080, threads: 2, max_body_bytes: 10485760 }
database: "sqlite:data/llmd.db"
redis:    ""
auth:     { register_open: true, initial_tokens: 1000, jwt_ttl: 86400, bcrypt_cost: 12 }
models:
  dir: models
  port_range: "8081-8085"
  idle_unload_seconds: 600
  max_loaded: 2
  default_model: qwen2-7b-instruct
  list:
    - { name: qwen2-7b-instruct, file: qwen2-7b-instruct-q4_k_m.gguf, description: 通用对话模型,
        ctx: 8192, parallel: 4, threads: 8, replicas: 1 }
upstreams:
  - { name: gpu-box, url: "http://gpu-box.example:8081", model: qwen2-7b-instruct, weight: 3 }
balancer: { strategy: least_connections, health_interval: 5, fail_threshold: 3, cooldown: 30 }
tasks:    { convert: { model: qwen2-7b-instruct }, homework: { model: qwen2-7b-instruct } }
logging:  { level: info, format: json }
uploads:  { dir: data/uploads, max_bytes: 2147483648, quota_bytes_per_user: 1073741824, media_roots: [data/uploads] }
)");
  ASSERT_TRUE(r) << r.error().message;
  const Config& c = r->config;
  EXPECT_EQ(c.server.threads, 2);
  ASSERT_EQ(c.models.list.size(), 1u);
  EXPECT_EQ(c.models.list[0].description, "通用对话模型");
  EXPECT_EQ(c.models.list[0].ctx, 8192);
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_EQ(c.upstreams[0].weight, 3);
  EXPECT_EQ(c.tasks.at("convert").model, "qwen2-7b-instruct");
  EXPECT_EQ(c.uploads.max_bytes, 2147483648ULL);
  EXPECT_EQ(c.uploads.quota_bytes_per_user, 1073741824ULL);
  EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
}

TEST_F(ConfigTest, WrongTypeNamesTheKey) {
  auto r = load("server: { port: http }");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.rfind("server.port:", 0), 0u) << r.error().message;
}

TEST_F(ConfigTest, OutOfRangeNamesTheKey) {
  auto r = load("server: { port: 70000 }");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("server.port"), std::string::npos);
  auto cost = load("auth: { bcrypt_cost: 4 }");
  ASSERT_FALSE(cost);
  EXPECT_NE(cost.error().message.find("auth.bcrypt_cost"), std::string::npos);
}

TEST_F(ConfigTest, PortRangeSyntaxIsValidated) {
  EXPECT_TRUE(load("models: { port_range: \"9000-9010\" }"));
  for (const char* bad : {"9010-9000", "abc", "1-70000", "80-", "-"}) {
    auto r = load(std::string("models: { port_range: \"") + bad + "\" }");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("models.port_range"), std::string::npos);
  }
}

TEST_F(ConfigTest, UnknownKeysAreWarnedNotFatal) {
  auto r = load("server: { port: 9000, colour: blue }\nfrobnicate: 1\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->warnings.size(), 2u);
  EXPECT_NE(r->warnings[0].find("frobnicate"), std::string::npos);
  EXPECT_NE(r->warnings[1].find("server.colour"), std::string::npos);
}

TEST_F(ConfigTest, EnvironmentOverridesFile) {
  fake_env()["LLMD_SERVER_PORT"] = "9100";
  fake_env()["LLMD_DATABASE"] = "sqlite:/tmp/x.db";
  fake_env()["LLMD_SERVER_CORS_ORIGINS"] = "http://a.example, http://b.example";
  fake_env()["LOG_LEVEL"] = "debug";
  auto r = load("server: { port: 9000 }");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->config.server.port, 9100);
  EXPECT_EQ(r->config.database, "sqlite:/tmp/x.db");
  EXPECT_EQ(r->config.server.cors_origins, (std::vector<std::string>{"http://a.example", "http://b.example"}));
  EXPECT_EQ(r->config.logging.level, "debug");
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheKey) {
  fake_env()["LLMD_BALANCER_STRATEGY"] = "random";
  auto r = load("");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("balancer.strategy"), std::string::npos);
}

TEST_F(ConfigTest, YamlSyntaxErrorGivesLine) {
  auto r = load("server:\n  port: [1,\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line"), std::string::npos);
}

TEST_F(ConfigTest, ShortJwtSecretIsRefused) {
  auto r = load("auth: { jwt_secret: tooshort }");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("auth.jwt_secret"), std::string::npos);
}

TEST_F(ConfigTest, DuplicateModelNamesAreRefused) {
  auto r = load("models: { list: [ {name: a, file: a.gguf}, {name: a, file: b.gguf} ] }");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("models.list[1].name"), std::string::npos);
}

TEST_F(ConfigTest, DatabaseUrlSchemeIsChecked) {
  EXPECT_TRUE(load("database: \"mysql://u:p@127.0.0.1:3306/llmd\""));
  auto r = load("database: \"postgres://x\"");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.rfind("database:", 0), 0u);
}

TEST_F(ConfigTest, SubtitleJobKeysAreReadAndValidated) {
  auto defaults = load("");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->config.subtitle.concurrency, 2);
  auto r = load(
      "tasks: { subtitle: { model: m, concurrency: 3, batch_min: 5, batch_max: 12, max_tokens_per_batch: 256, "
      "max_cues: 900 } }");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
  EXPECT_EQ(r->config.tasks.at("subtitle").model, "m");
  EXPECT_EQ(r->config.subtitle.concurrency, 3);
  EXPECT_EQ(r->config.subtitle.batch_min, 5);
  EXPECT_EQ(r->config.subtitle.batch_max, 12);
  EXPECT_EQ(r->config.subtitle.max_tokens_per_batch, 256);
  EXPECT_EQ(r->config.subtitle.max_cues, 900);
  auto zero = load("tasks: { subtitle: { concurrency: 0 } }");
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().message.rfind("tasks.subtitle.concurrency:", 0), 0u) << zero.error().message;
  auto inverted = load("tasks: { subtitle: { batch_min: 30, batch_max: 10 } }");
  ASSERT_FALSE(inverted);
  EXPECT_NE(inverted.error().message.find("tasks.subtitle.batch_min"), std::string::npos);
  auto elsewhere = load("tasks: { convert: { concurrency: 3 } }");  // a subtitle key on another task
  ASSERT_TRUE(elsewhere);
  EXPECT_FALSE(elsewhere->warnings.empty());
}

TEST_F(ConfigTest, NetworkListsAreValidatedAsCidrs) {
  auto ok = load("server: { trusted_proxies: [127.0.0.1/32, \"::1\"], allowed_networks: [10.0.0.0/8, \"fd00::/8\"] }");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->config.server.trusted_proxies, (std::vector<std::string>{"127.0.0.1/32", "::1"}));
  EXPECT_EQ(ok->config.server.allowed_networks.size(), 2u);
  auto bad = load("server: { allowed_networks: [10.0.0.0/33] }");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("server.allowed_networks:", 0), 0u) << bad.error().message;
  auto junk = load("server: { trusted_proxies: [proxy.example] }");
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().message.rfind("server.trusted_proxies:", 0), 0u) << junk.error().message;
}

TEST_F(ConfigTest, ExampleFileInRepositoryLoadsWithoutWarnings) {
  auto r = load_config_file(std::string(LLMD_SOURCE_DIR) + "/llmd.example.yaml", lookup);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
}

// Issue 13, item 7.
TEST_F(ConfigTest, ModelThreadsAcceptAutoAndCpuCoresDefaultsToDetection) {
  auto r = load(
      "models:\n  cpu_cores: 6\n  list:\n    - { name: a, file: a.gguf, threads: auto }\n"
      "    - { name: b, file: b.gguf, threads: 3 }\n    - { name: c, file: c.gguf }\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_EQ(r->config.models.cpu_cores, 6);
  EXPECT_EQ(r->config.models.list[0].threads, 0);  // auto
  EXPECT_EQ(r->config.models.list[1].threads, 3);
  EXPECT_EQ(r->config.models.list[2].threads, 0);
  EXPECT_EQ(load("")->config.models.cpu_cores, 0);
  EXPECT_FALSE(load("models: { list: [ { name: a, file: a.gguf, threads: many } ] }"));
}

// Issue 17: gpu_layers is auto unless set; all and -1 are every layer.
TEST_F(ConfigTest, ModelGpuLayersAcceptAutoAllAndACount) {
  auto r = load(
      "models:\n  list:\n    - { name: a, file: a.gguf }\n    - { name: b, file: b.gguf, gpu_layers: AUTO }\n"
      "    - { name: c, file: c.gguf, gpu_layers: all }\n    - { name: d, file: d.gguf, gpu_layers: -1 }\n"
      "    - { name: e, file: e.gguf, gpu_layers: 0 }\n    - { name: f, file: f.gguf, gpu_layers: 12 }\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->warnings.empty());
  const auto& list = r->config.models.list;
  EXPECT_EQ(list[0].gpu_layers, kGpuLayersAuto);
  EXPECT_EQ(list[1].gpu_layers, kGpuLayersAuto);
  EXPECT_EQ(list[2].gpu_layers, kGpuLayersAll);
  EXPECT_EQ(list[3].gpu_layers, kGpuLayersAll);
  EXPECT_EQ(list[4].gpu_layers, 0);
  EXPECT_EQ(list[5].gpu_layers, 12);
  EXPECT_FALSE(load("models: { list: [ { name: a, file: a.gguf, gpu_layers: most } ] }"));
  EXPECT_FALSE(load("models: { list: [ { name: a, file: a.gguf, gpu_layers: -2 } ] }"));
}

}  // namespace
}  // namespace llmd::config

namespace llmd::config {
namespace {

Result<LoadedConfig> load_models(const std::string& entry) {
  return load_config_text("models:\n  list:\n    - " + entry + "\n",
                          [](const char*) -> std::optional<std::string> { return std::nullopt; });
}

TEST(ModelSettingsConfig, AliasesDefaultsForcedPreloadAndPinAreRead) {
  auto r = load_models(
      "{ name: qwen, file: q.gguf, aliases: [gpt-4o-mini, chat], preload: true, pin: yes,\n"
      "      defaults: { temperature: 0.7, max_tokens: 256, system: \"Be kind.\", top_k: 40,\n"
      "                  chat_template_kwargs: { enable_thinking: false, style: terse, level: 2, n: \"3\" } },\n"
      "      forced: { top_p: 0.9, max_tokens: 512, seed: -1, reasoning_effort: low } }");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->warnings.empty());
  const ModelEntry& e = r->config.models.list.at(0);
  EXPECT_EQ(e.aliases, (std::vector<std::string>{"gpt-4o-mini", "chat"}));
  EXPECT_TRUE(e.preload);
  EXPECT_TRUE(e.pin);
  EXPECT_EQ(e.defaults.temperature, 0.7);
  EXPECT_EQ(e.defaults.max_tokens, 256);
  EXPECT_EQ(e.defaults.top_k, 40);
  EXPECT_EQ(e.defaults.system, "Be kind.");
  EXPECT_FALSE(e.defaults.top_p);
  // Booleans and numbers stay such; a quoted number is a string.
  EXPECT_EQ(e.defaults.chat_template_kwargs,
            (std::map<std::string, std::string>{
                {"enable_thinking", "false"}, {"style", "\"terse\""}, {"level", "2"}, {"n", "\"3\""}}));
  EXPECT_EQ(e.forced.top_p, 0.9);
  EXPECT_EQ(e.forced.max_tokens, 512);
  EXPECT_EQ(e.forced.seed, -1);
  EXPECT_EQ(e.forced.reasoning_effort, "low");
  EXPECT_FALSE(e.forced.temperature);
}

TEST(ModelSettingsConfig, AnUnknownOrOutOfRangeParameterStopsTheStartNamingIt) {
  auto typo = load_models("{ name: qwen, file: q.gguf, forced: { temprature: 0.2 } }");
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().message.find("models.list[0].forced.temprature: unknown request parameter"), std::string::npos)
      << typo.error().message;
  auto hot = load_models("{ name: qwen, file: q.gguf, defaults: { temperature: 7 } }");
  ASSERT_FALSE(hot);
  EXPECT_NE(hot.error().message.find("models.list[0].defaults.temperature"), std::string::npos) << hot.error().message;
  auto effort = load_models("{ name: qwen, file: q.gguf, defaults: { reasoning_effort: extreme } }");
  ASSERT_FALSE(effort);
  EXPECT_NE(effort.error().message.find("reasoning_effort"), std::string::npos) << effort.error().message;
  auto nested = load_models("{ name: qwen, file: q.gguf, defaults: { chat_template_kwargs: { a: [1, 2] } } }");
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().message.find("chat_template_kwargs"), std::string::npos) << nested.error().message;
}

TEST(ModelSettingsConfig, ModeAndPoolingChooseWhatTheWorkerServes) {
  auto chat = load_models("{ name: qwen, file: q.gguf }");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->config.models.list.at(0).mode, "chat");
  auto emb = load_models("{ name: bge, file: b.gguf, mode: embeddings, pooling: cls }");
  ASSERT_TRUE(emb) << emb.error().message;
  EXPECT_EQ(emb->config.models.list.at(0).mode, "embeddings");
  EXPECT_EQ(emb->config.models.list.at(0).pooling, "cls");
  ASSERT_TRUE(load_models("{ name: r, file: r.gguf, mode: rerank }"));
  for (const char* bad :
       {"{ name: r, file: r.gguf, mode: ranking }", "{ name: r, file: r.gguf, mode: embeddings, pooling: max }",
        "{ name: r, file: r.gguf, mode: rerank, pooling: mean }"}) {
    auto r = load_models(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("models.list[0]."), std::string::npos) << r.error().message;
  }
}

TEST(ModelSettingsConfig, AnAliasMustNameOneModelOnly) {
  auto r = load_config_text(
      "models:\n  list:\n    - { name: a, file: a.gguf, aliases: [x] }\n    - { name: b, file: b.gguf, aliases: [a] "
      "}\n",
      [](const char*) -> std::optional<std::string> { return std::nullopt; });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("models.list[1].aliases: \"a\" already names another model"), std::string::npos)
      << r.error().message;
  auto twice = load_config_text(
      "models:\n  list:\n    - { name: a, file: a.gguf, aliases: [x] }\n    - { name: b, file: b.gguf, aliases: [x] "
      "}\n",
      [](const char*) -> std::optional<std::string> { return std::nullopt; });
  ASSERT_FALSE(twice);
}

TEST(ModelSettingsConfig, QueueTimeoutAndUpstreamSlotsAreRead) {
  auto r = load_config_text(
      "models: { queue_timeout_seconds: 30 }\nupstreams:\n  - { url: \"http://h:1\", model: m, parallel: 4 }\n",
      [](const char*) -> std::optional<std::string> { return std::nullopt; });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->config.models.queue_timeout_seconds, 30);
  EXPECT_EQ(r->config.upstreams.at(0).parallel, 4);
  EXPECT_EQ(load_config_text("", [](const char*) -> std::optional<std::string> { return std::nullopt; })
                ->config.models.queue_timeout_seconds,
            120);
  EXPECT_FALSE(load_config_text("models: { queue_timeout_seconds: 0 }\n",
                                [](const char*) -> std::optional<std::string> { return std::nullopt; }));
}

}  // namespace
}  // namespace llmd::config
