#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "http/client_address.h"

namespace llmd::config {
namespace {

// The keys of each mapping section; used for unknown-key warnings and for
// LLMD_<SECTION>_<KEY> environment overrides. Lists are marked.
struct KeySpec {
  const char* key;
  bool is_list = false;
};
struct SectionSpec {
  const char* name;
  std::vector<KeySpec> keys;
};

const std::vector<SectionSpec>& sections() {
  static const std::vector<SectionSpec> kSections = {
      {"server",
       {{"host"},
        {"port"},
        {"threads"},
        {"worker_threads"},
        {"task_threads"},
        {"cors_origins", true},
        {"allowed_hosts", true},
        {"max_body_bytes"},
        {"header_timeout_seconds"},
        {"idle_timeout_seconds"},
        {"shutdown_grace_seconds"},
        {"data_dir"},
        {"web_dir"},
        {"tls"},
        {"trusted_proxies", true},
        {"allowed_networks", true},
        {"max_connections"},
        {"max_connections_per_ip"},
        {"min_body_rate_bytes"},
        {"body_grace_seconds"}}},
      {"auth",
       {{"jwt_secret"},
        {"jwt_ttl"},
        {"register_open"},
        {"initial_tokens"},
        {"bcrypt_cost"},
        {"register_initial_tokens"},
        {"register_per_ip_per_hour"},
        {"password_threads"}}},
      {"limits",
       {{"user_rpm"},
        {"ip_rpm"},
        {"login_attempts"},
        {"login_window_seconds"},
        {"login_account_attempts"},
        {"auth_failures_per_minute"},
        {"convert_concurrent_per_user"}}},
      {"models",
       {{"dir"},
        {"port_range"},
        {"idle_unload_seconds"},
        {"max_loaded"},
        {"queue_timeout_seconds"},
        {"default_model"},
        {"allow_private_redirects"},
        {"hf_endpoint"},
        {"list"},
        {"cpu_cores"}}},
      {"balancer", {{"strategy"}, {"health_interval"}, {"fail_threshold"}, {"cooldown"}}},
      {"logging", {{"level"}, {"format"}, {"file"}}},
      {"uploads", {{"dir"}, {"max_bytes"}, {"quota_bytes_per_user"}, {"media_roots", true}}},
      {"asr", {{"url"}, {"api_key"}}},
      {"chat", {{"max_conversations"}, {"max_messages_per_conversation"}, {"max_message_bytes"}, {"retention_days"}}},
      {"groups", {{"time_zone"}, {"max_teacher_allowance"}, {"allowance_sweep_seconds"}}},
  };
  return kSections;
}

const std::set<std::string> kTopLevelScalars = {"database", "redis"};
const std::set<std::string> kTopLevelOther = {"upstreams", "tasks"};

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

YAML::Node list_from_csv(const std::string& v) {
  YAML::Node seq(YAML::NodeType::Sequence);
  for (auto part : text::split(v, ',')) {
    part = text::trim(part);
    if (!part.empty()) seq.push_back(std::string(part));
  }
  return seq;
}

void apply_env(YAML::Node& root, EnvLookup env) {
  for (const auto& top : kTopLevelScalars) {
    if (auto v = env(("LLMD_" + upper(top)).c_str())) root[top] = *v;
  }
  for (const auto& section : sections()) {
    for (const auto& key : section.keys) {
      const std::string var = "LLMD_" + upper(section.name) + "_" + upper(key.key);
      if (auto v = env(var.c_str())) {
        if (!root[section.name] || !root[section.name].IsMap()) {
          root[section.name] = YAML::Node(YAML::NodeType::Map);
        }
        root[section.name][key.key] = key.is_list ? list_from_csv(*v) : YAML::Node(*v);
      }
    }
  }
  if (auto v = env("LOG_LEVEL")) {
    if (!root["logging"] || !root["logging"].IsMap()) root["logging"] = YAML::Node(YAML::NodeType::Map);
    root["logging"]["level"] = *v;
  }
}

// Reads typed values out of a YAML mapping, naming the key path in errors.
class Reader {
 public:
  Reader(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  Result<void> string(const std::string& key, std::string& out) const {
    auto n = node_[key];
    if (!n || n.IsNull()) return {};
    if (!n.IsScalar()) return bad(key, "expected a string");
    out = n.Scalar();
    return {};
  }

  template <typename Int>
  Result<void> integer(const std::string& key, Int& out, long long min, long long max) const {
    auto n = node_[key];
    if (!n || n.IsNull()) return {};
    if (!n.IsScalar()) return bad(key, "expected an integer");
    const auto v = text::parse_int(text::trim(n.Scalar()));
    if (!v || *v < min || *v > max) {
      return bad(key, "expected an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got \"" +
                          n.Scalar() + "\"");
    }
    out = static_cast<Int>(*v);
    return {};
  }

  Result<void> number(const std::string& key, std::optional<double>& out, double min, double max) const {
    auto n = node_[key];
    if (!n || n.IsNull()) return {};
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || v < min || v > max) {
      return bad(key, "expected a number in " + std::to_string(min) + ".." + std::to_string(max));
    }
    out = v;
    return {};
  }

