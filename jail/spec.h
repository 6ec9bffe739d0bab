// `jcs run` invocation parsing: flags and `--config` files both fill one
// proto::JailSpec (the schema), flags override the file, then defaults are
// applied and the whole spec is validated.
#ifndef JCS_JAIL_SPEC_H_
#define JCS_JAIL_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

struct RunInvocation {
  proto::JailSpec spec;
  std::string config_path;  // --config
  std::string report_path;  // --report ("-" = stderr)
  int report_fd = -1;       // --report-fd
  bool quiet = false;       // --quiet / -q: no jcs: notes
  bool tty = false;         // --tty / -t: a pseudo-terminal for the program
  bool print_config = false;
  bool help = false;
  // --daemon[=SOCKET]: run through a daemon's warm jails (tools/
  // run_daemon_client.h). The socket: --daemon's value, else $JCS_SOCKET,
  // else /run/jcs/jcs.sock.
  bool daemon = false;
  std::string daemon_socket;  // "" unless --daemon=SOCKET
  // --daemon-fallback: a cold run when no daemon run can start (no daemon
  // listening, daemon runs switched off); never after the daemon refused the
  // spec.
  bool daemon_fallback = false;
};

// Parses `jcs run` arguments (without the leading "run"). Loads --config first,
// then applies the flags on top. Does not apply defaults or validate the result
// (see Finalize).
absl::StatusOr<RunInvocation> ParseRunArgs(
    const std::vector<std::string>& args);

// Parses a JailSpec in protobuf text format; errors carry
// "<path>:<line>:<column>: <message>".
absl::StatusOr<proto::JailSpec> ParseSpecText(absl::string_view text,
                                              absl::string_view path);

// Fills every unset field with its documented default, resolves --root to a
// canonical absolute path, derives uid/gid, and validates everything. Returns
// the effective spec plus warnings (for the report) or the first error, which
// names the field and what was expected.
struct FinalSpec {
  proto::JailSpec spec;
  std::vector<std::string> warnings;
};
// `require_program` false: an empty argv is accepted (--print-config).
absl::StatusOr<FinalSpec> Finalize(const proto::JailSpec& in,
                                   const std::string& cwd,
                                   bool require_program = true);

// The host directories every jail binds read-only by default (system_ro).
std::vector<std::string> DefaultSystemDirs();

// The effective spec in text format, as --print-config prints it.
std::string FormatSpec(const proto::JailSpec& spec);

// Help text generated from the flag table.
std::string RunUsage();

// "512M" -> 536870912. Units K, M, G, T, each alone or followed by B or iB
// (all powers of 1024), case-insensitive; plain digits are bytes. Errors name
// `what`. ("unlimited" is the caller's: it knows whether the field has one.)
absl::StatusOr<uint64_t> ParseSize(absl::string_view text,
                                   absl::string_view what);
// 67108864 -> "64M": the largest unit that divides exactly; 0 -> "unlimited".
std::string FormatSize(uint64_t bytes);
// "1.5" seconds -> 1500 ms (millisecond precision; must be > 0).
absl::StatusOr<uint64_t> ParseSecondsToMs(absl::string_view text,
                                          absl::string_view what);

}  // namespace jcs::jail

#endif  // JCS_JAIL_SPEC_H_
