#include "runner/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "runner/chat.h"
#include "tools/make_test_model.h"
#include "unit/runner/test_models.h"

namespace llmd::runner {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Engine> make_engine(EngineOptions o = {}) {
  auto model = testing::qwen2_model();
  if (!model) return nullptr;
  if (o.n_ctx == 4096) o.n_ctx = 512;
  if (o.n_threads == 0) o.n_threads = 2;
  auto e = Engine::create(model, o);
  EXPECT_TRUE(e) << e.error().message;
  return e ? std::move(*e) : nullptr;
}

GenerateRequest greedy(std::string prompt, int max_tokens) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.ignore_eos = true;  // random weights: never end early, so lengths are exact
  return r;
}

TEST(Engine, GreedyGenerationIsDeterministicAndCountsUsage) {
  auto e = make_engine();
  ASSERT_TRUE(e);
  auto a = e->generate(greedy("Once upon a time", 12));
  auto b = e->generate(greedy("Once upon a time", 12));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b);
  EXPECT_FALSE(a->text.empty());
  EXPECT_EQ(a->text, b->text);
  EXPECT_EQ(a->finish, FinishReason::kLength);
  EXPECT_EQ(a->usage.completion_tokens, 12);
  EXPECT_EQ(a->usage.prompt_tokens, static_cast<int>(e->model().tokenize("Once upon a time", true, true)->size()));
  // The second run found the prompt in the slot's cache.
  EXPECT_EQ(b->usage.cached_prompt_tokens, b->usage.prompt_tokens - 1);
}

TEST(Engine, StreamedPiecesConcatenateToTheFinalText) {
  auto e = make_engine();
  ASSERT_TRUE(e);
  std::string streamed;
  int pieces = 0;
  auto r = e->generate(greedy("你好，请介绍一下你自己。", 20), [&](std::string_view p) {
    EXPECT_FALSE(p.empty());
    streamed += p;
    ++pieces;
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(streamed, r->text);
  EXPECT_GT(pieces, 1);
}

TEST(Engine, SeededSamplingIsReproducibleAndSeedsDiffer) {
  auto e = make_engine();
  ASSERT_TRUE(e);
  auto req = [](uint32_t seed) {
    GenerateRequest r = greedy("The weather today", 16);
    r.sampling.temperature = 1.0f;
    r.sampling.top_k = 0;
    r.sampling.top_p = 1.0f;
    r.sampling.min_p = 0;
    r.sampling.seed = seed;
    return r;
  };
  auto a = e->generate(req(1));
  auto b = e->generate(req(1));
  auto c = e->generate(req(2));
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->text, b->text);
  EXPECT_NE(a->text, c->text);
}

TEST(Engine, ParallelRequestsGiveTheSameOutputsAsSequentialOnes) {
  std::vector<std::string> prompts;
  for (int i = 0; i < 8; ++i) prompts.push_back("Request number " + std::to_string(i) + " says:");

  std::vector<std::string> sequential;
  {
    auto e = make_engine({.n_parallel = 1});
    ASSERT_TRUE(e);
    for (const auto& p : prompts) {
      auto r = e->generate(greedy(p, 16));
      ASSERT_TRUE(r);
      sequential.push_back(r->text);
    }
  }
  auto e = make_engine({.n_parallel = 8});
  ASSERT_TRUE(e);
  std::vector<std::promise<Result<Completion>>> done(8);
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 8; ++i) {
    GenerateCallbacks cb;
    cb.on_done = [&done, i](Result<Completion> r) { done[static_cast<size_t>(i)].set_value(std::move(r)); };
    auto h = e->submit(greedy(prompts[static_cast<size_t>(i)], 16), std::move(cb));
    ASSERT_TRUE(h) << h.error().message;
    handles.push_back(std::move(*h));
  }
  std::set<int> slots_used;
  for (int i = 0; i < 8; ++i) {
    auto r = done[static_cast<size_t>(i)].get_future().get();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->text, sequential[static_cast<size_t>(i)]) << "request " << i;
    slots_used.insert(r->slot);
  }
  EXPECT_EQ(slots_used.size(), 8u);  // they really ran side by side
}