  Result<void> boolean(const std::string& key, bool& out) const {
    auto n = node_[key];
    if (!n || n.IsNull()) return {};
    const std::string v = n.IsScalar() ? text::to_lower(n.Scalar()) : "";
    if (v == "true" || v == "yes" || v == "on" || v == "1")
      out = true;
    else if (v == "false" || v == "no" || v == "off" || v == "0")
      out = false;
    else
      return bad(key, "expected true or false");
    return {};
  }

  Result<void> strings(const std::string& key, std::vector<std::string>& out) const {
    auto n = node_[key];
    if (!n || n.IsNull()) return {};
    if (n.IsScalar()) {  // a single value or a comma-separated list
      out.clear();
      for (const auto& item : list_from_csv(n.Scalar())) out.push_back(item.Scalar());
      return {};
    }
    if (!n.IsSequence()) return bad(key, "expected a list of strings");
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) return bad(key, "expected a list of strings");
      out.push_back(item.Scalar());
    }
    return {};
  }

  Result<void> one_of(const std::string& key, std::string& out, const std::set<std::string>& allowed) const {
    if (auto r = string(key, out); !r) return r;
    if (!allowed.contains(out)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : "|") + a;
      return bad(key, "expected one of " + list + ", got \"" + out + "\"");
    }
    return {};
  }

  Result<void> bad(const std::string& key, const std::string& what) const {
    return fail(ErrorCode::kInvalidArgument, key_path(key) + ": " + what, "bad_config");
  }

  YAML::Node node() const { return node_; }

 private:
  YAML::Node node_;
  std::string path_;
};

void warn_unknown(const YAML::Node& map, const std::string& path, const std::set<std::string>& known,
                  std::vector<std::string>& warnings) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (!known.contains(key))
      warnings.push_back("unknown config key \"" + (path.empty() ? key : path + "." + key) + "\" ignored");
  }
}

std::set<std::string> known_keys(const char* section) {
  std::set<std::string> out;
  for (const auto& s : sections()) {
    if (std::string(s.name) == section) {
      for (const auto& k : s.keys) out.insert(k.key);
    }
  }
  return out;
}

Result<YAML::Node> section_node(const YAML::Node& root, const char* name) {
  auto n = root[name];
  if (!n || n.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!n.IsMap()) return fail(ErrorCode::kInvalidArgument, std::string(name) + ": expected a mapping", "bad_config");
  return n;
}

Result<void> parse_port_range(const std::string& text_value, ModelsConfig& m) {
  const auto parts = text::split(text_value, '-');
  std::optional<long long> lo, hi;
  if (parts.size() == 2) {
    lo = text::parse_int(text::trim(parts[0]));
    hi = text::parse_int(text::trim(parts[1]));
  } else if (parts.size() == 1) {
    lo = hi = text::parse_int(text::trim(parts[0]));
  }
  if (!lo || !hi || *lo < 1 || *hi > 65535 || *lo > *hi) {
    return fail(ErrorCode::kInvalidArgument,
                "models.port_range: expected \"LOW-HIGH\" with 1 <= LOW <= HIGH <= 65535, got \"" + text_value + "\"",
                "bad_config");
  }
  m.port_min = static_cast<int>(*lo);
  m.port_max = static_cast<int>(*hi);
  return {};
}

