// `llmd models pull` against a local HTTP file server that speaks Range /
// If-Range / ETag, can cut a transfer short, and redirects.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/process.h"
#include "support/test_model.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
constexpr const char* kBinary = LLMD_BINARY;

std::string sha256_hex(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::ostringstream out;
  for (unsigned char b : md) out << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(b);
  return out.str();
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A one-connection-at-a-time HTTP/1.1 file server on 127.0.0.1.
class FileServer {
 public:
  explicit FileServer(std::string content) : content_(std::move(content)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);  // 127.0.0.1 and 127.0.0.2 both reach it
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FileServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }
  // File bodies go out `chunk` bytes at a time with `pause` between (0: at once).
  void throttle(std::size_t chunk, std::chrono::milliseconds pause) {
    chunk_ = chunk;
    pause_ = pause.count();
  }
  // The next file response stops after this many body bytes (connection closed).
  void cut_next_after(std::size_t bytes) { cut_after_ = bytes; }
  void replace_content(std::string content, std::string etag) {
    std::lock_guard lock(mutex_);
    content_ = std::move(content);
    etag_ = std::move(etag);
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // Serves `content` at `path` as well (Range and If-Range as the model file).
  void add_file(const std::string& path, std::string content) {
    std::lock_guard lock(mutex_);
    files_[path] = std::move(content);
  }
  // Answers requests for `target` (path and query) with `response` as it is.
  void add_fixed(const std::string& target, std::string response) {
    std::lock_guard lock(mutex_);
    fixed_[target] = std::move(response);
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      answer(c, head);
      ::close(c);
    }
  }

  static std::string header(const std::string& head, const std::string& name) {
    std::istringstream in(head);
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() > name.size() + 1 && strncasecmp(line.c_str(), name.c_str(), name.size()) == 0 &&
          line[name.size()] == ':') {
        std::string v = line.substr(name.size() + 1);
        while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        return v;
      }
    }
    return "";
  }

  void answer(int c, const std::string& head) {
    std::string content, etag, fixed;
    bool is_file = false;
    const std::string target = head.substr(4, head.find(' ', 4) - 4);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(head.substr(0, head.find("\r\n\r\n")));
      content = content_;
      etag = etag_;
      if (auto it = fixed_.find(target); it != fixed_.end()) fixed = it->second;
      if (auto it = files_.find(target); it != files_.end()) {
        content = it->second;
        is_file = true;
      }
    }
    auto send_all = [c](const std::string& s) { (void)::send(c, s.data(), s.size(), MSG_NOSIGNAL); };
    if (!fixed.empty()) {
      send_all(fixed);
      return;
    }
    if (target == "/to-loopback/model.gguf") {
      send_all("HTTP/1.1 302 Found\r\nLocation: " + url("/files/model.gguf", "127.0.0.2") +
               "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    if (target != "/files/model.gguf" && !is_file) {
      send_all("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
      return;
    }
    std::size_t from = 0;
    const std::string range = header(head, "Range");
    const std::string if_range = header(head, "If-Range");
    const bool honour_range = !range.empty() && (if_range.empty() || if_range == etag);
    if (honour_range && range.rfind("bytes=", 0) == 0) from = std::stoull(range.substr(6));
    std::string reply;
    if (honour_range && from >= content.size()) {
      send_all("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" + std::to_string(content.size()) +
               "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const std::string body = content.substr(from);
    if (honour_range) {
      reply = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(from) + "-" +
              std::to_string(content.size() - 1) + "/" + std::to_string(content.size()) + "\r\n";
    } else {
      reply = "HTTP/1.1 200 OK\r\n";
    }
    reply += "ETag: " + etag + "\r\nAccept-Ranges: bytes\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\nConnection: close\r\n\r\n";
    const std::size_t cut = cut_after_.exchange(0);
    const std::string sent = cut > 0 && cut < body.size() ? body.substr(0, cut) : body;
    const std::size_t chunk = chunk_.load();
    if (chunk == 0) {
      send_all(reply + sent);
      return;
    }
    send_all(reply);
    for (std::size_t at = 0; at < sent.size() && !stop_; at += chunk) {
      const std::string piece = sent.substr(at, chunk);
      if (::send(c, piece.data(), piece.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(piece.size())) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_.load()));
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> cut_after_{0};
  std::atomic<std::size_t> chunk_{0};
  std::atomic<long> pause_{0};
  std::mutex mutex_;
  std::string content_;          // guarded by mutex_
  std::string etag_ = "\"v1\"";  // guarded by mutex_
  std::vector<std::string> requests_;
  std::map<std::string, std::string> files_;  // guarded by mutex_
  std::map<std::string, std::string> fixed_;  // guarded by mutex_
  std::thread thread_;
};

struct PullRun {
  int code = -1;
  std::string output;
};

class ModelsPullTest : public ::testing::Test {
 protected:
  void SetUp() override { models_ = dir_ / "models"; }

  PullRun pull(const std::vector<std::string>& extra, const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv = {kBinary, "models", "pull", "--dir", models_.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const fs::path log = dir_ / ("pull-" + std::to_string(++runs_) + ".log");
    Process p(argv, dir_.path(), log, env);
    PullRun r;
    r.code = p.wait(60s).value_or(-1);
    r.output = p.log();
    return r;
  }

  TempDir dir_;
  fs::path models_;
  int runs_ = 0;
};

TEST_F(ModelsPullTest, InterruptedDownloadResumesWithRangeAndTheModelIsReadable) {
  const std::string model = read_all(tiny_test_model(kBinary));
  ASSERT_GT(model.size(), 1000000u);
  FileServer server(model);
  const std::size_t cut = model.size() / 3;
  server.cut_next_after(cut);

  const auto first = pull({server.url("/files/model.gguf"), "--sha256", sha256_hex(model)});
  EXPECT_EQ(first.code, 1) << first.output;
  EXPECT_NE(first.output.find("run the same command again to resume"), std::string::npos) << first.output;
  EXPECT_FALSE(fs::exists(models_ / "model.gguf"));
  ASSERT_TRUE(fs::exists(models_ / "model.gguf.part"));
  EXPECT_EQ(fs::file_size(models_ / "model.gguf.part"), cut);

  const auto second = pull({server.url("/files/model.gguf"), "--sha256", sha256_hex(model)});
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("resumed at " + std::to_string(cut) + " bytes"), std::string::npos) << second.output;
  EXPECT_EQ(read_all(models_ / "model.gguf"), model);
  EXPECT_FALSE(fs::exists(models_ / "model.gguf.part"));
  EXPECT_FALSE(fs::exists(models_ / "model.gguf.part.json"));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[1].find("Range: bytes=" + std::to_string(cut) + "-"), std::string::npos) << requests[1];
  EXPECT_NE(requests[1].find("If-Range: \"v1\""), std::string::npos) << requests[1];

  // The file is a model the catalog can read.
  Process inspect({kBinary, "models", "inspect", (models_ / "model.gguf").string(), "--json"}, dir_.path(),
                  dir_ / "inspect.log");
  ASSERT_EQ(inspect.wait(30s), 0) << inspect.log();
  EXPECT_NE(inspect.log().find("\"arch\": \"qwen2\""), std::string::npos) << inspect.log();
}

TEST_F(ModelsPullTest, FileChangedOnTheServerBetweenRunsStartsOver) {
  const std::string v1(700000, 'a');
  const std::string v2(900000, 'b');
  FileServer server(v1);
  server.cut_next_after(200000);
  EXPECT_EQ(pull({server.url("/files/model.gguf")}).code, 1);
  server.replace_content(v2, "\"v2\"");
  const auto second = pull({server.url("/files/model.gguf"), "--sha256", sha256_hex(v2)});
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_EQ(read_all(models_ / "model.gguf"), v2);
}

TEST_F(ModelsPullTest, Sha256MismatchDeletesTheDownload) {
  FileServer server(std::string(300000, 'x'));
  const auto r = pull({server.url("/files/model.gguf"), "--sha256", std::string(64, '0')});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("sha256 mismatch"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(models_ / "model.gguf"));
  EXPECT_FALSE(fs::exists(models_ / "model.gguf.part"));
}

TEST_F(ModelsPullTest, RedirectToALoopbackAddressIsRefusedUnlessAllowed) {
  const std::string content(200000, 'r');
  FileServer server(content);
  const auto refused = pull({server.url("/to-loopback/model.gguf")});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.output.find("private or loopback"), std::string::npos) << refused.output;
  EXPECT_EQ(server.requests().size(), 1u);  // the redirect target was never contacted
  EXPECT_FALSE(fs::exists(models_ / "model.gguf"));

  const auto allowed = pull({server.url("/to-loopback/model.gguf"), "--allow-private-redirects"});
  ASSERT_EQ(allowed.code, 0) << allowed.output;
  EXPECT_EQ(read_all(models_ / "model.gguf"), content);
}

TEST_F(ModelsPullTest, BadArgumentsAndServerErrorsAreClear) {
  FileServer server("x");
  auto r = pull({"ftp://example.com/model.gguf"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("only http and https"), std::string::npos) << r.output;
  r = pull({server.url("/files/model.bin")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--name"), std::string::npos) << r.output;
  r = pull({server.url("/files/model.gguf"), "--sha256", "xyz"});
  EXPECT_EQ(r.code, 2);
  r = pull({server.url("/missing/model.gguf")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("HTTP 404"), std::string::npos) << r.output;
  r = pull({server.url("/files/model.gguf"), "--name", "../escape.gguf"});
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(dir_ / "escape.gguf"));
  EXPECT_FALSE(fs::exists(models_ / "model.gguf"));
}

// A Hugging Face Hub as `models pull hf:` meets it: the model-info API
// (GET /api/models/{repo}?blobs=true, siblings with LFS sha256) and
// /{repo}/resolve/main/{file} redirecting to a CDN-like second host
// (127.0.0.2) that serves the bytes.
class HubStub {
 public:
  explicit HubStub(FileServer& server) : server_(server) {}

  struct File {
    std::string name;
    std::string content;
    std::string listed_sha256;  // what the API says ("" = the real one)
  };

  void publish(const std::string& repo, const std::vector<File>& files) {
    nlohmann::json siblings = nlohmann::json::array({{{"rfilename", "README.md"}, {"size", 12}}});
    for (const auto& f : files) {
      const std::string sha = f.listed_sha256.empty() ? sha256_hex(f.content) : f.listed_sha256;
      siblings.push_back({{"rfilename", f.name},
                          {"size", f.content.size()},
                          {"lfs", {{"sha256", sha}, {"size", f.content.size()}, {"pointerSize", 134}}}});
      const std::string cdn = "/cdn/" + sha256_hex(f.content);
      server_.add_file(cdn, f.content);
      server_.add_fixed("/" + repo + "/resolve/main/" + f.name,
                        "HTTP/1.1 302 Found\r\nLocation: " + server_.url(cdn, "127.0.0.2") +
                            "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    const std::string body = nlohmann::json{{"id", repo}, {"modelId", repo}, {"siblings", siblings}}.dump();
    server_.add_fixed("/api/models/" + repo + "?blobs=true",
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  }

  std::map<std::string, std::string> env() const {
    return {{"HF_ENDPOINT", "http://127.0.0.1:" + std::to_string(server_.port())}, {"HF_TOKEN", "hf-secret-token"}};
  }

 private:
  FileServer& server_;
};

bool is_finished_state(const nlohmann::json& state) {
  return state == "done" || state == "failed" || state == "cancelled";
}

bool has_token(const std::string& request) { return request.find("Bearer hf-secret-token") != std::string::npos; }

TEST_F(ModelsPullTest, PullByHubNamePicksTheQuantisationFollowsTheCdnAndKeepsTheTokenAtTheHub) {
  const std::string model = read_all(tiny_test_model(kBinary));
  FileServer server("unused");
  HubStub hub(server);
  hub.publish("owner/Tiny-GGUF", {{"tiny-q4_k_m.gguf", model, ""}, {"tiny-q8_0.gguf", model + "8", ""}});
  const PullRun r = pull({"--allow-private-redirects", "hf:owner/Tiny-GGUF"}, hub.env());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_all(models_ / "tiny-q4_k_m.gguf"), model);
  EXPECT_FALSE(fs::exists(models_ / "tiny-q8_0.gguf"));
  EXPECT_NE(r.output.find(sha256_hex(model)), std::string::npos) << r.output;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].rfind("GET /api/models/owner/Tiny-GGUF?blobs=true ", 0), 0u) << requests[0];
  EXPECT_TRUE(has_token(requests[0]));
  EXPECT_EQ(requests[1].rfind("GET /owner/Tiny-GGUF/resolve/main/tiny-q4_k_m.gguf ", 0), 0u) << requests[1];
  EXPECT_TRUE(has_token(requests[1]));
  EXPECT_EQ(requests[2].rfind("GET /cdn/", 0), 0u) << requests[2];
  EXPECT_FALSE(has_token(requests[2])) << "the Hub token went to the CDN";

  // Another quantisation by name; one that is not there lists those that are.
  ASSERT_EQ(pull({"--allow-private-redirects", "hf:owner/Tiny-GGUF:q8_0"}, hub.env()).code, 0);
  EXPECT_EQ(read_all(models_ / "tiny-q8_0.gguf"), model + "8");
  const PullRun missing = pull({"hf:owner/Tiny-GGUF:IQ2_XS"}, hub.env());
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("quantisations: Q4_K_M, Q8_0"), std::string::npos) << missing.output;
  const PullRun no_repo = pull({"hf:owner/Nothing-GGUF"}, hub.env());
  EXPECT_EQ(no_repo.code, 1);
  EXPECT_NE(no_repo.output.find("owner/Nothing-GGUF"), std::string::npos) << no_repo.output;
}

TEST_F(ModelsPullTest, PullByHubNameChecksTheHubsSha256AndResumes) {
  const std::string model = read_all(tiny_test_model(kBinary));
  FileServer server("unused");
  HubStub hub(server);
  hub.publish("owner/Bad-GGUF", {{"bad-Q4_K_M.gguf", model, std::string(64, 'f')}});
  const PullRun bad = pull({"--allow-private-redirects", "hf:owner/Bad-GGUF"}, hub.env());
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.output.find("sha256"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(models_ / "bad-Q4_K_M.gguf"));

  hub.publish("owner/Good-GGUF", {{"good-Q4_K_M.gguf", model, ""}});
  server.cut_next_after(model.size() / 3);
  const PullRun cut = pull({"--allow-private-redirects", "hf:owner/Good-GGUF"}, hub.env());
  EXPECT_EQ(cut.code, 1);
  EXPECT_NE(cut.output.find("again to resume"), std::string::npos) << cut.output;
  const PullRun resumed = pull({"--allow-private-redirects", "hf:owner/Good-GGUF"}, hub.env());
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed at"), std::string::npos) << resumed.output;
  EXPECT_EQ(read_all(models_ / "good-Q4_K_M.gguf"), model);
}

TEST_F(ModelsPullTest, PullByHubNameTakesEveryPartOfASplitModelListedAsOne) {
  const std::string model = read_all(tiny_test_model(kBinary));
  const std::string rest(4096, 'x');
  FileServer server("unused");
  HubStub hub(server);
  hub.publish("owner/Split-GGUF",
              {{"split-Q4_K_M-00001-of-00002.gguf", model, ""}, {"split-Q4_K_M-00002-of-00002.gguf", rest, ""}});
  const PullRun r = pull({"--allow-private-redirects", "hf:owner/Split-GGUF"}, hub.env());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_all(models_ / "split-Q4_K_M-00001-of-00002.gguf"), model);
  EXPECT_EQ(read_all(models_ / "split-Q4_K_M-00002-of-00002.gguf"), rest);
  // The catalog lists one model, by the parts' common name, with both sizes.
  std::ofstream(dir_ / "llmd.yaml") << "models: { dir: " << models_.string() << " }\n";
  Process list({kBinary, "models", "list", "-c", (dir_ / "llmd.yaml").string(), "--json"}, dir_.path(),
               dir_ / "list.log");
  ASSERT_EQ(list.wait(30s).value_or(-1), 0) << list.log();
  const std::string out = list.log();
  const auto listed = nlohmann::json::parse(out.substr(out.find('{')), nullptr, false);
  ASSERT_TRUE(listed.is_object()) << out;
  ASSERT_EQ(listed["models"].size(), 1u) << out;
  EXPECT_EQ(listed["models"][0]["name"], "split-Q4_K_M");
  EXPECT_EQ(listed["models"][0]["size"], model.size() + rest.size());
  EXPECT_EQ(listed["models"][0]["status"], "available");
}

// --- Pulls through serve's API (POST /api/v1/admin/models/pull) ----------

std::string serve_yaml(const fs::path& models, int hub_port) {
  const int base = free_port();
  return "limits: { ip_rpm: 100000, user_rpm: 100000 }\nauth: { bcrypt_cost: 10 }\nmodels:\n  dir: " + models.string() +
         "\n  port_range: \"" + std::to_string(base) + "-" + std::to_string(base + 10) +
         "\"\n  hf_endpoint: \"http://127.0.0.1:" + std::to_string(hub_port) + "\"\n  allow_private_redirects: true\n";
}

std::string admin_token(int port) {
  auto r = http_request(port, "POST", "/api/v1/auth/login",
                        nlohmann::json{{"username", "admin"}, {"password", kTestAdminPassword}}.dump());
  return r && r->status == 200 ? nlohmann::json::parse(r->body)["token"].get<std::string>() : "";
}

struct Admin {
  int port;
  std::string token;
  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "") const {
    auto r = http_request(port, method, path, body, {{"Authorization", "Bearer " + token}});
    return r.value_or(HttpReply{});
  }
  nlohmann::json json_of(const std::string& method, const std::string& path, const std::string& body = "") const {
    return nlohmann::json::parse(call(method, path, body).body, nullptr, false);
  }
  // Polls the pull until `done(pull)` or 60 s; returns its last state.
  template <typename F>
  nlohmann::json wait_pull(const std::string& id, F&& done) const {
    nlohmann::json p;
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < end) {
      p = json_of("GET", "/api/v1/admin/models/pulls/" + id)["pull"];
      if (p.is_object() && done(p)) break;
      std::this_thread::sleep_for(50ms);
    }
    return p;
  }
};

