#include "tasks/uploads/upload_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <limits>
#include <optional>
#include <random>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/text.h"
#include "http/multipart.h"

namespace llmd::uploads {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxNameBytes = 255;
constexpr std::size_t kMaxNameField = 4096;  // the `name` form field, before sanitising

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    std::random_device rd;  // RAND_bytes practically never fails; do not fail an upload on it
    for (auto& b : raw) b = static_cast<unsigned char>(rd());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : raw) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::unexpected<Error> storage_error(const char* what) {
  return fail(ErrorCode::kUnavailable, std::string("cannot store the upload now (") + what + ")",
              "storage_unavailable");
}

// A short lower-case alphanumeric extension of the original name (".mp4"),
// kept on the stored file because some formats are recognised by it.
std::string safe_extension(std::string_view name) {
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot + 1 >= name.size() || name.size() - dot - 1 > 8) return {};
  std::string ext = ".";
  for (char c : name.substr(dot + 1)) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return {};
    ext.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return ext;
}

std::string sanitize_content_type(std::string_view t) {
  std::string out;
  for (char c : t) {
    if (c >= 0x20 && c < 0x7f) out.push_back(c);
    if (out.size() >= 127) break;
  }
  return out.empty() ? "application/octet-stream" : out;
}

// The stored file, written over the multipart body it is read from, from
// the body's first byte: every byte written lies behind what the parser has
// already read (part headers come first), so the body turns into the stored
// file without a second copy on disk. commit() truncates it to the file's
// size and renames it into place. Until then the body's owner keeps it (and
// removes it); after a commit, discard() makes this remove it instead.
class InPlaceFile {
 public:
  explicit InPlaceFile(fs::path body) : path_(std::move(body)) { fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC); }
  ~InPlaceFile() {
    if (fd_ >= 0) ::close(fd_);
    if (discarded_) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  }
  InPlaceFile(const InPlaceFile&) = delete;
  InPlaceFile& operator=(const InPlaceFile&) = delete;

  bool ok() const { return fd_ >= 0; }
  Result<void> write(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(written_));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return storage_error("write failed");
      data.remove_prefix(static_cast<std::size_t>(n));
      written_ += static_cast<std::uint64_t>(n);
    }
    return {};
  }
  // Truncate to what was written, fsync, close, rename into place, fsync the directory.
  Result<void> commit(const fs::path& final_path) {
    if (::ftruncate(fd_, static_cast<off_t>(written_)) != 0) return storage_error("truncate failed");
    (void)::fchmod(fd_, 0640);
    if (::fsync(fd_) != 0) return storage_error("fsync failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return storage_error("close failed");
    if (::rename(path_.c_str(), final_path.c_str()) != 0) return storage_error("rename failed");
    path_ = final_path;
    const int dir = ::open(final_path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      (void)::fsync(dir);
      ::close(dir);
    }
    committed_ = true;
    return {};
  }
  // Undoes commit() (the database refused the row): the stored file goes.
  void discard() { discarded_ = committed_; }

 private:
  fs::path path_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
  bool committed_ = false;
  bool discarded_ = false;
};

struct EvpDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

UploadRecord record_from(const store::Row& row) {
  UploadRecord r;
  r.id = row.text(0);
  r.user_id = row.integer(1);
  r.path = row.text(2);
  r.original_name = row.text(3);
  r.content_type = row.text(4);
  r.size = row.integer(5);
  r.sha256 = row.text(6);
  r.created_at = row.integer(7);
  return r;
}

constexpr const char* kColumns = "id, user_id, path, original_name, content_type, size, sha256, created_at";

Error not_found() { return Error(ErrorCode::kNotFound, "no such upload", "upload_not_found"); }

}  // namespace

