#include "runner/engine.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <future>
#include <thread>

#include <common.h>

#include "runner/backend.h"
#include "runner/slot.h"

namespace llmd::runner {
namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::size_t common_prefix(const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// LoRA scales beyond this are refused (llama-server has no bound; 100x an
// adapter is already noise).
constexpr float kMaxLoraScale = 100.0f;

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 4 : static_cast<int>(n);
}

}  // namespace

std::string_view to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "stop";
}

// ---------------------------------------------------------------- handles

RequestHandle& RequestHandle::operator=(RequestHandle&& other) noexcept {
  if (this != &other) {
    cancel();
    task_ = std::move(other.task_);
  }
  return *this;
}

RequestHandle::~RequestHandle() { cancel(); }

void RequestHandle::cancel() {
  if (!task_ || task_->done.load()) return;
  task_->cancelled.store(true);
  task_->shared->wake();
}

// ---------------------------------------------------------------- engine thread

// Everything the engine thread owns. Only run() and what it calls touch it
// (the constructor runs before the thread starts).
struct Engine::Impl {
  std::shared_ptr<const Model> model;
  std::shared_ptr<EngineShared> shared;
  EngineOptions options;
  // Before ctx, so the context goes first.
  std::vector<LlamaLoraPtr> adapters;
  LlamaContextPtr ctx;
  llama_memory_t mem = nullptr;
  std::unique_ptr<LlamaBatch> batch;
  std::vector<Slot> slots;
  uint64_t use_counter = 0;
  uint64_t step_counter = 0;
  std::vector<float> applied_lora;  // the adapter scales set on ctx
  int n_ctx_slot = 0;
  std::thread thread;

  void run();
  bool any_busy() const {
    return std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy(); });
  }
  Slot* pick_slot(const Task& task);
  // The least recently used free slots other than `taken`, if there are `n`.
  std::vector<Slot*> free_slots(const Slot& taken, std::size_t n);
  // Gives `slot` its task; a task with followers also takes `fork_slots`.
  void assign(Slot& slot, std::shared_ptr<Task> task, const std::vector<Slot*>& fork_slots = {});
  void occupy(Slot& slot, std::shared_ptr<Task> task, Slot::Phase phase);
  // `leader`'s prompt is evaluated: its KV state goes to the slots awaiting it.
  void fork(Slot& leader);
  // `leader` ended before its prompt was evaluated: so do its awaiting choices.
  void end_forks(Slot& leader, const std::optional<Error>& error);
  void finish(Slot& slot, FinishReason reason);
  void fail_slot(Slot& slot, Error error);
  void step();
  void sample_and_emit(Slot& slot);
  void run_embedding(Task& task);
  // Sets the adapters' scales on the context (the ones not 0), if they changed.
  void apply_lora(const std::vector<float>& scales);
  void reset_sequence(Slot& slot);
  SlotState state_of(const Slot& s) const;
  // Copies every slot's state where Engine::slots() reads it.
  void publish_slots();
  void publish_slot(const Slot& s);  // one slot's state, between whole publications
};

namespace {

// Callbacks are user code: an exception must never unwind the engine thread.
void call_on_progress(Task& t, const Usage& so_far) {
  if (!t.callbacks.on_progress) return;
  try {
    t.callbacks.on_progress(so_far);
  } catch (...) {
  }
}

void call_on_token_prob(Task& t, const TokenProb& prob) {
  if (!t.callbacks.on_token_prob) return;
  try {
    t.callbacks.on_token_prob(prob);
  } catch (...) {
  }
}

// The log-probability of `token` under the logits row, and the `n` likeliest tokens.
TokenProb token_prob(const float* logits, int n_vocab, llama_token token, int n) {
  float max = logits[0];
  for (int i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  TokenProb p;
  p.token = token;
  p.logprob = logits[token] - log_z;
  if (n > 0) {
    std::vector<llama_token> ids(static_cast<std::size_t>(n_vocab));
    for (int i = 0; i < n_vocab; ++i) ids[static_cast<std::size_t>(i)] = i;
    const auto k = static_cast<std::ptrdiff_t>(std::min(n, n_vocab));
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                      [logits](llama_token a, llama_token b) { return logits[a] > logits[b]; });
    for (std::ptrdiff_t i = 0; i < k; ++i)
      p.top.emplace_back(ids[static_cast<std::size_t>(i)], logits[ids[static_cast<std::size_t>(i)]] - log_z);
  }
  return p;
}

bool call_on_text(Task& t, std::string_view text) {
  if (!t.callbacks.on_text || text.empty()) return true;
  try {
    return t.callbacks.on_text(text);
  } catch (...) {
    return false;
  }
}

void call_on_done(Task& t, Result<Completion> r) {
  if (t.done.exchange(true)) return;
  if (!t.callbacks.on_done) return;
  try {
    t.callbacks.on_done(std::move(r));
  } catch (...) {
  }
}

void complete_task_with_error(Task& t, Error e) {
  if (t.kind == Task::Kind::kEmbed) {
    if (!t.done.exchange(true) && t.on_embedding) t.on_embedding(fail(std::move(e)));
    return;
  }
  call_on_done(t, fail(std::move(e)));
}

void complete_cancelled_in_queue(Task& t) {
  if (t.kind == Task::Kind::kEmbed) {
    complete_task_with_error(t, Error(ErrorCode::kUnavailable, "request cancelled"));
    return;
  }
  Completion c;
  c.finish = FinishReason::kCancelled;
  c.usage.prompt_tokens = static_cast<int>(t.request.prompt_tokens.size());
  c.timings.queue_ms = ms_between(t.submitted, Clock::now());
  call_on_done(t, std::move(c));
}

}  // namespace

