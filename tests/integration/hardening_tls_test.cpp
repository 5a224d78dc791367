// Black-box tests of `llmd serve` speaking HTTPS itself (issue 13 item 19):
// a CA and server certificates generated at test time (support/test_pki.h),
// clients that verify the certificate against that CA, hostile clients on
// raw sockets, and the official OpenAI Node client over https.
#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/http.h"
#include "support/llmd_serve.h"
#include "support/process.h"
#include "support/test_model.h"
#include "support/test_pki.h"
#include "support/test_support.h"

namespace llmd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
constexpr const char* kBinary = LLMD_BINARY;

std::string error_code_of(const HttpReply& r) {
  const auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

std::string tls_yaml(const TestPki::Issued& files, const std::string& more = "") {
  return "  tls:\n    cert: " + files.cert.string() + "\n    key: " + files.key.string() + "\n" + more;
}

// A verified TLS connection to the server, or a test failure.
std::unique_ptr<RawConnection> connect_tls(int port, const fs::path& ca) {
  auto c = std::make_unique<RawConnection>(port);
  EXPECT_TRUE(c->ok());
  EXPECT_TRUE(c->start_tls(verified_by(ca))) << c->tls_error();
  return c;
}

// The CN of the certificate a new connection gets, or "" when the handshake fails.
std::string served_common_name(int port, const fs::path& ca) {
  RawConnection c(port);
  if (!c.ok() || !c.start_tls(verified_by(ca))) return "";
  return c.peer_common_name();
}

// Polls new connections until they get a certificate named `cn` (the server
// looks at its files at most once per reload_check_seconds).
bool wait_for_common_name(int port, const fs::path& ca, const std::string& cn, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (served_common_name(port, ca) == cn) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::size_t count_in_log(const LlmdServe& serve, const std::string& text) {
  const std::string log = serve.log();
  std::size_t n = 0;
  for (auto pos = log.find(text); pos != std::string::npos; pos = log.find(text, pos + text.size())) ++n;
  return n;
}

// Waits until `text` appears in the serve log more than `seen` times,
// opening TLS connections meanwhile: the server looks at its certificate
// files when new connections arrive.
bool wait_for_log(const LlmdServe& serve, const fs::path& ca, const std::string& text, std::size_t seen,
                  std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (count_in_log(serve, text) > seen) return true;
    served_common_name(serve.port(), ca);
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// The status of GET `path` over a fresh verified HTTPS connection; -1 when
// the connection, handshake or request fails.
int https_status(int port, const fs::path& ca, const std::string& path = "/health") {
  auto r = https_request(port, ca, "GET", path);
  return r ? r->status : -1;
}

int status_of(const std::optional<HttpReply>& r) { return r ? r->status : -1; }

// ---- one HTTPS server for the protocol-level tests ----

class HardeningTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new TempDir();
    pki_ = new TestPki(pki_dir_->path());
    const auto files = pki_->issue("server", "llmd-one", 100);
    // An empty OpenSSL configuration for the server, so that what is
    // checked is llmd's own policy, not Debian's system-wide MinProtocol
    // and CipherString.
    write_file(*pki_dir_ / "openssl.cnf", "");
    serve_ = new LlmdServe(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10 }\n",
                           "  header_timeout_seconds: 2\n  max_connections_per_ip: 4\n" + tls_yaml(files),
                           {{"OPENSSL_CONF", (*pki_dir_ / "openssl.cnf").string()}}, pki_->ca_file());
  }
  static void TearDownTestSuite() {
    delete serve_;
    delete pki_;
    delete pki_dir_;
    serve_ = nullptr;
    pki_ = nullptr;
    pki_dir_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(serve_->started()) << serve_->log(); }
  static int port() { return serve_->port(); }
  static const fs::path& ca() { return pki_->ca_file(); }

  static TempDir* pki_dir_;
  static TestPki* pki_;
  static LlmdServe* serve_;
};
TempDir* HardeningTls::pki_dir_ = nullptr;
TestPki* HardeningTls::pki_ = nullptr;
LlmdServe* HardeningTls::serve_ = nullptr;

