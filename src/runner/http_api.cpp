#include "runner/http_api.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <limits>
#include <span>

#include <boost/asio/this_coro.hpp>

#include <build-info.h>

#include "http/errors.h"
#include "http/sse.h"
#include "runner/backend.h"
#include "runner/completion_channel.h"
#include "runner/infill.h"
#include "runner/openai.h"

namespace llmd::runner {
namespace {

namespace net = boost::asio;
using http::RequestContext;
using http::Response;

// How long a stream may stay silent (queued, long prefill) before a
// keep-alive comment checks that the client is still there.
constexpr std::chrono::seconds kStreamHeartbeat{5};

Response json_reply(int status, const Json& body) { return Response::text(status, dump(body), "application/json"); }

// Every runner error carries OpenAI's error.type beside llmd's code.
Response error_reply(const Error& e, const std::string& request_id) {
  return http::error_response(e, request_id, {{"type", openai_error_type(e)}});
}
Response error_reply(const Error& e, const RequestContext& ctx) { return error_reply(e, ctx.request_id); }

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// The tokens of the template's generation prompt, as llama.cpp feeds them to
// a tool-call grammar (a leading space token the tokenizer adds is skipped).
std::vector<llama_token> generation_prompt_tokens(const Model& model, const std::string& text) {
  auto tokens = model.tokenize(text, /*add_special=*/false, /*parse_special=*/true);
  if (!tokens || tokens->empty()) return {};
  std::vector<llama_token> out = std::move(*tokens);
  const std::string first = model.token_to_piece(out.front(), true);
  if (!first.empty() && std::isspace(static_cast<unsigned char>(first[0])) != 0 && !text.empty() &&
      std::isspace(static_cast<unsigned char>(text[0])) == 0) {
    out.erase(out.begin());
  }
  return out;
}

// Renders a chat request with the model's (or the configured) template and
// sets what the engine needs: prompt, grammar (the template layer's for tools,
// else the caller's), stops and the markers the parser reads back. The
// template may already start with BOS; then the tokenizer must not add a second.
Result<void> format_chat_prompt(const RunnerService& svc, ParsedGenerate& p) {
  if (const auto reasoning = svc.config().reasoning; reasoning && !p.chat.template_kwargs.contains("enable_thinking")) {
    p.chat.enable_thinking = *reasoning;
    p.chat.template_kwargs["enable_thinking"] = *reasoning ? "true" : "false";
  }
  // A caller's grammar (json_schema, response_format) applies from the first
  // token: a thinking model is asked not to think, so its answer is the JSON.
  if (!p.chat.grammar.empty()) {
    p.chat.enable_thinking = false;
    p.chat.template_kwargs["enable_thinking"] = "false";
  }
  auto rendered = svc.templates().apply(p.chat);
  if (!rendered) return fail(rendered.error());
  const Model& model = svc.model();
  GenerateRequest& r = p.request;
  r.prompt = rendered->prompt;
  if (!rendered->grammar.empty()) {
    r.sampling.grammar = rendered->grammar;
    r.sampling.grammar_lazy = rendered->grammar_lazy;
    r.sampling.grammar_trigger_patterns = rendered->trigger_patterns;
    r.sampling.grammar_trigger_tokens = rendered->trigger_tokens;
    if (!rendered->grammar_lazy)
      r.sampling.grammar_prefill = generation_prompt_tokens(model, rendered->generation_prompt);
  } else {
    r.sampling.grammar = p.chat.grammar;
  }
  r.preserved_tokens = rendered->preserved_tokens;
  if (p.reasoning_budget && !rendered->thinking_end_tags.empty() && !rendered->thinking_start_tag.empty()) {
    auto tokens = [&model](const std::string& text) {
      return model.tokenize(text, /*add_special=*/false, /*parse_special=*/true).value_or(std::vector<llama_token>{});
    };
    r.sampling.reasoning_budget = *p.reasoning_budget;
    r.sampling.reasoning_start = tokens(rendered->thinking_start_tag);
    for (const auto& tag : rendered->thinking_end_tags) r.sampling.reasoning_end.push_back(tokens(tag));
    r.sampling.reasoning_forced = tokens(rendered->thinking_end_tags.front());
    std::string opening = rendered->generation_prompt;
    while (!opening.empty() && std::isspace(static_cast<unsigned char>(opening.back())) != 0) opening.pop_back();
    r.sampling.reasoning_open = opening.ends_with(rendered->thinking_start_tag);
  }
  for (const auto& stop : rendered->additional_stops) {
    if (std::find(r.stop.begin(), r.stop.end(), stop) == r.stop.end()) r.stop.push_back(stop);
  }
  const llama_vocab* vocab = model.vocab();
  const llama_token bos = llama_vocab_bos(vocab);
  if (bos != LLAMA_TOKEN_NULL && llama_vocab_get_add_bos(vocab)) {
    const std::string piece = model.token_to_piece(bos, /*render_special=*/true);
    if (!piece.empty() && r.prompt.starts_with(piece)) r.add_special = false;
  }
  p.rendered = std::move(*rendered);
  return {};
}

// logit_bias given as text: the bias applies to every token of the text.
void resolve_text_logit_bias(const Model& model, ParsedGenerate& p) {
  for (const auto& [text, bias] : p.logit_bias_text) {
    auto tokens = model.tokenize(text, /*add_special=*/false, /*parse_special=*/false);
    if (!tokens) continue;
    for (const llama_token t : *tokens) p.request.sampling.logit_bias.emplace_back(t, bias);
  }
}

// An endpoint's request parser (openai.h).
// A prompt of text and token ids as llama-server tokenizes it: each text
// piece on its own, BOS etc. only before a first piece that is text.
Result<std::vector<llama_token>> tokenize_pieces(const Model& model, const PromptPieces& pieces, bool add_special,
                                                 bool parse_special) {
  std::vector<llama_token> out;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (const auto* token = std::get_if<llama_token>(&pieces[i])) {
      if (!model.is_valid_token(*token)) {
        return fail(ErrorCode::kInvalidArgument, "invalid token id " + std::to_string(*token) + " in the prompt");
      }
      out.push_back(*token);
      continue;
    }
    auto tokens = model.tokenize(std::get<std::string>(pieces[i]), add_special && i == 0, parse_special);
    if (!tokens) return fail(tokens.error());
    out.insert(out.end(), tokens->begin(), tokens->end());
  }
  return out;
}

using RequestParser = Result<ParsedGenerate> (*)(const Json& body, int n_ctx_slot);

// Parses a generation request and prepares its prompt: a chat rendered by
// the template, a fill-in-the-middle laid out with the model's FIM tokens.
Result<ParsedGenerate> parse_for(RequestParser parse, const Json& body, const RunnerService& svc) {
  Result<ParsedGenerate> p = parse(body, svc.engine().n_ctx_slot());
  if (!p) return p;
  if (const int cap = svc.config().n_predict; cap > 0) {
    int& limit = p->request.max_tokens;
    limit = limit < 0 ? cap : std::min(limit, cap);
  }
  resolve_text_logit_bias(svc.model(), *p);
  // As llama-server: ignore_eos bans every end-of-generation token, so none
  // is sampled (or lands in the text), and generation_settings shows it.
  if (p->request.ignore_eos) {
    for (const llama_token t : svc.model().eog_tokens()) {
      p->request.sampling.logit_bias.emplace_back(t, -std::numeric_limits<float>::infinity());
    }
  }
  if (p->kind == ApiKind::kChat) LLMD_TRY(format_chat_prompt(svc, *p));
  if (p->mixed_prompt) {
    auto tokens = tokenize_pieces(svc.model(), *p->mixed_prompt, p->request.add_special, /*parse_special=*/true);
    if (!tokens) return fail(tokens.error());
    p->request.prompt_tokens = std::move(*tokens);
  }
  if (p->infill) {
    const InfillInput& in = *p->infill;
    auto tokens = fim_prompt(svc.model(), FimText{in.prefix, in.suffix, in.prompt, in.extra},
                             svc.engine().options().n_batch, svc.engine().n_ctx_slot(), p->request.max_tokens);
    if (!tokens) return fail(tokens.error());
    p->request.prompt_tokens = std::move(*tokens);
  }
  return p;
}

// The prompt as text (echo): as given, or its token ids detokenized.
std::string prompt_text(const RunnerService& svc, const GenerateRequest& r) {
  if (!r.prompt.empty()) return r.prompt;
  return svc.model().detokenize(r.prompt_tokens, /*render_special=*/false).value_or(std::string());
}

PieceOf piece_of(const RunnerService& svc) {
  return [&svc](llama_token t) { return svc.model().token_to_piece(t, /*render_special=*/true); };
}

// llama-server's __verbose: what the engine ran, in /completion's shape, with the prompt as rendered.
Json verbose_json(const RunnerService& svc, const ParsedGenerate& p, const ResponseMeta& meta, const Completion& c) {
  Json j = llama_completion_json(meta, c, generation_settings_json(p.request));
  j["prompt"] = prompt_text(svc, p.request);
  return j;
}

Json reply_body(const RunnerService& svc, const ParsedGenerate& p, const ResponseMeta& meta, const Completion& c) {
  const bool probs = p.request.n_probs >= 0;
  switch (p.kind) {
    case ApiKind::kChat: {
      ChatOutputParser parser(p.rendered);
      parser.feed(c.text);
      Json j = chat_completion_json(meta, c, parser.finish());
      if (probs) j["choices"][0]["logprobs"] = chat_logprobs_json(c.probs, piece_of(svc));
      return j;
    }
    case ApiKind::kTextCompletion: {
      Json j = text_completion_json(meta, c);
      const std::string echoed = p.echo ? prompt_text(svc, p.request) : std::string();
      if (p.echo) j["choices"][0]["text"] = echoed + c.text;
      if (probs) j["choices"][0]["logprobs"] = text_logprobs_json(c.probs, piece_of(svc), echoed.size());
      return j;
    }
    case ApiKind::kLlamaCompletion: {
      Json j = llama_completion_json(meta, c, generation_settings_json(p.request));
      j["prompt"] = prompt_text(svc, p.request);
      if (p.return_tokens) j["tokens"] = c.tokens;
      if (probs) j["completion_probabilities"] = llama_probs_json(c.probs, piece_of(svc));
      return p.response_fields.empty() ? j : select_fields(j, p.response_fields);
    }
  }
  return Json::object();
}

Json final_body(const RunnerService& svc, const ParsedGenerate& p, const ResponseMeta& meta, const Completion& c) {
  Json j = reply_body(svc, p, meta, c);
  if ((svc.config().verbose || p.verbose) && p.kind != ApiKind::kLlamaCompletion) {
    j["__verbose"] = verbose_json(svc, p, meta, c);
  }
  return j;
}

Json text_chunk(ApiKind kind, const ResponseMeta& meta, std::string_view text, bool usage_null) {
  switch (kind) {
    case ApiKind::kChat: return chat_chunk_json(meta, Json::object(), std::nullopt, usage_null);
    case ApiKind::kTextCompletion: return text_chunk_json(meta, text, std::nullopt, usage_null);
    case ApiKind::kLlamaCompletion: return llama_chunk_json(text);
  }
  return Json::object();
}

// The error event of a stream that fails after it started (headers sent).
std::string stream_error(const Error& e, const RequestContext& ctx) {
  return dump(Json{{"error",
                    {{"code", std::string(e.reason_or_default())},
                     {"message", e.message},
                     {"type", openai_error_type(e)},
                     {"request_id", ctx.request_id}}}});
}

// The usage of a request with several choices: the prompt once (the first
// choice evaluated it; the others copied it), every choice's completion.
// Mid-stream the first choice's progress may not have arrived yet while
// another's has: the prompt is then taken from that one, never left at 0.
Usage combined_usage(std::span<const Usage> choices) {
  const auto known = std::find_if(choices.begin(), choices.end(), [](const Usage& u) { return u.prompt_tokens > 0; });
  Usage u = known == choices.end() ? choices.front() : *known;
  u.completion_tokens = 0;
  for (const Usage& c : choices) u.completion_tokens += c.completion_tokens;
  return u;
}

// Sets a chunk's (or reply choice's) index; OpenAI numbers choices from 0.
Json with_index(Json chunk, std::size_t choice) {
  if (chunk.contains("choices") && !chunk["choices"].empty()) chunk["choices"][0]["index"] = choice;
  return chunk;
}

// One choice of a streamed generation, as far as it was sent.
struct StreamedChoice {
  std::optional<ChatOutputParser> parser;  // kChat
  std::size_t text_sent = 0;               // legacy logprobs' text_offset
  Usage so_far;
};

// Streams submitted generations (one per choice) as server-sent events. A
// chat stream goes through the template's parser: content, reasoning and
// tool-call pieces become OpenAI deltas as soon as they are unambiguous.
// Choices interleave, each chunk carrying its index; with timings_per_token
// every chunk's timings count the whole request (prompt once, all choices'
// tokens), so a gateway billing a cut stream reads one running total.
// Cancels the engine requests the moment the client is gone.
net::awaitable<Response> stream_generation(RequestContext& ctx, RunnerService& svc, const ParsedGenerate& p,
                                           const ResponseMeta& meta, CompletionChannel& channel,
                                           std::vector<RequestHandle> handles) {
  http::SseWriter sse(ctx);
  const ApiKind kind = p.kind;
  const bool openai = kind != ApiKind::kLlamaCompletion;
  const bool usage_null = openai && p.include_usage;
  const std::size_t n = handles.size();
  std::vector<StreamedChoice> choices(n);
  const std::string echoed = p.echo ? prompt_text(svc, p.request) : std::string();
  for (auto& c : choices) {
    if (kind == ApiKind::kChat) c.parser.emplace(p.rendered);
    c.text_sent = echoed.size();
  }
  bool progress_known = false;
  auto total_so_far = [&] {
    std::vector<Usage> all;
    for (const auto& c : choices) all.push_back(c.so_far);
    return combined_usage(all);
  };
  auto with_timings = [&](Json chunk, std::size_t choice) {
    if (p.timings_per_token && progress_known) chunk["timings"] = progress_timings_json(total_so_far());
    return with_index(std::move(chunk), choice);
  };

  // Each choice opens with its role (chat) or the echoed prompt. Built
  // outside the co_await: g++ 12 miscompiles a braced Json list inside one.
  const Json opening = kind == ApiKind::kChat ? chat_chunk_json(meta, Json{{"role", "assistant"}, {"content", ""}},
                                                                std::nullopt, usage_null)
                                              : text_chunk_json(meta, echoed, std::nullopt, usage_null);
  bool alive = co_await sse.open();
  for (std::size_t i = 0; alive && i < n && (kind == ApiKind::kChat || p.echo); ++i) {
    alive = co_await sse.send(dump(with_index(opening, i)));
  }
  std::size_t finished = 0;
  while (alive && finished < n) {
    auto ev = co_await channel.next(kStreamHeartbeat);
    if (ev.timed_out) {
      alive = co_await sse.comment("keep-alive");
      continue;
    }
    const std::size_t i = ev.choice;
    StreamedChoice& choice = choices[i];
    if (ev.progress) {
      choice.so_far = *ev.progress;
      progress_known = true;
    }
    // With timings_per_token the first event after the prompt is evaluated
    // goes out even before any text can: the prompt's size is then known.
    const bool progress_only = p.timings_per_token && ev.progress && !ev.done;
    // Token probabilities ride on the first chunk sent for this event.
    std::optional<Json> probs;
    if (p.request.n_probs >= 0 && !ev.probs.empty()) {
      probs = kind == ApiKind::kChat             ? chat_logprobs_json(ev.probs, piece_of(svc))
              : kind == ApiKind::kTextCompletion ? text_logprobs_json(ev.probs, piece_of(svc), choice.text_sent)
                                                 : llama_probs_json(ev.probs, piece_of(svc));
    }
    choice.text_sent += ev.text.size();
    if (choice.parser) {
      std::vector<Json> chunks;
      const std::vector<ChatDelta> deltas = ev.text.empty() ? std::vector<ChatDelta>{} : choice.parser->feed(ev.text);
      for (const auto& d : deltas) {
        chunks.push_back(with_timings(chat_chunk_json(meta, delta_json(d), std::nullopt, usage_null), i));
      }
      // Reasoning or tool-call markup may hold text back: probabilities and
      // the prompt's first timings still go out now.
      if (chunks.empty() && (probs || progress_only)) {
        chunks.push_back(with_timings(text_chunk(kind, meta, "", usage_null), i));
      }
      if (probs) chunks.front()["choices"][0]["logprobs"] = *probs;
      for (const auto& chunk : chunks) {
        alive = co_await sse.send(dump(chunk));
        if (!alive) break;
      }
    } else if (!ev.text.empty() || progress_only || probs) {
      Json chunk = with_timings(text_chunk(kind, meta, ev.text, usage_null), i);
      if (probs && kind == ApiKind::kTextCompletion) chunk["choices"][0]["logprobs"] = *probs;
      if (probs && kind == ApiKind::kLlamaCompletion) chunk["completion_probabilities"] = *probs;
      alive = co_await sse.send(dump(chunk));
    }
    if (!alive || !ev.done) continue;
    if (!*ev.done) {
      co_await sse.send(stream_error(ev.done->error(), ctx));
      alive = false;
      break;
    }
    const Completion& c = **ev.done;
    svc.observe_completion(c);
    choice.so_far = c.usage;
    ++finished;
    if (kind == ApiKind::kChat) {
      std::vector<ChatDelta> rest;
      const ChatReply reply = choice.parser->finish(&rest);
      for (const auto& d : rest) {
        alive =
            co_await sse.send(dump(with_timings(chat_chunk_json(meta, delta_json(d), std::nullopt, usage_null), i)));
        if (!alive) break;
      }
      if (alive) {
        alive = co_await sse.send(dump(
            with_timings(chat_chunk_json(meta, Json::object(), openai_finish_reason(c.finish, reply), usage_null), i)));
      }
    } else if (kind == ApiKind::kTextCompletion) {
      alive = co_await sse.send(dump(with_timings(text_chunk_json(meta, "", c.finish, usage_null), i)));
    } else {
      // llama-server's last event carries the totals, not the text again.
      Json last = llama_completion_json(meta, c, generation_settings_json(p.request));
      last["content"] = "";
      alive = co_await sse.send(dump(last));
    }
  }
  if (alive && finished == n && openai) {
    if (p.include_usage) {
      const std::string_view object = kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion";
      alive = co_await sse.send(dump(usage_chunk_json(meta, object, total_so_far())));
    }
    if (alive) co_await sse.send("[DONE]");
  }
  // Client gone (or finished): frees the slots now, not at the next token.
  for (auto& h : handles) h.cancel();
  co_await sse.close();
  co_return Response::already_streamed(200);
}

// best_of: the `n` choices with the highest log-probability per token, in
// the order generated (their indices renumbered from 0).
std::vector<Completion> best_choices(std::vector<Completion> all, std::size_t n) {
  if (all.size() <= n) return all;
  const auto mean_logprob = [](const Completion& c) {
    if (c.probs.empty()) return 0.0;
    double sum = 0;
    for (const auto& t : c.probs) sum += t.logprob;
    return sum / static_cast<double>(c.probs.size());
  };
  std::vector<std::size_t> order(all.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return mean_logprob(all[a]) > mean_logprob(all[b]); });
  order.resize(n);
  std::sort(order.begin(), order.end());
  std::vector<Completion> best;
  for (const std::size_t i : order) best.push_back(std::move(all[i]));
  return best;
}

