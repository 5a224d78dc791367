// HTTP routes of the model manager on `llmd serve`:
//   GET  /api/v1/models, /api/v1/models/{name}
//   POST /api/v1/models/{name}/start|stop (admin), /api/v1/models/{name}/chat
//   GET  /v1/models; POST /v1/chat/completions, /v1/completions, /v1/embeddings
//   POST /v1/responses (OpenAI Responses, stateless)
//   POST /v1/messages, /v1/messages/count_tokens (Anthropic Messages)
//   POST /api/chat, /api/generate, /api/embed, /api/show; GET /api/tags,
//   /api/ps, /api/version (Ollama)
// Model calls go through CallHooks (auth, billing) and are proxied to an
// instance chosen by the Manager with streaming pass-through.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "http/client.h"
#include "http/context.h"
#include "http/router.h"
#include "models/hooks.h"
#include "models/manager.h"
#include "models/validate.h"
#include "observe/log.h"

namespace llmd::models {

struct ModelRoutesDeps {
  ModelRoutesDeps(Manager& m, http::HttpClient& c, observe::Logger l) : manager(m), client(c), log(std::move(l)) {}

  Manager& manager;          // outlives the routes' requests
  http::HttpClient& client;  // upstream connections (on the server's I/O context); outlives them too
  observe::Logger log;
  std::shared_ptr<CallHooks> hooks;    // null = open_call_hooks()
  std::shared_ptr<ChatMemory> memory;  // null = no conversations kept (conversation_id -> 501)
  GatewayLimits limits;
  std::chrono::milliseconds acquire_timeout{60000};    // wait for a model to start
  std::chrono::milliseconds upstream_timeout{300000};  // per read step from a worker
};

// Registers the routes on `router`.
void add_model_routes(http::Router& router, ModelRoutesDeps deps);

// Errors of the other dialects in their own shape, whichever layer refused
// (authentication, rate limits, the route, a worker): /v1/messages* as
// Anthropic's ({"type":"error","error":{type, message}}), Ollama's
// endpoints as {"error": message}. Put it outside the authentication
// middleware.
http::Middleware dialect_error_middleware();

}  // namespace llmd::models
