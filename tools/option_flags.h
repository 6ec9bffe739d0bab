// The runtime options of a command line (`jcs project start`, `jcs mcp
// --root`): --options FILE (a JSON object) then each --opt KEY=VALUE, later
// ones winning; validated by the daemon.
#ifndef JCS_TOOLS_OPTION_FLAGS_H_
#define JCS_TOOLS_OPTION_FLAGS_H_

#include "absl/status/statusor.h"
#include "runtime/project/value.h"
#include "tools/flags.h"

namespace jcs::tools {

// Errors name the flag (and the file): "--opt: ...", "--options FILE: ...".
absl::StatusOr<runtime::OptionList> GatherOptions(const ParsedFlags& flags);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_OPTION_FLAGS_H_