struct SseEvent {
  std::string name;
  nlohmann::json data;
};

// The events of a whole (ended) SSE body.
std::vector<SseEvent> parse_sse(const std::string& body) {
  std::vector<SseEvent> out;
  std::istringstream in(body);
  std::string line, name;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("event: ", 0) == 0) name = line.substr(7);
    if (line.rfind("data: ", 0) == 0) {
      out.push_back({name, nlohmann::json::parse(line.substr(6), nullptr, false)});
      name.clear();
    }
  }
  return out;
}

// An operator types a Hugging Face name in the API: the quantisations are
// listed, the download streams its progress, and the model chats; deleting
// it is refused while it runs.
TEST(ModelsPullApi, PullByHubNameStreamsProgressThenTheModelChatsAndCanBeDeleted) {
  TempDir dir;
  const std::string model = read_all(tiny_test_model(kBinary));
  FileServer server("unused");
  HubStub hub(server);
  hub.publish("owner/Tiny-GGUF", {{"tiny-q4_k_m.gguf", model, ""}, {"tiny-q8_0.gguf", model + "8", ""}});
  server.throttle(256 * 1024, 25ms);  // the 24 MB model in some 2.5 s: several progress events
  LlmdServe serve(kBinary, serve_yaml(dir / "models", server.port()));
  ASSERT_TRUE(serve.started()) << serve.log();
  const Admin admin{serve.port(), admin_token(serve.port())};

  const auto listing = admin.json_of("GET", "/api/v1/admin/models/hub?repo=owner/Tiny-GGUF");
  ASSERT_EQ(listing["quantisations"].size(), 2u) << listing.dump();
  EXPECT_EQ(listing["default_quantisation"], "Q4_K_M");
  EXPECT_EQ(listing["quantisations"][0]["name"], "Q4_K_M");
  EXPECT_EQ(listing["quantisations"][0]["size"], model.size());
  EXPECT_EQ(listing["quantisations"][1]["source"], "hf:owner/Tiny-GGUF:Q8_0");

  const auto started = admin.call("POST", "/api/v1/admin/models/pull", R"({"source": "hf:owner/Tiny-GGUF"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = nlohmann::json::parse(started.body)["pull"]["id"];
  const auto again = admin.call("POST", "/api/v1/admin/models/pull", R"({"source": "hf:owner/Tiny-GGUF"})");
  EXPECT_EQ(again.status, 409) << again.body;

  const auto stream = admin.call("GET", "/api/v1/admin/models/pulls/" + id + "/events");
  ASSERT_EQ(stream.status, 200);
  EXPECT_EQ(stream.header("content-type").rfind("text/event-stream", 0), 0u);
  const auto events = parse_sse(stream.body);
  ASSERT_GE(events.size(), 3u) << stream.body;
  std::uint64_t last = 0;
  bool rate_shown = false;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].name, "progress");
    const auto done = events[i].data["done"].get<std::uint64_t>();
    EXPECT_GE(done, last) << "progress went backwards";
    last = done;
    if (events[i].data["bytes_per_second"].get<double>() > 0 && events[i].data["eta_seconds"].is_number()) {
      rate_shown = true;
    }
  }
  EXPECT_TRUE(rate_shown) << stream.body;
  const auto& final = events.back();
  EXPECT_EQ(final.name, "done") << stream.body;
  EXPECT_EQ(final.data["done"], model.size());
  EXPECT_EQ(final.data["total"], model.size());
  EXPECT_EQ(final.data["files"], nlohmann::json::array({"tiny-q4_k_m.gguf"}));
  EXPECT_EQ(final.data["model"], "tiny-q4_k_m");
  EXPECT_EQ(read_all(dir / "models" / "tiny-q4_k_m.gguf"), model);
  EXPECT_TRUE(fs::is_empty(dir / "models" / ".pulls")) << "a finished pull left its record";

  // The model is listed (the manager rescans the directory) and chats.
  nlohmann::json listed;
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end && !listed.contains("status")) {
    listed = admin.json_of("GET", "/api/v1/models/tiny-q4_k_m");
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(listed["status"], "available") << listed.dump();
  const auto chat =
      admin.call("POST", "/v1/chat/completions",
                 R"({"model": "tiny-q4_k_m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})");
  EXPECT_EQ(chat.status, 200) << chat.body;

  const auto busy = admin.call("DELETE", "/api/v1/admin/models/tiny-q4_k_m");
  EXPECT_EQ(busy.status, 409) << busy.body;
  EXPECT_NE(busy.body.find("model_in_use"), std::string::npos) << busy.body;
  EXPECT_TRUE(fs::exists(dir / "models" / "tiny-q4_k_m.gguf"));
  ASSERT_EQ(admin.call("POST", "/api/v1/models/tiny-q4_k_m/stop").status, 202);
  HttpReply removed;
  for (int i = 0; i < 100; ++i) {  // until the worker has gone
    removed = admin.call("DELETE", "/api/v1/admin/models/tiny-q4_k_m");
    if (removed.status != 409) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_FALSE(fs::exists(dir / "models" / "tiny-q4_k_m.gguf"));
  EXPECT_EQ(admin.call("GET", "/api/v1/models/tiny-q4_k_m").status, 404);
  EXPECT_EQ(admin.call("DELETE", "/api/v1/admin/models/tiny-q4_k_m").status, 404);
}

