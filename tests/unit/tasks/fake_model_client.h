// A ModelClient for unit tests: answers from a script, remembers what it was
// asked, and a helper to run a task's coroutine to its end.
#pragma once

#include <algorithm>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "inference/model_client.h"

namespace llmd::testing {

class FakeModelClient final : public inference::ModelClient {
 public:
  // The replies, in order; the last one repeats. Or, when set, `respond`
  // answers each request (called on the caller's thread).
  std::vector<inference::CallResult<inference::ChatReply>> replies;
  std::function<inference::CallResult<inference::ChatReply>(const inference::ChatRequest&)> respond;
  std::vector<inference::ChatRequest> requests;
  std::vector<std::string> request_ids;

  boost::asio::awaitable<inference::CallResult<inference::ChatReply>> chat(const inference::ChatRequest& request,
                                                                           const inference::CallTag& tag) override {
    {
      std::lock_guard lock(mutex);
      requests.push_back(request);
      request_ids.push_back(tag.request_id);
    }
    if (respond) co_return respond(request);
    co_return replies.at(std::min(requests.size(), replies.size()) - 1);
  }
  std::mutex mutex;  // guards requests and request_ids while calls run on other threads

  // Streamed: the scripted reply's completion tokens reported one by one;
  // a refusal stops it there (the reply then holds as many bytes of the
  // content as tokens were reported, finish_reason "length").
  std::vector<std::int64_t> stopped_at;  // per streamed call that was stopped: the tokens reported

  boost::asio::awaitable<inference::CallResult<inference::ChatReply>> chat_streamed(
      const inference::ChatRequest& request, const inference::CallTag& tag, inference::Progress on_progress) override {
    inference::CallResult<inference::ChatReply> reply = co_await chat(request, tag);
    if (!reply) co_return reply;
    for (std::int64_t k = 1; k <= reply->usage.completion_tokens; ++k) {
      const inference::Usage so_far{reply->usage.prompt_tokens, k};
      const bool go_on = co_await on_progress(so_far);
      if (go_on) continue;
      stopped_at.push_back(k);
      reply->content.resize(std::min<std::size_t>(reply->content.size(), static_cast<std::size_t>(k)));
      reply->finish_reason = "length";
      reply->usage.completion_tokens = k;
      break;
    }
    co_return reply;
  }

  // Token counts: one per byte of the text counted (a stand-in tokenizer),
  // or `count_failure` when set.
  std::vector<std::string> counted;
  std::optional<inference::CallFailure> count_failure;

  boost::asio::awaitable<inference::CallResult<std::int64_t>> count_tokens(const std::string&, const std::string& text,
                                                                           const inference::CallTag&) override {
    counted.push_back(text);
    if (count_failure) co_return std::unexpected(*count_failure);
    co_return static_cast<std::int64_t>(text.size());
  }

  // Prompt counts: `prompt_count` (nullopt: "cannot count"), or
  // `count_failure` when set.
  std::optional<std::int64_t> prompt_count;

  boost::asio::awaitable<inference::CallResult<std::optional<std::int64_t>>> count_prompt(
      const std::string&, const std::string&, const nlohmann::json&, const inference::CallTag&) override {
    if (count_failure) co_return std::unexpected(*count_failure);
    co_return prompt_count;
  }

  // A reply with `content` that used `prompt` + `completion` tokens.
  static inference::ChatReply reply(std::string content, std::int64_t prompt, std::int64_t completion) {
    inference::ChatReply r;
    r.content = std::move(content);
    r.usage = {prompt, completion};
    r.instance = "fake-1";
    return r;
  }
};

// Runs `task` on a fresh I/O context (pool jobs resume on it) to its end.
template <typename T>
T run_to_end(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  auto result = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  io.run();
  return result.get();
}

}  // namespace llmd::testing
