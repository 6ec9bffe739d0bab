// The protocol_allowlist runtime option (issue 15): which agent-facing
// protocols (mcp, a2a) may reach a project. Entries are matched trimmed and
// case-insensitively ("MCP" allows mcp); "*" allows every protocol. The
// option keeps the raw entries (diagnostics show them as given).
#ifndef JCS_RUNTIME_PROJECT_PROTOCOL_ALLOWLIST_H_
#define JCS_RUNTIME_PROJECT_PROTOCOL_ALLOWLIST_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace jcs::runtime {

// Whether `protocol` (lower case, e.g. "mcp") is allowed by `allowlist`.
bool ProtocolAllowed(const std::vector<std::string>& allowlist,
                     absl::string_view protocol);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_PROJECT_PROTOCOL_ALLOWLIST_H_
