// multipart/form-data (RFC 7578) without holding the body in memory: a
// streaming reader that hands each part's bytes over as they are scanned,
// and a builder for client requests. Both are plain byte code (no I/O
// threads involved); reading a large body blocks, so run it on the worker pool.
#pragma once

#include <functional>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llmd::http {

// The boundary parameter of a multipart/form-data Content-Type. Errors:
// kUnsupportedFormat "expected_multipart" when the type is something else,
// kInvalidArgument "invalid_multipart" when the boundary is missing or bad.
Result<std::string> multipart_boundary(std::string_view content_type);

struct PartHead {
  std::string name;                     // form field name
  std::optional<std::string> filename;  // present for file parts (raw, unsanitised)
  std::string content_type;             // "" when the part has none
};

struct MultipartLimits {
  std::size_t max_head_bytes = 16 * 1024;  // headers of one part
  std::size_t max_parts = 64;
};

// Reads a multipart body from `in` part by part: on_part(head) once per part,
// then on_data(bytes) for its content in pieces (possibly none for an empty
// part). A callback's error stops reading and is returned. Errors:
// kInvalidArgument "invalid_multipart" naming what is wrong (no opening
// boundary, unterminated headers, missing Content-Disposition name, body
// ending before the closing boundary, too many parts).
using OnPart = std::function<Result<void>(const PartHead& head)>;
using OnPartData = std::function<Result<void>(std::string_view data)>;
Result<void> read_multipart(std::istream& in, std::string_view boundary, const OnPart& on_part,
                            const OnPartData& on_data, const MultipartLimits& limits = {});

// Builds a multipart/form-data body in memory (small bodies: ASR requests).
class MultipartBuilder {
 public:
  MultipartBuilder();  // with a random boundary
  void add_field(std::string_view name, std::string_view value);
  void add_file(std::string_view name, std::string_view filename, std::string_view content_type, std::string_view data);
  // "multipart/form-data; boundary=..."
  std::string content_type() const;
  // The body with its closing boundary; the builder is spent afterwards.
  std::string finish();

 private:
  std::string boundary_;
  std::string body_;
};

}  // namespace llmd::http
