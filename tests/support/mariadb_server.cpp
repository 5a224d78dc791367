#include "support/mariadb_server.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "store/database.h"

namespace llmd::testing {
namespace {

// Full path of a server binary: PATH first, then the sbin directories that a
// non-login root shell may lack.
std::string find_binary(std::initializer_list<const char*> names) {
  std::vector<std::filesystem::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest(path);
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      dirs.emplace_back(std::string(rest.substr(0, colon)));
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
  }
  for (const char* d : {"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"}) dirs.emplace_back(d);
  for (const char* name : names) {
    for (const auto& d : dirs) {
      const auto p = d / name;
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return {};
}

}  // namespace

MariaDbServer::MariaDbServer() : port_(free_port()) {
  const std::string binary = find_binary({"mariadbd", "mysqld"});
  if (binary.empty()) {
    error_ =
        "mariadbd not found: install the mariadb-server package "
        "(./setup.sh test does)";
    return;
  }
  std::filesystem::create_directories(dir_ / "data");
  std::vector<std::string> argv{
      binary, "--no-defaults", "--datadir=" + (dir_ / "data").string(), "--socket=" + (dir_ / "mysqld.sock").string(),
      "--pid-file=" + (dir_ / "mysqld.pid").string(), "--tmpdir=" + dir_.path().string(),
      "--port=" + std::to_string(port_), "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-name-resolve",
      "--skip-log-bin", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
      "--max-connections=300",
      // Small and fast: a test server holds little data and
      // need not survive a power cut.
      "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M", "--innodb-flush-log-at-trx-commit=0",
      "--innodb-doublewrite=0", "--log-error=" + (dir_ / "error.log").string()};
  if (::geteuid() == 0) argv.insert(argv.begin() + 2, "--user=root");
  process_ = std::make_unique<Process>(argv, dir_.path(), dir_ / "mariadbd.out");
  const std::string probe_url = "mysql://test@/information_schema?socket=" + (dir_ / "mysqld.sock").string();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) {
      error_ = "mariadbd exited during start:\n" + log();
      return;
    }
    if (std::filesystem::exists(dir_ / "mysqld.sock")) {
      if (auto db = store::Database::open(probe_url, 1); db && (*db)->ping()) {
        started_ = true;
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  error_ = "mariadbd did not start within 30 s:\n" + log();
}

MariaDbServer::~MariaDbServer() = default;

std::string MariaDbServer::log() const { return read_file(dir_ / "error.log") + read_file(dir_ / "mariadbd.out"); }

std::string MariaDbServer::create_database(bool tcp) {
  if (!started_) return {};
  const std::string name = "llmd_test_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  const std::string socket = (dir_ / "mysqld.sock").string();
  auto admin = store::Database::open("mysql://test@/information_schema?socket=" + socket, 1);
  if (!admin) return {};
  auto created = (*admin)->with_connection<void>([&](store::Connection& c) {
    return c.exec_script("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci");
  });
  if (!created) return {};
  return tcp ? "mysql://test@127.0.0.1:" + std::to_string(port_) + "/" + name
             : "mysql://test@/" + name + "?socket=" + socket;
}

MariaDbServer& MariaDbServer::shared() {
  // Destroyed by the exit handlers, after every test of the process ran.
  static MariaDbServer server;
  return server;
}

}  // namespace llmd::testing
