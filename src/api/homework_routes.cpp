#include "api/homework_routes.h"
#include "billing/meter.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/text.h"
#include "http/errors.h"
#include "http/json_body.h"
#include "tasks/homework/arithmetic.h"
#include "tasks/homework/grader.h"
#include "tasks/homework/grading_service.h"

namespace llmd::api {
namespace {

using boost::asio::awaitable;
using http::RequestContext;
using http::Response;
using nlohmann::json;

constexpr std::size_t kMaxTextBytes = 4000;  // question, answer, reference answer
constexpr std::size_t kMaxRubricBytes = 2000;
constexpr std::size_t kMaxSubjectBytes = 64;
constexpr std::int64_t kDefaultMaxTokens = 1024;
constexpr std::int64_t kDefaultSeed = 42;

struct HomeworkRequest {
  homework::PromptInput prompt;
  homework::GradeOptions options{1, kDefaultSeed, kDefaultMaxTokens, false};
  bool return_prompt = false;
};

Result<std::string> bounded_text(const json& body, const char* name, bool required, std::size_t max_bytes) {
  auto v = http::string_field(body, name, required);
  if (!v) return v;
  if (v->size() > max_bytes) {
    return fail(ErrorCode::kTooLarge, std::string(name) + " is longer than " + std::to_string(max_bytes) + " bytes",
                "field_too_long");
  }
  return v;
}

Result<HomeworkRequest> parse_request(const json& body) {
  HomeworkRequest r;
  auto subject = bounded_text(body, "subject", true, kMaxSubjectBytes);
  auto question = bounded_text(body, "question", true, kMaxTextBytes);
  auto answer = bounded_text(body, "answer", true, kMaxTextBytes);
  auto grade = http::string_field(body, "grade_level", true);
  auto reference = bounded_text(body, "reference_answer", false, kMaxTextBytes);
  auto rubric = bounded_text(body, "rubric", false, kMaxRubricBytes);
  auto language = http::string_field(body, "language", false);
  for (const auto* f : {&subject, &question, &answer, &grade, &reference, &rubric, &language}) {
    if (!*f) return std::unexpected(f->error());
  }
  if (text::trim(*subject).empty())
    return fail(ErrorCode::kInvalidArgument, "subject must not be empty", "invalid_field");
  if (text::trim(*question).empty())
    return fail(ErrorCode::kInvalidArgument, "question must not be empty", "invalid_field");
  auto level = homework::parse_grade_level(*grade);
  if (!level) {
    return fail(ErrorCode::kInvalidArgument,
                "grade_level must be one of 小学, 初中, 高中, 大学 (primary, middle, high, university)",
                "invalid_field");
  }
  auto lang = homework::parse_language(*language);
  if (!lang)
    return fail(ErrorCode::kInvalidArgument, "language must be Chinese or English (zh, en, 中文, English)",
                "invalid_field");
  r.prompt.subject = std::string(text::trim(*subject));
  r.prompt.family = homework::subject_family(*subject);
  r.prompt.grade = *level;
  r.prompt.language = *lang;
  r.prompt.question = std::move(*question);
  r.prompt.answer = std::move(*answer);
  r.prompt.reference_answer = std::string(text::trim(*reference));
  r.prompt.rubric = std::string(text::trim(*rubric));
  if (auto it = body.find("options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return fail(ErrorCode::kInvalidArgument, "options must be an object", "invalid_field");
    for (const auto& [k, v] : it->items()) {
      if (k == "samples") {
        auto n = http::int_field(*it, "samples", false, 1, 1, homework::kMaxSamples);
        if (!n) return fail(ErrorCode::kInvalidArgument, "options.samples must be an integer 1..5", "invalid_field");
        r.options.samples = static_cast<int>(*n);
      } else if (k == "seed") {
        auto n = http::int_field(*it, "seed", false, kDefaultSeed, 0, 4'000'000'000LL);
        if (!n)
          return fail(ErrorCode::kInvalidArgument, "options.seed must be an integer 0..4000000000", "invalid_field");
        r.options.seed = *n;
      } else if (k == "max_tokens") {
        auto n = http::int_field(*it, "max_tokens", false, kDefaultMaxTokens, 64, 4096);
        if (!n)
          return fail(ErrorCode::kInvalidArgument, "options.max_tokens must be an integer 64..4096", "invalid_field");
        r.options.max_tokens = *n;
      } else if (k == "return_prompt" || k == "brief") {
        if (!v.is_boolean())
          return fail(ErrorCode::kInvalidArgument, "options." + k + " must be a boolean", "invalid_field");
        (k == "brief" ? r.options.brief : r.return_prompt) = v.get<bool>();
      } else {
        return fail(ErrorCode::kInvalidArgument, "unknown option \"" + k + "\"", "invalid_field");
      }
    }
  }
  return r;
}

json grade_json(const homework::Grade& g, const std::string& graded_by, std::int64_t consumed, std::int64_t remaining) {
  json checks = json::array();
  for (const auto& c : g.checks) checks.push_back(homework::check_json(c));
  json out = {{"success", true},
              {"score", g.score},
              {"correct", g.correct},
              {"feedback", g.feedback},
              {"suggestions", g.suggestions},
              {"checks", std::move(checks)},
              {"graded_by", graded_by},
              {"tokens_consumed", consumed},
              {"remaining_tokens", remaining}};
  if (g.sample_scores.size() > 1) {
    out["samples"] = g.sample_scores;
    out["confidence"] = g.confidence.value_or(0.0);
  }
  return out;
}

}  // namespace

void add_homework_routes(http::Router& router, HomeworkDeps d) {
  router.post("/api/v1/tasks/homework", [d](RequestContext& ctx) -> awaitable<Result<Response>> {
    auto who = require_user(ctx);
    if (!who) co_return std::unexpected(who.error());
    auto body = http::parse_json_object(ctx.request.body);
    if (!body) co_return std::unexpected(body.error());
    auto req = parse_request(*body);
    if (!req) co_return std::unexpected(req.error());
    const homework::Check check = homework::check_arithmetic(req->prompt.question, req->prompt.answer);
    const std::int64_t user_id = who->user_id;

    if (text::trim(req->prompt.answer).empty()) {  // nothing to grade: score 0, no model call, no charge
      auto balance = co_await d.pool.run([&] { return d.accounts.balance(user_id); });
      if (!balance) co_return std::unexpected(balance.error());
      const json out =
          grade_json(homework::grade_empty_answer(check, req->prompt.language), "rule", 0, balance->available());
      co_return Response::json(200, out);
    }
    if (!d.model.empty()) {
      // The model path: reserve the worst case of all samples, one call per
      // sample, settle what they used (SPEC §5: base x 2.0 + 20).
      const homework::HomeworkGraderDeps grader{d.models, d.accounts, d.pricing, d.pool, d.model, d.prompts};
      const billing::Caller caller{user_id, ctx.request_id, ctx.route, ctx.started, who->api_key_id};
      auto graded = co_await homework::grade_with_model(grader, caller, req->prompt, req->options, check);
      if (!graded) co_return std::unexpected(graded.error());
      json out = grade_json(graded->grade, graded->graded_by, graded->tokens_consumed, graded->remaining_tokens);
      if (graded->max_tokens_clamped) out["max_tokens_clamped"] = true;
      if (req->return_prompt) {
        const homework::RenderedPrompt& prompt = graded->prompt;
        out["prompt"] = {{"system", prompt.system}, {"user", prompt.user}, {"version", prompt.version}};
      }
      co_return Response::json(200, out);
    }

    auto by_check = homework::grade_by_check(check, req->prompt.language);
    if (!by_check) {
      co_return std::unexpected(
          Error(ErrorCode::kUnavailable,
                "grading this question needs a model (tasks.homework.model or models.default_model)",
                "model_unavailable")
              .with_retry_after(30));
    }
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ctx.started).count();
    // The fixed part only (SPEC §5: base 0 x 2.0 + 20), through the meter:
    // the groups' ratio and the key's budget apply as to any call.
    const billing::MeterOpen what{user_id, ctx.request_id,           "homework",     "",
                                  0,       "homework (exact check)", who->api_key_id};
    auto settled = co_await d.pool.run([&]() -> Result<billing::Settled> {
      auto meter = billing::MeteredCall::open(d.accounts, d.pricing, what);
      if (!meter) return std::unexpected(meter.error());
      return meter->settle_in_full(0, billing::MeterOutcome{0, 0, 200, "", ctx.route, elapsed_ms});
    });
    if (!settled) co_return std::unexpected(settled.error());
    const std::int64_t charge = settled->charged;
    const std::optional<std::int64_t> remaining = settled->available;
    const json out = grade_json(*by_check, "exact_check", charge, *remaining);
    co_return Response::json(200, out);
  });
}

}  // namespace llmd::api