void Engine::Impl::run() {
  while (true) {
    std::vector<std::shared_ptr<Task>> dropped;  // cancelled while queued
    std::vector<std::shared_ptr<Task>> embeds;
    {
      std::unique_lock lock(shared->mu);
      shared->cv.wait(lock, [&] { return shared->stopping || !shared->queue.empty() || any_busy(); });
      if (shared->stopping) break;
      for (auto it = shared->queue.begin(); it != shared->queue.end();) {
        if ((*it)->cancelled.load()) {
          for (auto& f : (*it)->followers) dropped.push_back(std::move(f));
          dropped.push_back(std::move(*it));
          it = shared->queue.erase(it);
        } else {
          ++it;
        }
      }
      while (!shared->queue.empty()) {
        auto& front = shared->queue.front();
        if (front->kind == Task::Kind::kEmbed) {
          embeds.push_back(std::move(front));
          shared->queue.pop_front();
          continue;
        }
        Slot* slot = pick_slot(*front);
        if (slot == nullptr) break;
        std::vector<Slot*> fork_slots;
        if (!front->followers.empty()) {
          fork_slots = free_slots(*slot, front->followers.size());
          if (fork_slots.empty()) break;  // waits, in order, until enough slots are free
        }
        assign(*slot, std::move(front), fork_slots);
        shared->queue.pop_front();
      }
      shared->queue_length.store(static_cast<int>(shared->queue.size()));
    }
    // A slot is shown busy before it produces anything.
    publish_slots();
    for (auto& t : dropped) complete_cancelled_in_queue(*t);
    for (auto& t : embeds) run_embedding(*t);

    for (auto& s : slots) {
      if (s.busy() && s.task->cancelled.load()) finish(s, FinishReason::kCancelled);
    }
    step();
    publish_slots();
  }

  // Shutdown: everything still running or queued learns it will not complete.
  const Error stopping(ErrorCode::kUnavailable, "the model is shutting down");
  for (auto& s : slots) {
    if (s.busy()) {
      complete_task_with_error(*s.task, stopping);
      s.task.reset();
      s.phase = Slot::Phase::kIdle;
      shared->slots_busy.fetch_sub(1);
    }
  }
  std::deque<std::shared_ptr<Task>> rest;
  {
    std::lock_guard lock(shared->mu);
    rest.swap(shared->queue);
  }
  for (auto& t : rest) {
    for (auto& f : t->followers) complete_task_with_error(*f, stopping);
    complete_task_with_error(*t, stopping);
  }
}

Slot* Engine::Impl::pick_slot(const Task& task) {
  Slot* best = nullptr;
  std::size_t best_prefix = 0;
  for (auto& s : slots) {
    if (s.busy()) continue;
    // A cached prefix computed with other LoRA scales is no prefix of this prompt.
    const bool reusable = task.request.cache_prompt && s.cache_lora == task.lora;
    const std::size_t prefix = reusable ? common_prefix(s.cache, task.request.prompt_tokens) : 0;
    if (best == nullptr || prefix > best_prefix || (prefix == best_prefix && s.last_used < best->last_used)) {
      best = &s;
      best_prefix = prefix;
    }
  }
  return best;
}

SlotState Engine::Impl::state_of(const Slot& s) const {
  SlotState st;
  st.id = s.id;
  st.busy = s.busy();
  st.request = s.request;
  if (s.task) {
    st.n_prompt_tokens = static_cast<int>(s.task->request.prompt_tokens.size());
    st.n_prompt_cached = s.n_cached;
    st.n_decoded = s.n_decoded;
    st.n_remain = s.task->request.max_tokens < 0 ? -1 : s.task->request.max_tokens - s.n_decoded;
  }
  return st;
}

void Engine::Impl::publish_slots() {
  std::vector<SlotState> states;
  states.reserve(slots.size());
  for (const auto& s : slots) states.push_back(state_of(s));
  std::lock_guard lock(shared->slots_mu);
  shared->slot_states = std::move(states);
}

void Engine::Impl::publish_slot(const Slot& s) {
  SlotState st = state_of(s);
  std::lock_guard lock(shared->slots_mu);
  for (auto& published : shared->slot_states) {
    if (published.id == st.id) published = std::move(st);
  }
}

void Engine::Impl::reset_sequence(Slot& slot) {
  llama_memory_seq_rm(mem, slot.id, -1, -1);
  slot.cache.clear();
}

