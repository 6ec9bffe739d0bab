// What a Bazel runfiles tree needs inside a jail (`jcs run --runfiles DIR`).
//
// A runfiles tree is a directory of symlinks whose targets lie elsewhere (the
// output base, the source workspace), so binding the tree alone shows the
// program dangling links. RunfilesBinds resolves every link of the tree (and
// every entry of its MANIFEST, for trees built without links) to its real
// path and returns the directories to bind read-only: the tree itself and
// the directories holding the targets, reduced so that none lies below
// another. A directory target is bound whole; a file target by its parent
// directory (siblings become readable, never writable: the price of a
// bounded number of mounts, documented in the README).
//
// Refused, with the offending path named: a target under /proc, /dev or /sys;
// a directory to bind that contains `root` (binding it would hide the jail's
// root); more than kMaxRunfilesEntries entries or kMaxRunfilesBinds
// directories. Targets under `system_dirs` (bound already) and dangling links
// are skipped.
#ifndef JCS_JAIL_RUNFILES_H_
#define JCS_JAIL_RUNFILES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace jcs::jail {

inline constexpr size_t kMaxRunfilesEntries = 1'000'000;
inline constexpr size_t kMaxRunfilesBinds = 256;

absl::StatusOr<std::vector<std::string>> RunfilesBinds(
    const std::string& runfiles_dir, const std::string& root,
    const std::vector<std::string>& system_dirs);

// The directories of `paths` (absolute, normalized) with every path below
// another removed, sorted.
std::vector<std::string> OutermostDirectories(std::vector<std::string> paths);

}  // namespace jcs::jail

#endif  // JCS_JAIL_RUNFILES_H_
