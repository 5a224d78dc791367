// A private redis-server for tests: a free loopback port, no persistence,
// data directory in a TempDir; killed and removed on destruction.
#pragma once

#include <memory>
#include <string>

#include "support/process.h"
#include "support/test_support.h"

namespace llmd::testing {

class RedisServer {
 public:
  // Starts the server and waits (up to 15 s) until it answers PING.
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool started() const { return started_; }
  const std::string& error() const { return error_; }
  std::string log() const;
  int port() const { return port_; }
  // "redis://127.0.0.1:PORT/0"
  std::string url() const;

  // Stops the server (SIGKILL) to test what clients do when it goes away.
  void kill();

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
  bool started_ = false;
  std::string error_;
};

}  // namespace llmd::testing