std::vector<Slot*> Engine::Impl::free_slots(const Slot& taken, std::size_t n) {
  std::vector<Slot*> free;
  for (auto& s : slots) {
    if (!s.busy() && &s != &taken) free.push_back(&s);
  }
  if (free.size() < n) return {};
  std::sort(free.begin(), free.end(), [](const Slot* a, const Slot* b) { return a->last_used < b->last_used; });
  free.resize(n);
  return free;
}

void Engine::Impl::assign(Slot& slot, std::shared_ptr<Task> task, const std::vector<Slot*>& fork_slots) {
  auto followers = std::move(task->followers);
  const auto& prompt = task->request.prompt_tokens;
  const bool reusable = task->request.cache_prompt && slot.cache_lora == task->lora;
  std::size_t keep = reusable ? common_prefix(slot.cache, prompt) : 0;
  // The last prompt token is always decoded: its logits pick the first token.
  if (keep >= prompt.size()) keep = prompt.size() - 1;
  if (!llama_memory_seq_rm(mem, slot.id, static_cast<llama_pos>(keep), -1)) {
    reset_sequence(slot);
    keep = 0;
  }
  slot.cache.resize(keep);
  slot.cache_lora = task->lora;
  slot.n_prompt_done = keep;
  slot.n_cached = static_cast<int>(keep);
  occupy(slot, std::move(task), Slot::Phase::kPrefill);
  for (std::size_t i = 0; i < followers.size() && i < fork_slots.size(); ++i) {
    Slot& f = *fork_slots[i];
    f.n_cached = 0;  // its cache stays as it is until the fork replaces it
    occupy(f, std::move(followers[i]), Slot::Phase::kAwaitFork);
    slot.forks.emplace_back(f.id, f.assignment);
  }
}

void Engine::Impl::occupy(Slot& slot, std::shared_ptr<Task> task, Slot::Phase phase) {
  slot.pending = -1;
  slot.i_batch = -1;
  slot.n_decoded = 0;
  slot.last_used = ++use_counter;
  ++slot.assignment;
  slot.request = shared->requests_total.load() + 1;
  slot.forks.clear();
  slot.stream.emplace(task->request.stop);
  slot.probs.clear();
  slot.sampled.clear();
  slot.t_assigned = Clock::now();
  slot.t_first_token.reset();
  slot.phase = phase;
  slot.task = std::move(task);
  shared->requests_total.fetch_add(1);
  shared->slots_busy.fetch_add(1);
}

void Engine::Impl::fork(Slot& leader) {
  for (const auto& [id, assignment] : std::exchange(leader.forks, {})) {
    Slot& f = slots[static_cast<std::size_t>(id)];
    if (f.phase != Slot::Phase::kAwaitFork || f.assignment != assignment) continue;  // cancelled meanwhile
    // A copy across KV streams is whole-sequence only; llama.cpp performs it
    // at the start of the next decode, before that decode's tokens land.
    llama_memory_seq_rm(mem, f.id, -1, -1);
    llama_memory_seq_cp(mem, leader.id, f.id, -1, -1);
    f.cache = leader.cache;
    f.cache_lora = leader.cache_lora;
    f.n_prompt_done = leader.n_prompt_done;
    f.n_cached = static_cast<int>(leader.cache.size());  // the whole prompt came from the first choice
    f.i_batch = leader.i_batch;                          // samples from the same logits
    f.phase = Slot::Phase::kPrefill;
  }
}

void Engine::Impl::end_forks(Slot& leader, const std::optional<Error>& error) {
  for (const auto& [id, assignment] : std::exchange(leader.forks, {})) {
    Slot& f = slots[static_cast<std::size_t>(id)];
    if (f.phase != Slot::Phase::kAwaitFork || f.assignment != assignment) continue;
    if (error) {
      fail_slot(f, *error);
    } else {
      f.task->cancelled.store(true);
      finish(f, FinishReason::kCancelled);
    }
  }
}

void Engine::Impl::finish(Slot& slot, FinishReason reason) {
  end_forks(slot, std::nullopt);
  Task& t = *slot.task;
  if (reason != FinishReason::kCancelled) call_on_text(t, slot.stream->flush());
  const auto now = Clock::now();
  Completion c;
  c.text = slot.stream->text();
  c.finish = reason;
  c.slot = slot.id;
  c.probs = std::move(slot.probs);
  c.tokens = std::move(slot.sampled);
  c.usage.prompt_tokens = static_cast<int>(t.request.prompt_tokens.size());
  c.usage.cached_prompt_tokens = slot.n_cached;
  c.usage.completion_tokens = slot.n_decoded;
  c.timings.queue_ms = ms_between(t.submitted, slot.t_assigned);
  if (slot.t_first_token) {
    c.timings.prompt_ms = ms_between(slot.t_assigned, *slot.t_first_token);
    c.timings.generation_ms = ms_between(*slot.t_first_token, now);
    c.timings.first_token_ms = ms_between(t.submitted, *slot.t_first_token);
  } else {
    c.timings.prompt_ms = ms_between(slot.t_assigned, now);
  }
  // A cancelled prefill leaves a partial prompt in the cache: still a valid
  // prefix (cache mirrors the KV cache), so it stays reusable.
  slot.phase = Slot::Phase::kIdle;
  slot.i_batch = -1;
  shared->slots_busy.fetch_sub(1);
  // A caller who has read the reply finds the slot idle in /slots.
  publish_slot(slot);
  auto task = std::move(slot.task);
  call_on_done(*task, std::move(c));
}

