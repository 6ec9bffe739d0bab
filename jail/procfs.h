// Whether /proc is this process's own: a procfs mounted for the pid namespace
// the process lives in. jcs addresses processes as /proc/<pid> (the jail's id
// maps, cgroup owners); through a procfs of another pid namespace those paths
// name other processes (under `unshare --pid --fork` without --mount-proc,
// /proc/2 is the host's kthreadd, not the jail's init).
#ifndef JCS_JAIL_PROCFS_H_
#define JCS_JAIL_PROCFS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace jcs::jail {

// The fix named in every procfs error.
inline constexpr char kProcfsFix[] =
    "mount a procfs for this pid namespace, e.g. unshare --pid --fork "
    "--mount-proc, or mount -t proc proc /proc in a private mount namespace";

// OK when `proc` is a procfs whose "self" is this process's pid (getpid()).
// FailedPrecondition otherwise, naming what was found and kProcfsFix.
absl::Status CheckOwnProcfs(const std::string& proc = "/proc");

// The pid under which /proc shows the process of `pidfd` (the "Pid:" line of
// /proc/self/fdinfo/<pidfd>: the kernel translates it into the procfs's pid
// namespace, so the path is right even when /proc is not this process's).
// FailedPrecondition when the process has exited or /proc cannot see it.
absl::StatusOr<pid_t> ProcPidOf(int pidfd);

// An O_DIRECTORY fd of /proc/<pid> for the process of `pidfd`, proven to be
// that process: it was still alive after the open, so its pid could not have
// been reused meanwhile. Files opened relative to it (openat) belong to that
// process even if the number is reused later.
absl::StatusOr<int> OpenProcDirOf(int pidfd);

// The pids (as /proc shows them) of every live process in the pid namespace
// whose init is the process of `pidfd`, that process included: how a run
// without a cgroup (rootless, no delegated subtree) counts what it kills.
// Every process of a pid namespace descends from its init (orphans are
// reparented to it), so they are found through the world-readable PPid
// lines of /proc/*/status: an unprivileged caller may not inspect the
// namespace links of the jail's processes, which changed credentials.
// `proc`: the procfs to scan (tests).
absl::StatusOr<std::vector<pid_t>> PidNamespaceMembers(
    int pidfd, const std::string& proc = "/proc");

}  // namespace jcs::jail

#endif  // JCS_JAIL_PROCFS_H_
