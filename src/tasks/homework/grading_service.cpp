#include "tasks/homework/grading_service.h"

#include <optional>
#include <vector>

#include "billing/meter.h"
#include "billing/reply_allowance.h"
#include "http/errors.h"

namespace llmd::homework {
namespace {

using boost::asio::awaitable;

// What the samples gave: grades, the tokens they used, and why not.
struct Samples {
  std::vector<ModelGrade> grades;
  inference::Usage used;
  int calls_read = 0;  // calls the worker read the prompt of
  std::string instance;
  std::optional<inference::CallFailure> call_error;  // a call failed: no more samples
  std::optional<Error> reply_error;                  // a reply was not a grade
};

// The samples one after another, each billed `content_tokens` for its
// prompt, their replies kept within what `allowance` can reserve.
awaitable<Samples> ask_samples(const HomeworkGraderDeps& d, const billing::Caller& caller, const RenderedPrompt& prompt,
                               const GradeOptions& options, std::int64_t content_tokens,
                               billing::ReplyAllowance& allowance) {
  Samples out;
  const inference::CallTag tag{caller.request_id, caller.user_id};
  for (int i = 0; i < options.samples && !allowance.stopped(); ++i) {
    const inference::ChatRequest request = sample_request(d.model, prompt, options, i);
    const std::int64_t billed_before = content_tokens * (out.calls_read + 1) + out.used.completion_tokens;
    inference::CallResult<inference::ChatReply> reply =
        co_await d.models.chat_streamed(request, tag, allowance.watch(billed_before));
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
    auto grade = parse_model_grade(reply->content);
    if (grade) {
      out.grades.push_back(std::move(*grade));
    } else {
      out.reply_error = grade.error();
    }
  }
  co_return out;
}

}  // namespace

std::string billed_content(const PromptInput& input) {
  std::string out = input.question;
  for (const std::string* part : {&input.answer, &input.reference_answer, &input.rubric}) {
    if (part->empty()) continue;
    out += '\n';
    out += *part;
  }
  return out;
}

inference::ChatRequest sample_request(const std::string& model, const RenderedPrompt& prompt,
                                      const GradeOptions& options, int sample) {
  inference::ChatRequest r;
  r.model = model;
  r.messages = {{"system", prompt.system}, {"user", prompt.user}};
  r.temperature = options.samples > 1 ? 0.7 : 0.2;
  r.max_tokens = options.max_tokens;
  r.seed = options.seed + sample;
  r.response_format = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "homework_grade"}, {"strict", true}, {"schema", grade_schema(options.brief)}}}};
  return r;
}

awaitable<Result<GradeOutcome>> grade_with_model(const HomeworkGraderDeps& d, const billing::Caller& caller,
                                                 const PromptInput& input, const GradeOptions& options,
                                                 const Check& check) {
  GradeOutcome out;
  out.prompt = d.prompts->render(input);
  // SPEC §5: the base is the user's content (counted by the model's own
  // tokenizer) and the completions; the grading template is the fixed +20.
  const std::string content = billed_content(input);
  const inference::CallTag tag{caller.request_id, caller.user_id};
  // The reply's first allowance is reserved with the content; it grows as
  // the reply streams (ReplyAllowance).
  const std::int64_t first = std::min(options.max_tokens, billing::kFirstReplyAllowance);
  const std::int64_t samples_n = options.samples;
  const billing::MeterOpen what{caller.user_id,
                                caller.request_id,
                                "homework",
                                d.model,
                                samples_n * std::min(first, billing::kMinUsefulCompletion),
                                "",
                                caller.api_key_id};
  auto opened = co_await open_floor(d.pool, d.accounts, d.pricing, what);
  if (!opened) co_return std::unexpected(opened.error());
  billing::MeteredCall& meter = *opened;
  const inference::CallResult<std::int64_t> content_tokens = co_await d.models.count_tokens(d.model, content, tag);
  if (!content_tokens) co_return co_await refused<GradeOutcome>(d.pool, meter, content_tokens.error().error);
  const billing::FitRequest fit{samples_n * *content_tokens, samples_n * first,
                                samples_n * std::min(first, billing::kMinUsefulCompletion)};
  auto grown = co_await d.pool.run([&] { return meter.grow(fit); });
  if (!grown) co_return co_await refused<GradeOutcome>(d.pool, meter, grown.error());
  billing::ReplyAllowance allowance(d.pool, cover_with(meter), fit.prompt_tokens + grown->max_completion,
                                    options.max_tokens);

  Samples samples = co_await ask_samples(d, caller, out.prompt, options, *content_tokens, allowance);
  out.max_tokens_clamped = grown->clamped || allowance.stopped();

  std::optional<Grade> grade;
  out.graded_by = "model";
  if (!samples.grades.empty()) {
    grade = combine(samples.grades, check, input.language);
  } else if (auto by_check = grade_by_check(check, input.language)) {
    grade = std::move(by_check);  // the model's replies were unusable; the exact check still decides
    out.graded_by = "exact_check";
  }
  const int status = grade ? 200 : samples.call_error ? http::status_for(samples.call_error->error.code) : 422;
  const billing::MeterOutcome outcome{
      *content_tokens * samples.calls_read,
      samples.used.completion_tokens,
      status,
      samples.instance,
      caller.route,
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

}  // namespace llmd::homework