void Engine::Impl::fail_slot(Slot& slot, Error error) {
  end_forks(slot, error);
  reset_sequence(slot);
  slot.phase = Slot::Phase::kIdle;
  slot.i_batch = -1;
  shared->slots_busy.fetch_sub(1);
  publish_slot(slot);
  auto task = std::move(slot.task);
  complete_task_with_error(*task, std::move(error));
}

void Engine::Impl::step() {
  batch->clear();
  std::vector<Slot*> in_batch;
  uint64_t n_prompt = 0;
  // One set of LoRA scales per decode: the busy slot left out longest picks
  // it, the slots with other scales wait a step (turns alternate).
  const std::vector<float>* lora = nullptr;
  if (!adapters.empty()) {
    const Slot* first = nullptr;
    for (const auto& s : slots) {
      const bool decodes = s.phase == Slot::Phase::kGenerate || s.phase == Slot::Phase::kPrefill;
      if (decodes && (first == nullptr || s.last_step < first->last_step)) first = &s;
    }
    if (first != nullptr) lora = &first->task->lora;
  }
  auto runs_now = [lora](const Slot& s) { return lora == nullptr || s.task->lora == *lora; };
  // 1. The next token of every generating slot.
  for (auto& s : slots) {
    if (s.phase != Slot::Phase::kGenerate || !runs_now(s)) continue;
    s.i_batch = batch->add(s.pending, static_cast<llama_pos>(s.cache.size()), s.id, true);
    s.cache.push_back(s.pending);
    in_batch.push_back(&s);
  }
  // 2. Prompt chunks in the remaining room (chunked prefill), oldest first.
  std::vector<Slot*> prefill;
  for (auto& s : slots) {
    if (s.phase == Slot::Phase::kPrefill && runs_now(s)) prefill.push_back(&s);
  }
  std::sort(prefill.begin(), prefill.end(), [](const Slot* a, const Slot* b) { return a->last_used < b->last_used; });
  for (Slot* s : prefill) {
    if (batch->size() >= batch->capacity()) break;
    in_batch.push_back(s);
    const auto& prompt = s->task->request.prompt_tokens;
    while (s->n_prompt_done < prompt.size() && batch->size() < batch->capacity()) {
      const bool last = s->n_prompt_done + 1 == prompt.size();
      const int32_t idx = batch->add(prompt[s->n_prompt_done], static_cast<llama_pos>(s->cache.size()), s->id, last);
      s->cache.push_back(prompt[s->n_prompt_done]);
      ++s->n_prompt_done;
      ++n_prompt;
      if (last) s->i_batch = idx;
    }
  }
  if (batch->size() == 0) return;
  if (lora != nullptr) apply_lora(*lora);
  ++step_counter;
  for (Slot* s : in_batch) s->last_step = step_counter;

  const auto t0 = Clock::now();
  const int32_t rc = llama_decode(ctx.get(), batch->get());
  const auto t1 = Clock::now();
  shared->decode_us_total.fetch_add(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
  if (rc != 0) {
    // Translate llama_decode's codes once: 1 = no room in the KV cache
    // (transient), anything else = failure. Every slot in the batch is reset:
    // its KV state is unknown now.
    const Error e = rc == 1 ? Error(ErrorCode::kUnavailable, "no room left in the model's context")
                            : Error(ErrorCode::kInternal, "llama_decode failed (code " + std::to_string(rc) + ")");
    for (Slot* s : in_batch) fail_slot(*s, e);
    return;
  }
  shared->prompt_tokens_total.fetch_add(n_prompt);

  for (auto& s : slots) {
    if (s.phase == Slot::Phase::kPrefill && s.i_batch >= 0 && !s.forks.empty()) fork(s);
  }
  for (auto& s : slots) {
    if (s.busy() && s.i_batch >= 0) sample_and_emit(s);
  }
}

void Engine::Impl::sample_and_emit(Slot& s) {
  Task& t = *s.task;
  const llama_token token = t.sampler->sample(ctx.get(), s.i_batch);
  const bool ends = model->is_eog(token) && !t.request.ignore_eos;
  if (t.request.n_probs >= 0 && !ends) {
    s.probs.push_back(
        token_prob(llama_get_logits_ith(ctx.get(), s.i_batch), model->info().n_vocab, token, t.request.n_probs));
    call_on_token_prob(t, s.probs.back());
  }
  s.i_batch = -1;
  s.phase = Slot::Phase::kGenerate;
  ++s.n_decoded;
  shared->completion_tokens_total.fetch_add(1);
  if (!s.t_first_token) s.t_first_token = Clock::now();
  const Usage so_far{static_cast<int>(t.request.prompt_tokens.size()), s.n_cached, s.n_decoded};

  if (ends) {
    call_on_progress(t, so_far);
    return finish(s, FinishReason::kStop);
  }
  s.sampled.push_back(token);
  const auto& keep = t.request.preserved_tokens;
  const bool special = std::find(keep.begin(), keep.end(), token) != keep.end();
  const std::string out = s.stream->push(model->token_to_piece(token, special));
  // A caller who has read this token finds it counted in /slots.
  publish_slot(s);
  // The token's text before its progress: a reader woken by the progress
  // finds the text (and the token's probabilities) already there.
  const bool wanted = call_on_text(t, out);
  call_on_progress(t, so_far);
  if (!wanted) {
    t.cancelled.store(true);
    return finish(s, FinishReason::kCancelled);
  }
  if (s.stream->stopped()) return finish(s, FinishReason::kStop);
  if (t.request.max_tokens >= 0 && s.n_decoded >= t.request.max_tokens) {
    return finish(s, FinishReason::kLength);
  }
  if (s.cache.size() >= static_cast<std::size_t>(n_ctx_slot)) return finish(s, FinishReason::kLength);
  s.pending = token;
}

void Engine::Impl::run_embedding(Task& t) {
  if (t.cancelled.load()) return complete_task_with_error(t, Error(ErrorCode::kUnavailable, "request cancelled"));
  const auto& tokens = t.request.prompt_tokens;
  Slot& s = slots.front();
  reset_sequence(s);
  if (!adapters.empty()) apply_lora(t.lora);
  batch->clear();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    batch->add(tokens[i], static_cast<llama_pos>(i), s.id, true);
  }
  const llama_model* m = model->raw();
  const bool encoder_only = llama_model_has_encoder(m) && !llama_model_has_decoder(m);
  const int32_t rc = encoder_only ? llama_encode(ctx.get(), batch->get()) : llama_decode(ctx.get(), batch->get());
  const auto pooling = llama_pooling_type(ctx.get());
  Result<std::vector<std::vector<float>>> result;
  if (rc != 0) {
    result = fail(ErrorCode::kInternal, "embedding computation failed (code " + std::to_string(rc) + ")");
  } else if (pooling == LLAMA_POOLING_TYPE_NONE) {
    // One raw vector per token, as llama-server gives them.
    const int n = llama_model_n_embd_out(m);
    std::vector<std::vector<float>> vectors;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const float* e = llama_get_embeddings_ith(ctx.get(), static_cast<int32_t>(i));
      if (e == nullptr) break;
      vectors.emplace_back(e, e + n);
    }
    if (vectors.size() == tokens.size()) {
      result = std::move(vectors);
    } else {
      result = fail(ErrorCode::kUnprocessable, "the model produced no token embeddings");
    }
  } else if (const float* e = llama_get_embeddings_seq(ctx.get(), s.id); e == nullptr) {
    result = fail(ErrorCode::kUnprocessable, "the model produced no pooled embedding");
  } else {
    // A reranker pools into one value per classifier label.
    const bool rank = pooling == LLAMA_POOLING_TYPE_RANK;
    const auto n = static_cast<int>(rank ? llama_model_n_cls_out(m) : llama_model_n_embd_out(m));
    std::vector<float> v(e, e + n);
    if (t.normalize >= 0) common_embd_normalize(e, v.data(), n, t.normalize);
    result = std::vector<std::vector<float>>{std::move(v)};
  }
  reset_sequence(s);
  shared->prompt_tokens_total.fetch_add(tokens.size());
  shared->requests_total.fetch_add(1);
  if (!t.done.exchange(true) && t.on_embedding) t.on_embedding(std::move(result));
}

