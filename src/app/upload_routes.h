// /api/v1/uploads (SPEC §4.4): multipart uploads streamed to disk, listed
// and deleted by their owner only.
#pragma once

#include <cstdint>
#include <filesystem>

#include "app/upload_store.h"
#include "http/router.h"
#include "http/server.h"
#include "http/worker_pool.h"
#include "observe/log.h"

namespace llmd::app {

struct UploadDeps {
  UploadStore& uploads;
  http::WorkerPool& pool;
  observe::Logger log;
};

// POST /api/v1/uploads -> 201 {upload_id, size, sha256, name, content_type,
// created_at}; GET /api/v1/uploads -> {uploads: [...]}; GET and DELETE
// /api/v1/uploads/{id} (another user's id -> 404).
void add_upload_routes(http::Router& router, UploadDeps deps);

// The server's body policy for uploads: POST /api/v1/uploads is streamed into
// a temporary file in `spool_dir` (at most `max_bytes`, multipart framing
// included); without an Authorization header it is refused with 401 before
// any of the body is read. Every other request keeps the in-memory body.
http::BodyPolicy upload_body_policy(std::filesystem::path spool_dir, std::uint64_t max_bytes);

}  // namespace llmd::app
