// Builds the Manager that `llmd serve` uses from the configuration: catalog
// scan of models.dir, `llmd runner` workers (this very executable), the
// balancer settings and upstreams.
#pragma once

#include <memory>

#include "config/config.h"
#include "models/manager.h"

namespace llmd::models {

// Errors: kInvalidArgument (bad balancer strategy). Blocking (scans files).
Result<std::unique_ptr<Manager>> create_manager(const config::Config& config, observe::Logger log,
                                                observe::Registry& metrics);

}  // namespace llmd::models
