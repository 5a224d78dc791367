// Homework grading by a model (SPEC §6 Homework, §5 pricing), without HTTP:
// one chat call per sample through the typed model client, the replies
// combined with the exact arithmetic check (which wins), the whole request
// metered as one call: base = the user's content (per sample) + the
// completions, x 2.0 + 20; the worst case of all samples is reserved first,
// with max_tokens clamped to what the balance pays for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "billing/accounts.h"
#include "billing/caller.h"
#include "core/error.h"
#include "http/worker_pool.h"
#include "inference/model_client.h"
#include "tasks/homework/arithmetic.h"
#include "tasks/homework/grader.h"
#include "tasks/homework/prompt.h"

namespace llmd::homework {

struct GradeOptions {
  int samples = 1;         // 1..kMaxSamples; more than one: some temperature, median score
  std::int64_t seed = 42;  // sample i uses seed + i
  std::int64_t max_tokens = 1024;
  bool brief = false;  // the short schema (same shape, short texts)
};

struct GradeOutcome {
  Grade grade;
  std::string graded_by;  // "model", or "exact_check" when no model reply was usable
  std::int64_t tokens_consumed = 0;
  std::int64_t remaining_tokens = 0;
  bool max_tokens_clamped = false;  // the balance paid for fewer completion tokens than asked
  RenderedPrompt prompt;
};

struct HomeworkGraderDeps {
  inference::ModelClient& models;
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;  // database calls
  std::string model;
  std::shared_ptr<const PromptSet> prompts;
};

// Grades `input` with the model. Errors: those of the token count and the
// reservation (kPaymentRequired: nothing was called), the gateway's refusal when no
// sample produced a grade and the exact check cannot decide either,
// kUnprocessable (model_reply_invalid) for replies that were not grades.
// Whatever the samples used is charged, also when grading failed.
boost::asio::awaitable<Result<GradeOutcome>> grade_with_model(const HomeworkGraderDeps& d,
                                                              const billing::Caller& caller, const PromptInput& input,
                                                              const GradeOptions& options, const Check& check);

// What the caller is billed for (SPEC §5): question, answer, reference
// answer and rubric as they wrote them.
std::string billed_content(const PromptInput& input);

// The chat request of sample `sample`: the rendered prompt, the reply forced
// to grade_schema(), seed + sample.
inference::ChatRequest sample_request(const std::string& model, const RenderedPrompt& prompt,
                                      const GradeOptions& options, int sample);

}  // namespace llmd::homework
