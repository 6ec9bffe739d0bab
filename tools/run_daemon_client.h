// `jcs run --daemon`: the client side (the daemon's is
// supervisor/daemon_run.h; the protocol is DaemonRunRequest in
// proto/control.proto). The spec is the one a cold `jcs run` finalized
// (run_command.cc builds it on one code path for both); the daemon checks it
// again and runs it, in a warm jail when it has one of that shape.
#ifndef JCS_TOOLS_RUN_DAEMON_CLIENT_H_
#define JCS_TOOLS_RUN_DAEMON_CLIENT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jail/runner.h"
#include "jail/spec.h"
#include "proto/jail.pb.h"

namespace jcs::tools {

// The socket of `jcs run --daemon`: --daemon's value, else $JCS_SOCKET, else
// the daemon's default socket.
std::string DaemonRunSocket(const jail::RunInvocation& invocation);

struct DaemonRunOutcome {
  int exit_code = 125;
  std::vector<std::string> messages;  // "jcs run: " lines
  std::vector<std::string> notes;     // "jcs: " lines (dropped by --quiet)
  std::string report_json;            // when asked
  bool warm = false;
};

// Runs `spec` through the daemon at `socket`: sends the spec, then
// `stdio` (-1: this process's own 0, 1, 2; /dev/null when one is closed) as
// SCM_RIGHTS, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT (and SIGWINCH unless
// `tty`: the pty relay passes window sizes itself) until the run ends, and
// returns what the daemon said. The caller keeps (and closes) `stdio`.
// Errors: Unavailable when no daemon run could start at all (nothing
// listening, daemon runs switched off, a daemon too old to know them: what
// --daemon-fallback covers); anything else (the daemon refused the spec or
// the caller, or the connection broke mid-run) another code, the message
// naming the daemon's reason.
absl::StatusOr<DaemonRunOutcome> RunThroughDaemon(const std::string& socket,
                                                  const proto::JailSpec& spec,
                                                  bool want_report, bool tty,
                                                  jail::JailStdio stdio);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_RUN_DAEMON_CLIENT_H_
