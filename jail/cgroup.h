// One cgroup per jail run: limits, membership, atomic kill and the event
// counters the report needs. Two backends: cgroup v2 (CLONE_INTO_CGROUP,
// cgroup.kill, memory.events, pids.events) and the cgroup v1 fallback (memory,
// pids, cpu and freezer hierarchies, freezer-based kill).
#ifndef JCS_JAIL_CGROUP_H_
#define JCS_JAIL_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace jcs::jail {

struct CgroupLimits {
  uint64_t memory_bytes =
      0;  // 0: no memory limit (the memory controller is still used for stats)
  uint64_t pids = 0;  // 0: no pids limit
  double cpus = 0;    // 0: no CPU quota
};

struct CgroupStats {
  uint64_t memory_peak_bytes = 0;  // 0 when the backend cannot tell
  uint64_t oom_kills =
      0;  // memory.events oom_kill (v2) / memory.oom_control oom_kill (v1)
  uint64_t pids_max_events = 0;  // pids.events max: forks refused by pids.max
};

class Cgroup {
 public:
  virtual ~Cgroup() = default;
  // "v2" or "v1".
  virtual std::string backend() const = 0;
  // An O_DIRECTORY fd for clone3's CLONE_INTO_CGROUP, or -1 when the backend
  // cannot use it (v1).
  virtual int clone_into_fd() const = 0;
  // Moves `pid` into the cgroup (every hierarchy for v1).
  virtual absl::Status AddProcess(pid_t pid) = 0;
  // Host pids of every process in the cgroup.
  virtual absl::StatusOr<std::vector<pid_t>> Processes() const = 0;
  // Kills every process in the cgroup so that none can fork away while it
  // happens (v2: cgroup.kill; v1: freeze, SIGKILL each, thaw) and waits up to
  // `wait_ms` until the cgroup is empty. Returns the host pids that were alive
  // when the kill started.
  virtual absl::StatusOr<std::vector<pid_t>> KillAll(int wait_ms) = 0;
  virtual absl::StatusOr<CgroupStats> Stats() const = 0;
  // Kills what is left and removes the cgroup directories. Idempotent; the
  // destructor calls it.
  virtual absl::Status Destroy() = 0;
};

struct CgroupOptions {
  // Directory name under each hierarchy's mount point plus this process's own
  // cgroup path. The cgroup is created at <parent>/<instance>/<name>, where
  // <instance> is this process's own directory (jail/cgroup_instance.h).
  std::string parent = "jcs";
  // Unique leaf name; the default derives it from the pid and a counter
  // ("run-<pid>-<n>").
  std::string name;
  CgroupLimits limits;
  // For tests: a directory that stands in for the hierarchy root(s) instead of
  // the real mounts found in /proc/self/mountinfo. v2: the unified root; v1: a
  // directory with one subdirectory per controller (memory, pids, cpu,
  // freezer).
  std::string fake_root;
};

// Creates the cgroup with the given limits. Fails closed: a missing hierarchy
// or controller that a requested limit needs is an error that names the layer
// and the fix.
absl::StatusOr<std::unique_ptr<Cgroup>> CreateCgroupV2(
    const CgroupOptions& options);
absl::StatusOr<std::unique_ptr<Cgroup>> CreateCgroupV1(
    const CgroupOptions& options);

}  // namespace jcs::jail

#endif  // JCS_JAIL_CGROUP_H_
