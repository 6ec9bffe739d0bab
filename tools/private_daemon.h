// A `jcs serve` of one command's own (`jcs mcp --root`): the same binary as a
// child process, its socket, state and config in a fresh 0700 directory under
// $TMPDIR (default /tmp), so the command gets the daemon's whole project set-
// up (root checks, run-as identity, disk budget, warm jails, drain) without a
// second copy of it. The child gets SIGTERM when this process dies.
#ifndef JCS_TOOLS_PRIVATE_DAEMON_H_
#define JCS_TOOLS_PRIVATE_DAEMON_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace jcs::tools {

class PrivateDaemon {
 public:
  // Starts the daemon and waits until it answers a ping (or `timeout`, or
  // it exits: an error with its exit status; its stderr is ours).
  // `extra_config` is appended to its text-format config (e.g. a log_level
  // line); `tag` names its directory, $TMPDIR/<tag>.XXXXXX.
  static absl::StatusOr<std::unique_ptr<PrivateDaemon>> Start(
      absl::Duration timeout = absl::Seconds(30),
      const std::string& extra_config = "", const std::string& tag = "jcs-mcp");
  // Drains it (SIGTERM, then waits) and removes its directory.
  ~PrivateDaemon();
  PrivateDaemon(const PrivateDaemon&) = delete;
  PrivateDaemon& operator=(const PrivateDaemon&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  // The daemon's process id (its /proc/PID/status: jcs bench's peak RSS).
  pid_t pid() const { return pid_; }

 private:
  PrivateDaemon(std::string dir, pid_t pid)
      : dir_(std::move(dir)), socket_path_(dir_ + "/jcs.sock"), pid_(pid) {}

  const std::string dir_;
  const std::string socket_path_;
  pid_t pid_;
};

}  // namespace jcs::tools

#endif  // JCS_TOOLS_PRIVATE_DAEMON_H_
