#include "app/homework_grading.h"

#include <optional>
#include <vector>

#include "billing/meter.h"
#include "http/errors.h"

namespace llmd::app {
namespace {

using boost::asio::awaitable;

// What the samples gave: grades, the tokens they used, and why not.
struct Samples {
  std::vector<homework::ModelGrade> grades;
  inference::Usage used;
  int calls_read = 0;  // calls the worker read the prompt of
  std::string instance;
  std::optional<inference::CallFailure> call_error;  // a call failed: no more samples
  std::optional<Error> reply_error;                   // a reply was not a grade
};

awaitable<Samples> ask_samples(const HomeworkGraderDeps& d, const Caller& caller,
                               const homework::RenderedPrompt& prompt, const GradeOptions& options) {
  Samples out;
  const inference::CallTag tag{caller.request_id};
  for (int i = 0; i < options.samples; ++i) {
    const inference::ChatRequest request = sample_request(d.model, prompt, options, i);
    inference::CallResult<inference::ChatReply> reply = co_await d.models.chat(request, tag);
    if (!reply) {
      out.calls_read += reply.error().usage.prompt_tokens > 0 ? 1 : 0;
      out.used.prompt_tokens += reply.error().usage.prompt_tokens;
      out.used.completion_tokens += reply.error().usage.completion_tokens;
      out.instance = reply.error().instance;
      out.call_error = std::move(reply.error());
      break;
    }
    ++out.calls_read;
    out.used.prompt_tokens += reply->usage.prompt_tokens;
    out.used.completion_tokens += reply->usage.completion_tokens;
    out.instance = reply->instance;
    auto grade = homework::parse_model_grade(reply->content);
    if (grade) {
      out.grades.push_back(std::move(*grade));
    } else {
      out.reply_error = grade.error();
    }
  }
  co_return out;
}

}  // namespace

std::string billed_content(const homework::PromptInput& input) {
  std::string out = input.question;
  for (const std::string* part : {&input.answer, &input.reference_answer, &input.rubric}) {
    if (part->empty()) continue;
    out += '\n';
    out += *part;
  }
  return out;
}

inference::ChatRequest sample_request(const std::string& model, const homework::RenderedPrompt& prompt,
                                      const GradeOptions& options, int sample) {
  inference::ChatRequest r;
  r.model = model;
  r.messages = {{"system", prompt.system}, {"user", prompt.user}};
  r.temperature = options.samples > 1 ? 0.7 : 0.2;
  r.max_tokens = options.max_tokens;
  r.seed = options.seed + sample;
  r.response_format = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "homework_grade"}, {"strict", true}, {"schema", homework::grade_schema(options.brief)}}}};
  return r;
}

awaitable<Result<GradeOutcome>> grade_with_model(const HomeworkGraderDeps& d, const Caller& caller,
                                                 const homework::PromptInput& input, const GradeOptions& options,
                                                 const homework::Check& check) {
  GradeOutcome out;
  out.prompt = d.prompts->render(input);
  // SPEC §5: the base is the user's content (counted by the model's own
  // tokenizer) and the completions; the grading template is the fixed +20.
  const std::string content = billed_content(input);
  const inference::CallTag tag{caller.request_id};
  const inference::CallResult<std::int64_t> content_tokens = co_await d.models.count_tokens(d.model, content, tag);
  if (!content_tokens) co_return std::unexpected(content_tokens.error().error);
  const billing::MeterOpen what{caller.user_id, caller.request_id, "homework", d.model, 0, ""};
  const billing::FitRequest fit{*content_tokens, options.max_tokens, kMinUsefulCompletion, options.samples};
  auto opened = co_await d.pool.run([&] { return billing::MeteredCall::open_fitted(d.accounts, d.pricing, what, fit); });
  if (!opened) co_return std::unexpected(opened.error());
  billing::MeteredCall& meter = opened->call;
  GradeOptions fitted = options;
  fitted.max_tokens = opened->max_completion;
  out.max_tokens_clamped = opened->clamped;

  Samples samples = co_await ask_samples(d, caller, out.prompt, fitted);

  std::optional<homework::Grade> grade;
  out.graded_by = "model";
  if (!samples.grades.empty()) {
    grade = homework::combine(samples.grades, check, input.language);
  } else if (auto by_check = homework::grade_by_check(check, input.language)) {
    grade = std::move(by_check);  // the model's replies were unusable; the exact check still decides
    out.graded_by = "exact_check";
  }
  const int status = grade ? 200 : samples.call_error ? http::status_for(samples.call_error->error.code) : 422;
  const billing::MeterOutcome outcome{
      *content_tokens * samples.calls_read, samples.used.completion_tokens, status, samples.instance, caller.route,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - caller.started).count()};
  auto settled = co_await d.pool.run([&] { return meter.settle(outcome); });
  if (!grade) {
    if (samples.call_error) co_return std::unexpected(samples.call_error->error);  // 503 + Retry-After, 504 ...
    co_return std::unexpected(samples.reply_error.value_or(
        Error(ErrorCode::kUnprocessable, "the model gave no grade", "model_reply_invalid")));
  }
  if (!settled) co_return std::unexpected(settled.error());
  out.grade = std::move(*grade);
  out.tokens_consumed = settled->charged;
  out.remaining_tokens = settled->available;
  co_return out;
}

}  // namespace llmd::app