TEST(ModelsPullApi, OnlyAdminsPullAndBadRequestsAreClear) {
  TempDir dir;
  FileServer server("unused");
  LlmdServe serve(kBinary, serve_yaml(dir / "models", server.port()));
  ASSERT_TRUE(serve.started()) << serve.log();
  const int port = serve.port();
  const Admin admin{port, admin_token(port)};
  const std::string pull = "/api/v1/admin/models/pull";
  EXPECT_EQ(http_request(port, "POST", pull, R"({"source": "hf:a/b"})")->status, 401);
  auto reg = http_request(port, "POST", "/api/v1/auth/register",
                          R"({"username": "student", "password": "password-123", "email": "s@example.com"})");
  ASSERT_TRUE(reg && reg->status == 201) << (reg ? reg->body : "");
  const std::string user = nlohmann::json::parse(reg->body)["token"];
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", pull}, {"GET", "/api/v1/admin/models/pulls"}, {"DELETE", "/api/v1/admin/models/x"}}) {
    auto r = http_request(port, method, path, R"({"source": "hf:a/b"})", {{"Authorization", "Bearer " + user}});
    EXPECT_EQ(r->status, 403) << method << " " << path << ": " << r->body;
  }
  for (const std::string bad :
       {R"({})", R"({"source": 5})", R"({"source": "ftp://host/x.gguf"})", R"({"source": "hf:no-owner"})",
        R"({"source": "https://host/x.bin"})", R"({"source": "hf:a/b", "sha256": "xyz"})",
        R"({"source": "hf:a/b", "name": "../x.gguf"})", "not json"}) {
    const auto r = admin.call("POST", pull, bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_TRUE(nlohmann::json::parse(r.body, nullptr, false).contains("error")) << r.body;
  }
  EXPECT_EQ(admin.call("GET", "/api/v1/admin/models/pulls/pull_nope").status, 404);
  EXPECT_EQ(admin.call("DELETE", "/api/v1/admin/models/pulls/pull_nope").status, 404);
  // A repository the Hub does not have.
  EXPECT_EQ(admin.call("GET", "/api/v1/admin/models/hub?repo=owner/missing").status, 404);
  EXPECT_EQ(admin.json_of("GET", "/api/v1/admin/models/pulls")["pulls"].size(), 0u);
}

