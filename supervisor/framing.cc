#include "supervisor/framing.h"

#include "absl/strings/str_cat.h"

namespace jcs::supervisor {

std::string EncodeFrame(absl::string_view payload) {
  std::string out;
  uint64_t length = payload.size();
  do {
    uint8_t byte = length & 0x7f;
    length >>= 7;
    if (length != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (length != 0);
  out.append(payload.data(), payload.size());
  return out;
}

absl::Status FrameDecoder::ParseHeader() {
  uint64_t length = 0;
  size_t i = 0;
  for (; offset_ + i < buffer_.size(); ++i) {
    if (i == kMaxVarintBytes) {
      return absl::InvalidArgumentError(
          "frame header: length varint longer than 5 bytes");
    }
    const uint8_t byte = static_cast<uint8_t>(buffer_[offset_ + i]);
    length |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      if (length > max_frame_bytes_) {
        return absl::ResourceExhaustedError(
            absl::StrCat("frame of ", length, " bytes exceeds the limit of ",
                         max_frame_bytes_, " bytes"));
      }
      offset_ += i + 1;
      pending_length_ = static_cast<size_t>(length);
      return absl::OkStatus();
    }
  }
  if (i >= kMaxVarintBytes) {
    return absl::InvalidArgumentError(
        "frame header: length varint longer than 5 bytes");
  }
  return absl::OkStatus();  // header incomplete
}

absl::Status FrameDecoder::Append(absl::string_view bytes) {
  if (!status_.ok()) return status_;
  // Compact before growing so the buffer holds at most one frame in progress.
  if (offset_ > 0 && offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > (1 << 16) && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
  if (!pending_length_.has_value()) status_ = ParseHeader();
  return status_;
}

std::optional<std::string> FrameDecoder::Next() {
  if (!status_.ok()) return std::nullopt;
  if (!pending_length_.has_value()) {
    status_ = ParseHeader();
    if (!status_.ok() || !pending_length_.has_value()) return std::nullopt;
  }
  if (buffered() < *pending_length_) return std::nullopt;
  std::string payload = buffer_.substr(offset_, *pending_length_);
  offset_ += *pending_length_;
  pending_length_.reset();
  return payload;
}

}  // namespace jcs::supervisor