std::string sanitize_file_name(std::string_view name) {
  const auto slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  std::string clean;
  while (!name.empty()) {
    const auto bad = text::first_invalid_utf8(name);
    const std::string_view good = name.substr(0, bad.value_or(name.size()));
    for (char c : good) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u != 0x7f) clean.push_back(c);
    }
    if (!bad) break;
    name.remove_prefix(*bad + 1);  // drop the offending byte, keep going
  }
  std::string trimmed(text::trim(clean));
  if (trimmed == "." || trimmed == "..") return {};
  if (trimmed.size() > kMaxNameBytes) {
    std::size_t cut = kMaxNameBytes;
    while (cut > 0 && (static_cast<unsigned char>(trimmed[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    trimmed.resize(cut);
  }
  return trimmed;
}

UploadStore::UploadStore(store::Database& db, std::filesystem::path dir, std::uint64_t quota_bytes_per_user)
    : db_(db), quota_(quota_bytes_per_user) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  dir_ = fs::absolute(dir, ec);
  if (ec) dir_ = std::move(dir);
}

Result<UploadRecord> UploadStore::save_multipart(std::int64_t user_id, const std::filesystem::path& body,
                                                 std::string_view content_type) {
  auto boundary = http::multipart_boundary(content_type);
  if (!boundary) return std::unexpected(boundary.error());
  std::ifstream in(body, std::ios::binary);
  if (!in) return storage_error("cannot read the request body");
  std::error_code ec;
  fs::create_directories(dir_, ec);

  std::unique_ptr<EVP_MD_CTX, EvpDeleter> sha(EVP_MD_CTX_new());
  if (!sha || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1)
    return fail(ErrorCode::kInternal, "sha256 unavailable");

  enum class Target { kNone, kFile, kName };
  Target target = Target::kNone;
  std::unique_ptr<InPlaceFile> file;
  std::string part_filename, part_type, name_field;
  bool has_name_field = false;
  std::int64_t size = 0;

  auto on_part = [&](const http::PartHead& head) -> Result<void> {
    if (head.name == "file") {
      if (file) return fail(ErrorCode::kInvalidArgument, "only one `file` part is accepted", "invalid_multipart");
      file = std::make_unique<InPlaceFile>(body);
      if (!file->ok()) return storage_error("cannot open the request body for writing");
      part_filename = head.filename.value_or("");
      part_type = head.content_type;
      target = Target::kFile;
    } else if (head.name == "name") {
      has_name_field = true;
      target = Target::kName;
    } else {
      target = Target::kNone;  // unknown fields are read past, never stored
    }
    return {};
  };
  auto on_data = [&](std::string_view data) -> Result<void> {
    switch (target) {
      case Target::kFile:
        if (EVP_DigestUpdate(sha.get(), data.data(), data.size()) != 1)
          return fail(ErrorCode::kInternal, "sha256 failed");
        size += static_cast<std::int64_t>(data.size());
        return file->write(data);
      case Target::kName:
        if (name_field.size() + data.size() > kMaxNameField) {
          return fail(ErrorCode::kInvalidArgument, "the name field is too long", "invalid_field");
        }
        name_field.append(data);
        return {};
      case Target::kNone: return {};
    }
    return {};
  };
  LLMD_TRY(http::read_multipart(in, *boundary, on_part, on_data));
  if (!file) return fail(ErrorCode::kInvalidArgument, "the form has no `file` part", "missing_file");

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_DigestFinal_ex(sha.get(), digest, &digest_len) != 1) return fail(ErrorCode::kInternal, "sha256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  UploadRecord rec;
  for (unsigned i = 0; i < digest_len; ++i) {
    rec.sha256.push_back(kHex[digest[i] >> 4]);
    rec.sha256.push_back(kHex[digest[i] & 0xf]);
  }
  rec.id = random_hex(16);
  rec.user_id = user_id;
  rec.original_name =
      sanitize_file_name(has_name_field ? std::string_view(name_field) : std::string_view(part_filename));
  rec.content_type = sanitize_content_type(part_type);
  rec.size = size;
  rec.created_at = now_seconds();
  // The stored name is random too (not the id): nothing about it comes from the client.
  const fs::path final_path = dir_ / (random_hex(16) + safe_extension(rec.original_name));
  rec.path = final_path.string();
  LLMD_TRY(file->commit(final_path));

  // The quota holds atomically: the row goes in only if the owner's uploads
  // still leave room for it (two parallel uploads cannot both take the last of it).
  const auto quota = quota_ == 0 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(quota_);
  auto inserted = db_.with_connection<store::ExecResult>([&](store::Connection& c) {
    const store::Value params[] = {rec.id,   rec.user_id, rec.path,       rec.original_name, rec.content_type,
                                   rec.size, rec.sha256,  rec.created_at, rec.user_id,       quota - rec.size};
    return c.exec(
        "INSERT INTO uploads (id, user_id, path, original_name, content_type, size, sha256, created_at) "
        "SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM (SELECT COALESCE(SUM(size), 0) AS used FROM uploads WHERE user_id = ?) q "
        "WHERE q.used <= ?",
        params);
  });
  if (!inserted || inserted->affected_rows == 0) {
    file->discard();  // removes the committed file when `file` goes
    if (!inserted) return std::unexpected(inserted.error());
    return std::unexpected(quota_error(quota_));
  }
  return rec;
}

Error UploadStore::quota_error(std::uint64_t quota_bytes) {
  return Error(ErrorCode::kTooLarge,
               "this upload would exceed your storage quota of " + std::to_string(quota_bytes) +
                   " bytes; delete some uploads first",
               "upload_quota_exceeded");
}

Result<std::uint64_t> UploadStore::room_left(std::int64_t user_id) {
  if (quota_ == 0) return std::numeric_limits<std::uint64_t>::max();
  auto rows = db_.with_connection<std::vector<store::Row>>([&](store::Connection& c) {
    const store::Value params[] = {user_id};
    return c.query("SELECT COALESCE(SUM(size), 0) FROM uploads WHERE user_id = ?", params);
  });
  if (!rows) return std::unexpected(rows.error());
  const std::int64_t used = rows->empty() ? 0 : rows->front().integer(0);
  return used >= static_cast<std::int64_t>(quota_) ? 0 : quota_ - static_cast<std::uint64_t>(used);
}

std::size_t UploadStore::remove_partial_files() {
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& dir : {dir_, spool_dir()}) {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.starts_with(".") && name.ends_with(".part")) {
        std::error_code rm;
        if (fs::remove(it->path(), rm)) ++removed;
      }
    }
    ec.clear();
  }
  return removed;
}