TEST_F(HardeningTls, AccountsWorkOverVerifiedHttps) {
  auto reg =
      https_request(port(), ca(), "POST", "/api/v1/auth/register",
                    json{{"username", "tls-user"}, {"password", "tls-user-password"}, {"email", "t@l.s"}}.dump());
  ASSERT_TRUE(reg) << "handshake or request failed";
  ASSERT_EQ(reg->status, 201) << reg->body;
  auto login = https_request(port(), ca(), "POST", "/api/v1/auth/login",
                             json{{"username", "tls-user"}, {"password", "tls-user-password"}}.dump());
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 200) << login->body;
  const std::string token = json::parse(login->body)["token"];
  auto profile = https_request(port(), ca(), "GET", "/api/v1/auth/profile", "", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(profile);
  ASSERT_EQ(profile->status, 200) << profile->body;
  EXPECT_EQ(json::parse(profile->body)["user"]["username"], "tls-user");

  // Keep-alive over one TLS connection, and the certificate it was verified with.
  auto c = connect_tls(port(), ca());
  EXPECT_EQ(c->peer_common_name(), "llmd-one");
  EXPECT_EQ(c->tls_version(), "TLSv1.3");
  for (int i = 0; i < 3; ++i) {
    auto r = c->request("GET", "/health");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(HardeningTls, EveryResponseOverTlsCarriesHsts) {
  auto c = connect_tls(port(), ca());
  auto ok = c->request("GET", "/health");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->header("strict-transport-security"), "max-age=31536000");
  auto missing = c->request("GET", "/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->header("strict-transport-security"), "max-age=31536000");
  // An error the server itself answers (a malformed request) too.
  ASSERT_TRUE(c->send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n"));
  auto bad = c->read_reply(10s);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->header("strict-transport-security"), "max-age=31536000");
}

TEST_F(HardeningTls, FramingAndLimitsHoldOverTls) {
  // Pipelined requests in one TLS write are answered in order.
  auto c = connect_tls(port(), ca());
  ASSERT_TRUE(
      c->send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto first = c->read_reply(10s);
  auto second = c->read_reply(10s);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 404);

  // A chunked request body is assembled.
  const std::string body =
      json{{"username", "tls-chunked"}, {"password", "tls-chunked-password"}, {"email", "c@t.io"}}.dump();
  const auto half = body.size() / 2;
  char sizes[64];
  std::snprintf(sizes, sizeof sizes, "%zx", half);
  std::string chunked = std::string(sizes) + "\r\n" + body.substr(0, half) + "\r\n";
  std::snprintf(sizes, sizeof sizes, "%zx", body.size() - half);
  chunked += std::string(sizes) + "\r\n" + body.substr(half) + "\r\n0\r\n\r\n";
  ASSERT_TRUE(
      c->send("POST /api/v1/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n" +
              chunked));
  auto registered = c->read_reply(10s);
  ASSERT_TRUE(registered);
  EXPECT_EQ(registered->status, 201) << registered->body;

  // A body over max_body_bytes is refused from its Content-Length, unsent.
  auto big = connect_tls(port(), ca());
  ASSERT_TRUE(
      big->send("POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 20000000\r\n\r\n"));
  auto refused = big->read_reply(10s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_EQ(refused->header("strict-transport-security"), "max-age=31536000");
  EXPECT_TRUE(big->closed_by_peer(5s));
}

TEST_F(HardeningTls, Tls10And11AreRefused) {
  for (const int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    RawConnection c(port());
    ASSERT_TRUE(c.ok());
    TlsClientOptions old = verified_by(ca(), version);
    old.min_version = version;
    EXPECT_FALSE(c.start_tls(old)) << "protocol " << std::hex << version << " was accepted";
    EXPECT_NE(c.tls_error().find("protocol"), std::string::npos) << c.tls_error();
  }
  // TLS 1.2 works, with an ECDHE key exchange and an AEAD cipher.
  RawConnection c12(port());
  ASSERT_TRUE(c12.start_tls(verified_by(ca(), TLS1_2_VERSION))) << c12.tls_error();
  EXPECT_EQ(c12.tls_version(), "TLSv1.2");
  EXPECT_TRUE(c12.tls_cipher().starts_with("ECDHE-")) << c12.tls_cipher();
  EXPECT_TRUE(c12.tls_cipher().find("GCM") != std::string::npos ||
              c12.tls_cipher().find("CHACHA20") != std::string::npos)
      << c12.tls_cipher();
  auto r = c12.request("GET", "/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HardeningTls, Tls12CbcCiphersAreRefused) {
  // ECDHE but CBC with SHA-1: OpenSSL's default list accepts it, llmd's does not.
  RawConnection c(port());
  ASSERT_TRUE(c.ok());
  TlsClientOptions cbc = verified_by(ca(), TLS1_2_VERSION);
  cbc.tls12_ciphers = "ECDHE-ECDSA-AES128-SHA";
  EXPECT_FALSE(c.start_tls(cbc)) << "negotiated " << c.tls_cipher();
}

TEST_F(HardeningTls, PlainHttpOnTheTlsPortIsRefusedClearly) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port()) + "\r\n\r\n"));
  auto r = c.read_reply(10s);
  ASSERT_TRUE(r) << "no plain-text answer";
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_code_of(*r), "https_required") << r->body;
  EXPECT_NE(r->body.find("https://127.0.0.1:" + std::to_string(port()) + "/"), std::string::npos) << r->body;
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer(5s));
}