void Engine::Impl::apply_lora(const std::vector<float>& scales) {
  if (scales == applied_lora) return;
  std::vector<llama_adapter_lora*> on;
  std::vector<float> on_scales;
  for (std::size_t i = 0; i < adapters.size() && i < scales.size(); ++i) {
    if (scales[i] == 0) continue;
    on.push_back(adapters[i].get());
    on_scales.push_back(scales[i]);
  }
  llama_set_adapters_lora(ctx.get(), on.data(), on.size(), on_scales.data());
  applied_lora = scales;
}

// ---------------------------------------------------------------- public API

FitContext fit_context(const EngineOptions& o) {
  FitContext f;
  f.n_seq_max = static_cast<std::uint32_t>(std::max(1, o.n_parallel));
  f.n_ctx = static_cast<std::uint32_t>(std::max(0, o.n_ctx)) * f.n_seq_max;
  f.n_batch = static_cast<std::uint32_t>(std::max(1, o.n_batch));
  // Embedding models need the whole input in one micro-batch.
  f.n_ubatch = o.embeddings ? f.n_batch : std::min<std::uint32_t>(f.n_batch, 512);
  f.embeddings = o.embeddings;
  return f;
}

Engine::Engine(std::shared_ptr<const Model> model, const EngineOptions& options)
    : model_(std::move(model)), options_(options), shared_(std::make_shared<EngineShared>()) {}

