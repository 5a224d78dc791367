#include "http/tls.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

namespace llmd::http {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE (forward secrecy) with AEAD only, as Mozilla's
// "intermediate" profile. TLS 1.3 suites are OpenSSL's defaults (all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// PEM files are small; anything larger is not a certificate or key.
constexpr std::uintmax_t kMaxPemBytes = 1024 * 1024;

Error bad(const char* key, const std::filesystem::path& file, const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, std::string(key) + ": " + file.string() + ": " + what, "bad_config");
}

// The oldest queued OpenSSL error as text (and the queue cleared), or
// `fallback` when there is none.
std::string openssl_error(const std::string& fallback) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : fallback;
}

Result<std::string> read_pem(const char* key, const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return std::unexpected(bad(key, file, "cannot read: " + ec.message()));
  if (size > kMaxPemBytes) return std::unexpected(bad(key, file, "too large for a PEM file"));
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::unexpected(bad(key, file, std::string("cannot read: ") + std::strerror(errno)));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Refuses encrypted keys instead of letting OpenSSL prompt on a terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string one_line_name(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string time_text(const ASN1_TIME* t) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

TlsCertificates::FileStamp stamp_of(const std::filesystem::path& file) {
  TlsCertificates::FileStamp s;
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    s.mtime = st.st_mtim;
    s.size = st.st_size;
    s.inode = st.st_ino;
    s.device = st.st_dev;
  }
  return s;
}

}  // namespace

Result<TlsContext> make_tls_context(const TlsFiles& files) {
  auto cert_pem = read_pem("server.tls.cert", files.cert);
  if (!cert_pem) return std::unexpected(cert_pem.error());
  auto key_pem = read_pem("server.tls.key", files.key);
  if (!key_pem) return std::unexpected(key_pem.error());

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return fail(ErrorCode::kInternal,
                "server.tls: this OpenSSL cannot apply the TLS policy: " + openssl_error("unknown error"));
  }
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(native, no_passphrase);

  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(*cert_pem), ec);
  if (ec) {
    ERR_clear_error();
    return std::unexpected(bad("server.tls.cert", files.cert, "not a PEM certificate chain (" + ec.message() + ")"));
  }
  // The key is parsed here rather than by the context so that a key of
  // another certificate is told apart from an unreadable one.
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())),
                                                    BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr) : nullptr, EVP_PKEY_free);
  if (!key) {
    const std::string why = openssl_error("no private key found");
    return std::unexpected(
        bad("server.tls.key", files.key,
            key_pem->find("ENCRYPTED") != std::string::npos
                ? "the key is protected by a passphrase, which llmd cannot enter; store it unencrypted "
                  "(readable only by llmd's user)"
                : "not a PEM private key (" + why + ")"));
  }
  const X509* leaf = SSL_CTX_get0_certificate(native);
  if (leaf == nullptr) return std::unexpected(bad("server.tls.cert", files.cert, "no certificate in the file"));
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return std::unexpected(
        bad("server.tls.key", files.key, "does not match the certificate in " + files.cert.string()));
  }
  if (SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
    return std::unexpected(
        bad("server.tls.key", files.key, "cannot use the key (" + openssl_error("unknown error") + ")"));
  }

  TlsContext out;
  out.subject = one_line_name(X509_get_subject_name(leaf));
  out.not_after = time_text(X509_get0_notAfter(leaf));
  out.expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0;
  out.context = std::move(context);
  return out;
}

Result<std::shared_ptr<TlsCertificates>> TlsCertificates::load(TlsFiles files, std::chrono::seconds check_interval,
                                                               observe::Logger log) {
  const FileStamp cert_stamp = stamp_of(files.cert);
  const FileStamp key_stamp = stamp_of(files.key);
  auto first = make_tls_context(files);
  if (!first) return std::unexpected(first.error());
  log.info("TLS certificate loaded",
           {{"cert", files.cert.string()}, {"subject", first->subject}, {"not_after", first->not_after}});
  if (first->expired) log.warn("the TLS certificate has expired", {{"cert", files.cert.string()}});
  std::shared_ptr<TlsCertificates> certs(
      new TlsCertificates(std::move(files), check_interval, std::move(log), std::move(*first)));
  certs->cert_stamp_ = cert_stamp;
  certs->key_stamp_ = key_stamp;
  return certs;
}

TlsCertificates::TlsCertificates(TlsFiles files, std::chrono::seconds check_interval, observe::Logger log,
                                 TlsContext first)
    : files_(std::move(files)),
      check_interval_(check_interval),
      log_(std::move(log)),
      context_(std::move(first.context)),
      next_check_(std::chrono::steady_clock::now() + check_interval) {}

std::shared_ptr<boost::asio::ssl::context> TlsCertificates::current() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return context_;
  next_check_ = now + check_interval_;
  // Stamps first, then the contents: a file replaced in between is simply
  // loaded again at the next check.
  const FileStamp cert_stamp = stamp_of(files_.cert);
  const FileStamp key_stamp = stamp_of(files_.key);
  if (cert_stamp == cert_stamp_ && key_stamp == key_stamp_) return context_;
  cert_stamp_ = cert_stamp;
  key_stamp_ = key_stamp;
  auto next = make_tls_context(files_);
  if (!next) {
    // An operator replacing cert and key one after the other may be caught
    // half way: the next change of either file is tried again.
    log_.error("TLS certificate reload failed; still serving the previous certificate",
               {{"error", next.error().message}});
    return context_;
  }
  context_ = std::move(next->context);
  log_.info("TLS certificate reloaded",
            {{"cert", files_.cert.string()}, {"subject", next->subject}, {"not_after", next->not_after}});
  if (next->expired) log_.warn("the reloaded TLS certificate has expired", {{"cert", files_.cert.string()}});
  return context_;
}

}  // namespace llmd::http
