// The streaming multipart/form-data reader and the builder.
#include "http/multipart.h"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

namespace llmd::http {
namespace {

struct Part {
  PartHead head;
  std::string data;
  int pieces = 0;
};

// Reads `body` through a stream buffer that hands out at most `chunk`
// bytes per read, so delimiters straddle reads.
class ChunkedBuf : public std::streambuf {
 public:
  ChunkedBuf(std::string data, std::size_t chunk) : data_(std::move(data)), chunk_(chunk) {}

 protected:
  std::streamsize xsgetn(char* s, std::streamsize n) override {
    const auto take = std::min<std::size_t>({static_cast<std::size_t>(n), chunk_, data_.size() - pos_});
    std::copy_n(data_.data() + pos_, take, s);
    pos_ += take;
    return static_cast<std::streamsize>(take);
  }
  int_type underflow() override {
    return pos_ < data_.size() ? traits_type::to_int_type(data_[pos_]) : traits_type::eof();
  }

 private:
  std::string data_;
  std::size_t chunk_;
  std::size_t pos_ = 0;
};

Result<std::vector<Part>> read_all(const std::string& body, const std::string& boundary, std::size_t chunk = 1 << 20) {
  ChunkedBuf buf(body, chunk);
  std::istream in(&buf);
  std::vector<Part> parts;
  auto r = read_multipart(
      in, boundary,
      [&](const PartHead& h) -> Result<void> {
        parts.push_back(Part{h, "", 0});
        return {};
      },
      [&](std::string_view d) -> Result<void> {
        parts.back().data.append(d);
        ++parts.back().pieces;
        return {};
      });
  if (!r) return std::unexpected(r.error());
  return parts;
}

TEST(Multipart, BoundaryComesFromTheContentType) {
  auto b = multipart_boundary("multipart/form-data; boundary=abc123");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, "abc123");
  auto quoted = multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\"");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(*quoted, "a b:c");
  auto json = multipart_boundary("application/json");
  ASSERT_FALSE(json);
  EXPECT_EQ(json.error().code, ErrorCode::kUnsupportedFormat);
  auto none = multipart_boundary("multipart/form-data");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().reason, "invalid_multipart");
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'x')));
}

TEST(Multipart, BuilderOutputReadsBackAcrossEveryChunkSize) {
  MultipartBuilder b;
  std::string binary;
  for (int i = 0; i < 3000; ++i) binary.push_back(static_cast<char>(i * 31));
  binary += "\r\n--";  // looks like the start of a delimiter, but is data
  b.add_field("name", "Clip \"one\".mp4");
  b.add_file("file", "a\"b.wav", "audio/wav", binary);
  b.add_field("empty", "");
  const std::string boundary = b.content_type().substr(b.content_type().find('=') + 1);
  const std::string body = b.finish();
  for (std::size_t chunk : {1u, 2u, 7u, 64u, 1000u, 1u << 20}) {
    auto parts = read_all(body, boundary, chunk);
    ASSERT_TRUE(parts) << chunk << ": " << parts.error().message;
    ASSERT_EQ(parts->size(), 3u) << chunk;
    EXPECT_EQ((*parts)[0].head.name, "name");
    EXPECT_EQ((*parts)[0].data, "Clip \"one\".mp4");
    EXPECT_FALSE((*parts)[0].head.filename);
    EXPECT_EQ((*parts)[1].head.name, "file");
    EXPECT_EQ((*parts)[1].head.filename.value_or("-"), "a\"b.wav");
    EXPECT_EQ((*parts)[1].head.content_type, "audio/wav");
    EXPECT_EQ((*parts)[1].data, binary) << chunk;
    EXPECT_EQ((*parts)[2].data, "");
  }
}

TEST(Multipart, PreambleAndEpilogueAreIgnored) {
  const std::string body =
      "this is a preamble\r\n--XyZ\r\ncontent-disposition: form-data; name=a\r\n\r\nvalue\r\n--XyZ--\r\nepilogue";
  auto parts = read_all(body, "XyZ");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].head.name, "a");
  EXPECT_EQ((*parts)[0].data, "value");
}

TEST(Multipart, LargePartIsHandedOverInPieces) {
  const std::string big(3 * 1024 * 1024, 'q');
  const std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n" + big + "\r\n--B--\r\n";
  auto parts = read_all(body, "B");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data.size(), big.size());
  EXPECT_GT((*parts)[0].pieces, 10);  // never the whole part at once
}

TEST(Multipart, MalformedBodiesAreRefused) {
  const std::vector<std::string> bad = {
      "",                                                                    // nothing
      "no boundary here at all",                                             // no opening boundary
      "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated",   // no closing boundary
      "--B\r\nContent-Disposition: form-data; name=a\r\n",                   // headers never end
      "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--",                   // no Content-Disposition
      "--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",             // no name
      "--B\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--B--",    // not form-data
      "--B\r\nbroken header\r\n\r\nx\r\n--B--",                              // header without ':'
      "--Bxyz\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--",  // boundary glued to text
      "--B",                                                                 // ends after boundary
  };
  for (const auto& body : bad) {
    auto parts = read_all(body, "B");
    ASSERT_FALSE(parts) << body;
    EXPECT_EQ(parts.error().code, ErrorCode::kInvalidArgument) << body;
    EXPECT_EQ(parts.error().reason, "invalid_multipart") << body;
  }
}

TEST(Multipart, TooManyPartsAndHugeHeadersAreRefused) {
  std::string many;
  for (int i = 0; i < 100; ++i) many += "--B\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n";
  many += "--B--\r\n";
  EXPECT_FALSE(read_all(many, "B"));
  const std::string huge =
      "--B\r\nX-Long: " + std::string(20000, 'h') + "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--";
  EXPECT_FALSE(read_all(huge, "B"));
}

TEST(Multipart, CallbackErrorStopsReading) {
  std::istringstream in("--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--");
  auto r = read_multipart(
      in, "B", [](const PartHead&) -> Result<void> { return fail(ErrorCode::kTooLarge, "stop"); },
      [](std::string_view) -> Result<void> { return {}; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
}

}  // namespace
}  // namespace llmd::http
