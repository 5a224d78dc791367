// HTTPS for the server: the certificate chain and private key (PEM files),
// loaded into an OpenSSL context with llmd's protocol policy, and reloaded
// when the files change so a renewed certificate needs no restart.
//
//   auto certs = TlsCertificates::load({"/etc/llmd/fullchain.pem", "/etc/llmd/key.pem"},
//                                      std::chrono::seconds(5), log);
//   if (!certs) return certs.error();   // message names the bad file
//   std::shared_ptr<ssl::context> ctx = (*certs)->current();  // per new connection
//
// Policy: TLS 1.2 and 1.3 only (no SSLv3, TLS 1.0, 1.1); TLS 1.2 limited to
// ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305), server
// preference; OpenSSL's defaults for TLS 1.3; no compression, no
// renegotiation; encrypted (passphrase) keys are refused rather than
// prompting on a terminal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "core/error.h"
#include "observe/log.h"

namespace llmd::http {

struct TlsFiles {
  std::filesystem::path cert;  // PEM: the server certificate first, then intermediates
  std::filesystem::path key;   // PEM: the private key of the first certificate
};

// A loaded server context and what the log says about it.
struct TlsContext {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::string subject;    // of the leaf certificate, one line
  std::string not_after;  // its expiry, as OpenSSL prints it
  bool expired = false;
};

// Reads `files` and builds a server context with the policy above. Errors
// (kInvalidArgument, reason "bad_config") start with the config key and name
// the file: "server.tls.key: /etc/llmd/key.pem: does not match the
// certificate in /etc/llmd/fullchain.pem".
Result<TlsContext> make_tls_context(const TlsFiles& files);

// The context new connections use, reloaded when the files change.
// Thread-safe: current() may be called from any I/O thread.
class TlsCertificates {
 public:
  // Loads the files (errors as make_tls_context). `check_interval`: how
  // often at most current() looks at the files again.
  static Result<std::shared_ptr<TlsCertificates>> load(TlsFiles files, std::chrono::seconds check_interval,
                                                       observe::Logger log);

  // The context for a new connection. At most once per check_interval it
  // compares the files' modification time, size and inode (symlinks
  // followed) with the last load attempt; when either changed they are
  // loaded again. A failed reload is logged as an error once per change and
  // the previous context stays in use. Connections keep the context they
  // started with.
  std::shared_ptr<boost::asio::ssl::context> current();

  struct FileStamp {
    timespec mtime{};
    off_t size = -1;
    ino_t inode = 0;
    dev_t device = 0;
    bool operator==(const FileStamp& o) const {
      return mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && size == o.size && inode == o.inode &&
             device == o.device;
    }
  };

 private:
  TlsCertificates(TlsFiles files, std::chrono::seconds check_interval, observe::Logger log, TlsContext first);

  const TlsFiles files_;
  const std::chrono::seconds check_interval_;
  const observe::Logger log_;

  std::mutex mutex_;  // guards everything below
  std::shared_ptr<boost::asio::ssl::context> context_;
  FileStamp cert_stamp_;  // of the last load attempt, good or bad
  FileStamp key_stamp_;
  std::chrono::steady_clock::time_point next_check_;
};

}  // namespace llmd::http
