#include "support/redis_server.h"

#include <csignal>
#include <thread>

#include "store/redis/redis_client.h"

namespace llmd::testing {

RedisServer::RedisServer() : port_(free_port()) {
  std::string binary;
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (std::filesystem::exists(p)) binary = p;
  }
  if (binary.empty()) {
    error_ =
        "redis-server not found: install the redis-server package "
        "(./setup.sh test does)";
    return;
  }
  process_ = std::make_unique<Process>(
      std::vector<std::string>{binary, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", dir_.path().string(), "--daemonize", "no"},
      dir_.path(), dir_ / "redis.log");
  store::redis::RedisClient client(*store::redis::parse_redis_url(url()),
                                   {1, std::chrono::milliseconds(500), std::chrono::milliseconds(0)});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) {
      error_ = "redis-server exited during start:\n" + log();
      return;
    }
    if (auto pong = client.command({"PING"}); pong) {
      started_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  error_ = "redis-server did not start within 15 s:\n" + log();
}

RedisServer::~RedisServer() = default;

std::string RedisServer::log() const { return read_file(dir_ / "redis.log"); }

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

void RedisServer::kill() {
  if (process_ && process_->running()) {
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(5));
  }
  started_ = false;
}

}  // namespace llmd::testing
