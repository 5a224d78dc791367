// Starts the real `llmd serve` binary on a free port with a temporary data
// directory and a config made of `extra_yaml`; stops it on destruction.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "support/process.h"
#include "support/test_support.h"

namespace llmd::testing {

// The bootstrap admin's password in every LlmdServe (LLMD_ADMIN_PASSWORD),
// unless the test passes its own in `env`.
inline constexpr const char* kTestAdminPassword = "test-admin-password";

class LlmdServe {
 public:
  // `extra_yaml` is appended to a config that sets host, port, database and
  // logging; it may add keys to other sections (not `server:` — use
  // `server_yaml` for keys inside the server section).
  // `https_ca`: the server is configured for HTTPS (server_yaml has
  // server.tls); readiness is then GET /health over TLS verified against
  // this CA.
  LlmdServe(const std::string& binary, const std::string& extra_yaml = "", const std::string& server_yaml = "",
            const std::map<std::string, std::string>& env = {}, const std::filesystem::path& https_ca = {});

  int port() const { return port_; }
  Process& process() { return *process_; }
  const TempDir& dir() const { return dir_; }
  bool started() const { return started_; }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
  bool started_ = false;
};

}  // namespace llmd::testing
