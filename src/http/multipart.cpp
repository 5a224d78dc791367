#include "http/multipart.h"

#include <random>

#include "core/text.h"

namespace llmd::http {
namespace {

using text::to_lower;
using text::trim;

constexpr std::size_t kReadChunk = 64 * 1024;

std::unexpected<Error> invalid(const std::string& what) {
  return fail(ErrorCode::kInvalidArgument, "malformed multipart body: " + what, "invalid_multipart");
}

// RFC 2046 boundary characters.
bool valid_boundary(std::string_view b) {
  if (b.empty() || b.size() > 70 || b.back() == ' ') return false;
  for (char c : b) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Value of parameter `key` in a header value like `form-data; name="a"; filename="b.mp4"`.
std::optional<std::string> header_param(std::string_view value, std::string_view key) {
  std::size_t pos = 0;
  while (pos < value.size()) {
    const auto semi = value.find(';', pos);
    if (semi == std::string_view::npos) return std::nullopt;
    pos = semi + 1;
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
    const auto eq = value.find('=', pos);
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string name = to_lower(trim(value.substr(pos, eq - pos)));
    pos = eq + 1;
    std::string v;
    if (pos < value.size() && value[pos] == '"') {
      ++pos;
      while (pos < value.size() && value[pos] != '"') {
        if (value[pos] == '\\' && pos + 1 < value.size()) ++pos;
        v.push_back(value[pos++]);
      }
      ++pos;  // closing quote
    } else {
      const auto end = value.find(';', pos);
      v = std::string(trim(value.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)));
      pos = end == std::string_view::npos ? value.size() : end;
    }
    if (name == key) return v;
  }
  return std::nullopt;
}

Result<PartHead> parse_part_head(std::string_view block) {
  PartHead head;
  bool disposition = false;
  while (!block.empty()) {
    const auto eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return invalid("a part header line without ':'");
    const std::string name = to_lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      if (to_lower(trim(value.substr(0, value.find(';')))) != "form-data") {
        return invalid("Content-Disposition is not form-data");
      }
      auto n = header_param(value, "name");
      if (!n) return invalid("a part without a name");
      head.name = std::move(*n);
      head.filename = header_param(value, "filename");
      disposition = true;
    } else if (name == "content-type") {
      head.content_type = std::string(value);
    }
  }
  if (!disposition) return invalid("a part without Content-Disposition");
  return head;
}

// Reads more of `in` onto `buf`; false at end of input.
bool fill(std::istream& in, std::string& buf) {
  const std::size_t old = buf.size();
  buf.resize(old + kReadChunk);
  // A short read sets eof/fail although a stream may have more later
  // (pipes, chunked sources): clear and ask again; a real end reads 0.
  in.clear();
  in.read(buf.data() + old, static_cast<std::streamsize>(kReadChunk));
  const auto got = static_cast<std::size_t>(in.gcount());
  buf.resize(old + got);
  return got > 0;
}

}  // namespace

Result<std::string> multipart_boundary(std::string_view content_type) {
  const std::string type = to_lower(trim(content_type.substr(0, content_type.find(';'))));
  if (type != "multipart/form-data") {
    return fail(ErrorCode::kUnsupportedFormat, "expected a multipart/form-data body", "expected_multipart");
  }
  auto b = header_param(content_type, "boundary");
  if (!b || !valid_boundary(*b)) return invalid("missing or invalid boundary parameter");
  return *b;
}

