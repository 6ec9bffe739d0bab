// The built-in asset tools `asset.list`, `asset.search` and `asset.get`,
// served from the project's asset store (runtime/assets/asset_store.h): the
// snapshot loaded at project start or by the last reload, never the tree at
// call time. A call keeps the snapshot it started with across a reload.
//
// Arguments (all tools): "type", a string: "skill" | "skills", "command" |
// "commands", "workflow" | "workflows", "skill_graph". The empty string gives
// an empty item list (asset.get: asset_not_found); any other string gives
// "invalid_asset_type" {type}.
//   asset.list   {type}        -> {"items": [item...], "generation", "version"}
//                                 and, for skill_graph, "graph": {nodes,
//                                 edges} (runtime/assets GraphJson)
//   asset.search {type, query} -> {"items": [...]}: the assets whose name,
//                                 relative path or content (skill graph: also
//                                 title) contains `query`, trimmed and ASCII
//                                 case-insensitive; an empty query matches
//                                 every asset (jcs keeps this from before the
//                                 store; the original returned [])
//   asset.get    {type, key}   -> {"asset": {type, name, path, relative_path,
//                                 content, frontmatter, [frontmatter_error]}}
// An item is {type, name, path, relative_path}: `type` the singular kind,
// `name` the file's basename without ".md" (also under skill_graph, where a
// key may also be the relative path without ".md", "nodes/index"), `path`
// relative to the root ("<data_dir>/skills/x.md"). Items are sorted by name.
// What the loader refused (symlinks, hard links, invalid UTF-8, oversized
// files, ...) is no asset; diagnostics' `assets.errors` says why.
//
// Sensitive paths: the loader never reads a file the project's sensitive-path
// policy denies, and asset.get refuses a key whose file would be sensitive
// ("<data_dir>/skills/<key>.md" or that path without ".md", as
// IsSensitivePathOrAncestor sees them) with "sensitive_path_denied" {type,
// key, path} before looking it up, so the answer does not depend on (or
// reveal) whether it exists. Allowlisting an asset takes a pattern covering
// both forms (".jido/skills/.env*").
//
// Failures:
//   invalid_tool_args {field, problem}  args not an object (field "$"),
//       type/query/key missing or not a string, key empty or with NUL, a
//       string longer than 4096 bytes
//   invalid_asset_type {type}
//   sensitive_path_denied {type, key, path}
//   asset_not_found {type, key}
//   assets_not_loaded {}          the store has no snapshot (cannot happen
//                                 once the project started)
//   unknown_tool {tool}
#ifndef JCS_RUNTIME_ASSET_TOOLS_H_
#define JCS_RUNTIME_ASSET_TOOLS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/assets/asset_store.h"
#include "runtime/tools/tool_outcome.h"

namespace jcs::runtime {

struct AssetToolContext {
  std::string data_dir;  // relative to root, e.g. ".jido"
  // The snapshot to serve (AssetStore::Current()).
  std::shared_ptr<const assets::PublishedAssets> assets;
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
