#include "runner/openai.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/text.h"
#include "grammar/gbnf_matcher.h"
#include "grammar/json_schema.h"

namespace llmd::runner {
namespace {

constexpr std::size_t kMaxStopStrings = 16;
constexpr std::size_t kMaxMessages = 4096;
constexpr std::size_t kMaxEmbeddingInputs = 256;

std::unexpected<Error> bad(std::string message, std::string reason = "invalid_request") {
  return fail(ErrorCode::kInvalidArgument, std::move(message), std::move(reason));
}

std::string type_name(const Json& v) { return v.type_name(); }

// Typed, range-checked access to the fields of a request object. A field
// that is absent or null yields nullopt (OpenAI clients send explicit nulls).
class Fields {
 public:
  explicit Fields(const Json& obj) : obj_(obj) {}

  const Json* get(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Result<std::optional<bool>> boolean(const char* key) const {
    const Json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) return bad(std::string(key) + " must be a boolean, got " + type_name(*v));
    return v->get<bool>();
  }

  Result<std::optional<double>> number(const char* key, double lo, double hi) const {
    const Json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) return bad(std::string(key) + " must be a number, got " + type_name(*v));
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      return bad(std::string(key) + " must be in [" + fmt(lo) + ", " + fmt(hi) + "]");
    }
    return d;
  }

  Result<std::optional<int64_t>> integer(const char* key, int64_t lo, int64_t hi) const {
    const Json* v = get(key);
    if (v == nullptr) return std::nullopt;
    int64_t n = 0;
    if (v->is_number_integer()) {
      // Unsigned values above INT64_MAX wrap negative: refuse them as out of range.
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return bad(std::string(key) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                   "]");
      }
      n = v->get<int64_t>();
    } else if (v->is_number_float()) {
      // 16.0 is accepted as 16; 16.5, NaN or 1e300 are not.
      const double d = v->get<double>();
      if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9e15) {
        return bad(std::string(key) + " must be an integer");
      }
      n = static_cast<int64_t>(d);
    } else {
      return bad(std::string(key) + " must be an integer, got " + type_name(*v));
    }
    if (n < lo || n > hi) {
      return bad(std::string(key) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return n;
  }

  Result<std::optional<std::string>> string(const char* key) const {
    const Json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return bad(std::string(key) + " must be a string, got " + type_name(*v));
    return v->get<std::string>();
  }

 private:
  static std::string fmt(double d) {
    std::string s = std::to_string(d);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  const Json& obj_;
};

// Assigns an optional result to `out` when present; propagates errors.
#define LLMD_FIELD(expr, out)                                                                   \
  do {                                                                                          \
    auto llmd_field_ = (expr);                                                                  \
    if (!llmd_field_) return fail(llmd_field_.error());                                         \
    if (*llmd_field_) out = static_cast<std::remove_reference_t<decltype(out)>>(**llmd_field_); \
  } while (0)

Result<std::vector<std::string>> parse_stop(const Json* v) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > kMaxStopStrings) {
      return bad("stop accepts at most " + std::to_string(kMaxStopStrings) + " strings");
    }
    for (const auto& s : *v) {
      if (!s.is_string()) return bad("stop must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    return bad("stop must be a string or an array of strings");
  }
  for (const auto& s : out) {
    if (s.empty() || s.size() > 1024) return bad("stop strings must be 1..1024 bytes");
  }
  return out;
}

Result<std::string> schema_grammar(const Json& schema, const std::string& where) {
  if (!schema.is_object() && !schema.is_boolean()) return bad(where + " must be a JSON Schema object");
  auto g = grammar::json_schema_to_gbnf(schema);
  if (!g) {
    Error e = g.error();
    e.message = where + ": " + e.message;
    if (e.reason.empty()) e.reason = "invalid_schema";
    return fail(std::move(e));
  }
  return std::move(*g);
}

Result<std::string> response_format_grammar(const Json& rf) {
  if (!rf.is_object()) return bad("response_format must be an object");
  auto type = rf.find("type");
  if (type == rf.end() || !type->is_string()) return bad("response_format.type must be a string");
  const std::string t = type->get<std::string>();
  if (t == "text") return std::string();
  if (t == "json_object") {
    // llama-server extension: json_object may carry a schema.
    if (auto s = rf.find("schema"); s != rf.end() && !s->is_null()) {
      return schema_grammar(*s, "response_format.schema");
    }
    return std::string(grammar::kJsonGbnf);
  }
  if (t == "json_schema") {
    auto js = rf.find("json_schema");
    if (js == rf.end() || !js->is_object()) return bad("response_format.json_schema must be an object");
    auto s = js->find("schema");
    if (s == js->end() || s->is_null()) return bad("response_format.json_schema.schema is required");
    return schema_grammar(*s, "response_format.json_schema.schema");
  }
  return bad("response_format.type must be text, json_object or json_schema");
}