Result<std::unique_ptr<Engine>> Engine::create(std::shared_ptr<const Model> model, const EngineOptions& options) {
  if (!model) return fail(ErrorCode::kInvalidArgument, "no model");
  EngineOptions o = options;
  const int max_seq = static_cast<int>(llama_max_parallel_sequences());
  if (o.n_parallel < 1 || o.n_parallel > max_seq) {
    return fail(ErrorCode::kInvalidArgument, "parallel must be in 1.." + std::to_string(max_seq));
  }
  if (o.n_ctx == 0) o.n_ctx = model->info().n_ctx_train;
  if (o.n_ctx < 16 || o.n_ctx > 1 << 22) return fail(ErrorCode::kInvalidArgument, "ctx must be in 16..4194304");
  if (o.n_threads == 0) o.n_threads = default_threads();
  if (o.n_threads_batch == 0) o.n_threads_batch = o.n_threads;
  if (o.n_threads < 1 || o.n_threads > 512 || o.n_threads_batch < 1 || o.n_threads_batch > 512) {
    return fail(ErrorCode::kInvalidArgument, "threads must be in 1..512");
  }
  if (o.n_batch < o.n_parallel || o.n_batch > 65536) {
    return fail(ErrorCode::kInvalidArgument, "batch must be in parallel..65536");
  }
  if (o.queue_max < 0) return fail(ErrorCode::kInvalidArgument, "queue_max must be >= 0");

  std::unique_ptr<Engine> engine(new Engine(model, o));
  auto impl = std::make_unique<Impl>();
  impl->model = model;
  impl->shared = engine->shared_;
  impl->options = o;
  for (const auto& spec : o.lora_adapters) {
    if (!std::isfinite(spec.scale) || std::fabs(spec.scale) > kMaxLoraScale) {
      return fail(ErrorCode::kInvalidArgument, "LoRA scales must be in [-100, 100]");
    }
    LlamaLoraPtr adapter(llama_adapter_lora_init(model->raw(), spec.path.c_str()));
    if (!adapter) {
      return fail(ErrorCode::kInvalidArgument,
                  "cannot load the LoRA adapter " + spec.path + " (not a LoRA GGUF, or made for another model)");
    }
    impl->adapters.push_back(std::move(adapter));
    engine->lora_scales_.push_back(spec.scale);
  }
  impl->applied_lora.assign(impl->adapters.size(), 0.0f);  // a new context has none set

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(o.n_ctx) * static_cast<uint32_t>(o.n_parallel);
  cp.n_seq_max = static_cast<uint32_t>(o.n_parallel);
  cp.n_batch = static_cast<uint32_t>(o.n_batch);
  cp.n_ubatch = fit_context(o).n_ubatch;
  cp.n_threads = o.n_threads;
  cp.n_threads_batch = o.n_threads_batch;
  cp.no_perf = true;
  cp.embeddings = o.embeddings;
  if (o.embeddings) cp.pooling_type = o.pooling;
  // One KV stream per slot: a slot always has its full n_ctx, whatever the others do.
  cp.kv_unified = false;
  impl->ctx.reset(llama_init_from_model(model->raw(), cp));
  if (!impl->ctx) return fail(ErrorCode::kInternal, "llama.cpp could not create the context (out of memory?)");
  if (o.embeddings && llama_pooling_type(impl->ctx.get()) == LLAMA_POOLING_TYPE_NONE &&
      o.pooling != LLAMA_POOLING_TYPE_NONE) {
    return fail(ErrorCode::kUnprocessable, "this model does not support pooled embeddings", "embeddings_not_supported");
  }
  if (o.embeddings) engine->pooling_ = llama_pooling_type(impl->ctx.get());
  impl->mem = llama_get_memory(impl->ctx.get());
  impl->n_ctx_slot = static_cast<int>(llama_n_ctx_seq(impl->ctx.get()));
  engine->n_ctx_slot_ = impl->n_ctx_slot;
  impl->batch = std::make_unique<LlamaBatch>(o.n_batch, 1);
  impl->slots.resize(static_cast<std::size_t>(o.n_parallel));
  for (int i = 0; i < o.n_parallel; ++i) impl->slots[static_cast<std::size_t>(i)].id = i;

  Impl* raw = impl.get();
  engine->impl_ = std::move(impl);
  raw->publish_slots();
  raw->thread = std::thread([raw] { raw->run(); });
  return engine;
}

Engine::~Engine() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  if (impl_ && impl_->thread.joinable()) impl_->thread.join();
}

