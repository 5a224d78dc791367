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
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

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
    std::string content, etag;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(head.substr(0, head.find("\r\n\r\n")));
      content = content_;
      etag = etag_;
    }
    const std::string target = head.substr(4, head.find(' ', 4) - 4);
    auto send_all = [c](const std::string& s) { (void)::send(c, s.data(), s.size(), MSG_NOSIGNAL); };
    if (target == "/to-loopback/model.gguf") {
      send_all("HTTP/1.1 302 Found\r\nLocation: " + url("/files/model.gguf", "127.0.0.2") +
               "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    if (target != "/files/model.gguf") {
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
    reply += cut > 0 && cut < body.size() ? body.substr(0, cut) : body;
    send_all(reply);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> cut_after_{0};
  std::mutex mutex_;
  std::string content_;          // guarded by mutex_
  std::string etag_ = "\"v1\"";  // guarded by mutex_
  std::vector<std::string> requests_;
  std::thread thread_;
};

struct PullRun {
  int code = -1;
  std::string output;
};

class ModelsPullTest : public ::testing::Test {
 protected:
  void SetUp() override { models_ = dir_ / "models"; }

  PullRun pull(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {kBinary, "models", "pull", "--dir", models_.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const fs::path log = dir_ / ("pull-" + std::to_string(++runs_) + ".log");
    Process p(argv, dir_.path(), log);
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

}  // namespace
}  // namespace llmd::testing