// The reply to a request with several choices: each choice's body merged
// into one, usage counting every generated choice (best_of's too).
Json choices_body(const RunnerService& svc, const ParsedGenerate& p, const ResponseMeta& meta,
                  const std::vector<Completion>& generated) {
  std::vector<Usage> usages;
  for (const auto& c : generated) usages.push_back(c.usage);
  const std::vector<Completion> shown = best_choices(generated, static_cast<std::size_t>(p.n));
  Json body = final_body(svc, p, meta, shown.front());
  for (std::size_t i = 1; i < shown.size(); ++i) {
    body["choices"].push_back(with_index(final_body(svc, p, meta, shown[i]), i)["choices"][0]);
  }
  if (body.contains("usage")) body["usage"] = usage_json(combined_usage(usages));
  return body;
}

net::awaitable<Response> serve_generation(RequestContext& ctx, RunnerService& svc, http::WorkerPool& pool,
                                          RequestParser parse) {
  auto body = parse_json_body(ctx.request.body);
  if (!body) co_return error_reply(body.error(), ctx);
  // Rendering a template and compiling a grammar are CPU work: off the I/O thread.
  auto parsed = co_await pool.run([&body, &parse, &svc] { return parse_for(parse, *body, svc); });
  if (!parsed) co_return error_reply(parsed.error(), ctx);
  const ApiKind kind = parsed->kind;

  ResponseMeta meta;
  meta.id = make_response_id(kind == ApiKind::kChat ? "chatcmpl-" : "cmpl-");
  meta.created = unix_now();
  meta.model = svc.alias();
  meta.system_fingerprint = svc.fingerprint();
  const bool stream = parsed->stream;

  const auto generated = static_cast<std::size_t>(parsed->best_of);
  auto channel = CompletionChannel::create(co_await net::this_coro::executor, generated);
  GenerateRequest request = parsed->request;
  // best_of ranks choices by their tokens' log-probabilities.
  if (parsed->best_of > parsed->n) request.n_probs = std::max(request.n_probs, 0);
  // Tokenizing a long prompt and compiling a grammar are CPU work: off the I/O thread.
  auto handles = co_await pool.run([&svc, &request, &channel, &stream, &generated] {
    std::vector<GenerateCallbacks> callbacks;
    for (std::size_t i = 0; i < generated; ++i) callbacks.push_back(channel->callbacks(stream, i));
    return svc.engine().submit_choices(std::move(request), std::move(callbacks));
  });
  if (!handles) co_return error_reply(handles.error(), ctx);

  if (stream) co_return co_await stream_generation(ctx, svc, *parsed, meta, *channel, std::move(*handles));
  std::vector<std::optional<Completion>> done(generated);
  std::size_t finished = 0;
  while (finished < generated) {
    auto ev = co_await channel->next(std::chrono::hours(24));
    if (!ev.done) continue;
    if (!*ev.done) co_return error_reply(ev.done->error(), ctx);  // the other choices are cancelled
    svc.observe_completion(**ev.done);
    done[ev.choice] = std::move(**ev.done);
    ++finished;
  }
  std::vector<Completion> completions;
  for (auto& c : done) completions.push_back(std::move(*c));
  if (completions.size() == 1) co_return json_reply(200, final_body(svc, *parsed, meta, completions.front()));
  co_return json_reply(200, choices_body(svc, *parsed, meta, completions));
}

