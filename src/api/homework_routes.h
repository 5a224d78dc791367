// POST /api/v1/tasks/homework (SPEC §4.4, §6 Homework): the model grades
// through a prompt from homework::PromptSet with its reply forced to
// homework::grade_schema(); the exact arithmetic check wins over it.
// Charged per SPEC §5 (base x 2.0 + 20), the worst case reserved first.
//
// Without a model (neither tasks.homework.model nor models.default_model):
// an arithmetic question whose answer the exact check decides (match,
// mismatch, no readable value) is graded by the check alone and charged the
// task's fixed part (base 0: 20 tokens); any other question is 503
// model_unavailable. An empty answer scores 0 with no model call and no charge.
#pragma once

#include <memory>
#include <string>

#include "api/account_routes.h"
#include "billing/accounts.h"
#include "inference/model_client.h"
#include "tasks/homework/prompt.h"

namespace llmd::api {

struct HomeworkDeps {
  billing::Accounts& accounts;
  const billing::Pricing& pricing;
  http::WorkerPool& pool;
  observe::Logger log;
  inference::ModelClient& models;
  std::string model;  // empty = no model: exact checks only
  std::shared_ptr<const homework::PromptSet> prompts;
};

void add_homework_routes(http::Router& router, HomeworkDeps deps);

}  // namespace llmd::api