Result<void> parse_server(const YAML::Node& root, Config& c, std::vector<std::string>& warnings) {
  auto node = section_node(root, "server");
  if (!node) return std::unexpected(node.error());
  warn_unknown(*node, "server", known_keys("server"), warnings);
  Reader r(*node, "server");
  auto& s = c.server;
  LLMD_TRY(r.string("host", s.host));
  LLMD_TRY(r.integer("port", s.port, 1, 65535));
  LLMD_TRY(r.integer("threads", s.threads, 0, 256));
  LLMD_TRY(r.integer("worker_threads", s.worker_threads, 0, 1024));
  LLMD_TRY(r.integer("task_threads", s.task_threads, 0, 1024));
  LLMD_TRY(r.strings("cors_origins", s.cors_origins));
  LLMD_TRY(r.strings("allowed_hosts", s.allowed_hosts));
  LLMD_TRY(r.integer("max_body_bytes", s.max_body_bytes, 1024, 1LL << 40));
  LLMD_TRY(r.integer("header_timeout_seconds", s.header_timeout_seconds, 1, 3600));
  LLMD_TRY(r.integer("idle_timeout_seconds", s.idle_timeout_seconds, 1, 86400));
  LLMD_TRY(r.integer("shutdown_grace_seconds", s.shutdown_grace_seconds, 0, 3600));
  LLMD_TRY(r.string("data_dir", s.data_dir));
  LLMD_TRY(r.string("web_dir", s.web_dir));
  if (auto tls = (*node)["tls"]; tls && !tls.IsNull()) {
    if (!tls.IsMap()) return r.bad("tls", "expected a mapping with cert and key");
    warn_unknown(tls, "server.tls", {"cert", "key", "plain_http", "hsts_max_age_seconds", "reload_check_seconds"},
                 warnings);
    Reader t(tls, "server.tls");
    LLMD_TRY(t.string("cert", s.tls.cert));
    LLMD_TRY(t.string("key", s.tls.key));
    LLMD_TRY(t.one_of("plain_http", s.tls.plain_http, {"refuse", "redirect"}));
    LLMD_TRY(t.integer("hsts_max_age_seconds", s.tls.hsts_max_age_seconds, 0, 2 * 31536000));
    LLMD_TRY(t.integer("reload_check_seconds", s.tls.reload_check_seconds, 1, 3600));
    if (s.tls.cert.empty() != s.tls.key.empty()) return t.bad("cert", "cert and key must be set together");
  }
  LLMD_TRY(r.strings("trusted_proxies", s.trusted_proxies));
  LLMD_TRY(r.strings("allowed_networks", s.allowed_networks));
  for (const char* key : {"trusted_proxies", "allowed_networks"}) {
    const auto& list = std::string_view(key) == "trusted_proxies" ? s.trusted_proxies : s.allowed_networks;
    if (auto parsed = http::NetworkList::parse(list); !parsed) return r.bad(key, parsed.error().message);
  }
  LLMD_TRY(r.integer("max_connections", s.max_connections, 0, 1000000));
  LLMD_TRY(r.integer("max_connections_per_ip", s.max_connections_per_ip, 0, 1000000));
  LLMD_TRY(r.integer("min_body_rate_bytes", s.min_body_rate_bytes, 0, 1 << 30));
  LLMD_TRY(r.integer("body_grace_seconds", s.body_grace_seconds, 0, 86400));
  return {};
}

// One scalar of chat_template_kwargs as a JSON value: YAML's booleans and
// numbers as such, anything else a string.
std::string json_literal(const YAML::Node& n) {
  const std::string v = n.Scalar();
  if (n.Tag() != "!") {  // not a quoted string
    const std::string lower = text::to_lower(v);
    if (lower == "true" || lower == "false") return lower;
    if (lower == "null" || lower == "~") return "null";
    if (const auto i = text::parse_int(text::trim(v))) return std::to_string(*i);
    double d = 0;
    if (YAML::convert<double>::decode(n, d) && std::isfinite(d)) return nlohmann::json(d).dump();
  }
  return nlohmann::json(v).dump();
}