// Submits `n` choices of `request` and waits for all of them.
std::vector<Result<Completion>> run_choices(Engine& e, const GenerateRequest& request, std::size_t n,
                                            std::vector<RequestHandle>* keep = nullptr) {
  std::vector<std::promise<Result<Completion>>> done(n);
  std::vector<GenerateCallbacks> callbacks(n);
  for (std::size_t i = 0; i < n; ++i) {
    callbacks[i].on_done = [&done, i](Result<Completion> r) { done[i].set_value(std::move(r)); };
  }
  auto handles = e.submit_choices(request, std::move(callbacks));
  std::vector<Result<Completion>> out;
  if (!handles) {
    out.push_back(fail(handles.error()));
    return out;
  }
  if (keep != nullptr) *keep = std::move(*handles);
  for (auto& d : done) out.push_back(d.get_future().get());
  return out;
}

TEST(Engine, SeveralChoicesEvaluateThePromptOnceAndEachMatchesASingleGeneration) {
  const GenerateRequest request = greedy("Three students each wrote a story about", 16);
  std::string alone;
  {
    auto single = make_engine();
    ASSERT_TRUE(single);
    auto r = single->generate(request);
    ASSERT_TRUE(r);
    alone = r->text;
  }
  auto e = make_engine({.n_parallel = 4});
  ASSERT_TRUE(e);
  const auto before = e->stats();
  auto choices = run_choices(*e, request, 3);
  ASSERT_EQ(choices.size(), 3u);
  std::set<int> slots;
  const int prompt = static_cast<int>(e->model().tokenize(request.prompt, true, true)->size());
  for (std::size_t i = 0; i < choices.size(); ++i) {
    ASSERT_TRUE(choices[i]) << choices[i].error().message;
    // The copied KV state is the prompt's exactly: greedy choices agree with a lone run.
    EXPECT_EQ(choices[i]->text, alone) << "choice " << i;
    EXPECT_EQ(choices[i]->usage.prompt_tokens, prompt);
    EXPECT_EQ(choices[i]->usage.completion_tokens, 16);
    slots.insert(choices[i]->slot);
  }
  EXPECT_EQ(slots.size(), 3u);
  EXPECT_EQ(choices[0]->usage.cached_prompt_tokens, 0);
  EXPECT_EQ(choices[1]->usage.cached_prompt_tokens, prompt);  // copied from the first choice
  const auto after = e->stats();
  EXPECT_EQ(after.prompt_tokens_total - before.prompt_tokens_total, static_cast<uint64_t>(prompt))
      << "the prompt was evaluated more than once";
  EXPECT_EQ(after.completion_tokens_total - before.completion_tokens_total, 48u);
}

TEST(Engine, SeededChoicesDifferFromEachOtherAndAreReproducible) {
  GenerateRequest request = greedy("The weather today", 16);
  request.sampling.temperature = 1.0f;
  request.sampling.top_k = 0;
  request.sampling.top_p = 1.0f;
  request.sampling.min_p = 0;
  request.sampling.seed = 7;
  // Fresh engines: the same batches, so the same numerics (a lone run's
  // differ in the last bits, enough to change a sample at temperature 1).
  auto run_once = [&] {
    auto e = make_engine({.n_parallel = 3});
    return e ? run_choices(*e, request, 3) : std::vector<Result<Completion>>{};
  };
  auto first = run_once();
  auto again = run_once();
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(again.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(first[i] && again[i]);
    EXPECT_EQ(first[i]->text, again[i]->text) << "choice " << i << " is not reproducible";
  }
  EXPECT_NE(first[0]->text, first[1]->text);
  EXPECT_NE(first[1]->text, first[2]->text);
  EXPECT_NE(first[0]->text, first[2]->text);
}

TEST(Engine, ChoicesWaitForEnoughFreeSlotsAndTooManyAreRefused) {
  auto e = make_engine({.n_parallel = 2});
  ASSERT_TRUE(e);
  auto too_many = run_choices(*e, greedy("hello", 4), 3);
  ASSERT_EQ(too_many.size(), 1u);
  ASSERT_FALSE(too_many[0]);
  EXPECT_EQ(too_many[0].error().code, ErrorCode::kInvalidArgument);

  // One slot busy: two choices wait until both slots are free, then run.
  std::promise<Result<Completion>> busy_done;
  GenerateCallbacks cb;
  cb.on_done = [&](Result<Completion> r) { busy_done.set_value(std::move(r)); };
  auto busy = e->submit(greedy("occupying a slot", 24), std::move(cb));
  ASSERT_TRUE(busy);
  auto choices = run_choices(*e, greedy("waiting for two", 4), 2);
  auto first = busy_done.get_future().get();
  ASSERT_TRUE(first);
  ASSERT_EQ(choices.size(), 2u);
  for (const auto& c : choices) {
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->usage.completion_tokens, 4);
    EXPECT_GT(c->timings.queue_ms, 0);
  }
}