// POST /v1/embeddings (`oai`), /embeddings and /embedding (llama-server's shape).
net::awaitable<Response> serve_embeddings(RequestContext& ctx, RunnerService& svc, http::WorkerPool& pool, bool oai) {
  if (!svc.engine().options().embeddings) {
    co_return error_reply(
        Error(ErrorCode::kUnprocessable, "this runner does not serve embeddings (start it with --embeddings)",
              "embeddings_not_supported"),
        ctx);
  }
  auto body = parse_json_body(ctx.request.body);
  if (!body) co_return error_reply(body.error(), ctx);
  auto req = parse_embeddings_request(*body, oai);
  if (!req) co_return error_reply(req.error(), ctx);
  if (req->oai && svc.engine().pooling() == LLAMA_POOLING_TYPE_NONE) {
    co_return error_reply(Error(ErrorCode::kInvalidArgument,
                                "pooling 'none' gives one vector per token, which is not OpenAI's shape: use "
                                "/embeddings, or start the runner with another pooling"),
                          ctx);
  }
  std::vector<std::vector<std::vector<float>>> per_input;
  int prompt_tokens = 0;
  for (const auto& input : req->inputs) {
    auto v = co_await pool.run([&svc, &input, &req, &prompt_tokens]() -> Result<std::vector<std::vector<float>>> {
      auto tokens = tokenize_pieces(svc.model(), input, /*add_special=*/true, /*parse_special=*/false);
      if (!tokens) return fail(tokens.error());
      if (tokens->empty()) return fail(ErrorCode::kInvalidArgument, "input content cannot be empty (no tokens)");
      prompt_tokens += static_cast<int>(tokens->size());
      return svc.engine().embed_tokens(std::move(*tokens), req->normalize);
    });
    if (!v) co_return error_reply(v.error(), ctx);
    per_input.push_back(std::move(*v));
  }
  if (!req->oai) co_return json_reply(200, llama_embeddings_json(per_input));
  std::vector<std::vector<float>> vectors;
  for (auto& v : per_input) vectors.push_back(std::move(v.front()));
  co_return json_reply(200, embeddings_json(svc.alias(), vectors, req->base64, prompt_tokens));
}

