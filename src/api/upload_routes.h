// /api/v1/uploads (SPEC §4.4): multipart uploads streamed to disk, listed
// and deleted by their owner only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "auth/limiter.h"
#include "auth/service.h"
#include "config/config.h"
#include "http/router.h"
#include "http/server.h"
#include "http/worker_pool.h"
#include "observe/log.h"
#include "tasks/uploads/upload_store.h"

namespace llmd::api {

struct UploadDeps {
  uploads::UploadStore& uploads;
  http::WorkerPool& pool;
  observe::Logger log;
};

// POST /api/v1/uploads -> 201 {upload_id, size, sha256, name, content_type,
// created_at}; GET /api/v1/uploads -> {uploads: [...]}; GET and DELETE
// /api/v1/uploads/{id} (another user's id -> 404).
void add_upload_routes(http::Router& router, UploadDeps deps);

struct UploadPolicyDeps {
  uploads::UploadStore& uploads;
  auth::AuthService& auth;
  auth::RateLimiter& limiter;
  config::LimitsConfig limits;
  http::WorkerPool& pool;
  std::vector<std::string> allowed_hosts;  // server.allowed_hosts
  std::uint64_t max_bytes = 0;             // uploads.max_bytes, multipart framing included
};

// The server's body policy for uploads: POST /api/v1/uploads is streamed into
// a temporary file in the store's spool dir (at most max_bytes, and no more
// than the caller's storage quota leaves room for) once its head checks out:
// the Host header, the credentials (a failure counts against the address
// like any other, see authenticate_counting_failures) and the quota are
// checked before any of the body is read (401/403/413/429 at once). Every
// other request keeps the in-memory body.
http::BodyPolicy upload_body_policy(UploadPolicyDeps deps);

}  // namespace llmd::api
