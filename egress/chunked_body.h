// Framing of a chunked HTTP/1.1 request body (RFC 9112 section 7.1), for the
// egress proxy's plain-HTTP tunnels: the proxy must find where a request's
// body ends to check the request after it, and forwards only framing it has
// checked. The chunk data itself is not looked at (the proxy splices it).
//
// Strictness: chunk-size is 1..15 hex digits; a chunk extension is ";"
// followed by printable ASCII or HT, after optional SP/HT; a size line is at
// most kMaxChunkLine bytes with its CRLF; chunk data is followed by CRLF; the
// trailer section is header lines (token ":" value, no control characters but
// HT) of at most kMaxTrailerBytes in all, ended by an empty line. Anything
// else -> kError with a one-word reason.
#ifndef JCS_EGRESS_CHUNKED_BODY_H_
#define JCS_EGRESS_CHUNKED_BODY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace jcs::egress {

inline constexpr size_t kMaxChunkLine = 1024;
inline constexpr size_t kMaxTrailerBytes = 8192;

class ChunkedBody {
 public:
  struct Step {
    enum class Kind {
      kNeedMore,  // the framing at the start of data is not complete yet
      kFraming,   // `bytes` bytes of checked framing (size line, CRLF,
                  // trailer line): forward them
      kData,      // the next `bytes` bytes of the stream are chunk data
      kDone,      // `bytes` bytes end the body (the empty line)
      kError,
    };
    Kind kind = Kind::kNeedMore;
    uint64_t bytes = 0;
    std::string error;  // kError
  };

  // Looks at the unconsumed stream from the decoder's position. The caller
  // consumes (forwards) exactly `bytes` bytes after kFraming, kData and
  // kDone, and calls Next again with the bytes after them.
  Step Next(std::string_view data);

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  uint64_t chunk_ = 0;
  size_t trailer_bytes_ = 0;
};

}  // namespace jcs::egress

#endif  // JCS_EGRESS_CHUNKED_BODY_H_