// POST /rerank: each document scored against the query, most relevant first.
net::awaitable<Response> serve_rerank(RequestContext& ctx, RunnerService& svc, http::WorkerPool& pool) {
  if (svc.engine().pooling() != LLAMA_POOLING_TYPE_RANK) {
    co_return error_reply(
        Error(ErrorCode::kNotImplemented,
              "this runner does not rerank (start it with --reranking and a reranker model)", "not_supported"),
        ctx);
  }
  auto body = parse_json_body(ctx.request.body);
  if (!body) co_return error_reply(body.error(), ctx);
  auto req = parse_rerank_request(*body);
  if (!req) co_return error_reply(req.error(), ctx);
  std::vector<RankedDocument> ranked;
  for (std::size_t i = 0; i < req->documents.size(); ++i) {
    const std::string& document = req->documents[i];
    auto r = co_await pool.run([&svc, &req, &document] { return svc.engine().rank(req->query, document); });
    if (!r) co_return error_reply(r.error(), ctx);
    ranked.push_back({i, r->score, r->n_tokens});
  }
  co_return json_reply(200, rerank_json(*req, svc.alias(), std::move(ranked)));
}

// A chat request rendered as its generation would render it: the prompt
// text and its size in tokens.
net::awaitable<Result<std::pair<std::string, std::size_t>>> render_chat(RequestContext& ctx, RunnerService& svc,
                                                                        http::WorkerPool& pool) {
  auto body = parse_json_body(ctx.request.body);
  if (!body) co_return fail(body.error());
  auto parsed = co_await pool.run([&] { return parse_for(parse_chat_request, *body, svc); });
  if (!parsed) co_return fail(parsed.error());
  const GenerateRequest& r = parsed->request;
  auto tokens = co_await pool.run([&] { return svc.model().tokenize(r.prompt, r.add_special, true); });
  if (!tokens) co_return fail(tokens.error());
  co_return std::make_pair(r.prompt, tokens->size());
}