Result<std::vector<UploadRecord>> UploadStore::list(std::int64_t user_id) {
  auto rows = db_.with_connection<std::vector<store::Row>>([&](store::Connection& c) {
    const store::Value params[] = {user_id};
    return c.query(std::string("SELECT ") + kColumns + " FROM uploads WHERE user_id = ? ORDER BY created_at DESC, id",
                   params);
  });
  if (!rows) return std::unexpected(rows.error());
  std::vector<UploadRecord> out;
  for (const auto& row : *rows) out.push_back(record_from(row));
  return out;
}

Result<UploadRecord> UploadStore::get(const std::string& id, std::int64_t user_id) {
  auto rows = db_.with_connection<std::vector<store::Row>>([&](store::Connection& c) {
    const store::Value params[] = {id, user_id};
    return c.query(std::string("SELECT ") + kColumns + " FROM uploads WHERE id = ? AND user_id = ?", params);
  });
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return std::unexpected(not_found());
  return record_from(rows->front());
}

Result<void> UploadStore::remove(const std::string& id, std::int64_t user_id) {
  auto rec = get(id, user_id);
  if (!rec) return std::unexpected(rec.error());
  auto deleted = db_.with_connection<store::ExecResult>([&](store::Connection& c) {
    const store::Value params[] = {id, user_id};
    return c.exec("DELETE FROM uploads WHERE id = ? AND user_id = ?", params);
  });
  if (!deleted) return std::unexpected(deleted.error());
  if (deleted->affected_rows == 0) return std::unexpected(not_found());  // deleted concurrently
  std::error_code ec;
  fs::remove(rec->path, ec);  // the row is gone: a leftover file is only disk space, never reachable
  return {};
}

Result<std::filesystem::path> UploadStore::path_of(const std::string& id, std::int64_t user_id) {
  auto rec = get(id, user_id);
  if (!rec) return std::unexpected(rec.error());
  return std::filesystem::path(rec->path);
}

}  // namespace llmd::uploads
