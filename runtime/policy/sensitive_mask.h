// The sensitive paths of a project tree, to be masked inside the jail (an
// empty file or directory is mounted over each one), so a jailed program
// cannot read `.env`, keys or certificates the policy denies to tools.
//
// ScanSensitivePaths walks the tree under `root` depth-first through
// directory file descriptors, never through re-resolved names: each directory
// is opened with openat(O_DIRECTORY | O_NOFOLLOW) relative to its parent's fd,
// and the walk returns to the parent through "..", checked to be the same
// directory (device, inode) it left. Only one directory fd is open at a time
// besides the root's, so depth has no limit (no PATH_MAX, no fd budget), and
// neither has the number of entries.
//   - Reports the regular files and directories for which
//     IsSensitivePath(rel, denylist, allowlist) (runtime/policy/path_policy.h)
//     holds, each with its identity (device, inode) as seen through the fd
//     walk, so the jail can check it masks exactly that file.
//   - Symlinks are never reported nor followed; other file types (FIFOs,
//     sockets, devices) are not reported. A matched directory is reported and
//     not descended into (its whole content is masked with it). Mount points
//     inside the root are crossed.
//   - Hard links: when a sensitive regular file has more than one link, every
//     other name of that inode inside the root is reported too (marked
//     `hard_link`), found by a second walk that stats each regular file. A
//     hard link made elsewhere on the host is outside the root and unreachable.
//   - Consistency: the set is computed from one view of the tree. An entry
//     that was listed and then vanished, turned into something else or
//     changed identity (its inode is not the one readdir reported), or a
//     parent that is not the directory the walk left, means the tree changed
//     under the walk: the walk starts over, at most kSensitiveScanAttempts
//     times, then fails (the caller fails closed). Skipping such an entry is
//     how a racing rename used to hide a secret from the mask set.
// Errors (the caller must fail closed, i.e. not start the jail):
//   InvalidArgument     root is empty, relative or contains NUL.
//   FailedPrecondition  root cannot be opened as a directory.
//   Unavailable         "sensitive_mask: the tree changed during N scans".
//   Internal            a directory cannot be opened or read (with errno).
#ifndef JCS_RUNTIME_SENSITIVE_MASK_H_
#define JCS_RUNTIME_SENSITIVE_MASK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace jcs::runtime {

inline constexpr int kSensitiveScanAttempts = 3;

struct SensitiveEntry {
  std::string rel;  // root-relative, no leading '/'
  bool is_dir = false;
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t nlink = 1;
  // Another name of a sensitive file's inode (the name itself may be benign).
  bool hard_link = false;
};

struct SensitiveScan {
  std::vector<SensitiveEntry> entries;  // sorted by rel
  uint64_t directories = 0;             // directories listed (last attempt)
  uint64_t entries_seen = 0;            // directory entries seen (last attempt)
  int attempts = 0;                     // walks started
  bool hard_link_walk = false;          // the second (stat) walk ran
};

absl::StatusOr<SensitiveScan> ScanSensitivePaths(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist);

// The sorted root-relative paths of ScanSensitivePaths.
absl::StatusOr<std::vector<std::string>> FindSensitivePaths(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist);

// Opens the directory `rel` below `root_fd` (O_PATH, no symlinks, never above
// the root) in chunks of whole components, so a path longer than PATH_MAX is
// reachable. -1 with errno on failure.
int OpenDirBeneathLong(int root_fd, const std::string& rel);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_SENSITIVE_MASK_H_