Result<void> read_multipart(std::istream& in, std::string_view boundary, const OnPart& on_part,
                            const OnPartData& on_data, const MultipartLimits& limits) {
  const std::string opening = "--" + std::string(boundary);
  const std::string delimiter = "\r\n" + opening;
  std::string buf;
  std::size_t pos = 0;  // scan position in buf
  // Makes at least `n` bytes available after pos; false at end of input.
  auto need = [&](std::size_t n) {
    while (buf.size() - pos < n) {
      if (pos > 0) {
        buf.erase(0, pos);
        pos = 0;
      }
      if (!fill(in, buf)) return false;
    }
    return true;
  };

  // The opening boundary: at the very start, or after a preamble line.
  for (;;) {
    if (!need(opening.size())) return invalid("no opening boundary");
    if (buf.compare(pos, opening.size(), opening) == 0 && (pos == 0 || buf.compare(pos - 2, 2, "\r\n") == 0)) {
      pos += opening.size();
      break;
    }
    const auto at = buf.find(delimiter, pos);
    if (at != std::string::npos) {
      pos = at + 2;
      continue;
    }
    if (buf.size() > 64 * 1024) return invalid("no opening boundary");  // a preamble this long is not a form
    if (!fill(in, buf)) return invalid("no opening boundary");
  }

  std::size_t parts = 0;
  for (;;) {
    // After a boundary: "--" ends the body, otherwise CRLF starts a part
    // (transport padding of spaces/tabs allowed before it).
    if (!need(2)) return invalid("body ends after a boundary");
    if (buf.compare(pos, 2, "--") == 0) return {};
    while (need(1) && (buf[pos] == ' ' || buf[pos] == '\t')) ++pos;
    if (!need(2) || buf.compare(pos, 2, "\r\n") != 0) return invalid("a boundary not followed by CRLF");
    pos += 2;
    if (++parts > limits.max_parts) return invalid("too many parts");

    // Part headers up to the empty line (a part may have none at all).
    std::size_t head_end;
    for (;;) {
      if (buf.compare(pos, 2, "\r\n") == 0 && buf.size() - pos >= 2) {
        head_end = pos;
        break;
      }
      head_end = buf.find("\r\n\r\n", pos);
      if (head_end != std::string::npos) {
        head_end += 2;
        break;
      }
      if (buf.size() - pos > limits.max_head_bytes) return invalid("part headers too long");
      if (!need(buf.size() - pos + 1)) return invalid("unterminated part headers");
    }
    if (head_end - pos > limits.max_head_bytes) return invalid("part headers too long");
    auto head = parse_part_head(std::string_view(buf).substr(pos, head_end - pos));
    if (!head) return std::unexpected(head.error());
    pos = head_end + 2;
    LLMD_TRY(on_part(*head));

    // Content up to the next CRLF--boundary; hold back a possible partial
    // delimiter at the end of the buffer.
    for (;;) {
      const auto at = buf.find(delimiter, pos);
      if (at != std::string::npos) {
        if (at > pos) LLMD_TRY(on_data(std::string_view(buf).substr(pos, at - pos)));
        pos = at + delimiter.size();
        break;
      }
      const std::size_t safe = buf.size() - pos > delimiter.size() ? buf.size() - pos - (delimiter.size() - 1) : 0;
      if (safe > 0) {
        LLMD_TRY(on_data(std::string_view(buf).substr(pos, safe)));
        pos += safe;
      }
      if (!need(buf.size() - pos + 1)) return invalid("body ends inside a part (no closing boundary)");
    }
  }
}

MultipartBuilder::MultipartBuilder() {
  std::random_device rd;
  static constexpr char kAlnum[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  boundary_ = "llmd-";
  for (int i = 0; i < 24; ++i) boundary_.push_back(kAlnum[rd() % 62]);
}

namespace {
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\r' || c == '\n') continue;
    out.push_back(c);
  }
  return out + "\"";
}
}  // namespace

void MultipartBuilder::add_field(std::string_view name, std::string_view value) {
  body_ += "--" + boundary_ + "\r\nContent-Disposition: form-data; name=" + quoted(name) + "\r\n\r\n";
  body_ += value;
  body_ += "\r\n";
}

void MultipartBuilder::add_file(std::string_view name, std::string_view filename, std::string_view content_type,
                                std::string_view data) {
  body_ += "--" + boundary_ + "\r\nContent-Disposition: form-data; name=" + quoted(name) +
           "; filename=" + quoted(filename) + "\r\nContent-Type: " + std::string(content_type) + "\r\n\r\n";
  body_ += data;
  body_ += "\r\n";
}

std::string MultipartBuilder::content_type() const { return "multipart/form-data; boundary=" + boundary_; }

std::string MultipartBuilder::finish() {
  body_ += "--" + boundary_ + "--\r\n";
  return std::move(body_);
}

}  // namespace llmd::http
