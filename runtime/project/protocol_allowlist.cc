#include "runtime/project/protocol_allowlist.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace jcs::runtime {

bool ProtocolAllowed(const std::vector<std::string>& allowlist,
                     absl::string_view protocol) {
  for (const std::string& entry : allowlist) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(entry);
    if (trimmed == "*" || absl::EqualsIgnoreCase(trimmed, protocol)) {
      return true;
    }
  }
  return false;
}

}  // namespace jcs::runtime