// models.list[].defaults / .forced: known parameters only (a typo in a
// forced value must not pass silently), each in its range.
Result<void> parse_request_params(const YAML::Node& node, const std::string& path, RequestParams& out) {
  if (!node || node.IsNull()) return {};
  if (!node.IsMap()) return fail(ErrorCode::kInvalidArgument, path + ": expected a mapping", "bad_config");
  static const std::set<std::string> kKnown = {
      "temperature",    "top_p",      "min_p", "top_k",  "presence_penalty", "frequency_penalty",
      "repeat_penalty", "max_tokens", "seed",  "system", "reasoning_effort", "chat_template_kwargs"};
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (!kKnown.contains(key)) {
      std::string known;
      for (const auto& k : kKnown) known += (known.empty() ? "" : ", ") + k;
      return fail(ErrorCode::kInvalidArgument, path + "." + key + ": unknown request parameter (known: " + known + ")",
                  "bad_config");
    }
  }
  Reader r(node, path);
  LLMD_TRY(r.number("temperature", out.temperature, 0.0, 2.0));
  LLMD_TRY(r.number("top_p", out.top_p, 0.0, 1.0));
  LLMD_TRY(r.number("min_p", out.min_p, 0.0, 1.0));
  LLMD_TRY(r.number("presence_penalty", out.presence_penalty, -2.0, 2.0));
  LLMD_TRY(r.number("frequency_penalty", out.frequency_penalty, -2.0, 2.0));
  LLMD_TRY(r.number("repeat_penalty", out.repeat_penalty, 0.0, 10.0));
  auto integer = [&](const char* key, std::optional<std::int64_t>& into, long long min, long long max) -> Result<void> {
    if (!node[key] || node[key].IsNull()) return {};
    std::int64_t v = 0;
    LLMD_TRY(r.integer(key, v, min, max));
    into = v;
    return {};
  };
  LLMD_TRY(integer("top_k", out.top_k, 0, 1000000));
  LLMD_TRY(integer("max_tokens", out.max_tokens, 1, 1000000));
  LLMD_TRY(integer("seed", out.seed, -1, 4294967295LL));
  if (node["system"] && !node["system"].IsNull()) {
    std::string system;
    LLMD_TRY(r.string("system", system));
    out.system = system;
  }
  if (node["reasoning_effort"] && !node["reasoning_effort"].IsNull()) {
    std::string effort;
    LLMD_TRY(r.one_of("reasoning_effort", effort, {"low", "medium", "high"}));
    out.reasoning_effort = effort;
  }
  if (const auto kwargs = node["chat_template_kwargs"]; kwargs && !kwargs.IsNull()) {
    if (!kwargs.IsMap()) return r.bad("chat_template_kwargs", "expected a mapping of names to values");
    for (const auto& kv : kwargs) {
      if (!kv.second.IsScalar()) {
        return r.bad("chat_template_kwargs",
                     "the value of " + kv.first.Scalar() + " must be a string, number or boolean");
      }
      out.chat_template_kwargs[kv.first.Scalar()] = json_literal(kv.second);
    }
  }
  return {};
}

