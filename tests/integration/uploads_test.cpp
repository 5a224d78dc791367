// Uploads against the real `llmd serve` over real HTTP: multipart bodies
// streamed to disk, stored under a random name with their sha256, owner-only
// listing and deletion, and every refusal (too big, no credentials,
// malformed form, client gone mid-body) leaving nothing behind.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http.h"
#include "support/llmd_serve.h"

namespace llmd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
constexpr const char* kBinary = LLMD_BINARY;
constexpr std::uint64_t kMaxUpload = 256 * 1024;
constexpr const char* kBoundary = "----llmdTestBoundary7MA4YWxkTrZu0gW";

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string form(const std::string& filename, const std::string& content, const std::string& name_field = "") {
  std::string body;
  if (!name_field.empty()) {
    body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + name_field +
            "\r\n";
  }
  body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename +
          "\"\r\nContent-Type: video/mp4\r\n\r\n" + content + "\r\n--" + kBoundary + "--\r\n";
  return body;
}

std::string binary_content(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>((i * 2654435761u) >> 13));
  s += "\r\n--" + std::string(kBoundary).substr(0, 10);  // delimiter-like bytes inside the data
  return s;
}

// Regular files anywhere under `dir` (spooled bodies and partial writes included).
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(it->path());
  }
  return out;
}

class UploadsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    uploads_root_ = new TempDir();
    server_ = new LlmdServe(kBinary,
                            "auth: { bcrypt_cost: 10 }\n"
                            "limits: { user_rpm: 0, ip_rpm: 0 }\n"
                            "uploads: { dir: " +
                                uploads_dir().string() + ", max_bytes: " + std::to_string(kMaxUpload) + " }\n");
  }
  static void TearDownTestSuite() {
    delete server_;
    delete uploads_root_;
  }
  void SetUp() override { ASSERT_TRUE(server_->started()) << server_->log(); }

  static fs::path uploads_dir() { return uploads_root_->path() / "uploads"; }
  int port() const { return server_->port(); }

  std::string new_user(const std::string& name) {
    auto r =
        http_request(port(), "POST", "/api/v1/auth/register",
                     json{{"username", name}, {"password", "password-" + name}, {"email", name + "@x.org"}}.dump());
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
    return json::parse(r->body)["token"];
  }
  std::optional<HttpReply> upload(const std::string& token, const std::string& body,
                                  const std::string& content_type = std::string("multipart/form-data; boundary=") +
                                                                    kBoundary) {
    std::map<std::string, std::string> h{{"Content-Type", content_type}};
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(port(), "POST", "/api/v1/uploads", body, h);
  }
  std::optional<HttpReply> call(const std::string& method, const std::string& path, const std::string& token) {
    return http_request(port(), method, path, "", {{"Authorization", "Bearer " + token}});
  }
  // Waits until the uploads dir holds exactly `n` files (cleanup is asynchronous).
  static bool settle_to(std::size_t n) {
    for (int i = 0; i < 300; ++i) {
      if (files_under(uploads_dir()).size() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return files_under(uploads_dir()).size() == n;
  }

  static TempDir* uploads_root_;
  static LlmdServe* server_;
};
TempDir* UploadsTest::uploads_root_ = nullptr;
LlmdServe* UploadsTest::server_ = nullptr;

TEST_F(UploadsTest, StoresTheFileUnderARandomNameWithItsHash) {
  const std::string token = new_user("uploader1");
  const auto before = files_under(uploads_dir()).size();
  const std::string content = binary_content(100 * 1024);
  auto r = upload(token, form("../../etc/clip\x01 one.MP4", content));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["size"].get<std::size_t>(), content.size());
  EXPECT_EQ(j["sha256"].get<std::string>(), sha256_hex(content));
  EXPECT_EQ(j["name"].get<std::string>(), "clip one.MP4");  // last component, control character dropped
  EXPECT_EQ(j["content_type"].get<std::string>(), "video/mp4");
  const std::string id = j["upload_id"];
  EXPECT_EQ(id.size(), 32u);

  ASSERT_TRUE(settle_to(before + 1));
  fs::path stored;
  for (const auto& f : files_under(uploads_dir())) {
    if (read_file(f) == content) stored = f;
  }
  ASSERT_FALSE(stored.empty()) << "the uploaded bytes are not on disk";
  EXPECT_EQ(stored.parent_path(), uploads_dir());
  EXPECT_EQ(stored.filename().string().find("clip"), std::string::npos);
  EXPECT_EQ(stored.filename().string().find(id), std::string::npos) << "file name derived from the id";
  EXPECT_EQ(stored.extension(), ".mp4");

  auto list = call("GET", "/api/v1/uploads", token);
  ASSERT_EQ(list->status, 200);
  const auto items = json::parse(list->body)["uploads"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["upload_id"], id);
  auto one = call("GET", "/api/v1/uploads/" + id, token);
  ASSERT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body)["sha256"], sha256_hex(content));
}

