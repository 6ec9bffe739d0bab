// UTF-8 checks for asset text: what becomes JSON must be valid UTF-8
// (nlohmann::json throws when it serializes anything else).
#ifndef JCS_RUNTIME_ASSETS_UTF8_H_
#define JCS_RUNTIME_ASSETS_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace jcs::runtime::assets {

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsValidUtf8(absl::string_view bytes);

// The bytes with each invalid UTF-8 byte written as \xNN (for naming a file
// whose name is not UTF-8 in an error).
std::string EscapeNonUtf8(absl::string_view bytes);

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_UTF8_H_