TEST(ModelsPullApi, CancelStopsTheDownloadAndDeletesItsPart) {
  TempDir dir;
  const std::string model = read_all(tiny_test_model(kBinary));
  FileServer server(model);
  server.throttle(16 * 1024, 100ms);  // minutes for the whole file: it is cancelled long before
  LlmdServe serve(kBinary, serve_yaml(dir / "models", server.port()));
  ASSERT_TRUE(serve.started()) << serve.log();
  const Admin admin{serve.port(), admin_token(serve.port())};
  const auto started = admin.call("POST", "/api/v1/admin/models/pull",
                                  nlohmann::json{{"source", server.url("/files/model.gguf")}}.dump());
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = nlohmann::json::parse(started.body)["pull"]["id"];
  const auto running = admin.wait_pull(id, [](const auto& p) { return p["done"].template get<std::uint64_t>() > 0; });
  ASSERT_EQ(running["state"], "downloading") << running.dump();
  EXPECT_TRUE(fs::exists(dir / "models" / "model.gguf.part"));

  EXPECT_EQ(admin.call("DELETE", "/api/v1/admin/models/pulls/" + id).status, 200);
  const auto cancelled = admin.wait_pull(id, [](const auto& p) { return p["state"] != "downloading"; });
  EXPECT_EQ(cancelled["state"], "cancelled") << cancelled.dump();
  EXPECT_LT(cancelled["done"].get<std::uint64_t>(), model.size());
  EXPECT_FALSE(fs::exists(dir / "models" / "model.gguf.part"));
  EXPECT_FALSE(fs::exists(dir / "models" / "model.gguf.part.json"));
  EXPECT_FALSE(fs::exists(dir / "models" / "model.gguf"));
  EXPECT_TRUE(fs::is_empty(dir / "models" / ".pulls"));
}

