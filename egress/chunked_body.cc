#include "egress/chunked_body.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "egress/http_request.h"

namespace jcs::egress {
namespace {

using Step = ChunkedBody::Step;

Step Make(Step::Kind kind, uint64_t bytes) {
  Step s;
  s.kind = kind;
  s.bytes = bytes;
  return s;
}

Step Fail(std::string error) {
  Step s;
  s.kind = Step::Kind::kError;
  s.error = std::move(error);
  return s;
}

// Printable ASCII or HT: what a chunk extension or header value may hold.
bool IsFieldChar(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return (u >= 0x20 && u < 0x7f) || u == '\t';
}

// The line at the start of data without its CRLF; nullopt while no CRLF has
// arrived. A bare CR or LF inside it is reported through *bad.
std::optional<std::string_view> Line(std::string_view data, bool* bad) {
  const size_t crlf = data.find("\r\n");
  const std::string_view line =
      data.substr(0, crlf == std::string_view::npos ? data.size() : crlf);
  const size_t stray = line.find_first_of("\r\n");
  // A CR at the very end may be the first half of the CRLF.
  *bad = stray != std::string_view::npos &&
         !(crlf == std::string_view::npos && stray + 1 == data.size() &&
           data.back() == '\r');
  if (crlf == std::string_view::npos) return std::nullopt;
  return line;
}

}  // namespace

Step ChunkedBody::Next(std::string_view data) {
  switch (state_) {
    case State::kSize: {
      bool bad = false;
      std::optional<std::string_view> line = Line(data, &bad);
      if (bad) return Fail("chunk_size_line_malformed");
      if (!line.has_value()) {
        if (data.size() >= kMaxChunkLine)
          return Fail("chunk_size_line_too_long");
        return Make(Step::Kind::kNeedMore, 0);
      }
      if (line->size() + 2 > kMaxChunkLine) {
        return Fail("chunk_size_line_too_long");
      }
      size_t i = 0;
      uint64_t size = 0;
      while (i < line->size() &&
             absl::ascii_isxdigit(static_cast<unsigned char>((*line)[i]))) {
        if (i == 15) return Fail("chunk_size_too_large");
        const char c =
            absl::ascii_tolower(static_cast<unsigned char>((*line)[i]));
        size = size * 16 +
               static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        ++i;
      }
      if (i == 0) return Fail("chunk_size_malformed");
      std::string_view ext = line->substr(i);
      while (!ext.empty() && (ext.front() == ' ' || ext.front() == '\t')) {
        ext.remove_prefix(1);
      }
      if (!ext.empty()) {
        if (ext.front() != ';') return Fail("chunk_size_malformed");
        for (char c : ext) {
          if (!IsFieldChar(c)) return Fail("chunk_extension_malformed");
        }
      }
      chunk_ = size;
      state_ = size == 0 ? State::kTrailer : State::kData;
      return Make(Step::Kind::kFraming, line->size() + 2);
    }
    case State::kData:
      state_ = State::kDataEnd;
      return Make(Step::Kind::kData, chunk_);
    case State::kDataEnd:
      if (data.size() < 2) {
        if (!data.empty() && data[0] != '\r') {
          return Fail("chunk_data_not_followed_by_crlf");
        }
        return Make(Step::Kind::kNeedMore, 0);
      }
      if (data[0] != '\r' || data[1] != '\n') {
        return Fail("chunk_data_not_followed_by_crlf");
      }
      state_ = State::kSize;
      return Make(Step::Kind::kFraming, 2);
    case State::kTrailer: {
      bool bad = false;
      std::optional<std::string_view> line = Line(data, &bad);
      if (bad) return Fail("trailer_malformed");
      const size_t room = kMaxTrailerBytes - trailer_bytes_;
      if (!line.has_value()) {
        if (data.size() >= room) return Fail("trailer_too_large");
        return Make(Step::Kind::kNeedMore, 0);
      }
      if (line->size() + 2 > room) return Fail("trailer_too_large");
      if (line->empty()) {
        state_ = State::kDone;
        return Make(Step::Kind::kDone, 2);
      }
      const size_t colon = line->find(':');
      if (colon == 0 || colon == std::string_view::npos) {
        return Fail("trailer_malformed");
      }
      for (char c : line->substr(0, colon)) {
        if (!IsTokenChar(c)) return Fail("trailer_malformed");
      }
      for (char c : line->substr(colon + 1)) {
        if (!IsFieldChar(c)) return Fail("trailer_malformed");
      }
      trailer_bytes_ += line->size() + 2;
      return Make(Step::Kind::kFraming, line->size() + 2);
    }
    case State::kDone:
      break;
  }
  return Fail("chunked_body_already_complete");
}

}  // namespace jcs::egress
