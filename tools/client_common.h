// Helpers shared by the client commands (project, tool, diagnostics, ping,
// events, ...): flag-table parsing with --help, the exit codes, and reading
// JSON arguments from the command line, a file or stdin.
#ifndef JCS_TOOLS_CLIENT_COMMON_H_
#define JCS_TOOLS_CLIENT_COMMON_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tools/flags.h"

namespace jcs::tools {

inline constexpr int kExitFailed = 1;  // the daemon or the call failed
inline constexpr int kExitUsage = 2;   // a bad command line

// Parses `args` against `spec`. Returns nullopt when the command is done:
// --help printed the usage on stdout (*exit_code 0), or a bad flag printed
// the error and the usage on stderr (*exit_code 2).
std::optional<ParsedFlags> ParseOrExit(const CommandSpec& spec,
                                       const std::vector<std::string>& args,
                                       int* exit_code);

// "jcs NAME: ERROR" and the usage on stderr; returns 2.
int UsageError(const CommandSpec& spec, const std::string& error);
// "jcs NAME: MESSAGE" on stderr; returns 1.
int Fail(const std::string& name, const absl::Status& status);

// A command with subcommands: `jcs GROUP [--help]` lists every
// subcommand's usage. Returns the spec named `sub`, or nullptr after
// printing (help: stdout and *exit_code 0; else stderr and 2).
const CommandSpec* PickSubcommand(const std::string& group,
                                  const std::vector<CommandSpec>& subs,
                                  const std::vector<std::string>& args,
                                  int* exit_code);

// Parses `text` as JSON; a syntax error names `what`, the line and column
// (1-based) and the parser's reason: "--args: invalid JSON at line 2, column
// 5: ...".
absl::StatusOr<nlohmann::json> ParseJsonText(const std::string& what,
                                             const std::string& text);

// A JSON-valued flag: "@FILE" reads FILE, "-" reads stdin, anything else is
// the JSON text itself.
absl::StatusOr<std::string> ReadJsonSource(const std::string& flag,
                                           const std::string& value);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_CLIENT_COMMON_H_