// serve stops in the middle of a pull; the next serve on the same models
// directory resumes it from its part (a Range request) and finishes it.
TEST(ModelsPullApi, APullInterruptedByARestartResumesWhereItStopped) {
  TempDir dir;
  const std::string model = read_all(tiny_test_model(kBinary));
  FileServer server(model);
  server.throttle(16 * 1024, 100ms);
  std::string id;
  {
    LlmdServe serve(kBinary, serve_yaml(dir / "models", server.port()));
    ASSERT_TRUE(serve.started()) << serve.log();
    const Admin admin{serve.port(), admin_token(serve.port())};
    const auto started =
        admin.call("POST", "/api/v1/admin/models/pull",
                   nlohmann::json{{"source", server.url("/files/model.gguf")}, {"sha256", sha256_hex(model)}}.dump());
    ASSERT_EQ(started.status, 202) << started.body;
    id = nlohmann::json::parse(started.body)["pull"]["id"];
    const auto p = admin.wait_pull(id, [](const auto& p) { return p["done"].template get<std::uint64_t>() > 100000; });
    ASSERT_EQ(p["state"], "downloading") << p.dump();
  }  // serve stops here
  ASSERT_TRUE(fs::exists(dir / "models" / "model.gguf.part"));
  const auto kept = fs::file_size(dir / "models" / "model.gguf.part");
  EXPECT_GT(kept, 100000u);
  EXPECT_TRUE(fs::exists(dir / "models" / ".pulls" / (id + ".json")));

  server.throttle(0, 0ms);
  LlmdServe again(kBinary, serve_yaml(dir / "models", server.port()));
  ASSERT_TRUE(again.started()) << again.log();
  const Admin admin{again.port(), admin_token(again.port())};
  const auto p = admin.wait_pull(id, [](const auto& p) { return is_finished_state(p["state"]); });
  ASSERT_EQ(p["state"], "done") << p.dump() << again.log();
  EXPECT_GE(p["resumed_from"].get<std::uint64_t>(), kept - 64 * 1024) << p.dump();
  EXPECT_GT(p["resumed_from"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(read_all(dir / "models" / "model.gguf"), model);
  const auto requests = server.requests();
  EXPECT_NE(requests.back().find("Range: bytes="), std::string::npos) << requests.back();
  EXPECT_TRUE(fs::is_empty(dir / "models" / ".pulls"));
}

}  // namespace
}  // namespace llmd::testing