// OpenAI's n (choices of one prompt) and legacy completions' best_of (that
// many generated, the n with the highest log-probability per token
// returned). llama-server's /completion knows neither. A suffix belongs to
// /infill.
Result<void> parse_choices(const Fields& f, ParsedGenerate& out) {
  std::optional<int64_t> n;
  std::optional<int64_t> best_of;
  LLMD_FIELD(f.integer("n", 1, kMaxChoices), n);
  LLMD_FIELD(f.integer("best_of", 1, kMaxChoices), best_of);
  if (out.kind == ApiKind::kLlamaCompletion && (n.value_or(1) > 1 || best_of.value_or(1) > 1)) {
    return bad("n and best_of apply to /v1/completions and /v1/chat/completions", "unsupported_parameter");
  }
  if (best_of && out.kind != ApiKind::kTextCompletion) {
    return bad("best_of applies to /v1/completions only", "unsupported_parameter");
  }
  out.n = static_cast<int>(n.value_or(1));
  out.best_of = static_cast<int>(best_of.value_or(out.n));
  if (out.best_of < out.n) return bad("best_of must be at least n");
  if (const Json* v = f.get("suffix"); v != nullptr && !v->is_null() && out.kind != ApiKind::kTextCompletion &&
                                       !(v->is_string() && v->get<std::string>().empty())) {
    return bad("suffix applies to /v1/completions (and /infill)", "unsupported_parameter");
  }
  return {};
}

// OpenAI's suffix: the prompt is the text before the gap.
Result<void> parse_suffix(const Fields& f, ParsedGenerate& out) {
  auto suffix = f.string("suffix");
  if (!suffix) return fail(suffix.error());
  if (!*suffix || (*suffix)->empty()) return {};
  if (!out.request.prompt_tokens.empty()) return bad("suffix needs the prompt as text, not token ids");
  if (out.echo) return bad("echo cannot be combined with suffix");
  out.infill = InfillInput{.prefix = out.request.prompt, .suffix = std::move(**suffix)};
  return {};
}

constexpr int kMaxTopLogprobs = 20;

// Token probabilities, by each dialect's names: chat logprobs + top_logprobs,
// legacy completions logprobs (a count), llama-server n_probs.
Result<void> parse_probs(const Fields& f, ApiKind kind, int& n_probs) {
  if (kind == ApiKind::kChat) {
    std::optional<bool> on;
    std::optional<int64_t> top;
    LLMD_FIELD(f.boolean("logprobs"), on);
    LLMD_FIELD(f.integer("top_logprobs", 0, kMaxTopLogprobs), top);
    if (top && !on.value_or(false)) return bad("top_logprobs requires logprobs: true");
    if (on.value_or(false)) n_probs = static_cast<int>(top.value_or(0));
    return {};
  }
  std::optional<int64_t> n;
  LLMD_FIELD(f.integer(kind == ApiKind::kTextCompletion ? "logprobs" : "n_probs", 0, kMaxTopLogprobs), n);
  if (n && (kind == ApiKind::kTextCompletion || *n > 0)) n_probs = static_cast<int>(*n);
  return {};
}

// logit_bias: OpenAI's {"<token id>": bias} or llama-server's
// [[token id or text, bias or false]]; false bans the token(s). Text entries
// are tokenized later (they need the model).
Result<void> parse_logit_bias(const Json* v, ParsedGenerate& out) {
  if (v == nullptr) return {};
  auto bias_of = [](const Json& b) -> Result<float> {
    if (b.is_boolean() && !b.get<bool>()) return -INFINITY;
    if (!b.is_number()) return bad("logit_bias values must be numbers (or false to ban)");
    const double d = b.get<double>();
    if (!std::isfinite(d) || d < -100 || d > 100) return bad("logit_bias values must be in [-100, 100]");
    // OpenAI: -100 bans the token in practice.
    return d <= -100 ? -INFINITY : static_cast<float>(d);
  };
  auto add = [&](const Json& key, const Json& b) -> Result<void> {
    auto bias = bias_of(b);
    if (!bias) return fail(bias.error());
    if (key.is_number_integer()) {
      const int64_t id = key.get<int64_t>();
      if (id < 0 || id > INT32_MAX) return bad("invalid token id " + std::to_string(id) + " in logit_bias");
      out.request.sampling.logit_bias.emplace_back(static_cast<llama_token>(id), *bias);
    } else if (key.is_string()) {
      out.logit_bias_text.emplace_back(key.get<std::string>(), *bias);
    } else {
      return bad("logit_bias keys must be token ids or strings");
    }
    return {};
  };
  if (v->is_object()) {
    if (v->size() > 1024) return bad("logit_bias accepts at most 1024 entries");
    for (const auto& [key, b] : v->items()) {
      char* end = nullptr;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      const bool numeric = !key.empty() && end != nullptr && *end == '\0';
      LLMD_TRY(add(numeric ? Json(id) : Json(key), b));
    }
    return {};
  }
  if (v->is_array()) {
    if (v->size() > 1024) return bad("logit_bias accepts at most 1024 entries");
    for (const auto& e : *v) {
      if (!e.is_array() || e.size() != 2) return bad("logit_bias entries must be [token, bias] pairs");
      LLMD_TRY(add(e[0], e[1]));
    }
    return {};
  }
  return bad("logit_bias must be an object or an array of [token, bias] pairs");
}