Result<std::shared_ptr<Task>> Engine::prepare(GenerateRequest request, GenerateCallbacks callbacks) const {
  if (options_.embeddings) {
    return fail(ErrorCode::kUnprocessable, "this runner serves embeddings only", "embeddings_only");
  }
  if (request.prompt_tokens.empty()) {
    auto tokens = model_->tokenize(request.prompt, request.add_special, /*parse_special=*/true);
    if (!tokens) return fail(tokens.error());
    request.prompt_tokens = std::move(*tokens);
  }
  const auto& prompt = request.prompt_tokens;
  if (prompt.empty()) return fail(ErrorCode::kInvalidArgument, "the prompt is empty");
  for (const llama_token t : prompt) {
    if (!model_->is_valid_token(t)) {
      return fail(ErrorCode::kInvalidArgument, "invalid token id " + std::to_string(t) + " in prompt");
    }
  }
  if (prompt.size() >= static_cast<std::size_t>(n_ctx_slot_)) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      "the prompt is " + std::to_string(prompt.size()) + " tokens; the context holds " +
                          std::to_string(n_ctx_slot_),
                      "context_length_exceeded")
                    .with_detail("n_prompt_tokens", static_cast<std::int64_t>(prompt.size()))
                    .with_detail("n_ctx", n_ctx_slot_));
  }
  if (request.max_tokens == 0 || request.max_tokens < -1 || request.max_tokens > n_ctx_slot_) {
    return fail(ErrorCode::kInvalidArgument, "max_tokens must be -1 or in 1.." + std::to_string(n_ctx_slot_));
  }
  for (const auto& s : request.stop) {
    if (s.empty() || s.size() > 1024) {
      return fail(ErrorCode::kInvalidArgument, "stop strings must be 1..1024 bytes");
    }
  }
  auto sampler = Sampler::create(*model_, request.sampling, n_ctx_slot_);
  if (!sampler) return fail(sampler.error());
  sampler->accept_context(prompt);

  auto task = std::make_shared<Task>();
  if (request.lora) {
    auto lora = resolve_lora(*request.lora);
    if (!lora) return fail(lora.error());
    task->lora = std::move(*lora);
  } else {
    std::lock_guard lock(lora_mu_);
    task->lora = lora_scales_;
  }
  task->request = std::move(request);
  task->callbacks = std::move(callbacks);
  task->sampler = std::make_unique<Sampler>(std::move(*sampler));
  task->shared = shared_;
  return task;
}

Result<void> Engine::enqueue(std::shared_ptr<Task> task) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopping) return fail(ErrorCode::kUnavailable, "the model is shutting down");
    const int busy = shared_->slots_busy.load();
    // Requests a free slot will take at once do not count against the queue.
    // Cancelled requests still in the queue are about to be dropped: not
    // counted. A request with several choices counts once per choice.
    std::size_t live = 0;
    for (const auto& t : shared_->queue) {
      if (!t->cancelled.load()) live += 1 + t->followers.size();
    }
    const std::size_t waiting = live + static_cast<std::size_t>(busy) + 1 + task->followers.size();
    if (waiting > static_cast<std::size_t>(options_.n_parallel + options_.queue_max)) {
      return fail(
          Error(ErrorCode::kUnavailable, "the model is busy: request queue is full", "queue_full").with_retry_after(1));
    }
    shared_->queue.push_back(std::move(task));
    shared_->queue_length.store(static_cast<int>(shared_->queue.size()));
  }
  shared_->cv.notify_all();
  return {};
}

Result<RequestHandle> Engine::submit(GenerateRequest request, GenerateCallbacks callbacks) {
  auto task = prepare(std::move(request), std::move(callbacks));
  if (!task) return fail(task.error());
  LLMD_TRY(enqueue(*task));
  return RequestHandle(std::move(*task));
}

Result<std::vector<RequestHandle>> Engine::submit_choices(GenerateRequest request,
                                                          std::vector<GenerateCallbacks> callbacks) {
  if (callbacks.empty() || callbacks.size() > static_cast<std::size_t>(options_.n_parallel)) {
    return fail(ErrorCode::kInvalidArgument,
                "n must be in 1.." + std::to_string(options_.n_parallel) + " (the model's parallel slots)");
  }
  const auto seed = request.sampling.seed;
  std::vector<std::shared_ptr<Task>> tasks;
  for (std::size_t i = 0; i < callbacks.size(); ++i) {
    GenerateRequest choice = request;
    if (seed) choice.sampling.seed = *seed + static_cast<uint32_t>(i);
    auto task = prepare(std::move(choice), std::move(callbacks[i]));
    if (!task) return fail(task.error());
    // Tokenized once: every choice shares the first one's prompt (and
    // adapter scales: the choices fork from one evaluation of it).
    if (i == 0) request.prompt_tokens = (*task)->request.prompt_tokens;
    if (i > 0) (*task)->lora = tasks.front()->lora;
    tasks.push_back(std::move(*task));
  }
  std::vector<RequestHandle> handles;
  for (const auto& t : tasks) handles.push_back(RequestHandle(t));
  tasks.front()->followers.assign(tasks.begin() + 1, tasks.end());
  LLMD_TRY(enqueue(tasks.front()));
  return handles;
}

Result<Completion> Engine::generate(GenerateRequest request, std::function<bool(std::string_view)> on_text) {
  std::promise<Result<Completion>> promise;
  auto future = promise.get_future();
  GenerateCallbacks cb;
  cb.on_text = std::move(on_text);
  cb.on_done = [&promise](Result<Completion> r) { promise.set_value(std::move(r)); };
  auto handle = submit(std::move(request), std::move(cb));
  if (!handle) return fail(handle.error());
  return future.get();
}

Result<std::vector<float>> Engine::embed(std::string_view text) {
  auto tokens = model_->tokenize(text, /*add_special=*/true, /*parse_special=*/false);
  if (!tokens) return fail(tokens.error());
  auto vectors = embed_tokens(std::move(*tokens), pooling_ == LLAMA_POOLING_TYPE_RANK ? -1 : 2);
  if (!vectors) return fail(vectors.error());
  return std::move(vectors->front());
}

