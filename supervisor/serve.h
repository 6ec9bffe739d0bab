// `jcs serve [--config FILE]`: the supervisor daemon. Serves the control API
// on its Unix socket from one io_uring event loop, starts the configured boot
// projects, and does PID-1 duty: reaps every orphan (it is a child subreaper
// even when not PID 1), and turns SIGTERM/SIGINT into a graceful drain (stop
// accepting, let running work finish within drain_grace_ms, flush, exit 0).
// A second SIGTERM/SIGINT ends the drain at once.
#ifndef JCS_SUPERVISOR_SERVE_H_
#define JCS_SUPERVISOR_SERVE_H_

#include <optional>
#include <string>

namespace jcs::supervisor {

// Returns the process exit status: 0 after a drain, 2 for an invalid config or
// --log-level, 1 when the daemon cannot start (socket, state directory).
// `config_path` empty: the embedded default config. The command line is
// parsed by tools/ (its flag table, ServeSpec, also makes --help, the man page
// and the completion).
int ServeMain(const std::string& config_path,
              const std::optional<std::string>& log_level);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_SERVE_H_