// Penalties, DRY, XTC, typical, mirostat (llama-server's names and ranges).
Result<void> parse_sampling_extras(const Fields& f, SamplingParams& s) {
  LLMD_FIELD(f.number("typical_p", 0, 1), s.typical_p);
  LLMD_FIELD(f.number("repeat_penalty", 0.01, 100), s.repeat_penalty);
  LLMD_FIELD(f.number("frequency_penalty", -2, 2), s.frequency_penalty);
  LLMD_FIELD(f.number("presence_penalty", -2, 2), s.presence_penalty);
  LLMD_FIELD(f.integer("repeat_last_n", -1, 1 << 22), s.repeat_last_n);
  LLMD_FIELD(f.number("dry_multiplier", 0, 100), s.dry_multiplier);
  LLMD_FIELD(f.number("dry_base", 1, 100), s.dry_base);
  LLMD_FIELD(f.integer("dry_allowed_length", 0, 1 << 20), s.dry_allowed_length);
  LLMD_FIELD(f.integer("dry_penalty_last_n", -1, 1 << 22), s.dry_penalty_last_n);
  if (const Json* b = f.get("dry_sequence_breakers")) {
    if (!b->is_array() || b->size() > 64) return bad("dry_sequence_breakers must be an array of at most 64 strings");
    s.dry_sequence_breakers.clear();
    for (const auto& e : *b) {
      if (!e.is_string() || e.get<std::string>().empty()) return bad("dry_sequence_breakers must be non-empty strings");
      s.dry_sequence_breakers.push_back(e.get<std::string>());
    }
  }
  LLMD_FIELD(f.number("xtc_probability", 0, 1), s.xtc_probability);
  LLMD_FIELD(f.number("xtc_threshold", 0, 1), s.xtc_threshold);
  LLMD_FIELD(f.integer("mirostat", 0, 2), s.mirostat);
  LLMD_FIELD(f.number("mirostat_tau", 0, 100), s.mirostat_tau);
  LLMD_FIELD(f.number("mirostat_eta", 0, 1), s.mirostat_eta);
  return {};
}

// llama-server's "lora": [{"id": N, "scale": X}, ...] (per request, or the
// body of POST /lora-adapters). Ids and ranges are the engine's to check.
Result<std::vector<LoraScale>> parse_lora_list(const Json& list, std::string_view field) {
  const std::string name(field);
  if (!list.is_array() || list.size() > 256) return bad(name + " must be an array of {id, scale} objects");
  std::vector<LoraScale> out;
  for (const auto& entry : list) {
    if (!entry.is_object()) return bad(name + " must be an array of {id, scale} objects");
    const Fields e(entry);
    std::optional<int64_t> id;
    std::optional<double> scale;
    LLMD_FIELD(e.integer("id", 0, 1'000'000), id);
    LLMD_FIELD(e.number("scale", -1e6, 1e6), scale);
    if (!id || !scale) return bad(name + " entries need an integer id and a numeric scale");
    out.push_back({static_cast<int>(*id), static_cast<float>(*scale)});
  }
  return out;
}

