// A private MariaDB server for tests: `mariadbd` on a fresh data directory
// in a TempDir, listening on a unix socket there and on a free loopback TCP
// port, without grant tables (any user name logs in, no password). Killed
// and removed on destruction. Nothing installed or running on the machine
// is used besides the `mariadb-server` package (setup.sh installs it).
//
// mariadb-install-db is not needed: with --skip-grant-tables the server
// starts on an empty directory in well under a second, which matters
// because ctest runs every TEST in its own process.
#pragma once

#include <memory>
#include <string>

#include "support/process.h"
#include "support/test_support.h"

namespace llmd::testing {

class MariaDbServer {
 public:
  // Starts the server and waits (up to 30 s) until it accepts connections.
  MariaDbServer();
  ~MariaDbServer();
  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  // False when the server could not be started; error() says why.
  bool started() const { return started_; }
  const std::string& error() const { return error_; }
  std::string log() const;
  int port() const { return port_; }

  // Creates a new, empty database with a unique name and returns its URL:
  // over the unix socket, or over TCP ("mysql://test@127.0.0.1:PORT/NAME").
  // Empty string on failure.
  std::string create_database(bool tcp = false);

  // The server of this test process, started on first use and stopped when
  // the process exits (ctest runs each TEST as its own process).
  static MariaDbServer& shared();

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
  bool started_ = false;
  std::string error_;
  int databases_ = 0;
};

}  // namespace llmd::testing