TEST_F(HardeningTls, ClientThatNeverHandshakesIsCutByTheHeaderTimeout) {
  RawConnection silent(port());
  RawConnection half(port());  // starts a TLS record and stops
  ASSERT_TRUE(silent.ok() && half.ok());
  ASSERT_TRUE(half.send(std::string("\x16\x03\x01", 3)));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_by_peer(8s)) << "silent connection left open";
  EXPECT_TRUE(half.closed_by_peer(3s)) << "half-handshaken connection left open";
  // header_timeout_seconds is 2.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(https_status(port(), ca()), 200);
}

TEST_F(HardeningTls, PendingHandshakesCountTowardsThePerAddressCap) {
  // max_connections_per_ip is 4: four silent connections from 127.0.0.2 fill it.
  std::vector<std::unique_ptr<RawConnection>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<RawConnection>(port(), "127.0.0.2"));
    ASSERT_TRUE(silent.back()->ok());
  }
  const auto start = std::chrono::steady_clock::now();
  RawConnection fifth(port(), "127.0.0.2");
  ASSERT_TRUE(fifth.ok());
  EXPECT_FALSE(fifth.start_tls(verified_by(ca()))) << "a fifth connection from one address got through";
  // Other addresses are not affected.
  EXPECT_EQ(https_status(port(), ca()), 200);
  // Once the header timeout cuts the silent ones, the address may connect
  // again (polled: the server forgets a connection just after closing it).
  for (auto& c : silent) EXPECT_TRUE(c->closed_by_peer(8s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
  bool admitted = false;
  for (int attempt = 0; attempt < 30 && !admitted; ++attempt) {
    RawConnection again(port(), "127.0.0.2");
    admitted = again.ok() && again.start_tls(verified_by(ca())) && status_of(again.request("GET", "/health")) == 200;
    if (!admitted) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(admitted);
}

// ---- certificate files changing under a running server ----

TEST(HardeningTlsReload, NewConnectionsGetTheReplacedCertificateWithoutRestart) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "llmd-one", 100);
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n", tls_yaml(files, "    reload_check_seconds: 1\n"), {},
                  pki.ca_file());
  ASSERT_TRUE(serve.started()) << serve.log();
  const int pid_before = serve.process().pid();

  auto old_connection = connect_tls(serve.port(), pki.ca_file());
  ASSERT_EQ(old_connection->peer_common_name(), "llmd-one");
  ASSERT_EQ(status_of(old_connection->request("GET", "/health")), 200);

  pki.issue("server", "llmd-two", 200);  // same paths, new key and certificate
  ASSERT_TRUE(wait_for_common_name(serve.port(), pki.ca_file(), "llmd-two", 10s)) << serve.log();
  {
    auto c = connect_tls(serve.port(), pki.ca_file());
    EXPECT_EQ(c->peer_serial(), 200);
    EXPECT_EQ(status_of(c->request("GET", "/health")), 200);
  }
  // The connection made before keeps its session and keeps working.
  auto r = old_connection->request("GET", "/health");
  ASSERT_TRUE(r) << "the existing connection broke";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(old_connection->peer_serial(), 100);
  EXPECT_TRUE(serve.process().running());
  EXPECT_EQ(serve.process().pid(), pid_before);
  EXPECT_NE(serve.log().find("TLS certificate reloaded"), std::string::npos);
}