Json models_json(const RunnerService& svc) {
  const auto& info = svc.model().info();
  return Json{{"object", "list"},
              {"data", Json::array({Json{{"id", svc.alias()},
                                         {"object", "model"},
                                         {"created", svc.loaded_at()},
                                         {"owned_by", "llmd"},
                                         {"capabilities", svc.templates().capabilities()},
                                         {"meta",
                                          {{"n_ctx_train", info.n_ctx_train},
                                           {"n_params", info.n_params},
                                           {"n_vocab", info.n_vocab},
                                           {"size", info.size_bytes}}}}})}};
}

// GET /slots: what each slot does, in llama-server's shape (no prompt or
// generated text: those are the caller's alone).
Json slots_json(const RunnerService& svc) {
  Json out = Json::array();
  for (const SlotState& s : svc.engine().slots()) {
    Json j{{"id", s.id}, {"n_ctx", svc.engine().n_ctx_slot()}, {"speculative", false}, {"is_processing", s.busy}};
    if (s.request != 0) {
      j["id_task"] = s.request;
      j["n_prompt_tokens"] = s.n_prompt_tokens;
      j["n_prompt_tokens_processed"] = s.n_prompt_tokens - s.n_prompt_cached;
      j["n_prompt_tokens_cache"] = s.n_prompt_cached;
      j["next_token"] = Json::array({Json{{"has_next_token", s.busy},
                                          {"has_new_line", false},
                                          {"n_remain", s.busy ? s.n_remain : -1},
                                          {"n_decoded", s.busy ? s.n_decoded : 0}}});
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

Json placement_json(const RunnerService& svc) {
  Json devices = Json::array();
  for (const DeviceUse& u : svc.device_use()) {
    devices.push_back({{"name", u.device.name},
                       {"description", u.device.description},
                       {"type", u.device.type},
                       {"memory_total", u.device.memory_total},
                       {"memory_free", u.device.memory_free},
                       {"model_bytes", u.model_bytes},
                       {"context_bytes", u.context_bytes},
                       {"compute_bytes", u.compute_bytes}});
  }
  return Json{{"devices", std::move(devices)},
              {"gpu_layers", svc.placement().gpu_layers(svc.model().info().n_layer)},
              {"n_layer", svc.model().info().n_layer},
              {"split_mode", svc.placement().split_mode()}};
}

namespace {

Json props_json(const RunnerService& svc) {
  const auto& info = svc.model().info();
  const auto& opts = svc.engine().options();
  const SamplingParams defaults;
  return Json{{"model_path", svc.config().model_path},
              {"model_alias", svc.alias()},
              {"n_ctx", svc.engine().n_ctx_slot()},
              {"total_slots", opts.n_parallel},
              {"chat_template", svc.templates().source()},
              {"chat_template_caps", svc.templates().capabilities()},
              {"embeddings", opts.embeddings},
              {"build_info", svc.config().build_info},
              {"is_loading", false},
              {"default_generation_settings",
               {{"n_ctx", svc.engine().n_ctx_slot()},
                {"params",
                 {{"temperature", defaults.temperature},
                  {"top_p", defaults.top_p},
                  {"top_k", defaults.top_k},
                  {"min_p", defaults.min_p},
                  {"n_predict", -1}}}}},
              {"model",
               {{"architecture", info.architecture},
                {"name", info.name},
                {"description", info.description},
                {"size", info.size_bytes},
                {"n_params", info.n_params},
                {"n_ctx_train", info.n_ctx_train},
                {"n_embd", info.n_embd},
                {"n_vocab", info.n_vocab},
                {"has_chat_template", info.has_chat_template}}},
              {"placement", placement_json(svc)}};
}

}  // namespace

// ---------------------------------------------------------------- service

RunnerService::RunnerService(RunnerConfig config, observe::Registry& metrics, observe::Logger log)
    : config_(std::move(config)), metrics_(metrics), log_(std::move(log)) {
  if (config_.alias.empty()) config_.alias = std::filesystem::path(config_.model_path).stem().string();
  tokens_per_second_ =
      &metrics_.gauge("llmd_runner_tokens_per_second", "Generation speed of the last finished request (tokens/s)")
           .with({});
  first_token_seconds_ = &metrics_
                              .histogram("llmd_runner_time_to_first_token_seconds",
                                         "From request arrival to its first generated token", {})
                              .with({});
  auto& slots_total = metrics_.gauge("llmd_runner_slots_total", "Parallel slots").with({});
  auto& slots_busy = metrics_.gauge("llmd_runner_slots_busy", "Slots serving a request").with({});
  auto& queue = metrics_.gauge("llmd_runner_queue_length", "Requests waiting for a slot").with({});
  auto& loaded = metrics_.gauge("llmd_runner_model_loaded", "1 once the model is loaded").with({});
  auto& requests = metrics_.counter("llmd_runner_requests_total", "Generation requests started").with({});
  auto& prompt =
      metrics_.counter("llmd_runner_prompt_tokens_total", "Prompt tokens processed (cache hits excluded)").with({});
  auto& completion = metrics_.counter("llmd_runner_completion_tokens_total", "Tokens generated").with({});
  auto& decode = metrics_.counter("llmd_runner_decode_seconds_total", "Wall time spent in llama_decode").with({});
  auto& gpu_layers =
      metrics_.gauge("llmd_runner_gpu_layers", "Model layers on GPU devices (the output counts as one)").with({});
  auto& device_memory = metrics_.gauge("llmd_runner_device_memory_bytes",
                                       "Memory per device: what the model, its context and compute buffers hold "
                                       "(llama.cpp's projection), and the device's free and total memory now",
                                       {"device", "kind"});
  metrics_.add_collector([this, &gpu_layers, &device_memory] {
    if (!ready()) return;
    gpu_layers.set(placement().gpu_layers(model_->info().n_layer));
    for (const DeviceUse& u : device_use_) {
      device_memory.with({u.device.name, "model"}).set(static_cast<double>(u.model_bytes));
      device_memory.with({u.device.name, "context"}).set(static_cast<double>(u.context_bytes));
      device_memory.with({u.device.name, "compute"}).set(static_cast<double>(u.compute_bytes));
      const DeviceInfo now = device_now(u.device);
      device_memory.with({u.device.name, "free"}).set(static_cast<double>(now.memory_free));
      device_memory.with({u.device.name, "total"}).set(static_cast<double>(now.memory_total));
    }
  });
  metrics_.add_collector([this, &slots_total, &slots_busy, &queue, &loaded, &requests, &prompt, &completion, &decode] {
    if (!ready()) return;
    const EngineStats s = engine_->stats();
    std::lock_guard lock(stats_mu_);
    loaded.set(1);
    slots_total.set(s.slots_total);
    slots_busy.set(s.slots_busy);
    queue.set(s.queue_length);
    requests.inc(static_cast<double>(s.requests_total - last_stats_.requests_total));
    prompt.inc(static_cast<double>(s.prompt_tokens_total - last_stats_.prompt_tokens_total));
    completion.inc(static_cast<double>(s.completion_tokens_total - last_stats_.completion_tokens_total));
    decode.inc(s.decode_seconds_total - last_stats_.decode_seconds_total);
    last_stats_ = s;
  });
}

RunnerService::~RunnerService() { shutdown(); }

Result<void> RunnerService::load() {
  const auto t0 = std::chrono::steady_clock::now();
  init_backends();
  const FitContext fit = fit_context(config_.engine);
  auto plan = plan_placement(config_.model_path, config_.placement, fit);
  if (!plan) return fail(plan.error());
  config_.model.placement = std::move(*plan);
  auto model = Model::load(config_.model_path, config_.model);
  if (!model) return fail(model.error());
  auto engine = Engine::create(*model, config_.engine);
  if (!engine) return fail(engine.error());
  auto templates = ChatTemplates::create(**model, config_.chat_template);
  if (!templates) {
    // A template llama.cpp's Jinja engine cannot parse: serve with ChatML
    // rather than not at all, and say so.
    log_.warn("the chat template does not parse; using ChatML", {{"error", templates.error().message}});
    templates = ChatTemplates::create(**model, "chatml");
    if (!templates) return fail(templates.error());
  }
  device_use_ = config_.model.placement.memory_use(config_.model_path, fit);
  std::string used_devices;  // "Vulkan0 (1210 MiB), CPU (310 MiB)"
  for (const DeviceUse& u : device_use_) {
    if (!used_devices.empty()) used_devices += ", ";
    used_devices +=
        u.device.name + " (" + std::to_string((u.model_bytes + u.context_bytes + u.compute_bytes) >> 20) + " MiB)";
  }
  model_ = std::move(*model);
  engine_ = std::move(*engine);
  templates_.emplace(std::move(*templates));
  loaded_at_ = unix_now();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.gauge("llmd_runner_model_load_seconds", "Time the model took to load").with({}).set(seconds);
  ready_.store(true, std::memory_order_release);
  log_.info("model loaded", {{"alias", config_.alias},
                             {"architecture", model_->info().architecture},
                             {"n_ctx_slot", engine_->n_ctx_slot()},
                             {"slots", engine_->options().n_parallel},
                             {"threads", engine_->options().n_threads},
                             {"devices", used_devices},
                             {"gpu_layers", placement().gpu_layers(model_->info().n_layer)},
                             {"placement", placement().note()},
                             {"load_seconds", seconds}});
  return {};
}

std::string RunnerService::fingerprint() const {
  return "b" + std::to_string(llama_build_number()) + "-" + llama_commit();
}

void RunnerService::observe_completion(const Completion& c) {
  if (c.usage.completion_tokens > 1 && c.timings.generation_ms > 0) {
    tokens_per_second_->set(1000.0 * (c.usage.completion_tokens - 1) / c.timings.generation_ms);
  }
  if (c.usage.completion_tokens > 0) first_token_seconds_->observe(c.timings.first_token_ms / 1000.0);
}

void RunnerService::shutdown() {
  if (!ready()) return;
  ready_.store(false, std::memory_order_release);
  engine_.reset();
}

// ---------------------------------------------------------------- routes

void add_runner_routes(http::Router& router, RunnerService& svc, http::WorkerPool& pool) {
  router.get("/health", [&svc](RequestContext&) -> net::awaitable<Response> {
    if (!svc.ready()) co_return Response::json(503, {{"status", "loading model"}});
    co_return Response::json(200, {{"status", "ok"}});
  });
  router.get("/props",
             [&svc](RequestContext&) -> net::awaitable<Response> { co_return json_reply(200, props_json(svc)); });
  router.get("/slots", [&svc](RequestContext& ctx) -> net::awaitable<Response> {
    if (!svc.config().slots_endpoint) {
      co_return error_reply(Error(ErrorCode::kNotImplemented,
                                  "this runner does not serve /slots (started with --no-slots)", "not_supported"),
                            ctx);
    }
    co_return json_reply(200, slots_json(svc));
  });
  // llama-server answers its OpenAI routes with and without the /v1 prefix.
  for (const char* path : {"/v1/models", "/models"}) {
    router.get(path,
               [&svc](RequestContext&) -> net::awaitable<Response> { co_return json_reply(200, models_json(svc)); });
  }
  for (const char* path : {"/v1/chat/completions", "/chat/completions"}) {
    router.post(path, [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
      co_return co_await serve_generation(ctx, svc, pool, parse_chat_request);
    });
  }
  router.post("/v1/completions", [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
    co_return co_await serve_generation(ctx, svc, pool, parse_text_completion_request);
  });
  // Unprefixed, llama-server's own completion (its legacy name and its current one).
  for (const char* path : {"/completion", "/completions"}) {
    router.post(path, [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
      co_return co_await serve_generation(ctx, svc, pool, parse_llama_completion_request);
    });
  }
  router.post("/infill", [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
    co_return co_await serve_generation(ctx, svc, pool, parse_infill_request);
  });
  router.post("/v1/embeddings", [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
    co_return co_await serve_embeddings(ctx, svc, pool, /*oai=*/true);
  });
  for (const char* path : {"/embeddings", "/embedding"}) {
    router.post(path, [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
      co_return co_await serve_embeddings(ctx, svc, pool, /*oai=*/false);
    });
  }
  for (const char* path : {"/rerank", "/reranking", "/v1/rerank", "/v1/reranking"}) {
    router.post(path, [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
      co_return co_await serve_rerank(ctx, svc, pool);
    });
  }
  router.get("/lora-adapters", [&svc](RequestContext&) -> net::awaitable<Response> {
    co_return json_reply(200, lora_adapters_json(svc.engine().lora_adapters()));
  });
  router.post("/lora-adapters", [&svc](RequestContext& ctx) -> net::awaitable<Response> {
    auto scales = parse_lora_adapters_body(ctx.request.body);
    if (!scales) co_return error_reply(scales.error(), ctx);
    if (auto set = svc.engine().set_lora_scales(*scales); !set) co_return error_reply(set.error(), ctx);
    co_return json_reply(200, Json{{"success", true}});
  });
  router.post("/tokenize", [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
    auto body = parse_json_body(ctx.request.body);
    if (!body) co_return error_reply(body.error(), ctx);
    auto req = parse_tokenize_request(*body);
    if (!req) co_return error_reply(req.error(), ctx);
    auto tokens =
        co_await pool.run([&] { return svc.model().tokenize(req->content, req->add_special, req->parse_special); });
    if (!tokens) co_return error_reply(tokens.error(), ctx);
    Json out = Json::array();
    for (const llama_token t : *tokens) {
      if (req->with_pieces) {
        out.push_back(Json{{"id", t}, {"piece", svc.model().token_to_piece(t, true)}});
      } else {
        out.push_back(t);
      }
    }
    co_return json_reply(200, Json{{"tokens", std::move(out)}});
  });
  router.post("/detokenize", [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
    auto body = parse_json_body(ctx.request.body);
    if (!body) co_return error_reply(body.error(), ctx);
    auto tokens = parse_detokenize_request(*body);
    if (!tokens) co_return error_reply(tokens.error(), ctx);
    auto text = co_await pool.run([&] { return svc.model().detokenize(*tokens, false); });
    if (!text) co_return error_reply(text.error(), ctx);
    co_return json_reply(200, Json{{"content", *text}});
  });
  router.post("/apply-template", [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
    // `prompt_tokens` (llmd's addition to llama-server's reply) is what the
    // generation's usage will count, so a gateway can reserve for the prompt
    // exactly before it asks.
    auto rendered = co_await render_chat(ctx, svc, pool);
    if (!rendered) co_return error_reply(rendered.error(), ctx);
    co_return json_reply(200, Json{{"prompt", rendered->first}, {"prompt_tokens", rendered->second}});
  });
  // The prompt size of a chat request, before running it.
  for (const char* path : {"/chat/completions/input_tokens", "/v1/chat/completions/input_tokens"}) {
    router.post(path, [&svc, &pool](RequestContext& ctx) -> net::awaitable<Response> {
      auto rendered = co_await render_chat(ctx, svc, pool);
      if (!rendered) co_return error_reply(rendered.error(), ctx);
      co_return json_reply(200, Json{{"input_tokens", rendered->second}});
    });
  }
}

http::Middleware loading_middleware(const RunnerService& svc) {
  return [&svc](RequestContext& ctx, const http::Next& next) -> net::awaitable<Response> {
    const auto& path = ctx.request.path;
    if (svc.ready() || path == "/health" || path == "/metrics") co_return co_await next(ctx);
    co_return error_reply(Error(ErrorCode::kUnavailable, "the model is loading", "loading_model").with_retry_after(2),
                          ctx.request_id);
  };
}

http::Middleware api_key_middleware(std::string key) {
  return [key = std::move(key)](RequestContext& ctx, const http::Next& next) -> net::awaitable<Response> {
    if (ctx.request.path == "/health") co_return co_await next(ctx);
    // Authorization: Bearer KEY, or x-api-key: KEY (Anthropic-style clients).
    std::string expected = "Bearer " + key;
    std::string_view got = ctx.request.headers.get("Authorization").value_or("");
    if (got.empty()) {
      got = ctx.request.headers.get("x-api-key").value_or("");
      expected = key;
    }
    // Constant time in the key's length: no early exit on the first mismatch.
    unsigned char diff = got.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      diff |= static_cast<unsigned char>(expected[i] ^ (i < got.size() ? got[i] : 0));
    }
    if (diff != 0) {
      Response r = error_reply(Error(ErrorCode::kUnauthenticated,
                                     "missing or invalid API key (Authorization: Bearer <key>)", "invalid_api_key"),
                               ctx.request_id);
      r.headers.set("WWW-Authenticate", "Bearer");
      co_return r;
    }
    co_return co_await next(ctx);
  };
}

}  // namespace llmd::runner