Result<void> parse_models(const YAML::Node& root, Config& c, std::vector<std::string>& warnings) {
  auto node = section_node(root, "models");
  if (!node) return std::unexpected(node.error());
  warn_unknown(*node, "models", known_keys("models"), warnings);
  Reader r(*node, "models");
  auto& m = c.models;
  LLMD_TRY(r.string("dir", m.dir));
  std::string range;
  LLMD_TRY(r.string("port_range", range));
  if (!range.empty()) LLMD_TRY(parse_port_range(range, m));
  LLMD_TRY(r.integer("idle_unload_seconds", m.idle_unload_seconds, 0, 86400 * 365));
  LLMD_TRY(r.integer("max_loaded", m.max_loaded, 1, 64));
  LLMD_TRY(r.integer("queue_timeout_seconds", m.queue_timeout_seconds, 1, 3600));
  LLMD_TRY(r.string("default_model", m.default_model));
  LLMD_TRY(r.boolean("allow_private_redirects", m.allow_private_redirects));
  LLMD_TRY(r.string("hf_endpoint", m.hf_endpoint));
  if (!m.hf_endpoint.starts_with("http://") && !m.hf_endpoint.starts_with("https://")) {
    return r.bad("hf_endpoint", "expected an http:// or https:// URL");
  }
  LLMD_TRY(r.integer("cpu_cores", m.cpu_cores, 0, 4096));
  auto list = (*node)["list"];
  if (list && !list.IsNull()) {
    if (!list.IsSequence()) return r.bad("list", "expected a list of models");
    std::set<std::string> names;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = "models.list[" + std::to_string(i) + "]";
      if (!list[i].IsMap()) return fail(ErrorCode::kInvalidArgument, path + ": expected a mapping", "bad_config");
      warn_unknown(list[i], path,
                   {"name", "file", "description", "ctx", "threads", "parallel", "gpu_layers", "replicas", "weight",
                    "chat_template", "command", "price_multiplier", "aliases", "defaults", "forced", "preload", "pin",
                    "mode", "pooling"},
                   warnings);
      Reader e(list[i], path);
      ModelEntry me;
      LLMD_TRY(e.string("name", me.name));
      LLMD_TRY(e.string("file", me.file));
      LLMD_TRY(e.string("description", me.description));
      LLMD_TRY(e.integer("ctx", me.ctx, 64, 1 << 22));
      // "auto" (the default) is 0: the manager gives the worker a share of the cores.
      if (const auto t = list[i]["threads"]; !(t && t.IsScalar() && text::to_lower(text::trim(t.Scalar())) == "auto")) {
        LLMD_TRY(e.integer("threads", me.threads, 0, 1024));
      }
      LLMD_TRY(e.integer("parallel", me.parallel, 1, 256));
      if (const auto g = list[i]["gpu_layers"]; g && g.IsScalar()) {
        const std::string word = text::to_lower(text::trim(g.Scalar()));
        if (word == "auto") {
          me.gpu_layers = kGpuLayersAuto;
        } else if (word == "all") {
          me.gpu_layers = kGpuLayersAll;
        } else {
          LLMD_TRY(e.integer("gpu_layers", me.gpu_layers, -1, 100000));
        }
      }
      LLMD_TRY(e.integer("replicas", me.replicas, 1, 64));
      LLMD_TRY(e.integer("weight", me.weight, 1, 1000));
      LLMD_TRY(e.string("chat_template", me.chat_template));
      LLMD_TRY(e.string("command", me.command));
      std::optional<double> factor;
      LLMD_TRY(e.number("price_multiplier", factor, 0.0, 1000.0));
      if (factor) me.price_multiplier = *factor;
      LLMD_TRY(e.strings("aliases", me.aliases));
      LLMD_TRY(parse_request_params(list[i]["defaults"], path + ".defaults", me.defaults));
      LLMD_TRY(parse_request_params(list[i]["forced"], path + ".forced", me.forced));
      LLMD_TRY(e.boolean("preload", me.preload));
      LLMD_TRY(e.boolean("pin", me.pin));
      LLMD_TRY(e.string("mode", me.mode));
      if (me.mode != "chat" && me.mode != "embeddings" && me.mode != "rerank") {
        return e.bad("mode", "expected chat, embeddings or rerank");
      }
      LLMD_TRY(e.string("pooling", me.pooling));
      if (!me.pooling.empty() && me.pooling != "mean" && me.pooling != "cls" && me.pooling != "last" &&
          me.pooling != "none") {
        return e.bad("pooling", "expected mean, cls, last or none");
      }
      if (!me.pooling.empty() && me.mode != "embeddings") return e.bad("pooling", "applies to mode: embeddings only");
      if (me.name.empty()) return e.bad("name", "required");
      if (me.file.empty() && me.command.empty()) return e.bad("file", "required (or set command)");
      if (!names.insert(me.name).second) return e.bad("name", "duplicate model name \"" + me.name + "\"");
      m.list.push_back(std::move(me));
    }
    // An alias names one model: not another model, not twice.
    std::set<std::string> aliases;
    for (std::size_t i = 0; i < m.list.size(); ++i) {
      for (const auto& alias : m.list[i].aliases) {
        const std::string where = "models.list[" + std::to_string(i) + "].aliases";
        if (alias.empty()) return fail(ErrorCode::kInvalidArgument, where + ": an alias is empty", "bad_config");
        if (names.contains(alias) || !aliases.insert(alias).second) {
          return fail(ErrorCode::kInvalidArgument,
                      where + ": \"" + alias + "\" already names another model (or is listed twice)", "bad_config");
        }
      }
    }
  }
  return {};
}

