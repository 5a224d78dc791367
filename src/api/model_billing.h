// Accounts and billing for the model routes (chat, /v1/*): the CallHooks of
// the models module, implemented with auth (who is calling) and a
// billing::MeteredCall per call (opened at admit for the counted prompt and
// max_tokens, settled with the worker's usage).
#pragma once

#include <memory>

#include "billing/accounts.h"
#include "http/worker_pool.h"
#include "inference/model_client.h"
#include "models/hooks.h"
#include "observe/log.h"

namespace llmd::api {

// Tokens a prompt of `prompt_bytes` can be at most, for the reservation: a
// token is never shorter than one byte; the chat template adds a few.
std::int64_t worst_case_prompt_tokens(std::uint64_t prompt_bytes);

// `models` counts each call's prompt before it is reserved for.
std::shared_ptr<models::CallHooks> make_billing_hooks(billing::Accounts& accounts, const billing::Pricing& pricing,
                                                      http::WorkerPool& pool, inference::ModelClient& models,
                                                      observe::Logger log);

}  // namespace llmd::api
