#include "http/tls.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <memory>

#include "support/test_pki.h"
#include "support/test_support.h"

namespace llmd::http {
namespace {

using testing::TempDir;
using testing::TestPki;

observe::Logger quiet_log() { return observe::Logger(observe::LogLevel::kOff, observe::LogFormat::kJson); }

TEST(TlsContext, AppliesTheProtocolPolicy) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "policy", 1);
  auto ctx = make_tls_context({files.cert, files.key});
  ASSERT_TRUE(ctx) << ctx.error().message;
  SSL_CTX* native = ctx->context->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(native), TLS1_2_VERSION);
  EXPECT_NE(SSL_CTX_get_options(native) & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_NE(SSL_CTX_get_options(native) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_NE(ctx->subject.find("CN = policy"), std::string::npos) << ctx->subject;
  EXPECT_FALSE(ctx->expired);
}

TEST(TlsContext, KeyOfAnotherCertificateIsNamedAsSuch) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "one", 1);
  const auto other = pki.stray_key("other");
  auto ctx = make_tls_context({files.cert, other});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().message,
            "server.tls.key: " + other.string() + ": does not match the certificate in " + files.cert.string());
  EXPECT_EQ(ctx.error().reason, "bad_config");
}

TEST(TlsContext, EncryptedKeyIsRefusedWithoutPrompting) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "one", 1);
  // Re-write the key protected by a passphrase.
  std::unique_ptr<FILE, decltype(&std::fclose)> in(std::fopen(files.key.c_str(), "r"), std::fclose);
  ASSERT_TRUE(in);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_PrivateKey(in.get(), nullptr, nullptr, nullptr),
                                                          EVP_PKEY_free);
  ASSERT_TRUE(key);
  const auto encrypted = dir / "encrypted.key";
  {
    std::unique_ptr<FILE, decltype(&std::fclose)> out(std::fopen(encrypted.c_str(), "w"), std::fclose);
    char pass[] = "secret";
    ASSERT_EQ(PEM_write_PrivateKey(out.get(), key.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr, pass), 1);
  }
  auto ctx = make_tls_context({files.cert, encrypted});
  ASSERT_FALSE(ctx);
  EXPECT_TRUE(ctx.error().message.starts_with("server.tls.key: " + encrypted.string() +
                                              ": the key is protected by a passphrase"))
      << ctx.error().message;
}

TEST(TlsContext, GarbageAndMissingFilesNameTheFile) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "one", 1);
  testing::write_file(dir / "junk.pem", "hello\n");
  auto junk = make_tls_context({dir / "junk.pem", files.key});
  ASSERT_FALSE(junk);
  EXPECT_TRUE(junk.error().message.starts_with("server.tls.cert: " + (dir / "junk.pem").string() + ": not a PEM"))
      << junk.error().message;
  auto missing = make_tls_context({files.cert, dir / "nope.key"});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().message.starts_with("server.tls.key: " + (dir / "nope.key").string() + ": cannot read"))
      << missing.error().message;
}

TEST(TlsCertificates, ChangedFilesAreLoadedBadOnesKeepThePrevious) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "one", 1);
  // An interval of 0: every call looks at the files.
  auto certs = TlsCertificates::load({files.cert, files.key}, std::chrono::seconds(0), quiet_log());
  ASSERT_TRUE(certs) << certs.error().message;
  const auto first = (*certs)->current();
  EXPECT_EQ((*certs)->current(), first) << "unchanged files are not loaded again";

  pki.issue("server", "two", 2);
  const auto second = (*certs)->current();
  EXPECT_NE(second, first);
  EXPECT_EQ(ASN1_INTEGER_get(X509_get0_serialNumber(SSL_CTX_get0_certificate(second->native_handle()))), 2);

  testing::write_file(files.cert, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
  EXPECT_EQ((*certs)->current(), second) << "a broken file replaced the working certificate";
  EXPECT_EQ((*certs)->current(), second);
}

TEST(TlsCertificates, FilesAreNotLookedAtMoreOftenThanTheInterval) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "one", 1);
  auto certs = TlsCertificates::load({files.cert, files.key}, std::chrono::seconds(3600), quiet_log());
  ASSERT_TRUE(certs) << certs.error().message;
  const auto first = (*certs)->current();
  pki.issue("server", "two", 2);
  EXPECT_EQ((*certs)->current(), first);
}

TEST(TlsCertificates, StartupErrorsAreReturned) {
  TempDir dir;
  TestPki pki(dir.path());
  const auto files = pki.issue("server", "one", 1);
  auto certs = TlsCertificates::load({files.cert, pki.stray_key("other")}, std::chrono::seconds(5), quiet_log());
  ASSERT_FALSE(certs);
  EXPECT_NE(certs.error().message.find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace llmd::http