Result<void> parse_upstreams(const YAML::Node& root, Config& c, std::vector<std::string>& warnings) {
  auto list = root["upstreams"];
  if (!list || list.IsNull()) return {};
  if (!list.IsSequence()) return fail(ErrorCode::kInvalidArgument, "upstreams: expected a list", "bad_config");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = "upstreams[" + std::to_string(i) + "]";
    if (!list[i].IsMap()) return fail(ErrorCode::kInvalidArgument, path + ": expected a mapping", "bad_config");
    warn_unknown(list[i], path, {"name", "url", "model", "weight", "api_key", "parallel"}, warnings);
    Reader e(list[i], path);
    UpstreamEntry u;
    LLMD_TRY(e.string("name", u.name));
    LLMD_TRY(e.string("url", u.url));
    LLMD_TRY(e.string("model", u.model));
    LLMD_TRY(e.integer("weight", u.weight, 1, 1000));
    LLMD_TRY(e.string("api_key", u.api_key));
    LLMD_TRY(e.integer("parallel", u.parallel, 0, 4096));
    if (!u.url.starts_with("http://") && !u.url.starts_with("https://")) {
      return e.bad("url", "expected an http:// or https:// URL");
    }
    if (u.model.empty()) return e.bad("model", "required");
    if (u.name.empty()) u.name = u.url;
    c.upstreams.push_back(std::move(u));
  }
  return {};
}

