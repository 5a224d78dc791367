// `llmd serve`: the backend process. Backend owns every long-lived part
// (database, worker pool, metrics, HTTP server) and wires the routes.
#pragma once

#include <memory>

#include "config/config.h"
#include "core/error.h"
#include "observe/log.h"

namespace llmd::app {

class Backend {
 public:
  // Opens the database and applies migrations, builds routes, binds the
  // listening socket. Errors name what failed (never a secret).
  static Result<std::unique_ptr<Backend>> create(config::Config config, observe::Logger log);
  ~Backend();

  int port() const;
  // Serves until SIGINT/SIGTERM (or stop()) and the graceful drain end.
  void run();
  void stop();

 private:
  Backend();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds a Logger from the logging section (level, format, file).
Result<observe::Logger> make_logger(const config::LoggingConfig& logging);

}  // namespace llmd::app
