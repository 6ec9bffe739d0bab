// The sensitive paths of a project tree, to be masked inside the jail (an
// empty file or directory is mounted over each one), so a jailed program
// cannot read `.env`, keys or certificates the policy denies to tools.
//
// FindSensitivePaths walks the tree under `root` (breadth-first; every
// directory is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
// O_DIRECTORY | O_NOFOLLOW, relative to the root's fd) and returns the sorted
// root-relative paths of the regular files and directories for which
// IsSensitivePath(rel, denylist, allowlist) (runtime/path_policy.h) holds.
//   - Symlinks are never reported nor followed; other file types (FIFOs,
//     sockets, devices) are not reported.
//   - A matched directory is reported and not descended into (its whole
//     content is masked with it).
//   - Mount points inside the root are crossed.
//   - A directory that vanishes or turns into a non-directory during the walk
//     is skipped; other errors (EACCES, EMFILE, ...) fail the walk.
// Errors (the caller must fail closed, i.e. not start the jail):
//   InvalidArgument     root is empty, relative or contains NUL.
//   FailedPrecondition  root cannot be opened as a directory;
//                       "sensitive_mask: more than N entries under ROOT;
//                       raise max_entries or narrow the root" when the walk
//                       visits more than max_entries directory entries.
//   Internal            a directory cannot be opened or read (with errno).
#ifndef JCS_RUNTIME_SENSITIVE_MASK_H_
#define JCS_RUNTIME_SENSITIVE_MASK_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace jcs::runtime {

inline constexpr std::size_t kDefaultSensitiveMaskMaxEntries = 200000;

absl::StatusOr<std::vector<std::string>> FindSensitivePaths(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist,
    std::size_t max_entries = kDefaultSensitiveMaskMaxEntries);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_SENSITIVE_MASK_H_