Result<void> parse_tasks(const YAML::Node& root, Config& c, std::vector<std::string>& warnings) {
  auto node = section_node(root, "tasks");
  if (!node) return std::unexpected(node.error());
  const std::set<std::string> known = {"chat", "convert", "homework", "subtitle"};
  for (const auto& kv : *node) {
    const std::string name = kv.first.Scalar();
    if (!known.contains(name)) {
      warnings.push_back("unknown config key \"tasks." + name + "\" ignored");
      continue;
    }
    if (!kv.second.IsMap()) {
      return fail(ErrorCode::kInvalidArgument, "tasks." + name + ": expected a mapping", "bad_config");
    }
    std::set<std::string> keys = {"model", "multiplier", "fixed"};
    if (name == "subtitle") {
      keys.insert({"concurrency", "batch_min", "batch_max", "max_tokens_per_batch", "max_cues"});
    }
    if (name == "homework") keys.insert("prompts_dir");
    warn_unknown(kv.second, "tasks." + name, keys, warnings);
    Reader r(kv.second, "tasks." + name);
    if (name == "subtitle") {
      auto& s = c.subtitle;
      LLMD_TRY(r.integer("concurrency", s.concurrency, 1, 64));
      LLMD_TRY(r.integer("batch_min", s.batch_min, 1, 200));
      LLMD_TRY(r.integer("batch_max", s.batch_max, 1, 200));
      LLMD_TRY(r.integer("max_tokens_per_batch", s.max_tokens_per_batch, 0, 1'000'000));
      LLMD_TRY(r.integer("max_cues", s.max_cues, 1, 1'000'000));
      if (s.batch_min > s.batch_max) return r.bad("batch_min", "must not exceed batch_max");
    }
    TaskConfig t;
    LLMD_TRY(r.string("model", t.model));
    LLMD_TRY(r.number("multiplier", t.multiplier, 0.0, 1000.0));
    std::int64_t fixed = -1;
    LLMD_TRY(r.integer("fixed", fixed, 0, 1'000'000'000));
    if (fixed >= 0) t.fixed = fixed;
    if (name == "homework") {
      LLMD_TRY(r.string("prompts_dir", t.prompts_dir));
      std::error_code ec;
      if (!t.prompts_dir.empty() && !std::filesystem::is_directory(t.prompts_dir, ec)) {
        return r.bad("prompts_dir", "not a directory");
      }
    }
    c.tasks[name] = t;
  }
  return {};
}

Result<void> parse_rest(const YAML::Node& root, Config& c, std::vector<std::string>& warnings) {
  {
    auto node = section_node(root, "auth");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "auth", known_keys("auth"), warnings);
    Reader r(*node, "auth");
    LLMD_TRY(r.string("jwt_secret", c.auth.jwt_secret));
    LLMD_TRY(r.integer("jwt_ttl", c.auth.jwt_ttl, 60, 86400 * 365));
    LLMD_TRY(r.boolean("register_open", c.auth.register_open));
    LLMD_TRY(r.integer("initial_tokens", c.auth.initial_tokens, 0, 1'000'000'000'000LL));
    LLMD_TRY(r.integer("bcrypt_cost", c.auth.bcrypt_cost, 10, 31));
    // issue 13 (auth hardening)
    LLMD_TRY(r.integer("register_initial_tokens", c.auth.register_initial_tokens, 0, 1'000'000'000'000LL));
    LLMD_TRY(r.integer("register_per_ip_per_hour", c.auth.register_per_ip_per_hour, 0, 1'000'000));
    LLMD_TRY(r.integer("password_threads", c.auth.password_threads, 0, 256));
    if (!c.auth.jwt_secret.empty() && c.auth.jwt_secret.size() < 32) {
      return r.bad("jwt_secret", "must be at least 32 bytes");
    }
  }
  {
    auto node = section_node(root, "limits");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "limits", known_keys("limits"), warnings);
    Reader r(*node, "limits");
    LLMD_TRY(r.integer("user_rpm", c.limits.user_rpm, 0, 1'000'000));
    LLMD_TRY(r.integer("ip_rpm", c.limits.ip_rpm, 0, 1'000'000));
    LLMD_TRY(r.integer("login_attempts", c.limits.login_attempts, 1, 1'000'000));
    LLMD_TRY(r.integer("login_window_seconds", c.limits.login_window_seconds, 1, 86400));
    // issue 13 (auth hardening)
    LLMD_TRY(r.integer("login_account_attempts", c.limits.login_account_attempts, 1, 1'000'000));
    LLMD_TRY(r.integer("auth_failures_per_minute", c.limits.auth_failures_per_minute, 0, 1'000'000));
    LLMD_TRY(r.integer("convert_concurrent_per_user", c.limits.convert_concurrent_per_user, 1, 1'000));
  }
  {
    auto node = section_node(root, "balancer");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "balancer", known_keys("balancer"), warnings);
    Reader r(*node, "balancer");
    LLMD_TRY(r.one_of("strategy", c.balancer.strategy, {"round_robin", "weighted_round_robin", "least_connections"}));
    LLMD_TRY(r.integer("health_interval", c.balancer.health_interval, 1, 3600));
    LLMD_TRY(r.integer("fail_threshold", c.balancer.fail_threshold, 1, 1000));
    LLMD_TRY(r.integer("cooldown", c.balancer.cooldown, 1, 86400));
  }
  {
    auto node = section_node(root, "logging");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "logging", known_keys("logging"), warnings);
    Reader r(*node, "logging");
    LLMD_TRY(r.one_of("level", c.logging.level, {"trace", "debug", "info", "warn", "warning", "error", "off"}));
    LLMD_TRY(r.one_of("format", c.logging.format, {"json", "text"}));
    LLMD_TRY(r.string("file", c.logging.file));
  }
  {
    auto node = section_node(root, "uploads");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "uploads", known_keys("uploads"), warnings);
    Reader r(*node, "uploads");
    LLMD_TRY(r.string("dir", c.uploads.dir));
    LLMD_TRY(r.integer("max_bytes", c.uploads.max_bytes, 1, 1LL << 50));
    LLMD_TRY(r.integer("quota_bytes_per_user", c.uploads.quota_bytes_per_user, 0, 1LL << 50));
    LLMD_TRY(r.strings("media_roots", c.uploads.media_roots));
  }
  {
    auto node = section_node(root, "asr");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "asr", known_keys("asr"), warnings);
    Reader r(*node, "asr");
    LLMD_TRY(r.string("url", c.asr.url));
    LLMD_TRY(r.string("api_key", c.asr.api_key));
  }
  {
    auto node = section_node(root, "chat");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "chat", known_keys("chat"), warnings);
    Reader r(*node, "chat");
    LLMD_TRY(r.integer("max_conversations", c.chat.max_conversations, 0, 1000000));
    LLMD_TRY(r.integer("max_messages_per_conversation", c.chat.max_messages_per_conversation, 0, 1000000));
    LLMD_TRY(r.integer("max_message_bytes", c.chat.max_message_bytes, 1024, 16LL << 20));
    LLMD_TRY(r.integer("retention_days", c.chat.retention_days, 0, 36500));
  }
  {
    auto node = section_node(root, "groups");
    if (!node) return std::unexpected(node.error());
    warn_unknown(*node, "groups", known_keys("groups"), warnings);
    Reader r(*node, "groups");
    LLMD_TRY(r.string("time_zone", c.groups.time_zone));
    LLMD_TRY(r.integer("max_teacher_allowance", c.groups.max_teacher_allowance, 0, std::int64_t{1} << 40));
    LLMD_TRY(r.integer("allowance_sweep_seconds", c.groups.allowance_sweep_seconds, 1, 86400));
  }
  for (const char* top : {"database", "redis"}) {
    auto n = root[top];
    if (n && !n.IsNull() && !n.IsScalar()) {
      return fail(ErrorCode::kInvalidArgument, std::string(top) + ": expected a string", "bad_config");
    }
  }
  if (auto n = root["database"]; n && n.IsScalar()) c.database = n.Scalar();
  if (auto n = root["redis"]; n && n.IsScalar()) c.redis = n.Scalar();
  if (!c.database.starts_with("sqlite:") && !c.database.starts_with("mysql://")) {
    return fail(ErrorCode::kInvalidArgument, "database: expected \"sqlite:PATH\" or \"mysql://user:pass@host:port/db\"",
                "bad_config");
  }
  if (!c.redis.empty() && !c.redis.starts_with("redis://")) {
    return fail(ErrorCode::kInvalidArgument, "redis: expected \"redis://host:port/db\"", "bad_config");
  }
  return {};
}

}  // namespace