TEST(Engine, CancellingOneChoiceLeavesTheOthersRunning) {
  std::string long_prompt;
  for (int i = 0; i < 80; ++i) long_prompt += "token" + std::to_string(i) + " ";
  auto e = make_engine({.n_parallel = 3, .n_batch = 32});
  ASSERT_TRUE(e);
  std::vector<std::promise<Result<Completion>>> done(3);
  std::vector<GenerateCallbacks> callbacks(3);
  for (std::size_t i = 0; i < 3; ++i) {
    callbacks[i].on_done = [&done, i](Result<Completion> r) { done[i].set_value(std::move(r)); };
  }
  auto handles = e->submit_choices(greedy(long_prompt, 12), std::move(callbacks));
  ASSERT_TRUE(handles);
  (*handles)[2].cancel();  // while the first choice still evaluates the prompt
  auto cancelled = done[2].get_future().get();
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->finish, FinishReason::kCancelled);
  EXPECT_LT(cancelled->usage.completion_tokens, 12);
  for (std::size_t i = 0; i < 2; ++i) {
    auto r = done[i].get_future().get();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->usage.completion_tokens, 12);
  }
  // Cancelling the first choice ends the choices still waiting for its
  // prompt. A prompt no slot has cached (the first one's prefix would make
  // its prefill a single step, over before the cancel lands), and long:
  // several prefill steps of 32 tokens.
  std::string other_prompt = "unrelated";
  for (int i = 0; i < 100; ++i) other_prompt += " word" + std::to_string(i);
  std::vector<std::promise<Result<Completion>>> again(2);
  std::vector<GenerateCallbacks> more(2);
  for (std::size_t i = 0; i < 2; ++i) {
    more[i].on_done = [&again, i](Result<Completion> r) { again[i].set_value(std::move(r)); };
  }
  auto second = e->submit_choices(greedy(other_prompt, 12), std::move(more));
  ASSERT_TRUE(second);
  (*second)[0].cancel();
  for (auto& d : again) {
    auto r = d.get_future().get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->finish, FinishReason::kCancelled);
  }
  EXPECT_TRUE(e->generate(greedy("still serving", 3)));
}

TEST(Engine, LongPromptIsPrefilledInChunksWithoutChangingResults) {
  std::string long_prompt;
  for (int i = 0; i < 60; ++i) long_prompt += "word" + std::to_string(i) + " ";
  std::string alone;
  {
    auto e = make_engine({.n_batch = 512});
    ASSERT_TRUE(e);
    alone = e->generate(greedy(long_prompt, 8)).value().text;
  }
  // A 16-token batch: the long prompt needs many steps, interleaved with
  // another request's generation.
  auto e = make_engine({.n_parallel = 2, .n_batch = 16});
  ASSERT_TRUE(e);
  auto other = std::async(std::launch::async, [&] { return e->generate(greedy("short one", 40)); });
  auto r = e->generate(greedy(long_prompt, 8));
  ASSERT_TRUE(r);
  EXPECT_GT(r->usage.prompt_tokens, 100);
  EXPECT_EQ(r->text, alone);
  ASSERT_TRUE(other.get());
}

TEST(Engine, CancellingFreesTheSlotForTheNextRequest) {
  auto e = make_engine({.n_parallel = 1});
  ASSERT_TRUE(e);
  std::promise<Result<Completion>> first_done;
  std::promise<void> first_piece;
  std::atomic<bool> got_piece{false};
  GenerateCallbacks cb;
  cb.on_text = [&](std::string_view) {
    if (!got_piece.exchange(true)) first_piece.set_value();
    return true;
  };
  cb.on_done = [&](Result<Completion> r) { first_done.set_value(std::move(r)); };
  auto long_req = greedy("Tell me everything", -1);  // until the context is full
  auto h = e->submit(std::move(long_req), std::move(cb));
  ASSERT_TRUE(h);
  first_piece.get_future().wait();
  { RequestHandle dropped = std::move(*h); }  // the client went away

  const auto t0 = std::chrono::steady_clock::now();
  auto next = e->generate(greedy("next", 4));
  ASSERT_TRUE(next);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  auto first = first_done.get_future().get();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->finish, FinishReason::kCancelled);
  EXPECT_LT(first->usage.completion_tokens, e->n_ctx_slot() - 10);
}

