// Uploaded files (SPEC §4.4 uploads): a multipart body spooled by the server
// becomes one file in uploads.dir under a random name (sha256 computed while
// writing, fsync, atomic rename) and one `uploads` row. The file part is
// extracted in place (the body file becomes the stored file), so an upload
// never takes twice its size on disk. Each user's uploads together stay
// within the store's quota (uploads.quota_bytes_per_user). The client's file
// name is kept only as metadata. Every lookup is by id AND owner: another
// user's upload id is indistinguishable from a missing one (kNotFound).
//
// Thread-safety: all methods are thread-safe and block (file and database
// I/O): call them on the worker pool.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "store/database.h"

namespace llmd::uploads {

struct UploadRecord {
  std::string id;  // random, 32 hex digits
  std::int64_t user_id = 0;
  std::string path;           // absolute path of the stored file
  std::string original_name;  // sanitised, <= 255 bytes of valid UTF-8; may be empty
  std::string content_type;   // as the client declared it for the part (sanitised)
  std::int64_t size = 0;
  std::string sha256;           // lower-case hex
  std::int64_t created_at = 0;  // unix seconds
};

class UploadStore {
 public:
  // `dir` is created when missing (and made absolute). quota_bytes_per_user:
  // what one user's uploads may take together; 0 = no limit.
  UploadStore(store::Database& db, std::filesystem::path dir, std::uint64_t quota_bytes_per_user = 0);

  // Stores the `file` part of the multipart/form-data body in `body` (a
  // file on the same file system as dir(), e.g. in spool_dir(); read
  // streaming and rewritten in place: on success it has become the stored
  // file, moved not copied; on failure its content is undefined and its
  // owner removes it) for `user_id`. A `name` field, when present,
  // overrides the part's filename as the original name; other fields are
  // ignored. Errors: kUnsupportedFormat (not multipart/form-data),
  // kInvalidArgument "invalid_multipart" / "missing_file" (nothing written),
  // kTooLarge "upload_quota_exceeded" (past the quota: nothing stored),
  // kUnavailable when the disk or database fails.
  Result<UploadRecord> save_multipart(std::int64_t user_id, const std::filesystem::path& body,
                                      std::string_view content_type);

  // How many more bytes `user_id` may store (max when there is no quota).
  Result<std::uint64_t> room_left(std::int64_t user_id);
  std::uint64_t quota_bytes() const { return quota_; }
  // The error for an upload past the quota (413 "upload_quota_exceeded").
  static Error quota_error(std::uint64_t quota_bytes);

  // The caller's uploads, newest first.
  Result<std::vector<UploadRecord>> list(std::int64_t user_id);
  // One upload of the caller. Errors: kNotFound "upload_not_found".
  Result<UploadRecord> get(const std::string& id, std::int64_t user_id);
  // Removes the row and the file. Errors: kNotFound "upload_not_found".
  Result<void> remove(const std::string& id, std::int64_t user_id);

  // For subtitle jobs: the stored file of upload `id` owned by `user_id`.
  // Errors: kNotFound "upload_not_found".
  Result<std::filesystem::path> path_of(const std::string& id, std::int64_t user_id);

  // Where the server spools upload bodies: `<dir>/.incoming`.
  std::filesystem::path spool_dir() const { return dir_ / ".incoming"; }

  // Removes partial files a crash left behind (spooled bodies, unfinished
  // writes). Call once at start, before serving. Returns how many went.
  std::size_t remove_partial_files();

  const std::filesystem::path& dir() const { return dir_; }

 private:
  store::Database& db_;
  std::filesystem::path dir_;
  std::uint64_t quota_ = 0;
};

// A client-supplied file name made safe to store and show: the last path
// component only, control characters and invalid UTF-8 dropped, trimmed,
// cut to at most 255 bytes on a character boundary.
std::string sanitize_file_name(std::string_view name);

}  // namespace llmd::uploads