// The fields every generating endpoint shares: sampling, stop, grammar
// sources, streaming. `max_keys` are the names max_tokens goes by here.
Result<void> parse_common(const Json& body, int n_ctx_slot, std::initializer_list<const char*> max_keys,
                          ParsedGenerate& out) {
  const Fields f(body);
  LLMD_TRY(parse_choices(f, out));
  SamplingParams& s = out.request.sampling;
  LLMD_FIELD(f.number("temperature", 0, 2), s.temperature);
  LLMD_FIELD(f.number("top_p", 0, 1), s.top_p);
  LLMD_FIELD(f.number("min_p", 0, 1), s.min_p);
  LLMD_FIELD(f.integer("top_k", 0, 1'000'000), s.top_k);
  LLMD_TRY(parse_sampling_extras(f, s));
  LLMD_TRY(parse_probs(f, out.kind, out.request.n_probs));
  std::optional<bool> echo;
  LLMD_FIELD(f.boolean("echo"), echo);
  if (echo.value_or(false) && out.kind != ApiKind::kTextCompletion) {
    return bad("echo applies to /v1/completions only", "unsupported_parameter");
  }
  out.echo = echo.value_or(false);
  LLMD_TRY(parse_logit_bias(f.get("logit_bias"), out));
  // seed: -1 (llama-server's "random") or a 32-bit value.
  std::optional<int64_t> seed;
  LLMD_FIELD(f.integer("seed", -1, UINT32_MAX), seed);
  if (seed && *seed >= 0) s.seed = static_cast<uint32_t>(*seed);

  // Every length key given limits the generation: the smallest one wins,
  // whatever order they come in (a gateway that reserves by one of them
  // must never see the runner generate more because of another).
  std::optional<int> limit;
  bool unlimited = false;  // n_predict -1: until the end, as llama-server does
  for (const char* key : max_keys) {
    std::optional<int64_t> n;
    // -1 means "until the end" in llama-server's n_predict; OpenAI needs >= 1.
    const bool is_n_predict = std::strcmp(key, "n_predict") == 0;
    LLMD_FIELD(f.integer(key, is_n_predict ? -1 : 1, INT32_MAX), n);
    if (!n) continue;
    if (*n > n_ctx_slot) {
      return bad(std::string(key) + " is " + std::to_string(*n) + "; the context holds " + std::to_string(n_ctx_slot) +
                     " tokens",
                 "context_length_exceeded");
    }
    if (*n == 0) return bad(std::string(key) + " must not be 0");
    if (*n < 0) {
      unlimited = true;
      continue;
    }
    limit = limit ? std::min(*limit, static_cast<int>(*n)) : static_cast<int>(*n);
  }
  if (limit) {
    out.request.max_tokens = *limit;
  } else if (unlimited) {
    out.request.max_tokens = -1;
  }

  auto stop = parse_stop(f.get("stop"));
  if (!stop) return fail(stop.error());
  out.request.stop = std::move(*stop);

  LLMD_FIELD(f.boolean("cache_prompt"), out.request.cache_prompt);
  LLMD_FIELD(f.boolean("ignore_eos"), out.request.ignore_eos);
  if (const Json* lora = f.get("lora")) {
    auto scales = parse_lora_list(*lora, "lora");
    if (!scales) return fail(scales.error());
    out.request.lora = std::move(*scales);
  }
  LLMD_FIELD(f.boolean("stream"), out.stream);
  if (out.stream && out.best_of > out.n) return bad("best_of greater than n cannot be streamed");
  LLMD_FIELD(f.boolean("timings_per_token"), out.timings_per_token);
  LLMD_FIELD(f.boolean("verbose"), out.verbose);
  LLMD_FIELD(f.boolean("return_tokens"), out.return_tokens);
  if (const Json* so = f.get("stream_options")) {
    if (!so->is_object()) return bad("stream_options must be an object");
    LLMD_FIELD(Fields(*so).boolean("include_usage"), out.include_usage);
  }
  LLMD_FIELD(f.string("model"), out.model);

  // At most one source of constraint: grammar, json_schema, response_format.
  int sources = 0;
  if (auto g = f.string("grammar"); !g) {
    return fail(g.error());
  } else if (*g && !(*g)->empty()) {
    ++sources;
    LLMD_TRY(grammar::check_gbnf(**g));
    s.grammar = std::move(**g);
  }
  if (const Json* js = f.get("json_schema")) {
    ++sources;
    auto g = schema_grammar(*js, "json_schema");
    if (!g) return fail(g.error());
    s.grammar = std::move(*g);
  }
  if (const Json* rf = f.get("response_format")) {
    auto g = response_format_grammar(*rf);
    if (!g) return fail(g.error());
    if (!g->empty()) {
      ++sources;
      s.grammar = std::move(*g);
    }
  }
  if (sources > 1) return bad("use only one of grammar, json_schema and response_format");
  return {};
}

// Checks a message's content: null, a string, or text parts.
Result<void> check_message_content(const Json& content, std::size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  if (content.is_null() || content.is_string()) return {};
  if (!content.is_array()) return bad(where + " must be a string or an array of parts");
  for (const auto& part : content) {
    if (!part.is_object()) return bad(where + " parts must be objects");
    auto type = part.find("type");
    if (type == part.end() || *type != "text") {
      return bad(where + ": only text parts are supported", "unsupported_parameter");
    }
    auto t = part.find("text");
    if (t == part.end() || !t->is_string()) return bad(where + ": a text part needs a string text");
  }
  return {};
}

Result<void> parse_messages(const Json& body, ChatInput& chat) {
  auto msgs = body.find("messages");
  if (msgs == body.end() || !msgs->is_array() || msgs->empty()) {
    return bad("messages must be a non-empty array");
  }
  if (msgs->size() > kMaxMessages) return bad("at most " + std::to_string(kMaxMessages) + " messages");
  for (std::size_t i = 0; i < msgs->size(); ++i) {
    const Json& m = (*msgs)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return bad(at + " must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad(at + ".role must be a string");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "developer" && r != "tool" && r != "function") {
      return bad(at + ".role must be system, user, assistant, developer or tool");
    }
    auto content = m.find("content");
    LLMD_TRY(check_message_content(content == m.end() ? Json() : *content, i));
    if (auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null() && !calls->is_array()) {
      return bad(at + ".tool_calls must be an array");
    }
    Json copy = m;
    if (r == "function") copy["role"] = "tool";  // legacy function result
    chat.messages.push_back(std::move(copy));
  }
  return {};
}

