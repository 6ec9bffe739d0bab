// Incremental decoder of an HTTP/1.1 chunked response body (RFC 9112 §7.1),
// for the model adapter's client: chunk sizes in hex (extensions ignored),
// trailers skipped. Bounded: a size line or trailer line over 4 KiB, or a
// chunk size over 2^40, is an error. Bytes may arrive split anywhere.
#ifndef JCS_RUNTIME_CONVERSATION_HTTP_CHUNKED_H_
#define JCS_RUNTIME_CONVERSATION_HTTP_CHUNKED_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace jcs::runtime::conversation {

class ChunkedDecoder {
 public:
  // Appends the decoded bytes of `in` to `*out`; the bytes after the end of
  // the body are left unread (the caller closes the connection anyway).
  absl::Status Feed(absl::string_view in, std::string* out);
  // The last chunk and the trailers have been read.
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  absl::Status SizeLine();

  State state_ = State::kSize;
  std::string line_;
  uint64_t remaining_ = 0;
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_HTTP_CHUNKED_H_
