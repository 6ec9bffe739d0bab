// A project's asset store (spec §6): the current snapshot of its asset tree
// (asset_loader.h), its generation and per-type versions, and the queries the
// asset tools, the control API and diagnostics use.
//
// Load and reload build a complete new snapshot and then swap it in; readers
// hold a shared pointer, so a tool call keeps the snapshot it started with.
//   - generation counts applied loads from 1; a type's version is the
//     generation at which its assets (names, paths, contents) last changed,
//     so a client can tell which types to refetch.
//   - strict (strict_asset_loading): any LoadError fails the load with
//     FailedPrecondition "asset_load_failed: <n> error(s): <path>: <reason>
//     (<detail>); ..." (the first kMaxErrorsInMessage), and the previous
//     snapshot, generation and versions stay; the failure is kept for
//     diagnostics (last_failure). Lenient: the snapshot without the bad files
//     is applied and the errors are reported with it.
//   - Reload before any Load: FailedPrecondition "layout_not_loaded".
// Thread-safe: the swap and Current() take a mutex; loads are serialized.
#ifndef JCS_RUNTIME_ASSETS_ASSET_STORE_H_
#define JCS_RUNTIME_ASSETS_ASSET_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/assets/asset_loader.h"
#include "runtime/assets/asset_snapshot.h"

namespace jcs::runtime::assets {

inline constexpr size_t kMaxErrorsInMessage = 5;
// Errors listed in diagnostics (error_count has them all).
inline constexpr size_t kMaxErrorsShown = 100;

struct PublishedAssets {
  std::shared_ptr<const AssetSnapshot> snapshot;
  uint64_t generation = 0;
  std::map<AssetType, uint64_t> versions;
  absl::Time loaded_at;
};

// What a successful load did (for the project.assets_loaded / _reloaded
// events).
struct LoadSummary {
  bool initial = false;
  uint64_t generation = 0;
  size_t error_count = 0;
  // {project_id is added by the caller} generation, versions, counts,
  // error_count.
  nlohmann::json event;
};

class AssetStore {
 public:
  explicit AssetStore(LoaderConfig config) : config_(std::move(config)) {}

  // The first load. Returns its summary, or the error (strict, or the root
  // unavailable); a failed first load leaves the store unloaded.
  absl::StatusOr<LoadSummary> Load(bool strict) ABSL_LOCKS_EXCLUDED(load_mu_);
  absl::StatusOr<LoadSummary> Reload(bool strict) ABSL_LOCKS_EXCLUDED(load_mu_);

  // Null before the first successful load.
  std::shared_ptr<const PublishedAssets> Current() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // {loaded, generation, versions, counts, error_count, errors (at most
  // kMaxErrorsShown), loaded_at, [last_failure {at, error_count, errors}]}.
  nlohmann::json Diagnostics() const ABSL_LOCKS_EXCLUDED(mu_);

  const LoaderConfig& config() const { return config_; }

 private:
  absl::StatusOr<LoadSummary> DoLoad(bool strict, bool initial);

  const LoaderConfig config_;
  absl::Mutex load_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(load_mu_);
  std::shared_ptr<const PublishedAssets> current_ ABSL_GUARDED_BY(mu_);
  // The last strict load that was refused (kept until the next applied one).
  std::optional<std::pair<absl::Time, std::vector<LoadError>>> last_failure_
      ABSL_GUARDED_BY(mu_);
};

// {skill, command, workflow, skill_graph_nodes, skill_graph_edges}.
nlohmann::json AssetCounts(const AssetSnapshot& snapshot);
// {skill: v, command: v, workflow: v, skill_graph: v}.
nlohmann::json AssetVersions(const PublishedAssets& published);

// The query forms of the asset tools (runtime/tools/asset_tools.h).
// {type, name, path, relative_path}.
nlohmann::json AssetItem(const Asset& asset);
// AssetItem plus {content, frontmatter, [frontmatter_error]}.
nlohmann::json AssetDocument(const Asset& asset);
// By name; under skill_graph also by relative path without ".md".
const Asset* FindAsset(const AssetSnapshot& snapshot, AssetType type,
                       absl::string_view key);
// The assets whose name, relative path or content contains `query` (trimmed,
// ASCII case-insensitive; an empty query matches every asset), sorted by
// name. Skill-graph nodes also match on their title.
std::vector<const Asset*> SearchAssets(const AssetSnapshot& snapshot,
                                       AssetType type, absl::string_view query);
// {nodes: [{id, path, relative_path, title}], edges: [{from, to}]}.
nlohmann::json GraphJson(const AssetSnapshot& snapshot);

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_ASSET_STORE_H_