// tools (or legacy functions) and tool_choice (or legacy function_call).
Result<void> parse_tools(const Fields& f, ChatInput& chat) {
  Json tools = Json::array();
  if (const Json* t = f.get("tools")) {
    if (!t->is_array()) return bad("tools must be an array");
    for (const auto& tool : *t) {
      if (!tool.is_object() || tool.value("type", "") != "function") {
        return bad("tools entries must be {\"type\": \"function\", \"function\": {...}}", "unsupported_parameter");
      }
      auto fn = tool.find("function");
      if (fn == tool.end() || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
        return bad("tools[].function.name must be a string");
      }
      tools.push_back(tool);
    }
  } else if (const Json* fns = f.get("functions")) {
    if (!fns->is_array()) return bad("functions must be an array");
    for (const auto& fn : *fns) {
      if (!fn.is_object() || !fn.contains("name") || !fn["name"].is_string()) {
        return bad("functions[].name must be a string");
      }
      tools.push_back(Json{{"type", "function"}, {"function", fn}});
    }
  }
  const Json* choice = f.get("tool_choice");
  if (choice == nullptr) choice = f.get("function_call");
  std::string named;
  if (choice != nullptr) {
    if (choice->is_string()) {
      const auto c = choice->get<std::string>();
      if (c == "auto")
        chat.tool_choice = ToolChoice::kAuto;
      else if (c == "none")
        chat.tool_choice = ToolChoice::kNone;
      else if (c == "required")
        chat.tool_choice = ToolChoice::kRequired;
      else
        return bad("tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":...}}");
    } else if (choice->is_object()) {
      const Json* fn = choice->contains("function") ? &(*choice)["function"] : choice;  // function_call: {name}
      if (!fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
        return bad("tool_choice.function.name must be a string");
      }
      named = (*fn)["name"].get<std::string>();
      chat.tool_choice = ToolChoice::kRequired;
    } else {
      return bad("tool_choice must be a string or an object");
    }
  }
  if (!named.empty()) {
    // A named choice: only that function is offered, and a call is forced.
    Json only = Json::array();
    for (const auto& t : tools) {
      if (t["function"]["name"] == named) only.push_back(t);
    }
    if (only.empty()) return bad("tool_choice names " + named + ", which is not among the tools");
    tools = std::move(only);
  }
  if (chat.tool_choice == ToolChoice::kRequired && tools.empty()) {
    return bad("tool_choice requires tools");
  }
  if (!tools.empty()) chat.tools = std::move(tools);
  LLMD_FIELD(f.boolean("parallel_tool_calls"), chat.parallel_tool_calls);
  return {};
}

// chat_template_kwargs, enable_thinking, reasoning_effort, thinking budgets.
// continue_final_message (true, "content", "reasoning_content"): the reply
// continues the last message. Without it, a last assistant message is a
// prefill continued the same way, as llama-server does, unless the request
// asks for a new turn (add_generation_prompt: true).
Result<void> parse_continuation(const Fields& f, std::optional<bool> add_generation_prompt, ChatInput& chat) {
  const auto& messages = chat.messages;
  const auto role_at = [&](std::size_t from_end) {
    return messages.size() < from_end ? std::string() : messages[messages.size() - from_end].value("role", "");
  };
  if (const Json* c = f.get("continue_final_message")) {
    if (c->is_boolean()) {
      chat.continue_final_message = c->get<bool>() ? Continuation::kAuto : Continuation::kNone;
    } else if (c->is_string() && c->get_ref<const std::string&>() == "content") {
      chat.continue_final_message = Continuation::kContent;
    } else if (c->is_string() && c->get_ref<const std::string&>() == "reasoning_content") {
      chat.continue_final_message = Continuation::kReasoning;
    } else {
      return bad("continue_final_message must be a boolean, \"content\" or \"reasoning_content\"");
    }
  } else if (role_at(1) == "assistant" && !add_generation_prompt.value_or(false)) {
    if (role_at(2) == "assistant") return bad("cannot have 2 or more assistant messages at the end of the list");
    chat.continue_final_message = Continuation::kAuto;
  }
  // A continuation starts no new turn, unless the request insists (the
  // template layer then refuses the pair).
  if (chat.continue_final_message != Continuation::kNone && !add_generation_prompt.value_or(false)) {
    chat.add_generation_prompt = false;
  }
  return {};
}

