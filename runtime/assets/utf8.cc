#include "runtime/assets/utf8.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace jcs::runtime::assets {

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string EscapeNonUtf8(absl::string_view bytes) {
  if (IsValidUtf8(bytes)) return std::string(bytes);
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    // The longest valid sequence starting here (1..4 bytes), else escape.
    size_t len = 0;
    for (size_t l = 1; l <= 4 && i + l <= bytes.size(); ++l) {
      if (IsValidUtf8(bytes.substr(i, l))) {
        len = l;
        break;
      }
    }
    if (len == 0) {
      absl::StrAppendFormat(&out, "\\x%02X",
                            static_cast<unsigned char>(bytes[i]));
      ++i;
    } else {
      absl::StrAppend(&out, bytes.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace jcs::runtime::assets
