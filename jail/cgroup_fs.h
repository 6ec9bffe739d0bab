// Helpers shared by the cgroup v1 and v2 backends: parsing /proc/self/mountinfo
// and /proc/self/cgroup (pure functions on the file text, so they are
// unit-testable), locating this process's own cgroup directory in a hierarchy,
// small cgroupfs file helpers whose errors name the file, and leaf naming.
#ifndef JCS_JAIL_CGROUP_FS_H_
#define JCS_JAIL_CGROUP_FS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jcs::jail::cgroup_fs {

// One line of /proc/self/mountinfo (only the fields the cgroup code needs).
struct MountInfoEntry {
  std::string root;         // field 4: the mount's root within its filesystem
  std::string mount_point;  // field 5, with \040-style octal escapes decoded
  std::string fstype;       // first field after the "-" separator
  std::vector<std::string> super_options;  // last field, split on ','
};

// Parses mountinfo text. Malformed lines are skipped (never a crash).
std::vector<MountInfoEntry> ParseMountInfo(absl::string_view text);

// Decodes the octal escapes (\040 space, \011 tab, \012 newline, \134
// backslash) that the kernel uses in mountinfo paths. Anything that is not a
// valid three-digit octal escape is kept as is.
std::string UnescapeMountField(absl::string_view field);

// One line of /proc/<pid>/cgroup: "hierarchy-id:controller,list:path".
struct ProcCgroupEntry {
  int hierarchy_id = -1;
  std::vector<std::string> controllers;  // empty for the v2 line ("0::/path")
  std::string path;
};

// Parses /proc/<pid>/cgroup text. Malformed lines are skipped.
std::vector<ProcCgroupEntry> ParseProcCgroup(absl::string_view text);

// The cgroup2 mount, or nullopt. When several exist, the first one is returned.
std::optional<MountInfoEntry> FindV2Mount(
    const std::vector<MountInfoEntry>& mounts);
// Every v1 ("cgroup") mount whose super options contain `controller` as an
// exact token (so "cpu" matches "rw,cpu,cpuacct" but not "rw,cpuacct" or
// "rw,cpuset").
std::vector<MountInfoEntry> FindV1Mounts(
    const std::vector<MountInfoEntry>& mounts, absl::string_view controller);

// This process's cgroup path for v2 (the "0::" line) or for the v1 hierarchy
// carrying `controller`. NotFound when there is no such line.
absl::StatusOr<std::string> OwnV2Path(
    const std::vector<ProcCgroupEntry>& entries);
absl::StatusOr<std::string> OwnV1Path(
    const std::vector<ProcCgroupEntry>& entries, absl::string_view controller);

// Maps the cgroup path `own_path` (as in /proc/self/cgroup) to a directory
// below one of the `mounts` of that hierarchy: the mount whose root is a path
// prefix of `own_path` (longest root wins). NotFound when no mount exposes that
// cgroup.
absl::StatusOr<std::string> ResolveCgroupDir(
    const std::vector<MountInfoEntry>& mounts, absl::string_view own_path);

// Convenience wrappers on the file texts: this process's own cgroup directory
// in the v2 hierarchy, or in the v1 hierarchy of `controller`. Errors name what
// is missing.
absl::StatusOr<std::string> LocateV2OwnDir(absl::string_view mountinfo_text,
                                           absl::string_view proc_cgroup_text);
absl::StatusOr<std::string> LocateV1OwnDir(absl::string_view mountinfo_text,
                                           absl::string_view proc_cgroup_text,
                                           absl::string_view controller);
// True when some v1 hierarchy in `mountinfo_text` carries `controller`.
bool V1HasController(absl::string_view mountinfo_text,
                     absl::string_view controller);

// Joins path components with single slashes ("a/" + "/b" -> "a/b"); empty parts
// are skipped.
std::string JoinPath(absl::string_view a, absl::string_view b);

// Checks a relative cgroup path given by the caller (options.parent): no "..",
// no absolute path, no empty or "." components. `allow_slash` false requires a
// single component (the leaf name).
absl::Status ValidateRelativeName(absl::string_view what,
                                  absl::string_view name, bool allow_slash);

// ---- File helpers; every error names the file and the failed operation. ----

absl::StatusOr<std::string> ReadFile(const std::string& path);
// Reads an open file from offset 0 to its end with pread (the descriptor's
// own offset is untouched; a cgroupfs file read again from 0 shows its
// current contents). At most 16 MiB, like ReadFile.
absl::StatusOr<std::string> ReadFromStart(int fd);
// Writes `value` with a single write(2) (cgroupfs interprets each write as one
// command). `create` is for fake roots in tests: it creates the file if missing
// and truncates it.
absl::Status WriteFile(const std::string& path, absl::string_view value,
                       bool create = false);
bool PathExists(const std::string& path);
// mkdir -p for the components of `path` below `base` (which must exist); EEXIST
// is fine.
absl::Status MakeDirs(const std::string& base, absl::string_view relative);
// Lists the names of the subdirectories of `dir` (not "." or ".."); NotFound if
// `dir` is missing.
absl::StatusOr<std::vector<std::string>> ListSubdirs(const std::string& dir);
// Removes a cgroup directory and, first, any child cgroup directories below it.
// With `remove_files` (fake roots only) regular files are unlinked too. EBUSY
// is retried until `retry_ms` has passed (0: one attempt). A missing
// directory is OK.
absl::Status RemoveCgroupDir(const std::string& dir, bool remove_files,
                             int retry_ms);

// ---- Content parsing (defensive: odd contents never crash). ----

// Parses a cgroup.procs style list (one pid per line); bad lines are skipped.
std::vector<pid_t> ParsePidList(absl::string_view text);
// Reads `path` as a pid list. A missing file reads as empty when `missing_ok`.
absl::StatusOr<std::vector<pid_t>> ReadPidList(const std::string& path,
                                               bool missing_ok);
// In "key value" lines (memory.events, pids.events, memory.oom_control,
// cgroup.events), the value of `key` if present and numeric. "max" is not
// numeric.
std::optional<uint64_t> FindKeyedValue(absl::string_view text,
                                       absl::string_view key);
// A single unsigned number (memory.peak, memory.max_usage_in_bytes); nullopt
// otherwise.
std::optional<uint64_t> ParseSingleValue(absl::string_view text);
// Whitespace separated tokens (cgroup.controllers, cgroup.subtree_control).
std::vector<std::string> SplitTokens(absl::string_view text);

// The CFS quota in microseconds per kCpuPeriodUs for `cpus` CPUs (at least the
// kernel's 1 ms minimum); InvalidArgument for NaN, negative or absurd values.
inline constexpr uint64_t kCpuPeriodUs = 100000;
absl::StatusOr<uint64_t> CpuQuotaUs(double cpus);

// ---- Leaf names. ----

// "run-<pid>-<n>" with a process-wide counter (unique within the process's
// instance directory, jail/cgroup_instance.h).
std::string DefaultLeafName();
// Whether a process with `pid` exists (kill(pid, 0) does not fail with ESRCH).
bool ProcessExists(pid_t pid);

// Sleeps for `ms` milliseconds (used by the bounded polling loops).
void SleepMs(int ms);
// Monotonic clock in milliseconds.
int64_t NowMs();

}  // namespace jcs::jail::cgroup_fs

#endif  // JCS_JAIL_CGROUP_FS_H_
