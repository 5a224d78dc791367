// A throwaway certificate authority for TLS tests, made with the OpenSSL C
// API at test time (no `openssl` CLI needed): EC P-256 keys, SHA-256
// signatures, server certificates valid for 127.0.0.1 and localhost.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <openssl/types.h>

namespace llmd::testing {

class TestPki {
 public:
  // Creates the CA and writes its certificate to <dir>/ca.crt.
  explicit TestPki(std::filesystem::path dir);
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  // The CA certificate (PEM), for clients to verify against.
  const std::filesystem::path& ca_file() const { return ca_file_; }

  struct Issued {
    std::filesystem::path cert;  // PEM, the leaf certificate
    std::filesystem::path key;   // PEM, its unencrypted private key
  };
  // Issues a server certificate signed by the CA with subject CN `common_name`
  // and serial number `serial`, written to <dir>/<name>.crt and <name>.key
  // (replacing them atomically if they exist).
  Issued issue(const std::string& name, const std::string& common_name, long serial) const;
  // A fresh private key matching no certificate, written to <dir>/<name>.key.
  std::filesystem::path stray_key(const std::string& name) const;

 private:
  struct KeyDeleter {
    void operator()(EVP_PKEY* k) const;
  };
  struct CertDeleter {
    void operator()(X509* c) const;
  };
  std::filesystem::path dir_;
  std::filesystem::path ca_file_;
  std::unique_ptr<EVP_PKEY, KeyDeleter> ca_key_;
  std::unique_ptr<X509, CertDeleter> ca_cert_;
};

}  // namespace llmd::testing
