// What one load of a project's asset tree produced (spec §6): the assets of
// each type, the skill graph, and the errors met on the way. Immutable once
// built; the store (asset_store.h) hands out shared pointers to it, so a
// tool call keeps the snapshot it started with across a reload.
#ifndef JCS_RUNTIME_ASSETS_ASSET_SNAPSHOT_H_
#define JCS_RUNTIME_ASSETS_ASSET_SNAPSHOT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime::assets {

enum class AssetType { kSkill, kCommand, kWorkflow, kSkillGraph };

inline constexpr AssetType kAssetTypes[] = {
    AssetType::kSkill, AssetType::kCommand, AssetType::kWorkflow,
    AssetType::kSkillGraph};

// "skill", "command", "workflow", "skill_graph".
const char* AssetTypeName(AssetType type);
// The directory under <data_dir>: "skills", "commands", "workflows",
// "skill_graph".
const char* AssetTypeDir(AssetType type);
// "skill" | "skills", "command" | "commands", "workflow" | "workflows",
// "skill_graph"; nullopt for anything else.
std::optional<AssetType> ParseAssetType(absl::string_view text);

struct Asset {
  AssetType type = AssetType::kSkill;
  std::string name;           // the file's basename without ".md"
  std::string path;           // root-relative: "<data_dir>/skills/a/x.md"
  std::string relative_path;  // relative to the type directory: "a/x.md"
  std::string body;           // the whole file (valid UTF-8)
  // The parsed YAML frontmatter ({} when the file has none);
  // frontmatter_error is set (and frontmatter {}) when it did not parse.
  nlohmann::json frontmatter = nlohmann::json::object();
  std::string frontmatter_error;
};

// A skill graph node: one .md file under skill_graph/.
struct GraphNode {
  std::string id;  // basename without ".md"
  std::string path;
  std::string relative_path;
  std::string title;  // the first "# " heading, else the id
};

struct GraphEdge {
  std::string from;
  std::string to;
  bool operator<(const GraphEdge& o) const {
    return from != o.from ? from < o.from : to < o.to;
  }
  bool operator==(const GraphEdge& o) const {
    return from == o.from && to == o.to;
  }
};

// One problem with one file (or one tree). `reason` is a stable machine word:
//   invalid_utf8, duplicate_name, duplicate_node, file_too_large,
//   too_many_files, tree_too_large, invalid_frontmatter, not_regular_file
//   (a symlink, FIFO, device ... named *.md), hard_link (a regular file with
//   more than one name: it may be another file's secret), unreadable,
//   dir_unavailable, too_deep.
// `detail` says more for people (the name, the errno, the parser message).
struct LoadError {
  AssetType type = AssetType::kSkill;
  std::string path;  // root-relative
  std::string reason;
  std::string detail;
};

struct AssetSnapshot {
  // Per type, sorted by name (skill graph nodes: by id).
  std::map<AssetType, std::vector<Asset>> assets;
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;  // deduplicated, sorted by (from, to)
  std::vector<LoadError> errors;
  uint64_t total_bytes = 0;

  const std::vector<Asset>& Of(AssetType type) const;
  const Asset* Find(AssetType type, absl::string_view name) const;
};

nlohmann::json LoadErrorToJson(const LoadError& error);

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_ASSET_SNAPSHOT_H_
