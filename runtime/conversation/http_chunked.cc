#include "runtime/conversation/http_chunked.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace jcs::runtime::conversation {
namespace {

constexpr size_t kMaxLine = 4096;
constexpr uint64_t kMaxChunk = uint64_t{1} << 40;

absl::Status Bad(absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("llm_malformed_response: chunked body: ", what));
}

}  // namespace

absl::Status ChunkedDecoder::SizeLine() {
  absl::string_view line = line_;
  line = line.substr(0, line.find(';'));  // chunk extensions
  line = absl::StripAsciiWhitespace(line);
  if (line.empty()) return Bad("empty chunk size");
  uint64_t size = 0;
  for (char c : line) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return Bad("chunk size is not hexadecimal");
    }
    size = size * 16 + digit;
    if (size > kMaxChunk) return Bad("chunk size too large");
  }
  remaining_ = size;
  state_ = size == 0 ? State::kTrailer : State::kData;
  return absl::OkStatus();
}

absl::Status ChunkedDecoder::Feed(absl::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size() && state_ != State::kDone) {
    if (state_ == State::kData) {
      size_t take = std::min<uint64_t>(remaining_, in.size() - i);
      out->append(in.data() + i, take);
      i += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDataEnd;
      continue;
    }
    // Line-oriented states: collect up to '\n'.
    char c = in[i++];
    if (c != '\n') {
      if (line_.size() >= kMaxLine) return Bad("line too long");
      line_.push_back(c);
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    switch (state_) {
      case State::kSize:
        if (absl::Status s = SizeLine(); !s.ok()) return s;
        break;
      case State::kDataEnd:
        if (!line_.empty()) return Bad("missing CRLF after chunk data");
        state_ = State::kSize;
        break;
      case State::kTrailer:
        if (line_.empty()) state_ = State::kDone;
        break;
      default:
        break;
    }
    line_.clear();
  }
  return absl::OkStatus();
}

}  // namespace jcs::runtime::conversation
