// A per-project disk and inode budget enforced by the kernel: Linux project
// quotas (ext4 with the `project` feature mounted with `prjquota`, XFS with
// `pquota`). Every file and directory of the project tree carries one project
// id (directories with FS_XFLAG_PROJINHERIT, so whatever is created beneath
// inherits it, from the jail or from the host), and the filesystem refuses
// allocations past the id's hard limits with EDQUOT. A jailed program cannot
// move files out of the budget: changing a project id or PROJINHERIT is only
// allowed from the initial user namespace, and rename/link into a directory
// of another project fails with EXDEV.
//
// Project ids: jcs uses the range [kProjectIdFirst, kProjectIdFirst +
// kProjectIdCount). A project's id is derived from its canonical root path
// (stable across restarts), probing forward from that slot; a slot is taken
// when the root already carries it (it is the one recorded by an earlier
// start: the root directory's own project id is the record) or when the
// filesystem reports no usage and no limits for it (Q_GETQUOTA), so an id an
// administrator uses is never reused.
//
// Limits stay set when the project stops: they keep reserving the id (an id
// with limits reads as in use) and keep the tree bounded; the next start
// sets them anew (a start without a budget leaves them as they are). To lift
// them by hand: `setquota -P <project_id> 0 0 0 0 <mount point>` (the id is in
// the project's diagnostics).
//
// Every call here runs in the daemon (root); none runs in a jail child.
#ifndef JCS_JAIL_PROJECT_QUOTA_H_
#define JCS_JAIL_PROJECT_QUOTA_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace jcs::jail {

// "JC" << 16: far above the small ids administrators hand out by hand.
inline constexpr uint32_t kProjectIdFirst = 0x4A430000;
inline constexpr uint32_t kProjectIdCount = 1u << 16;
// How many slots past the derived one are probed before giving up.
inline constexpr uint32_t kProjectIdProbes = 256;

struct ProjectQuotaLimits {
  std::optional<uint64_t> bytes;
  std::optional<uint64_t> inodes;
  bool any() const { return bytes.has_value() || inodes.has_value(); }
};

// The mount a file descriptor lives on (from /proc/self/mountinfo).
struct MountInfo {
  std::string fs_type;      // "ext4", "xfs", "tmpfs", ...
  std::string mount_point;  // as in mountinfo (octal escapes decoded)
  std::string super_options;
};
absl::StatusOr<MountInfo> MountOfFd(int fd);

// OK when the filesystem holding `fd` accounts and enforces project quota
// limits; else FailedPrecondition
//   "disk_quota_unavailable: <fs type> at <mount point> has no project
//    quotas; <fix>"
// where the fix depends on the filesystem type. `drop_hint` ends the message
// ("or drop disk_quota_bytes"); empty for none.
absl::Status CheckProjectQuotaEnforced(int fd, absl::string_view drop_hint);

// Calls visit(fd, is_directory, relative_path) for the directory `root_fd`
// (relative_path ".") and for every directory and regular file beneath it
// on the same mount. Never follows a symlink, never opens anything that is
// not a regular file or directory (FIFOs, sockets, devices are skipped, as
// are symlinks), never crosses into another mount, and holds two descriptors
// at any depth (it climbs back with ".." and checks it arrived where it came
// from), so neither PATH_MAX nor RLIMIT_NOFILE bounds the tree. A visit error
// stops the walk and is returned.
using TreeVisitor = std::function<absl::Status(int fd, bool is_directory,
                                               const std::string& rel_path)>;
absl::Status WalkProjectTree(int root_fd, const TreeVisitor& visit);

// Sets project id `id` on every entry WalkProjectTree visits, with
// FS_XFLAG_PROJINHERIT on directories (FS_IOC_FSSETXATTR).
absl::Status TagProjectTree(int root_fd, uint32_t id);

// The project id currently on `fd` (FS_IOC_FSGETXATTR).
absl::StatusOr<uint32_t> ProjectIdOf(int fd);

// The slot `attempt` of the probe sequence for `root_path`.
uint32_t DerivedProjectId(absl::string_view root_path, uint32_t attempt);

// The id for `root_path`: the first slot of the probe sequence that is the
// root's `current` id (recorded by an earlier start) or not `in_use`.
absl::StatusOr<uint32_t> ChooseProjectIdWith(
    absl::string_view root_path, uint32_t current,
    const std::function<absl::StatusOr<bool>(uint32_t id)>& in_use);

struct ProjectQuotaUsage {
  uint32_t project_id = 0;
  uint64_t bytes_used = 0;
  uint64_t inodes_used = 0;
  uint64_t bytes_limit = 0;   // 0: none
  uint64_t inodes_limit = 0;  // 0: none
};

// At project start: when `limits.any()`, enforces them on the tree at
// `root_path` (canonical), failing closed with disk_quota_unavailable when
// the filesystem cannot; returns the project id used (0 when there is no
// budget and nothing was done).
absl::StatusOr<uint32_t> ApplyProjectQuota(const std::string& root_path,
                                           const ProjectQuotaLimits& limits);

// The id on the root and its usage and limits (Q_GETQUOTA), for diagnostics.
absl::StatusOr<ProjectQuotaUsage> ReadProjectQuotaUsage(
    const std::string& root_path);

// The diagnostics block of a project with a budget: {"bytes_budget",
// "inodes_budget" (configured, null when unset), "project_id", "bytes_used",
// "inodes_used", "bytes_limit", "inodes_limit" (as the kernel enforces them;
// 0 = none)}, or {"bytes_budget", "inodes_budget", "error"} when the kernel
// cannot be asked.
nlohmann::json ProjectQuotaDiagnostics(const std::string& root_path,
                                       const ProjectQuotaLimits& limits);

// `jcs doctor`: whether a budget can be enforced for projects under `dir`.
struct ProjectQuotaProbe {
  bool available = false;
  std::string detail;  // "ext4 at /srv (prjquota enforced)"
  std::string fix;     // empty when available
};
ProjectQuotaProbe ProbeProjectQuota(const std::string& dir);

}  // namespace jcs::jail

#endif  // JCS_JAIL_PROJECT_QUOTA_H_
