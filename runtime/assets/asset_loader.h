// Loads a project's asset tree <root>/<data_dir>/{skills,commands,workflows,
// skill_graph} into an AssetSnapshot (spec §6): every `*.md` file below each
// type directory, recursively, in sorted order of its path.
//
//   - name: the file's basename without ".md"; a second file with the same
//     name (in another subdirectory) is an error (duplicate_name, or
//     duplicate_node under skill_graph) and the first in path order wins.
//   - body: the whole file; it must be valid UTF-8 (invalid_utf8: left out).
//   - frontmatter (skills, commands, workflows): parsed with
//     ParseFrontmatter; a file whose frontmatter does not parse stays loaded
//     (a command then registers as invalid) and the error is collected
//     (invalid_frontmatter, detail: the parser's message with its line).
//   - skill graph: one node per file, titled by its first "# " heading (else
//     its id); [[Target]] and [[Target|label]] links are edges from the node
//     to Target, deduplicated and sorted.
//
// The tree is hostile (it belongs to the project's user, who also controls
// what jailed tools write into it):
//   - Nothing is followed: the type directory is opened with openat2
//     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from the root, subdirectories with
//     O_NOFOLLOW, files as O_PATH and fstat'ed before being reopened through
//     /proc/self/fd, so a symlink, FIFO or device named *.md is never opened
//     (not_regular_file), nor a file with a second hard link (hard_link: it
//     could be /etc/shadow's other name).
//   - The project's sensitive-path policy holds: a file whose root-relative
//     path, or that path without ".md", is sensitive (runtime/policy's
//     IsSensitivePathOrAncestor) is neither read nor reported.
//   - Bounds: a file over max_file_bytes is an error (file_too_large) and is
//     not read past the bound; a type directory with more than
//     max_files_per_type files loads the first ones in path order and
//     reports too_many_files; past max_total_bytes read in all, the rest is
//     tree_too_large; past max_dir_entries entries visited per type, or
//     max_depth levels, the walk stops (tree_too_large, too_deep). Errors,
//     never an unbounded allocation.
// Identity: the root is opened as the caller, then `enter_identity` (when
// set) is called and what it returns is held until the load ends: the tool
// runtime switches the thread to the project's fsuid/fsgid there, so every
// read below the root gets exactly the project user's permissions.
#ifndef JCS_RUNTIME_ASSETS_ASSET_LOADER_H_
#define JCS_RUNTIME_ASSETS_ASSET_LOADER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/assets/asset_snapshot.h"
#include "runtime/assets/utf8.h"

namespace jcs::runtime::assets {

struct LoaderLimits {
  uint64_t max_file_bytes = 1 << 20;  // 1 MiB
  size_t max_files_per_type = 2000;
  uint64_t max_total_bytes = 64ull << 20;
  size_t max_dir_entries = 100000;
  int max_depth = 16;
};

struct LoaderConfig {
  std::string root;      // canonical absolute project root
  std::string data_dir;  // relative to root (validated by the registry)
  std::vector<std::string> sensitive_denylist;
  std::vector<std::string> sensitive_allowlist;
  LoaderLimits limits;
  // Returns a guard held for the rest of the load (see the file comment), or
  // an error that fails the load.
  std::function<absl::StatusOr<std::shared_ptr<void>>()> enter_identity;
};

// FailedPrecondition when the root cannot be opened (asset_root_unavailable:
// <errno>). A missing data dir or type directory is an empty type; any other
// problem is a LoadError in the snapshot.
absl::StatusOr<AssetSnapshot> LoadAssetTree(const LoaderConfig& config);

// The skill-graph helpers, for the loader and its tests.
std::string GraphTitle(absl::string_view body, absl::string_view fallback);
std::vector<std::string> GraphLinks(absl::string_view body);

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_ASSET_LOADER_H_
