// The built-in asset tools `asset.list`, `asset.search` and `asset.get` over
// a project's asset folders <root>/<data_dir>/{skills,commands,workflows,
// skill_graph}. They run in-process in the (root) daemon and read the tree
// directly at call time.
//
// Arguments (all tools): "type", a string: "skill" | "skills", "command" |
// "commands", "workflow" | "workflows", "skill_graph". The empty string gives
// an empty item list (asset.get: asset_not_found); any other string gives
// "invalid_asset_type" {type}.
//   asset.list   {type}        -> {"items": [{type, name, path}...]}
//   asset.search {type, query} -> the items whose name or content contains
//                                 `query`, ASCII case-insensitively (an empty
//                                 query matches every item)
//   asset.get    {type, key}   -> {"asset": {type, name, path, content}}
// `type` in results is the singular kind ("skill", "command", "workflow",
// "skill_graph"); `path` is relative to the root
// ("<data_dir>/skills/x.md"). Items are sorted by name (byte order).
//
// Assets are the regular `*.md` files (with a non-empty stem) of the type's
// directory: non-recursive for skills, commands and workflows (name = file
// name without ".md"); recursive for skill_graph (name = the path relative to
// skill_graph without ".md", e.g. "nodes/index"), at most
// kMaxSkillGraphDepth directories deep.
//
// Safety (the tree is hostile):
//   - The type directory is opened with openat2 from the root with
//     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, and every entry below it with
//     O_NOFOLLOW / RESOLVE_NO_SYMLINKS: no symlink is ever followed (a
//     symlinked data_dir, type directory, subdirectory or asset file is not
//     an asset / gives "asset_dir_unavailable").
//   - Only regular files with exactly one hard link are assets (a hard link
//     to a file elsewhere, e.g. /etc/shadow, is ignored); files are opened
//     O_PATH, checked with fstat and only then reopened for reading through
//     /proc/self/fd, so FIFOs and devices are never opened.
//   - With ctx.use_identity, the work runs under ScopedFsIdentity(uid, gid)
//     (runtime/tools/fs_tools.h; the process must have no supplementary
//     groups).
//   - Names that are not valid UTF-8 are skipped.
//   - The project's sensitive-path policy holds here as for the fs tools (an
//     asset is a file of the root, and `asset.get skills .env` must not read
//     what `fs.read` refuses): an asset is sensitive when
//     IsSensitivePathOrAncestor (runtime/policy/path_policy.h) holds for its
//     file's root-relative path ("<data_dir>/skills/.env.md") or for that path
//     without
//     ".md" (".../.env", the name the caller uses). Both must pass, so
//     allowlisting an asset takes a pattern covering both
//     (".jido/skills/.env*"). Sensitive assets are left out of asset.list
//     and asset.search (neither name nor content is looked at) and asset.get
//     refuses them with "sensitive_path_denied" {type, key, path} before
//     any open, whether the file exists or not.
// Bounds: at most kMaxAssetsPerType items per type (the smallest names; the
// result then has "truncated": true, a key absent otherwise), at most
// kMaxAssetDirEntries directory entries visited per call, files larger than
// kMaxAssetBytes are skipped by asset.search's content match and give
// "asset_too_large" {size, max} for asset.get, and asset.search reads at
// most kMaxAssetSearchBytes of content per call (then sets "truncated").
//
// Failures:
//   invalid_tool_args {field, problem}  args not an object (field "$"),
//       type/query/key missing or not a string, key empty or with NUL, a
//       string longer than 4096 bytes (problems as in runtime/tools/fs_tools.h)
//   invalid_asset_type {type}
//   sensitive_path_denied {type, key, path}  path: the root-relative file
//   asset_not_found {type, key}   also for keys that cannot name an asset
//                                 ("a/b" outside skill_graph, "..", "")
//   asset_too_large {type, key, size, max}
//   asset_invalid_utf8 {type, key}
//   asset_dir_unavailable {path, errno}  the type directory exists but cannot
//                                 be opened (symlinked component, EACCES, ...)
//   invalid_data_dir {data_dir}   empty, absolute, with NUL or a ".." segment
//   invalid_root_path {root}
//   unknown_tool {tool}
//   internal_error {problem}      the identity switch failed
// A missing type directory is an empty item list.
#ifndef JCS_RUNTIME_ASSET_TOOLS_H_
#define JCS_RUNTIME_ASSET_TOOLS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/tools/tool_outcome.h"

namespace jcs::runtime {

inline constexpr std::size_t kMaxAssetsPerType = 10000;
inline constexpr std::uint64_t kMaxAssetBytes = 1 << 20;  // 1 MiB
inline constexpr std::size_t kMaxAssetDirEntries = 100000;
inline constexpr std::uint64_t kMaxAssetSearchBytes = 64 << 20;
inline constexpr int kMaxSkillGraphDepth = 16;

struct AssetToolContext {
  std::string root;      // canonical absolute project root
  std::string data_dir;  // relative to root, e.g. ".jido"
  // Optional filesystem identity for the reads (see above).
  bool use_identity = false;
  uid_t uid = 0;
  gid_t gid = 0;
  // The project's sensitive_path_denylist / sensitive_path_allowlist.
  std::vector<std::string> sensitive_denylist;
  std::vector<std::string> sensitive_allowlist;
};

// True for "asset.list", "asset.search" and "asset.get".
bool IsAssetTool(std::string_view tool_name);

ToolOutcome RunAssetTool(const AssetToolContext& ctx,
                         std::string_view tool_name,
                         const nlohmann::json& args);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_ASSET_TOOLS_H_