std::optional<std::string> process_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

Result<LoadedConfig> load_config_text(const std::string& yaml_text, EnvLookup env) {
  YAML::Node root;
  try {
    root = yaml_text.empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::kInvalidArgument,
                "config: YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                    std::to_string(e.mark.column + 1) + ": " + e.msg,
                "bad_config");
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    return fail(ErrorCode::kInvalidArgument, "config: expected a mapping at the top level", "bad_config");

  LoadedConfig out;
  try {
    apply_env(root, env);
    std::set<std::string> known_top = kTopLevelScalars;
    known_top.insert(kTopLevelOther.begin(), kTopLevelOther.end());
    for (const auto& s : sections()) known_top.insert(s.name);
    warn_unknown(root, "", known_top, out.warnings);

    LLMD_TRY(parse_server(root, out.config, out.warnings));
    LLMD_TRY(parse_models(root, out.config, out.warnings));
    LLMD_TRY(parse_upstreams(root, out.config, out.warnings));
    LLMD_TRY(parse_tasks(root, out.config, out.warnings));
    LLMD_TRY(parse_rest(root, out.config, out.warnings));
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::kInvalidArgument, std::string("config: ") + e.what(), "bad_config");
  }
  return out;
}

Result<LoadedConfig> load_config_file(const std::string& path, EnvLookup env) {
  if (path.empty()) return load_config_text("", env);
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::kInvalidArgument, "config: cannot read file " + path, "bad_config");
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_config_text(ss.str(), env);
}

}  // namespace llmd::config