Result<void> parse_template_switches(const Fields& f, ParsedGenerate& out) {
  ChatInput& chat = out.chat;
  if (const Json* kw = f.get("chat_template_kwargs")) {
    if (!kw->is_object()) return bad("chat_template_kwargs must be an object");
    for (const auto& [key, value] : kw->items()) chat.template_kwargs[key] = value.dump();
  }
  if (auto it = chat.template_kwargs.find("enable_thinking"); it != chat.template_kwargs.end()) {
    if (it->second != "true" && it->second != "false") {
      return bad("chat_template_kwargs.enable_thinking must be a boolean");
    }
    chat.enable_thinking = it->second == "true";
  }
  std::optional<bool> thinking;
  LLMD_FIELD(f.boolean("enable_thinking"), thinking);
  if (thinking) {
    chat.enable_thinking = *thinking;
    chat.template_kwargs["enable_thinking"] = *thinking ? "true" : "false";
  }
  std::optional<std::string> effort;
  LLMD_FIELD(f.string("reasoning_effort"), effort);
  if (effort) {
    if (*effort != "none" && *effort != "minimal" && *effort != "low" && *effort != "medium" && *effort != "high") {
      return bad("reasoning_effort must be none, minimal, low, medium or high");
    }
    if (*effort == "none") {
      chat.enable_thinking = false;
      chat.template_kwargs["enable_thinking"] = "false";
    } else {
      chat.template_kwargs["reasoning_effort"] = Json(*effort).dump();
    }
  }
  for (const char* key : {"reasoning_budget_tokens", "thinking_budget_tokens"}) {
    std::optional<int64_t> budget;
    LLMD_FIELD(f.integer(key, -1, INT32_MAX), budget);
    if (budget && *budget >= 0) out.reasoning_budget = static_cast<int>(*budget);
  }
  return {};
}

// An array holding a number is one prompt of token ids, maybe mixed with
// strings; an array of strings or of arrays is several prompts.
bool is_token_prompt(const Json& v) {
  return v.is_array() && std::any_of(v.begin(), v.end(), [](const Json& e) { return e.is_number(); });
}

// One prompt: a string, or a non-empty array of token ids and strings.
Result<PromptPieces> parse_prompt_pieces(const Json& v, const std::string& field) {
  if (v.is_string()) return PromptPieces{v.get<std::string>()};
  if (!v.is_array() || v.empty()) return bad(field + " must be a string, token ids, or an array of them");
  PromptPieces out;
  for (const auto& e : v) {
    if (e.is_string()) {
      out.emplace_back(e.get<std::string>());
    } else if (e.is_number_integer() && e.get<int64_t>() >= 0 && e.get<int64_t>() <= INT32_MAX) {
      out.emplace_back(static_cast<llama_token>(e.get<int64_t>()));
    } else {
      return bad(field + ": " + e.dump() + " is neither text nor a token id");
    }
  }
  return out;
}

Result<void> parse_prompt(const Json& body, ParsedGenerate& out) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return bad("prompt is required");
  const Json* p = &*it;
  // A one-element array of a string or of a token list is one prompt.
  if (p->is_array() && p->size() == 1 && (p->front().is_string() || p->front().is_array())) p = &p->front();
  if (p->is_string()) {
    out.request.prompt = p->get<std::string>();
    if (out.request.prompt.empty()) return bad("prompt must not be empty");
    return {};
  }
  // Token ids, or token ids mixed with text ([12, "text", 34]).
  if (is_token_prompt(*p)) {
    auto pieces = parse_prompt_pieces(*p, "prompt");
    if (!pieces) return fail(pieces.error());
    for (const auto& piece : *pieces) {
      if (const auto* token = std::get_if<llama_token>(&piece)) {
        out.request.prompt_tokens.push_back(*token);
      } else {
        out.mixed_prompt = std::move(*pieces);
        out.request.prompt_tokens.clear();
        break;
      }
    }
    return {};
  }
  if (p->is_array() && !p->empty()) {
    return bad("prompt must be a string or an array of token ids (several prompts per request are not supported)");
  }
  return bad("prompt must be a non-empty string or array of token ids");
}

}  // namespace

std::string_view openai_error_type(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
      return e.reason == "context_length_exceeded" ? "exceed_context_size_error" : "invalid_request_error";
    case ErrorCode::kTooLarge:
    case ErrorCode::kUnsupportedFormat:
    case ErrorCode::kMethodNotAllowed:
    case ErrorCode::kConflict: return "invalid_request_error";
    case ErrorCode::kUnprocessable:
      return e.reason.ends_with("_not_supported") ? "not_supported_error" : "invalid_request_error";
    case ErrorCode::kUnauthenticated: return "authentication_error";
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kPaymentRequired: return "permission_error";
    case ErrorCode::kNotFound: return "not_found_error";
    case ErrorCode::kNotImplemented: return "not_supported_error";
    case ErrorCode::kRateLimited:
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded: return "unavailable_error";
    case ErrorCode::kInternal: return "server_error";
  }
  return "server_error";
}

