// Runs one program in a jail and supervises it to the end: prepares the cgroup,
// seccomp program, mount plan and Landlock plan, clones the jail, answers
// seccomp notifications, enforces the deadline, and tears everything down
// (every descendant killed, the cgroup removed).
#ifndef JCS_JAIL_RUNNER_H_
#define JCS_JAIL_RUNNER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "proto/jail.pb.h"

namespace jcs::jail {

enum class RunStatus {
  kExited,
  kSignaled,
  kTimeout,
  kOom,
  kPidsLimit,
  kViolation,
  kSetupError
};
const char* RunStatusName(RunStatus status);

struct Violation {
  int nr = 0;
  std::string name;
  uint64_t count = 0;
};

struct RunResult {
  RunStatus status = RunStatus::kSetupError;
  int exit_code = 125;  // what `jcs run` exits with
  int signal = 0;       // the signal that killed the program, if any
  int64_t wall_time_us = 0;
  // Setup breakdown in microseconds, in order ("cgroup", "seccomp_compile",
  // "clone", ...).
  std::vector<std::pair<std::string, int64_t>> setup_us;
  // Teardown breakdown in microseconds ("kill_and_reap", "cgroup_stats",
  // "cgroup_destroy").
  std::vector<std::pair<std::string, int64_t>> teardown_us;
  std::vector<Violation> violations;
  uint64_t descendants_killed =
      0;  // processes other than the program and the jail's init
  uint64_t memory_peak_bytes = 0;
  uint64_t oom_kills = 0;
  uint64_t pids_limit_hits = 0;
  std::string cgroup_backend;
  std::map<std::string, std::string>
      layers;  // layer -> "enforced" / "not enforced: why" / detail
  std::vector<std::string> warnings;
  std::string error;   // setup_error: one line naming the layer and the fix
  int exec_errno = 0;  // the program could not be executed
  uid_t uid = 0;
  gid_t gid = 0;
};

// `spec` must come from Finalize(). Never throws; every failure is a
// kSetupError result with `error` set. `warnings` from Finalize are carried
// into the result.
RunResult RunJail(const proto::JailSpec& spec,
                  const std::vector<std::string>& warnings);

}  // namespace jcs::jail

#endif  // JCS_JAIL_RUNNER_H_
