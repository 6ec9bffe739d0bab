// Length-delimited framing of the control API: each frame is a varint32 length
// followed by that many bytes of one serialized protobuf message (the format
// of protobuf's writeDelimitedTo / parseDelimitedFrom). Frames are size-capped:
// a peer cannot make the supervisor buffer more than `max_frame_bytes` plus one
// header per connection.
#ifndef JCS_SUPERVISOR_FRAMING_H_
#define JCS_SUPERVISOR_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jcs::supervisor {

inline constexpr size_t kDefaultMaxFrameBytes = 4 << 20;
inline constexpr size_t kMaxVarintBytes = 5;

// Prepends the varint length of `payload`.
std::string EncodeFrame(absl::string_view payload);

// Incremental decoder: feed it whatever the socket returned, take whole frames
// out. After an error the stream is unusable (the connection must be closed):
// the error says what was wrong (oversized, malformed length). A reader that
// appends one bounded chunk at a time and drains every complete frame after
// each Append holds at most one partial frame (<= the cap) plus one chunk.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  // Appends bytes; fails (and latches the failure) when the frame being read
  // declares a length above the cap or a length varint is malformed. Frames
  // after the first are checked as Next() reaches them.
  absl::Status Append(absl::string_view bytes);

  // The next complete frame's payload, or nullopt when more bytes are needed.
  std::optional<std::string> Next();

  // Bytes buffered and not yet returned (never more than the cap + a header).
  size_t buffered() const { return buffer_.size() - offset_; }
  // A frame has begun and is not complete (after draining with Next(): some
  // of a header, or a header and part of its payload, came).
  bool mid_frame() const {
    return pending_length_.has_value() || buffered() > 0;
  }
  const absl::Status& status() const { return status_; }

 private:
  absl::Status ParseHeader();

  size_t max_frame_bytes_;
  std::string buffer_;
  size_t offset_ = 0;
  std::optional<size_t>
      pending_length_;  // payload length of the frame at offset_
  absl::Status status_;
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_FRAMING_H_