Result<std::vector<std::vector<float>>> Engine::embed_tokens(std::vector<llama_token> tokens, int normalize) {
  if (!options_.embeddings) {
    return fail(ErrorCode::kUnprocessable,
                "embeddings are not enabled for this model (start the runner with embeddings on)",
                "embeddings_not_supported");
  }
  for (const llama_token t : tokens) {
    if (!model_->is_valid_token(t)) {
      return fail(ErrorCode::kInvalidArgument, "invalid token id " + std::to_string(t) + " in the input");
    }
  }
  return pool(std::move(tokens), normalize);
}

Result<Engine::Rank> Engine::rank(std::string_view query, std::string_view document) {
  if (pooling_ != LLAMA_POOLING_TYPE_RANK) {
    return fail(ErrorCode::kNotImplemented, "this runner does not rerank (start it with --reranking)", "not_supported");
  }
  auto tokens = model_->rerank_prompt(query, document);
  if (!tokens) return fail(tokens.error());
  const int n = static_cast<int>(tokens->size());
  auto scores = pool(std::move(*tokens), /*normalize=*/-1);
  if (!scores) return fail(scores.error());
  if (scores->empty() || scores->front().empty()) {
    return fail(ErrorCode::kUnprocessable, "the model produced no rerank score");
  }
  return Rank{scores->front().front(), n};
}

Result<std::vector<std::vector<float>>> Engine::pool(std::vector<llama_token> tokens, int normalize) {
  if (tokens.empty()) return fail(ErrorCode::kInvalidArgument, "the input is empty (no tokens)");
  if (tokens.size() > static_cast<std::size_t>(std::min(n_ctx_slot_, options_.n_batch))) {
    return fail(ErrorCode::kInvalidArgument,
                "the input is " + std::to_string(tokens.size()) + " tokens, too large to process: at most " +
                    std::to_string(std::min(n_ctx_slot_, options_.n_batch)) + " fit",
                "context_length_exceeded");
  }
  std::promise<Result<std::vector<std::vector<float>>>> promise;
  auto future = promise.get_future();
  auto task = std::make_shared<Task>();
  task->kind = Task::Kind::kEmbed;
  task->normalize = normalize;
  {
    std::lock_guard lock(lora_mu_);
    task->lora = lora_scales_;
  }
  task->request.prompt_tokens = std::move(tokens);
  task->on_embedding = [&promise](Result<std::vector<std::vector<float>>> r) { promise.set_value(std::move(r)); };
  task->shared = shared_;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopping) return fail(ErrorCode::kUnavailable, "the model is shutting down");
    if (shared_->queue.size() >= static_cast<std::size_t>(options_.queue_max + options_.n_parallel)) {
      return fail(
          Error(ErrorCode::kUnavailable, "the model is busy: request queue is full", "queue_full").with_retry_after(1));
    }
    shared_->queue.push_back(task);
  }
  shared_->cv.notify_all();
  return future.get();
}

Result<std::vector<float>> Engine::resolve_lora(const std::vector<LoraScale>& scales) const {
  std::vector<float> out(options_.lora_adapters.size(), 0.0f);
  for (const auto& [id, scale] : scales) {
    if (id < 0 || static_cast<std::size_t>(id) >= out.size()) {
      return fail(ErrorCode::kInvalidArgument, "lora: no adapter with id " + std::to_string(id) + " (the model has " +
                                                   std::to_string(out.size()) + ")");
    }
    if (!std::isfinite(scale) || std::fabs(scale) > kMaxLoraScale) {
      return fail(ErrorCode::kInvalidArgument, "lora: scale must be in [-100, 100]");
    }
    out[static_cast<std::size_t>(id)] = scale;
  }
  return out;
}

std::vector<LoraAdapterInfo> Engine::lora_adapters() const {
  std::lock_guard lock(lora_mu_);
  std::vector<LoraAdapterInfo> out;
  for (std::size_t i = 0; i < lora_scales_.size(); ++i) {
    out.push_back({static_cast<int>(i), options_.lora_adapters[i].path, lora_scales_[i]});
  }
  return out;
}

Result<void> Engine::set_lora_scales(const std::vector<LoraScale>& scales) {
  auto resolved = resolve_lora(scales);
  if (!resolved) return fail(resolved.error());
  std::lock_guard lock(lora_mu_);
  lora_scales_ = std::move(*resolved);
  return {};
}

std::vector<SlotState> Engine::slots() const {
  std::lock_guard lock(shared_->slots_mu);
  return shared_->slot_states;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.slots_total = options_.n_parallel;
  s.slots_busy = shared_->slots_busy.load();
  s.queue_length = shared_->queue_length.load();
  s.requests_total = shared_->requests_total.load();
  s.prompt_tokens_total = shared_->prompt_tokens_total.load();
  s.completion_tokens_total = shared_->completion_tokens_total.load();
  s.decode_seconds_total = static_cast<double>(shared_->decode_us_total.load()) / 1e6;
  return s;
}

}  // namespace llmd::runner
