// The ModelClient of a serving backend: calls go through the model gateway
// (models::Proxy: the balancer's choice of instance, one retry on another
// instance), as a client's /v1 call would, but typed.
#pragma once

#include <chrono>
#include <memory>

#include "http/client.h"
#include "inference/model_client.h"
#include "models/manager.h"
#include "observe/log.h"

namespace llmd::inference {

struct GatewayOptions {
  std::chrono::milliseconds acquire_timeout{std::chrono::seconds(120)};   // waiting for a free instance
  std::chrono::milliseconds upstream_timeout{std::chrono::seconds(300)};  // one worker's reply
};

// `manager` and `http` must outlive the client. Thread-safe.
std::unique_ptr<ModelClient> make_gateway_client(models::Manager& manager, http::HttpClient& http, observe::Logger log,
                                                 GatewayOptions options = {});

}  // namespace llmd::inference