namespace {

// Any JSON value, from UTF-8 text.
Result<Json> parse_json_text(std::string_view body) {
  if (auto at = text::first_invalid_utf8(body)) {
    return bad("the request body is not valid UTF-8 (byte " + std::to_string(*at) + ")", "invalid_utf8");
  }
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("the request body is not valid JSON", "invalid_json");
  return j;
}

}  // namespace

Result<Json> parse_json_body(std::string_view body) {
  auto j = parse_json_text(body);
  if (j && !j->is_object()) return bad("the request body must be a JSON object");
  return j;
}

Result<std::vector<LoraScale>> parse_lora_adapters_body(std::string_view body) {
  auto j = parse_json_text(body);
  if (!j) return fail(j.error());
  return parse_lora_list(*j, "the body");
}

Result<ParsedGenerate> parse_chat_request(const Json& body, int n_ctx_slot) {
  ParsedGenerate out;
  out.kind = ApiKind::kChat;
  LLMD_TRY(parse_messages(body, out.chat));
  const Fields f(body);
  LLMD_TRY(parse_tools(f, out.chat));
  LLMD_TRY(parse_template_switches(f, out));
  std::optional<bool> add_generation_prompt;
  LLMD_FIELD(f.boolean("add_generation_prompt"), add_generation_prompt);
  if (add_generation_prompt) out.chat.add_generation_prompt = *add_generation_prompt;
  LLMD_TRY(parse_continuation(f, add_generation_prompt, out.chat));
  LLMD_TRY(parse_common(body, n_ctx_slot, {"max_tokens", "max_completion_tokens", "n_predict"}, out));
  // The reply constraint goes to the template layer (it decides where the
  // grammar starts); tools bring their own grammar and cannot take another.
  out.chat.grammar = std::move(out.request.sampling.grammar);
  out.request.sampling.grammar.clear();
  if (!out.chat.grammar.empty() && out.chat.tools.is_array() && out.chat.tool_choice != ToolChoice::kNone) {
    return bad("grammar, json_schema or response_format cannot be combined with tools");
  }
  return out;
}

Result<ParsedGenerate> parse_text_completion_request(const Json& body, int n_ctx_slot) {
  ParsedGenerate out;
  out.kind = ApiKind::kTextCompletion;
  LLMD_TRY(parse_prompt(body, out));
  // OpenAI's legacy endpoint defaults to 16 tokens.
  out.request.max_tokens = std::min(16, n_ctx_slot);
  LLMD_TRY(parse_common(body, n_ctx_slot, {"max_tokens", "n_predict"}, out));
  LLMD_TRY(parse_suffix(Fields(body), out));
  return out;
}

Result<ParsedGenerate> parse_infill_request(const Json& body, int n_ctx_slot) {
  ParsedGenerate out;
  out.kind = ApiKind::kLlamaCompletion;
  const Fields f(body);
  InfillInput in;
  for (auto [key, into] : {std::pair{"input_prefix", &in.prefix}, std::pair{"input_suffix", &in.suffix}}) {
    auto v = f.string(key);
    if (!v) return fail(v.error());
    if (!*v) return bad(std::string(key) + " is required");
    *into = std::move(**v);
  }
  auto prompt = f.string("prompt");
  if (!prompt) return fail(prompt.error());
  if (*prompt) in.prompt = std::move(**prompt);
  if (const Json* extra = f.get("input_extra"); extra != nullptr && !extra->is_null()) {
    if (!extra->is_array() || extra->size() > 256) {
      return bad("input_extra must be an array of at most 256 {\"filename\": string, \"text\": string}");
    }
    for (const auto& chunk : *extra) {
      if (!chunk.is_object() || !chunk.contains("text") || !chunk["text"].is_string()) {
        return bad("each input_extra chunk needs a \"text\" string");
      }
      if (chunk.contains("filename") && !chunk["filename"].is_string()) {
        return bad("an input_extra chunk's \"filename\" must be a string");
      }
      in.extra.emplace_back(chunk.value("filename", std::string("tmp")), chunk["text"].get<std::string>());
    }
  }
  // The shared fields (sampling, n_predict, stream...); the prompt is ours.
  LLMD_TRY(parse_common(body, n_ctx_slot, {"n_predict", "max_tokens"}, out));
  out.infill = std::move(in);
  return out;
}

Result<ParsedGenerate> parse_llama_completion_request(const Json& body, int n_ctx_slot) {
  ParsedGenerate out;
  out.kind = ApiKind::kLlamaCompletion;
  LLMD_TRY(parse_prompt(body, out));
  LLMD_TRY(parse_common(body, n_ctx_slot, {"n_predict", "max_tokens"}, out));
  if (const Json* fields = Fields(body).get("response_fields"); fields != nullptr && !fields->is_null()) {
    if (!fields->is_array() || fields->size() > 64)
      return bad("response_fields must be an array of at most 64 strings");
    for (const auto& f : *fields) {
      if (!f.is_string()) return bad("response_fields must be an array of at most 64 strings");
      out.response_fields.push_back(f.get<std::string>());
    }
  }
  return out;
}

