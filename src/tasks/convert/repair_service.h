// The repair path of a conversion (options.repair, SPEC §6 Convert), without
// HTTP: the model recovers the data of input the parsers refuse as one JSON
// object (forced by the runner's grammar), the exact writer writes the
// target format, and the call is metered: base = the document + the
// completion, x 1.2 + 5; the worst case is reserved first, with the reply's
// length clamped to what the balance pays for (never below the document's).
#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "billing/accounts.h"
#include "billing/caller.h"
#include "core/error.h"
#include "http/worker_pool.h"
#include "inference/model_client.h"
#include "tasks/convert/convert.h"

namespace llmd::convert {

inline constexpr std::int64_t kRepairMaxTokens = 2048;

struct RepairDeps {
  inference::ModelClient& models;
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;  // database calls
  std::string model;       // not empty
};

struct Repaired {
  std::string content;  // in the target format
  std::int64_t tokens_consumed = 0;
  std::int64_t remaining_tokens = 0;
  bool max_tokens_clamped = false;  // the balance paid for a shorter reply than kRepairMaxTokens
};

struct RepairInput {
  Format from = Format::kJson;
  Format to = Format::kJson;
  const std::string& content;
  const ConvertOptions& options;
};

// Errors: those of the reservation (nothing called), the gateway's refusal,
// kUnavailable (model_error) for a reply without an answer, kUnprocessable
// (repair_failed) for one that is not a JSON object, the writer's errors.
// What the call used is charged in every case.
boost::asio::awaitable<Result<Repaired>> repair_with_model(const RepairDeps& d, const billing::Caller& caller,
                                                           const RepairInput& input);

// The chat request that asks the model to recover the data as JSON. The
// input is quoted data; the reply is forced to a JSON object.
inference::ChatRequest repair_request(const std::string& model, Format from, const std::string& content);

// The model's answer as a document. Errors as repair_with_model's.
Result<Value> repaired_document(const std::string& answer, const Limits& limits);

}  // namespace llmd::convert
