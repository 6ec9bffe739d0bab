#include "egress/chunked_body.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::egress {
namespace {

using Kind = ChunkedBody::Step::Kind;

// Runs the decoder over `body` as the proxy does (consuming what each step
// says) and returns the steps as "F3 D5 F2 ... E2" or "N" / "X:error".
std::string Steps(const std::string& body) {
  ChunkedBody d;
  std::string out;
  std::string_view rest = body;
  for (int i = 0; i < 10000; ++i) {
    ChunkedBody::Step s = d.Next(rest);
    if (!out.empty()) out += " ";
    switch (s.kind) {
      case Kind::kNeedMore:
        return out + "N";
      case Kind::kError:
        return out + "X:" + s.error;
      case Kind::kFraming:
        out += "F" + std::to_string(s.bytes);
        break;
      case Kind::kData:
        out += "D" + std::to_string(s.bytes);
        break;
      case Kind::kDone:
        return out + "E" + std::to_string(s.bytes);
    }
    if (s.bytes > rest.size()) return out + " N";  // data still to come
    rest.remove_prefix(static_cast<size_t>(s.bytes));
  }
  return out + " LOOP";
}

TEST(ChunkedBodyTest, ValidBodies) {
  EXPECT_EQ(Steps("5\r\nhello\r\n0\r\n\r\n"), "F3 D5 F2 F3 E2");
  EXPECT_EQ(Steps("0\r\n\r\n"), "F3 E2");
  EXPECT_EQ(Steps("A;name=v \r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n"),
            "F11 D10 F2 F3 F10 E2");
  EXPECT_EQ(Steps("1 ;x\r\nz\r\n0\r\n\r\n"), "F6 D1 F2 F3 E2");
  EXPECT_EQ(Steps("fFfFfFfFfFfFfFf\r\n"), "F17 D1152921504606846975 N");
}

TEST(ChunkedBodyTest, Partial) {
  EXPECT_EQ(Steps(""), "N");
  EXPECT_EQ(Steps("5"), "N");
  EXPECT_EQ(Steps("5\r"), "N");
  EXPECT_EQ(Steps("5\r\nhel"), "F3 D5 N");
  EXPECT_EQ(Steps("5\r\nhello"), "F3 D5 N");
  EXPECT_EQ(Steps("5\r\nhello\r"), "F3 D5 N");
  EXPECT_EQ(Steps("0\r\nX: 1"), "F3 N");
}

TEST(ChunkedBodyTest, Malformed) {
  EXPECT_EQ(Steps("\r\n"), "X:chunk_size_malformed");
  EXPECT_EQ(Steps("-5\r\n"), "X:chunk_size_malformed");
  EXPECT_EQ(Steps("5x\r\n"), "X:chunk_size_malformed");
  EXPECT_EQ(Steps("5\n"), "X:chunk_size_line_malformed");
  EXPECT_EQ(Steps("5\rx\r\n"), "X:chunk_size_line_malformed");
  EXPECT_EQ(Steps("5;\x01\r\n"), "X:chunk_extension_malformed");
  EXPECT_EQ(Steps("1000000000000000\r\n"), "X:chunk_size_too_large");
  EXPECT_EQ(Steps("5\r\nhelloXY"), "F3 D5 X:chunk_data_not_followed_by_crlf");
  EXPECT_EQ(Steps("5\r\nhelloX"), "F3 D5 X:chunk_data_not_followed_by_crlf");
  EXPECT_EQ(Steps("0\r\nbad trailer\r\n\r\n"), "F3 X:trailer_malformed");
  EXPECT_EQ(Steps("0\r\n: v\r\n\r\n"), "F3 X:trailer_malformed");
  EXPECT_EQ(Steps("0\r\nX: \x7f\r\n\r\n"), "F3 X:trailer_malformed");
  // Anything after a chunk that is not a chunk: another protocol.
  EXPECT_EQ(Steps("5\r\nhello\r\nSSH-2.0-OpenSSH\r\n"),
            "F3 D5 F2 X:chunk_size_malformed");
}

TEST(ChunkedBodyTest, Bounds) {
  EXPECT_EQ(Steps("5;" + std::string(kMaxChunkLine, 'e')),
            "X:chunk_size_line_too_long");
  EXPECT_EQ(Steps("5;" + std::string(kMaxChunkLine, 'e') + "\r\n"),
            "X:chunk_size_line_too_long");
  std::string trailers = "0\r\n";
  for (size_t i = 0; i * 10 < kMaxTrailerBytes; ++i)
    trailers += "X: 123456\r\n";
  const std::string steps = Steps(trailers + "\r\n");
  EXPECT_EQ(steps.substr(steps.size() - 19), "X:trailer_too_large") << steps;
}

}  // namespace
}  // namespace jcs::egress
