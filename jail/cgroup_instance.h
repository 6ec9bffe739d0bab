// Instance subtrees: every process that creates cgroups (a `jcs serve`
// daemon, a `jcs run`) creates its per-run cgroups below its own directory
// <parent>/<instance> in each hierarchy, never beside another instance's.
// The name records the owner: its pid, its start time and the inodes of its
// pid and time namespaces, so that another instance can prove the owner dead
// (same namespaces, and the pid is gone or belongs to a younger process)
// before removing what it left. Instances of other pid namespaces (a daemon
// under `unshare --pid`) cannot be judged from here and are never touched;
// nothing retries rmdir on a cgroup it cannot prove stale.
#ifndef JCS_JAIL_CGROUP_INSTANCE_H_
#define JCS_JAIL_CGROUP_INSTANCE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jcs::jail::cgroup_instance {

struct InstanceId {
  pid_t pid = 0;             // in the owner's pid namespace
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat
  uint64_t pid_ns = 0;       // inode of /proc/<pid>/ns/pid
  uint64_t time_ns = 0;      // inode of /proc/<pid>/ns/time (0: none)
  bool operator==(const InstanceId& o) const {
    return pid == o.pid && start_ticks == o.start_ticks && pid_ns == o.pid_ns &&
           time_ns == o.time_ns;
  }
};

// "inst-<pid>-<start_ticks>-p<pid_ns>-t<time_ns>".
std::string InstanceName(const InstanceId& id);
// The id of an instance directory name; nullopt for anything else.
std::optional<InstanceId> ParseInstanceName(absl::string_view name);

// This process's id (computed again after a fork).
absl::StatusOr<InstanceId> OwnInstance();

// The start time of `pid` in this pid namespace (/proc/<pid>/stat field 22):
// nullopt when no such process exists; an error when /proc cannot tell.
using StartTimeFn =
    std::function<absl::StatusOr<std::optional<uint64_t>>(pid_t)>;
absl::StatusOr<std::optional<uint64_t>> ProcStartTime(pid_t pid);

// Whether the owner of `other` is provably gone as seen by `self`: both live
// in the same pid and time namespaces (so the pid and the start time mean
// the same to both), and that pid names no process, or one that started at
// another time. Any other case (another namespace, /proc unreadable) is no
// proof.
bool OwnerProvablyDead(const InstanceId& other, const InstanceId& self,
                       const StartTimeFn& start_time);

// The instance names in `names` whose owners are provably dead. Empty when
// this process's /proc is not its pid namespace's (it proves nothing then).
std::vector<std::string> StaleInstanceNames(
    const std::vector<std::string>& names, const InstanceId& self,
    const StartTimeFn& start_time = ProcStartTime);

// Process-wide count of this process's cgroups below each parent directory:
// the first one creates <parent_dir>/<instance> (mkdir; EEXIST is fine, the
// name is this process's), the last one removes it again with a single
// rmdir. Thread-safe.
struct Acquired {
  std::string dir;     // <parent_dir>/<instance>
  bool first = false;  // created now: the caller sweeps stale siblings
};
absl::StatusOr<Acquired> AcquireInstanceDir(const std::string& parent_dir);
void ReleaseInstanceDir(const std::string& parent_dir);

// True the first time `dir` is passed in this process: a stale directory
// that could not be removed is not retried on every later run.
bool FirstSweepOf(const std::string& dir);

}  // namespace jcs::jail::cgroup_instance

#endif  // JCS_JAIL_CGROUP_INSTANCE_H_
