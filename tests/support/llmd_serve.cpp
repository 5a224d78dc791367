#include "support/llmd_serve.h"

#include <chrono>
#include <thread>

#include "support/http.h"

namespace llmd::testing {

namespace {

bool wait_for_https(int port, const std::filesystem::path& ca, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto r = https_request(port, ca, "GET", "/health"); r && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

LlmdServe::LlmdServe(const std::string& binary, const std::string& extra_yaml, const std::string& server_yaml,
                     const std::map<std::string, std::string>& env, const std::filesystem::path& https_ca)
    : port_(free_port()) {
  // No web UI unless the test gives one: a built web/dist must not turn
  // other tests' 404s into index.html.
  const std::string web_dir =
      server_yaml.find("web_dir:") == std::string::npos ? "  web_dir: " + (dir_ / "no-web-ui").string() + "\n" : "";
  std::string yaml = "server:\n  host: 127.0.0.1\n  port: " + std::to_string(port_) + "\n  threads: 2\n" +
                     "  data_dir: " + (dir_ / "data").string() + "\n" + web_dir + server_yaml +
                     "database: \"sqlite:" + (dir_ / "data/llmd.db").string() + "\"\n" +
                     "logging: { level: info, format: json }\n" + extra_yaml;
  write_file(dir_ / "llmd.yaml", yaml);
  auto full_env = env;
  full_env.try_emplace("LLMD_ADMIN_PASSWORD", kTestAdminPassword);
  process_ = std::make_unique<Process>(std::vector<std::string>{binary, "serve", "-c", (dir_ / "llmd.yaml").string()},
                                       dir_.path(), dir_ / "serve.log", full_env);
  started_ = https_ca.empty() ? wait_for_http(port_, "/health", 200, std::chrono::seconds(30))
                              : wait_for_https(port_, https_ca, std::chrono::seconds(30));
}

}  // namespace llmd::testing