Result<TokenizeRequest> parse_tokenize_request(const Json& body) {
  TokenizeRequest out;
  const Fields f(body);
  auto content = f.string("content");
  if (!content) return fail(content.error());
  if (!*content) return bad("content is required");
  out.content = std::move(**content);
  LLMD_FIELD(f.boolean("add_special"), out.add_special);
  LLMD_FIELD(f.boolean("parse_special"), out.parse_special);
  LLMD_FIELD(f.boolean("with_pieces"), out.with_pieces);
  return out;
}

Result<std::vector<llama_token>> parse_detokenize_request(const Json& body) {
  auto it = body.find("tokens");
  if (it == body.end() || !it->is_array()) return bad("tokens must be an array of token ids");
  std::vector<llama_token> out;
  out.reserve(it->size());
  for (const auto& t : *it) {
    if (!t.is_number_integer()) return bad("tokens must be an array of token ids");
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id > INT32_MAX) return bad("invalid token id " + std::to_string(id));
    out.push_back(static_cast<llama_token>(id));
  }
  return out;
}

Result<EmbeddingsRequest> parse_embeddings_request(const Json& body, bool oai_route) {
  EmbeddingsRequest out;
  out.oai = oai_route;
  const Fields f(body);
  const Json* input = f.get("input");
  if (input == nullptr) {
    input = f.get("content");  // llama-server's own name, and its own reply shape
    if (input != nullptr) out.oai = false;
  }
  if (input == nullptr) return bad("input is required");
  if (input->is_string() || is_token_prompt(*input)) {
    auto one = parse_prompt_pieces(*input, "input");
    if (!one) return fail(one.error());
    out.inputs.push_back(std::move(*one));
  } else if (input->is_array() && !input->empty() && input->size() <= kMaxEmbeddingInputs) {
    for (const auto& p : *input) {
      auto one = parse_prompt_pieces(p, "input");
      if (!one) return fail(one.error());
      out.inputs.push_back(std::move(*one));
    }
  } else {
    return bad("input must be a string, token ids, or an array of 1.." + std::to_string(kMaxEmbeddingInputs) +
               " of them");
  }
  std::optional<std::string> format;
  LLMD_FIELD(f.string("encoding_format"), format);
  if (format && *format != "float" && *format != "base64") return bad("encoding_format must be float or base64");
  out.base64 = format && *format == "base64";
  LLMD_FIELD(f.integer("embd_normalize", -1, 64), out.normalize);
  LLMD_FIELD(f.string("model"), out.model);
  return out;
}

Result<RerankRequest> parse_rerank_request(const Json& body) {
  RerankRequest out;
  const Fields f(body);
  const Json* query = f.get("query");
  if (query == nullptr || !query->is_string()) return bad("query must be a string");
  out.query = query->get<std::string>();
  out.tei = body.contains("texts");
  const Json* documents = f.get(out.tei ? "texts" : "documents");
  const char* name = out.tei ? "texts" : "documents";
  if (documents == nullptr || !documents->is_array() || documents->empty() || documents->size() > kMaxEmbeddingInputs) {
    return bad(std::string(name) + " must be an array of 1.." + std::to_string(kMaxEmbeddingInputs) + " strings");
  }
  for (const auto& d : *documents) {
    if (!d.is_string() || d.get_ref<const std::string&>().empty()) {
      return bad(std::string(name) + " must be an array of non-empty strings");
    }
    out.documents.push_back(d.get<std::string>());
  }
  LLMD_FIELD(f.integer("top_n", 0, INT32_MAX), out.top_n);
  LLMD_FIELD(f.boolean("return_text"), out.return_text);
  LLMD_FIELD(f.string("model"), out.model);
  return out;
}

Json rerank_json(const RerankRequest& request, const std::string& model, std::vector<RankedDocument> ranked) {
  int n_tokens = 0;
  for (const auto& r : ranked) n_tokens += r.n_tokens;
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  if (request.top_n && *request.top_n < ranked.size()) ranked.resize(*request.top_n);
  Json results = Json::array();
  for (const auto& r : ranked) {
    Json item{{"index", r.index}, {request.tei ? "score" : "relevance_score", r.score}};
    if (request.tei && request.return_text) item["text"] = request.documents[r.index];
    results.push_back(std::move(item));
  }
  if (request.tei) return results;
  return Json{{"model", request.model.empty() ? model : request.model},
              {"object", "list"},
              {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}},
              {"results", std::move(results)}};
}

}  // namespace llmd::runner