TEST(Engine, OnTextReturningFalseCancels) {
  auto e = make_engine();
  ASSERT_TRUE(e);
  int calls = 0;
  auto r = e->generate(greedy("abc", 50), [&](std::string_view) { return ++calls < 3; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->finish, FinishReason::kCancelled);
  EXPECT_EQ(calls, 3);
}

TEST(Engine, GrammarAllowingOnlyDigitsYieldsOnlyDigits) {
  auto e = make_engine({.n_parallel = 2});
  ASSERT_TRUE(e);
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    GenerateRequest r;
    r.prompt = "Write a poem about the sea.";
    r.max_tokens = 12;
    r.sampling.temperature = seed % 2 == 0 ? 0.0f : 1.5f;
    r.sampling.seed = seed;
    r.sampling.grammar = "root ::= [0-9]+";
    auto out = e->generate(std::move(r));
    ASSERT_TRUE(out) << out.error().message;
    ASSERT_FALSE(out->text.empty());
    EXPECT_EQ(out->text.find_first_not_of("0123456789"), std::string::npos) << out->text;
  }
}

TEST(Engine, GrammarThatCompletesEndsWithStop) {
  auto e = make_engine();
  ASSERT_TRUE(e);
  GenerateRequest r;
  r.prompt = "Answer:";
  r.max_tokens = 40;
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 3;
  r.sampling.grammar = R"(root ::= "yes" | "no")";
  auto out = e->generate(std::move(r));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->text == "yes" || out->text == "no") << out->text;
  EXPECT_EQ(out->finish, FinishReason::kStop);
}

TEST(Engine, StopStringEndsGenerationAndIsNotReturned) {
  auto e = make_engine();
  ASSERT_TRUE(e);
  // Grammar forces "ab;cd" so the stop string certainly appears.
  GenerateRequest r;
  r.prompt = "x";
  r.max_tokens = 20;
  r.sampling.temperature = 0;
  r.sampling.grammar = R"(root ::= "ab;cd")";
  r.stop = {";"};
  auto out = e->generate(std::move(r));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->text, "ab");
  EXPECT_EQ(out->finish, FinishReason::kStop);
}