TEST(HardeningTlsReload, BrokenReplacementKeepsTheOldCertificateAndServing) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "llmd-one", 100);
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n", tls_yaml(files, "    reload_check_seconds: 1\n"), {},
                  pki.ca_file());
  ASSERT_TRUE(serve.started()) << serve.log();

  write_file(files.cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  ASSERT_TRUE(wait_for_log(serve, pki.ca_file(), "TLS certificate reload failed", 0, 10s)) << serve.log();
  EXPECT_NE(serve.log().find(files.cert.string()), std::string::npos) << serve.log();
  EXPECT_EQ(served_common_name(serve.port(), pki.ca_file()), "llmd-one");
  auto health = https_request(serve.port(), pki.ca_file(), "GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // A key that does not match the certificate is refused the same way.
  pki.issue("server", "llmd-two", 200);
  ASSERT_TRUE(wait_for_common_name(serve.port(), pki.ca_file(), "llmd-two", 10s)) << serve.log();
  const std::size_t mismatches = count_in_log(serve, "does not match the certificate");
  fs::copy_file(pki.stray_key("stray"), files.key, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(wait_for_log(serve, pki.ca_file(), "does not match the certificate", mismatches, 10s)) << serve.log();
  EXPECT_EQ(served_common_name(serve.port(), pki.ca_file()), "llmd-two");
  EXPECT_TRUE(serve.process().running());
}

// ---- shutdown ----

TEST(HardeningTlsShutdown, SigtermClosesIdleTlsConnectionsAndExitsZero) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "llmd-one", 100);
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n", tls_yaml(files), {}, pki.ca_file());
  ASSERT_TRUE(serve.started()) << serve.log();
  auto idle = connect_tls(serve.port(), pki.ca_file());
  ASSERT_EQ(status_of(idle->request("GET", "/health")), 200);  // keep-alive, now idle
  serve.process().signal(SIGTERM);
  EXPECT_TRUE(idle->closed_by_peer(5s)) << "an idle TLS connection held the shutdown";
  EXPECT_EQ(serve.process().wait(10s), 0) << serve.log();
}

// ---- startup ----

TEST(HardeningTlsStartup, KeyThatDoesNotMatchTheCertificateIsAConfigError) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "llmd-one", 100);
  const auto stray = pki.stray_key("stray");
  write_file(dir / "llmd.yaml", "server:\n  host: 127.0.0.1\n  port: " + std::to_string(free_port()) +
                                    "\n  data_dir: " + (dir / "data").string() +
                                    "\n  tls:\n    cert: " + files.cert.string() + "\n    key: " + stray.string() +
                                    "\n" + "database: \"sqlite:" + (dir / "data/llmd.db").string() + "\"\n");
  Process serve({kBinary, "serve", "-c", (dir / "llmd.yaml").string()}, dir.path(), dir / "serve.log",
                {{"LLMD_ADMIN_PASSWORD", kTestAdminPassword}});
  EXPECT_EQ(serve.wait(60s), 2) << serve.log();
  EXPECT_NE(serve.log().find("server.tls.key: " + stray.string() + ": does not match the certificate in " +
                             files.cert.string()),
            std::string::npos)
      << serve.log();
  // Nothing was created before the refusal (no admin password printed).
  EXPECT_EQ(serve.log().find("created the administrator account"), std::string::npos) << serve.log();
}