TEST_F(UploadsTest, NameFieldOverridesTheFileNameAsMetadata) {
  const std::string token = new_user("uploader2");
  auto r = upload(token, form("x.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n", "Lecture 1 – 讲座.srt"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(json::parse(r->body)["name"], "Lecture 1 – 讲座.srt");
}

TEST_F(UploadsTest, TooBigIs413AndLeavesNoFile) {
  const std::string token = new_user("uploader3");
  const auto before = files_under(uploads_dir()).size();
  auto r = upload(token, form("big.bin", std::string(kMaxUpload + 1, 'b')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("too_large"), std::string::npos) << r->body;
  EXPECT_TRUE(settle_to(before));

  // Chunked: no length declared up front, the limit still holds.
  RawConnection c(port());
  ASSERT_TRUE(c.send("POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                     "\r\nContent-Type: multipart/form-data; boundary=" + kBoundary +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string piece(64 * 1024, 'c');
  for (int i = 0; i < 5; ++i) {
    if (!c.send("10000\r\n" + piece + "\r\n")) break;  // the server may close once over the limit
  }
  auto chunked = c.read_reply(std::chrono::seconds(10));
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 413);
  EXPECT_TRUE(settle_to(before));
}

TEST_F(UploadsTest, WithoutCredentialsIs401AndNothingIsWritten) {
  const auto before = files_under(uploads_dir()).size();
  RawConnection c(port());
  // A large declared body of which only a few bytes are sent: the 401 comes
  // without the server waiting for (or storing) the rest.
  ASSERT_TRUE(c.send(std::string("POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                                 "boundary=") +
                     kBoundary + "\r\nContent-Length: 200000\r\n\r\n--" + kBoundary));
  auto r = c.read_reply(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(files_under(uploads_dir()).size(), before);

  // A bad token gets its 401 from the auth middleware; the spooled body goes.
  auto bad = upload("not-a-valid-token", form("a.bin", "abc"));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  EXPECT_TRUE(settle_to(before));
}

TEST_F(UploadsTest, MalformedMultipartIs400AndNothingIsStored) {
  const std::string token = new_user("uploader4");
  const auto before = files_under(uploads_dir()).size();
  const std::string truncated =
      std::string("--") + kBoundary +
      "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\nhalf a file";
  for (const std::string& body :
       {truncated, std::string("just some bytes"),
        std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--" +
            kBoundary + "--\r\n"}) {
    auto r = upload(token, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    const auto err = json::parse(r->body)["error"];
    EXPECT_TRUE(err["code"] == "invalid_multipart" || err["code"] == "missing_file") << r->body;
  }
  auto not_form = upload(token, "{}", "application/json");
  ASSERT_TRUE(not_form);
  EXPECT_EQ(not_form->status, 415) << not_form->body;
  EXPECT_TRUE(settle_to(before));
  auto list = call("GET", "/api/v1/uploads", token);
  EXPECT_EQ(json::parse(list->body)["uploads"].size(), 0u);
}

TEST_F(UploadsTest, AnotherUsersUploadIsNotFound) {
  const std::string owner = new_user("owner5");
  const std::string other = new_user("other5");
  auto r = upload(owner, form("mine.bin", "private bytes"));
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["upload_id"];
  auto get = call("GET", "/api/v1/uploads/" + id, other);
  EXPECT_EQ(get->status, 404);
  auto del = call("DELETE", "/api/v1/uploads/" + id, other);
  EXPECT_EQ(del->status, 404);
  auto list = call("GET", "/api/v1/uploads", other);
  EXPECT_EQ(json::parse(list->body)["uploads"].size(), 0u);
  auto still = call("GET", "/api/v1/uploads/" + id, owner);
  EXPECT_EQ(still->status, 200);
  auto anonymous = http_request(port(), "GET", "/api/v1/uploads");
  EXPECT_EQ(anonymous->status, 401);
}

TEST_F(UploadsTest, DeleteRemovesTheFile) {
  const std::string token = new_user("uploader6");
  const auto before = files_under(uploads_dir()).size();
  const std::string content = "delete me " + binary_content(1000);
  auto r = upload(token, form("gone.bin", content));
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["upload_id"];
  ASSERT_TRUE(settle_to(before + 1));
  auto del = call("DELETE", "/api/v1/uploads/" + id, token);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200) << del->body;
  EXPECT_TRUE(settle_to(before));
  for (const auto& f : files_under(uploads_dir())) EXPECT_NE(read_file(f), content);
  EXPECT_EQ(call("GET", "/api/v1/uploads/" + id, token)->status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/uploads/" + id, token)->status, 404);
}

TEST_F(UploadsTest, ClientDisconnectMidBodyLeavesNoTempFile) {
  const std::string token = new_user("uploader7");
  const auto before = files_under(uploads_dir()).size();
  {
    RawConnection c(port());
    ASSERT_TRUE(c.send("POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                       "\r\nContent-Type: multipart/form-data; boundary=" + kBoundary +
                       "\r\nContent-Length: 200000\r\n\r\n" +
                       form("cut.bin", std::string(50000, 'x')).substr(0, 50000)));
    ASSERT_TRUE(settle_to(before + 1)) << "the body is not being spooled";
  }
  EXPECT_TRUE(settle_to(before));
  // Still serving.
  auto r = upload(token, form("after.bin", "fine"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
}

// Issue 13 items 8 and 17: an upload is judged from its head, before its
// body is read, and one user's uploads stay within a quota.
class UploadHeadChecksTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kQuota = 100 * 1024;

  void SetUp() override {
    serve_ = std::make_unique<LlmdServe>(
        kBinary,
        "auth: { bcrypt_cost: 10 }\n"
        "limits: { user_rpm: 0, ip_rpm: 0, auth_failures_per_minute: 5 }\n"
        "uploads: { dir: " +
            (root_.path() / "uploads").string() +
            ", max_bytes: 1073741824, quota_bytes_per_user: " + std::to_string(kQuota) + " }\n",
        "  allowed_hosts: [127.0.0.1, localhost]\n");
    ASSERT_TRUE(serve_->started()) << serve_->log();
  }
  int port() const { return serve_->port(); }
  std::string token() {
    auto r = http_request(port(), "POST", "/api/v1/auth/register",
                          json{{"username", "quota"}, {"password", "password-quota"}, {"email", "q@x.org"}}.dump());
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
    return json::parse(r->body)["token"];
  }
  // Sends only the head of a big upload (and a first piece of its body) and
  // waits briefly for the answer: it must come without the rest of the body.
  std::optional<HttpReply> head_only(const std::string& authorization, std::uint64_t declared,
                                     const std::string& host = "localhost") {
    RawConnection c(port());
    std::string head = "POST /api/v1/uploads HTTP/1.1\r\nHost: " + host +
                       "\r\nContent-Type: multipart/form-data; boundary=" + kBoundary +
                       "\r\nContent-Length: " + std::to_string(declared) + "\r\n";
    if (!authorization.empty()) head += "Authorization: " + authorization + "\r\n";
    if (!c.send(head + "\r\n" + form("big.bin", std::string(4096, 'x')).substr(0, 4096))) return std::nullopt;
    return c.read_reply(std::chrono::seconds(5));
  }
  std::size_t spooled_bytes() const {
    std::uint64_t total = 0;
    for (const auto& f : files_under(root_.path() / "uploads")) total += fs::file_size(f);
    return total;
  }

  TempDir root_;
  std::unique_ptr<LlmdServe> serve_;
};

TEST_F(UploadHeadChecksTest, BadCredentialsAreRefusedBeforeTheBodyIsRead) {
  // 300 MiB declared, a bad token: the 401 comes at once, nothing is spooled.
  auto r = head_only("Bearer not-a-valid-token", 300ULL * 1024 * 1024);
  ASSERT_TRUE(r) << "no answer before the body: the body is being read first";
  EXPECT_EQ(r->status, 401) << r->body;
  auto key = head_only("Bearer sk-0123456789abcdef0123456789abcdef", 300ULL * 1024 * 1024);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->status, 401) << key->body;
  EXPECT_EQ(spooled_bytes(), 0u);
}

TEST_F(UploadHeadChecksTest, ForeignHostIsRefusedBeforeTheBodyIsRead) {
  const std::string t = token();
  auto r = head_only("Bearer " + t, 300ULL * 1024 * 1024, "evil.example");
  ASSERT_TRUE(r) << "no answer before the body: the body is being read first";
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "host_not_allowed") << r->body;
  EXPECT_EQ(spooled_bytes(), 0u);
}

TEST_F(UploadHeadChecksTest, FailedUploadCredentialsCountAgainstTheAddress) {
  int refused = 0, limited = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = head_only("Bearer sk-guess" + std::to_string(i), 10 * 1024 * 1024);
    ASSERT_TRUE(r);
    refused += r->status == 401;
    limited += r->status == 429;
  }
  EXPECT_EQ(refused, 5) << "auth_failures_per_minute is 5";
  EXPECT_EQ(limited, 3);
}

TEST_F(UploadHeadChecksTest, QuotaIsCheckedFromTheHeadAndExactlyAtSave) {
  const std::string t = token();
  const std::map<std::string, std::string> h{
      {"Content-Type", std::string("multipart/form-data; boundary=") + kBoundary}, {"Authorization", "Bearer " + t}};
  auto first = http_request(port(), "POST", "/api/v1/uploads", form("a.bin", std::string(60 * 1024, 'a')), h);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 201) << first->body;

  // Declared far past what is left: refused from the head.
  auto declared = head_only("Bearer " + t, 10ULL * 1024 * 1024);
  ASSERT_TRUE(declared) << "no answer before the body: the body is being read first";
  EXPECT_EQ(declared->status, 413) << declared->body;
  EXPECT_EQ(json::parse(declared->body)["error"]["code"], "upload_quota_exceeded");

  // Small enough to be read (within the framing allowance) but past the quota: refused at save.
  auto second = http_request(port(), "POST", "/api/v1/uploads", form("b.bin", std::string(50 * 1024, 'b')), h);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 413) << second->body;
  EXPECT_EQ(json::parse(second->body)["error"]["code"], "upload_quota_exceeded");

  // What fits still goes in, exactly up to the quota.
  auto fits = http_request(port(), "POST", "/api/v1/uploads", form("c.bin", std::string(40 * 1024, 'c')), h);
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 201) << fits->body;
  auto list = http_request(port(), "GET", "/api/v1/uploads", "", h);
  ASSERT_TRUE(list);
  std::uint64_t total = 0;
  const json listed = json::parse(list->body);
  for (const auto& u : listed["uploads"]) total += u["size"].get<std::uint64_t>();
  EXPECT_EQ(total, kQuota);
  EXPECT_EQ(spooled_bytes(), kQuota) << "refused bodies leave nothing behind";
}

}  // namespace
}  // namespace llmd::testing