TEST(Engine, RejectsInvalidRequestsUpFront) {
  auto e = make_engine({.n_ctx = 64});
  ASSERT_TRUE(e);
  std::string huge;
  for (int i = 0; i < 200; ++i) huge += "many words ";
  auto too_long = e->submit(greedy(huge, 4), {});
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(too_long.error().reason, "context_length_exceeded");

  EXPECT_EQ(e->submit(greedy("hi", 0), {}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->submit(greedy("hi", 100000), {}).error().code, ErrorCode::kInvalidArgument);
  auto nan = greedy("hi", 4);
  nan.sampling.temperature = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(e->submit(nan, {}).error().code, ErrorCode::kInvalidArgument);
  auto neg = greedy("hi", 4);
  neg.sampling.top_p = -0.5f;
  EXPECT_EQ(e->submit(neg, {}).error().code, ErrorCode::kInvalidArgument);
  auto bad_grammar = greedy("hi", 4);
  bad_grammar.sampling.grammar = "root ::= [0-9";
  EXPECT_EQ(e->submit(bad_grammar, {}).error().code, ErrorCode::kInvalidArgument);
  auto bad_token = greedy("", 4);
  bad_token.prompt_tokens = {1, 2, 99999999};
  EXPECT_EQ(e->submit(bad_token, {}).error().code, ErrorCode::kInvalidArgument);
  // The engine keeps serving.
  EXPECT_TRUE(e->generate(greedy("hi", 3)));
}

TEST(Engine, FullQueueIsUnavailableWithRetryAfter) {
  auto e = make_engine({.n_parallel = 1, .queue_max = 1});
  ASSERT_TRUE(e);
  std::vector<RequestHandle> handles;
  Result<RequestHandle> last = fail(ErrorCode::kInternal, "none");
  // One running, one queued; the next one is refused.
  for (int i = 0; i < 3; ++i) {
    last = e->submit(greedy("busy", -1), {});
    if (!last) break;
    handles.push_back(std::move(*last));
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(last.error().retry_after_s, 1);
  EXPECT_EQ(handles.size(), 2u);
  handles.clear();  // cancel both; the engine serves again
  EXPECT_TRUE(e->generate(greedy("ok", 2)));
}

TEST(Engine, ShutdownCompletesPendingRequestsWithUnavailable) {
  auto e = make_engine({.n_parallel = 1});
  ASSERT_TRUE(e);
  std::promise<Result<Completion>> done;
  GenerateCallbacks cb;
  cb.on_done = [&](Result<Completion> r) { done.set_value(std::move(r)); };
  auto h = e->submit(greedy("forever", -1), std::move(cb));
  ASSERT_TRUE(h);
  h->detach();
  std::this_thread::sleep_for(100ms);
  e.reset();
  auto r = done.get_future().get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

TEST(Engine, ChatTemplatedPromptGeneratesAndReportsStats) {
  auto e = make_engine({.n_parallel = 2});
  ASSERT_TRUE(e);
  auto templates = ChatTemplates::create(e->model());
  ASSERT_TRUE(templates);
  ChatInput input;
  input.messages.push_back({{"role", "user"}, {"content", "你好"}});
  auto prompt = templates->apply(input);
  ASSERT_TRUE(prompt);
  auto r = e->generate(greedy(prompt->prompt, 5));
  ASSERT_TRUE(r);
  const auto s = e->stats();
  EXPECT_EQ(s.slots_total, 2);
  EXPECT_EQ(s.slots_busy, 0);
  EXPECT_GE(s.requests_total, 1u);
  EXPECT_GE(s.completion_tokens_total, 5u);
  EXPECT_GE(s.prompt_tokens_total, static_cast<uint64_t>(r->usage.prompt_tokens));
  EXPECT_GT(s.decode_seconds_total, 0.0);
}

TEST(Engine, EmbeddingsNeedPooling) {
  auto model = testing::qwen2_model();
  ASSERT_TRUE(model);
  auto none = Engine::create(model, {.n_ctx = 128, .n_threads = 2, .embeddings = true});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kUnprocessable);

  auto gen = make_engine();
  ASSERT_TRUE(gen);
  EXPECT_EQ(gen->embed("hi").error().code, ErrorCode::kUnprocessable);

  auto e =
      Engine::create(model, {.n_ctx = 128, .n_threads = 2, .embeddings = true, .pooling = LLAMA_POOLING_TYPE_MEAN});
  ASSERT_TRUE(e) << e.error().message;
  auto v = (*e)->embed("hello world");
  ASSERT_TRUE(v) << v.error().message;
  ASSERT_EQ(v->size(), 64u);
  double norm = 0;
  for (float x : *v) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-3);
  EXPECT_EQ(*v, (*e)->embed("hello world").value());
  EXPECT_NE(*v, (*e)->embed("something else").value());
  EXPECT_EQ((*e)->submit(greedy("x", 2), {}).error().code, ErrorCode::kUnprocessable);
}

// A random LoRA adapter for the shared qwen2 test model, written once.
const std::filesystem::path& test_lora_path() {
  static const std::filesystem::path p = [] {
    tools::TestLoraOptions o;
    o.base = testing::qwen2_model_path();
    o.out = testing::scratch_dir() / "adapter.gguf";
    auto r = tools::make_test_lora(o);
    EXPECT_TRUE(r) << r.error().message;
    return o.out;
  }();
  return p;
}

GenerateRequest with_lora(GenerateRequest r, float scale) {
  r.lora = std::vector<LoraScale>{{0, scale}};
  return r;
}

TEST(EngineLora, ScaleZeroIsTheBaseModelAndOtherScalesChangeTheOutput) {
  auto base = make_engine();
  ASSERT_TRUE(base);
  const std::string plain = base->generate(greedy("Look in thy glass", 12)).value().text;
  auto e = make_engine({.n_parallel = 2, .lora_adapters = {{test_lora_path().string(), 1.0f}}});
  ASSERT_TRUE(e);
  ASSERT_EQ(e->lora_adapters().size(), 1u);
  EXPECT_EQ(e->lora_adapters()[0].scale, 1.0f);
  const std::string off = e->generate(with_lora(greedy("Look in thy glass", 12), 0)).value().text;
  const std::string on = e->generate(with_lora(greedy("Look in thy glass", 12), 1)).value().text;
  const std::string half = e->generate(with_lora(greedy("Look in thy glass", 12), 0.5f)).value().text;
  EXPECT_EQ(off, plain);
  EXPECT_NE(on, plain);
  EXPECT_NE(half, on);
  // No per-request list: the default scale (1), until it is changed.
  EXPECT_EQ(e->generate(greedy("Look in thy glass", 12)).value().text, on);
  ASSERT_TRUE(e->set_lora_scales({}));  // unlisted adapters are off
  EXPECT_EQ(e->lora_adapters()[0].scale, 0.0f);
  EXPECT_EQ(e->generate(greedy("Look in thy glass", 12)).value().text, plain);
}

TEST(EngineLora, ACachedPromptIsNotReusedUnderOtherScales) {
  auto e = make_engine({.n_parallel = 1, .lora_adapters = {{test_lora_path().string(), 1.0f}}});
  ASSERT_TRUE(e);
  const auto on = e->generate(with_lora(greedy("Look in thy glass", 8), 1)).value();
  const auto off = e->generate(with_lora(greedy("Look in thy glass", 8), 0)).value();
  EXPECT_EQ(off.usage.cached_prompt_tokens, 0) << "the KV state was computed with the adapter on";
  const auto off_again = e->generate(with_lora(greedy("Look in thy glass", 8), 0)).value();
  EXPECT_GT(off_again.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(off_again.text, off.text);
  EXPECT_NE(on.text, off.text);
}

TEST(EngineLora, ConcurrentRequestsWithDifferentScalesMatchTheirSequentialRuns) {
  // As llama.cpp's test_lora_per_request: one prompt, several scales, all at once.
  const std::vector<float> scales{0, 0, 0.3f, 0.7f, 1, 1};
  auto e = make_engine({.n_parallel = 6, .lora_adapters = {{test_lora_path().string(), 1.0f}}});
  ASSERT_TRUE(e);
  std::vector<std::string> sequential;
  for (float scale : scales) {
    auto r = with_lora(greedy("Look in thy glass", 16), scale);
    r.cache_prompt = false;
    sequential.push_back(e->generate(std::move(r)).value().text);
  }
  std::vector<std::promise<Result<Completion>>> done(scales.size());
  std::vector<RequestHandle> handles;
  for (std::size_t i = 0; i < scales.size(); ++i) {
    GenerateCallbacks cb;
    cb.on_done = [&done, i](Result<Completion> r) { done[i].set_value(std::move(r)); };
    auto r = with_lora(greedy("Look in thy glass", 16), scales[i]);
    r.cache_prompt = false;
    auto h = e->submit(std::move(r), std::move(cb));
    ASSERT_TRUE(h) << h.error().message;
    handles.push_back(std::move(*h));
  }
  std::set<int> slots_used;
  for (std::size_t i = 0; i < scales.size(); ++i) {
    auto r = done[i].get_future().get();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->text, sequential[i]) << "scale " << scales[i];
    slots_used.insert(r->slot);
  }
  EXPECT_EQ(slots_used.size(), scales.size());
  EXPECT_NE(sequential[0], sequential[4]);
  EXPECT_NE(sequential[2], sequential[3]);
}

TEST(EngineLora, BadAdaptersAndScalesAreRefused) {
  auto model = testing::qwen2_model();
  ASSERT_TRUE(model);
  // Not an adapter (a model), and an adapter made for another architecture.
  auto not_adapter = Engine::create(
      model, {.n_ctx = 128, .n_threads = 2, .lora_adapters = {{testing::qwen2_model_path().string(), 1.0f}}});
  ASSERT_FALSE(not_adapter);
  EXPECT_EQ(not_adapter.error().code, ErrorCode::kInvalidArgument);
  tools::TestLoraOptions o;
  o.base = testing::llama_model_path();
  o.out = testing::scratch_dir() / "llama-adapter.gguf";
  ASSERT_TRUE(tools::make_test_lora(o));
  auto other_arch = Engine::create(model, {.n_ctx = 128, .n_threads = 2, .lora_adapters = {{o.out.string(), 1.0f}}});
  ASSERT_FALSE(other_arch);
  EXPECT_EQ(other_arch.error().code, ErrorCode::kInvalidArgument);

  auto e = make_engine({.lora_adapters = {{test_lora_path().string(), 0.5f}}});
  ASSERT_TRUE(e);
  GenerateRequest bad = greedy("x", 2);
  bad.lora = std::vector<LoraScale>{{1, 1.0f}};
  EXPECT_EQ(e->submit(bad, {}).error().code, ErrorCode::kInvalidArgument);
  bad.lora = std::vector<LoraScale>{{0, std::numeric_limits<float>::infinity()}};
  EXPECT_EQ(e->submit(bad, {}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->set_lora_scales({{3, 1.0f}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->set_lora_scales({{0, 101.0f}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e->lora_adapters()[0].scale, 0.5f) << "a refused change changes nothing";
}

}  // namespace
}  // namespace llmd::runner