TEST(HardeningTlsStartup, MissingCertificateFileIsAConfigErrorNamingIt) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "llmd-one", 100);
  const fs::path missing = dir / "no-such-chain.pem";
  write_file(dir / "llmd.yaml", "server:\n  host: 127.0.0.1\n  port: " + std::to_string(free_port()) +
                                    "\n  data_dir: " + (dir / "data").string() +
                                    "\n  tls:\n    cert: " + missing.string() + "\n    key: " + files.key.string() +
                                    "\n" + "database: \"sqlite:" + (dir / "data/llmd.db").string() + "\"\n");
  Process serve({kBinary, "serve", "-c", (dir / "llmd.yaml").string()}, dir.path(), dir / "serve.log",
                {{"LLMD_ADMIN_PASSWORD", kTestAdminPassword}});
  EXPECT_EQ(serve.wait(60s), 2) << serve.log();
  EXPECT_NE(serve.log().find("server.tls.cert: " + missing.string() + ": cannot read"), std::string::npos)
      << serve.log();
}

// ---- plain_http: redirect, HSTS off ----

TEST(HardeningTlsRedirect, PlainGetIsRedirectedToHttpsOtherMethodsRefused) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "llmd-one", 100);
  LlmdServe serve(kBinary, "limits: { ip_rpm: 0, user_rpm: 0 }\n",
                  tls_yaml(files, "    plain_http: redirect\n    hsts_max_age_seconds: 0\n"), {}, pki.ca_file());
  ASSERT_TRUE(serve.started()) << serve.log();
  const std::string authority = "127.0.0.1:" + std::to_string(serve.port());

  RawConnection get_conn(serve.port());
  ASSERT_TRUE(get_conn.send("GET /v1/models?limit=2 HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"));
  auto get = get_conn.read_reply(10s);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 308);
  EXPECT_EQ(get->header("location"), "https://" + authority + "/v1/models?limit=2");
  EXPECT_TRUE(get_conn.closed_by_peer(5s));

  RawConnection post_conn(serve.port());
  ASSERT_TRUE(post_conn.send("POST /api/v1/auth/login HTTP/1.1\r\nHost: " + authority +
                             "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
  auto post = post_conn.read_reply(10s);
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 400);
  EXPECT_EQ(error_code_of(*post), "https_required") << post->body;

  // A Host that cannot be put into a URL is not echoed into a Location.
  RawConnection odd(serve.port());
  ASSERT_TRUE(odd.send("GET / HTTP/1.1\r\nHost: evil.example/x?\r\n\r\n"));
  auto refused = odd.read_reply(10s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(refused->header("location"), "");

  // hsts_max_age_seconds: 0 turns the header off.
  auto health = https_request(serve.port(), pki.ca_file(), "GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->header("strict-transport-security"), "");
}

// ---- a real model behind HTTPS: SSE and the official OpenAI client ----

class HardeningTlsModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pki_ = new TestPki(dir_->path());
    const auto files = pki_->issue("server", "llmd-model", 300);
    const fs::path models = *dir_ / "models";
    fs::create_directories(models);
    fs::create_symlink(tiny_test_model(kBinary), models / "tiny.gguf");
    const int base = free_port();
    serve_ = new LlmdServe(
        kBinary,
        "limits: { ip_rpm: 0, user_rpm: 0 }\nauth: { bcrypt_cost: 10, initial_tokens: 1000000 }\n"
        "models:\n  dir: " +
            models.string() + "\n  port_range: \"" + std::to_string(base) + "-" + std::to_string(base + 10) +
            "\"\n  list:\n    - { name: tiny, file: tiny.gguf, ctx: 512, parallel: 2, threads: 1 }\n",
        tls_yaml(files), {}, pki_->ca_file());
    if (!serve_->started()) return;
    auto reg = https_request(serve_->port(), pki_->ca_file(), "POST", "/api/v1/auth/register",
                             json{{"username", "tls-model"}, {"password", "tls-model-pw"}, {"email", "m@t.io"}}.dump());
    if (!reg || reg->status != 201) return;
    token_ = json::parse(reg->body)["token"].get<std::string>();
  }
  static void TearDownTestSuite() {
    delete serve_;
    delete pki_;
    delete dir_;
    serve_ = nullptr;
    pki_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(serve_->started()) << serve_->log();
    ASSERT_FALSE(token_.empty()) << "registration over https failed\n" << serve_->log();
  }

  static TempDir* dir_;
  static TestPki* pki_;
  static LlmdServe* serve_;
  static inline std::string token_;
};
TempDir* HardeningTlsModel::dir_ = nullptr;
TestPki* HardeningTlsModel::pki_ = nullptr;
LlmdServe* HardeningTlsModel::serve_ = nullptr;

