// `jcs serve [--config FILE]`: the supervisor daemon. Serves the control API
// on its Unix socket from one io_uring event loop, starts the configured boot
// projects, and does PID-1 duty: reaps every orphan (it is a child subreaper
// even when not PID 1), and turns SIGTERM/SIGINT into a graceful drain (stop
// accepting, let running work finish within drain_grace_ms, flush, exit 0).
// A second SIGTERM/SIGINT ends the drain at once.
#ifndef JCS_SUPERVISOR_SERVE_H_
#define JCS_SUPERVISOR_SERVE_H_

#include <string>
#include <vector>

namespace jcs::supervisor {

// Returns the process exit status: 0 after a drain, 2 for an invalid config or
// command line, 1 when the daemon cannot start (socket, state directory).
int ServeMain(const std::vector<std::string>& args);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_SERVE_H_