TEST_F(HardeningTlsModel, ChatStreamIsServerSentEventsOverTls) {
  auto c = connect_tls(serve_->port(), pki_->ca_file());
  const std::string body = json{
      {"model", "tiny"},
      {"messages", json::array({{{"role", "user"}, {"content", "count"}}})},
      {"max_tokens", 6},
      {"stream", true}}.dump();
  auto r = c->request("POST", "/v1/chat/completions", body,
                      {{"Authorization", "Bearer " + token_}, {"Connection", "close"}});
  ASSERT_TRUE(r) << serve_->log();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->header("content-type").find("text/event-stream"), std::string::npos);
  EXPECT_EQ(r->header("transfer-encoding"), "chunked");
  EXPECT_EQ(r->header("strict-transport-security"), "max-age=31536000");
  EXPECT_NE(r->body.find("data: {"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("chat.completion.chunk"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos) << r->body;
}

TEST_F(HardeningTlsModel, OfficialOpenAiNodeClientWorksOverHttps) {
  const fs::path client_dir = fs::path(LLMD_SOURCE_DIR) / "tests/clients/openai-node";
  ASSERT_TRUE(fs::exists(client_dir / "node_modules/openai/package.json"))
      << "run `npm ci` in " << client_dir << " (./setup.sh test does)";
  auto key = https_request(serve_->port(), pki_->ca_file(), "POST", "/api/v1/auth/keys", json{{"name", "node"}}.dump(),
                           {{"Authorization", "Bearer " + token_}});
  ASSERT_TRUE(key && key->status == 201) << (key ? key->body : "no reply");

  Process node({"/usr/bin/env", "node", "--test", "--test-reporter=spec", "tls_client_test.mjs"}, client_dir,
               *dir_ / "node.log",
               {{"LLMD_BASE_URL", "https://127.0.0.1:" + std::to_string(serve_->port()) + "/v1"},
                {"LLMD_API_KEY", json::parse(key->body)["key"].get<std::string>()},
                {"LLMD_MODEL", "tiny"},
                {"NODE_EXTRA_CA_CERTS", pki_->ca_file().string()}});
  const auto code = node.wait(240s);
  EXPECT_EQ(code, 0) << node.log() << "\n--- serve log ---\n" << serve_->log();
  // All three client tests ran (a script that skipped them would also exit 0).
  EXPECT_NE(node.log().find("pass 3"), std::string::npos) << node.log();
}

}  // namespace
}  // namespace llmd::testing
