#include "runtime/assets/asset_store.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jcs::runtime::assets {
namespace {

using json = nlohmann::json;

bool SameAssets(const std::vector<Asset>& a, const std::vector<Asset>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].path != b[i].path ||
        a[i].body != b[i].body) {
      return false;
    }
  }
  return true;
}

json ErrorsJson(const std::vector<LoadError>& errors) {
  json out = json::array();
  for (size_t i = 0; i < errors.size() && i < kMaxErrorsShown; ++i) {
    out.push_back(LoadErrorToJson(errors[i]));
  }
  return out;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

json AssetCounts(const AssetSnapshot& snapshot) {
  return {{"skill", snapshot.Of(AssetType::kSkill).size()},
          {"command", snapshot.Of(AssetType::kCommand).size()},
          {"workflow", snapshot.Of(AssetType::kWorkflow).size()},
          {"skill_graph_nodes", snapshot.nodes.size()},
          {"skill_graph_edges", snapshot.edges.size()}};
}

json AssetVersions(const PublishedAssets& published) {
  json out = json::object();
  for (AssetType type : kAssetTypes) {
    auto it = published.versions.find(type);
    out[AssetTypeName(type)] = it == published.versions.end() ? 0 : it->second;
  }
  return out;
}

absl::StatusOr<LoadSummary> AssetStore::Load(bool strict) {
  return DoLoad(strict, /*initial=*/true);
}

absl::StatusOr<LoadSummary> AssetStore::Reload(bool strict) {
  return DoLoad(strict, /*initial=*/false);
}

absl::StatusOr<LoadSummary> AssetStore::DoLoad(bool strict, bool initial) {
  absl::MutexLock load_lock(&load_mu_);
  std::shared_ptr<const PublishedAssets> previous = Current();
  if (!initial && previous == nullptr) {
    return absl::FailedPreconditionError("layout_not_loaded");
  }
  absl::StatusOr<AssetSnapshot> loaded = LoadAssetTree(config_);
  if (!loaded.ok()) return loaded.status();
  const absl::Time now = absl::Now();
  if (strict && !loaded->errors.empty()) {
    std::vector<std::string> shown;
    for (size_t i = 0; i < loaded->errors.size() && i < kMaxErrorsInMessage;
         ++i) {
      const LoadError& e = loaded->errors[i];
      shown.push_back(e.detail.empty() ? absl::StrCat(e.path, ": ", e.reason)
                                       : absl::StrCat(e.path, ": ", e.reason,
                                                      " (", e.detail, ")"));
    }
    absl::MutexLock lock(&mu_);
    last_failure_.emplace(now, loaded->errors);
    return absl::FailedPreconditionError(
        absl::StrCat("asset_load_failed: ", loaded->errors.size(),
                     " error(s): ", absl::StrJoin(shown, "; "),
                     loaded->errors.size() > shown.size() ? "; ..." : ""));
  }
  auto next = std::make_shared<PublishedAssets>();
  next->generation = previous == nullptr ? 1 : previous->generation + 1;
  next->loaded_at = now;
  for (AssetType type : kAssetTypes) {
    const bool changed =
        previous == nullptr ||
        !SameAssets(previous->snapshot->Of(type), loaded->Of(type)) ||
        (type == AssetType::kSkillGraph &&
         previous->snapshot->edges != loaded->edges);
    next->versions[type] =
        changed ? next->generation : previous->versions.at(type);
  }
  next->snapshot = std::make_shared<const AssetSnapshot>(*std::move(loaded));
  LoadSummary summary;
  summary.initial = initial;
  summary.generation = next->generation;
  summary.error_count = next->snapshot->errors.size();
  summary.event = {{"generation", next->generation},
                   {"versions", AssetVersions(*next)},
                   {"counts", AssetCounts(*next->snapshot)},
                   {"error_count", summary.error_count}};
  absl::MutexLock lock(&mu_);
  current_ = std::move(next);
  last_failure_.reset();
  return summary;
}

std::shared_ptr<const PublishedAssets> AssetStore::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

json AssetStore::Diagnostics() const {
  absl::MutexLock lock(&mu_);
  json out = {{"loaded", current_ != nullptr}};
  if (current_ != nullptr) {
    const AssetSnapshot& s = *current_->snapshot;
    out["generation"] = current_->generation;
    out["versions"] = AssetVersions(*current_);
    out["counts"] = AssetCounts(s);
    out["error_count"] = s.errors.size();
    out["errors"] = ErrorsJson(s.errors);
    out["loaded_at"] = Rfc3339(current_->loaded_at);
  } else {
    out["generation"] = 0;
    out["error_count"] = 0;
    out["errors"] = json::array();
  }
  if (last_failure_.has_value()) {
    out["last_failure"] = {{"at", Rfc3339(last_failure_->first)},
                           {"error_count", last_failure_->second.size()},
                           {"errors", ErrorsJson(last_failure_->second)}};
  }
  return out;
}

json AssetItem(const Asset& asset) {
  return {{"type", AssetTypeName(asset.type)},
          {"name", asset.name},
          {"path", asset.path},
          {"relative_path", asset.relative_path}};
}

json AssetDocument(const Asset& asset) {
  json out = AssetItem(asset);
  out["content"] = asset.body;
  out["frontmatter"] = asset.frontmatter;
  if (!asset.frontmatter_error.empty()) {
    out["frontmatter_error"] = asset.frontmatter_error;
  }
  return out;
}

const Asset* FindAsset(const AssetSnapshot& snapshot, AssetType type,
                       absl::string_view key) {
  const std::vector<Asset>& assets = snapshot.Of(type);
  auto it = std::lower_bound(
      assets.begin(), assets.end(), key,
      [](const Asset& a, absl::string_view k) { return a.name < k; });
  if (it != assets.end() && it->name == key) return &*it;
  if (type == AssetType::kSkillGraph) {
    const std::string rel = absl::StrCat(key, ".md");
    for (const Asset& asset : assets) {
      if (asset.relative_path == rel) return &asset;
    }
  }
  return nullptr;
}

std::vector<const Asset*> SearchAssets(const AssetSnapshot& snapshot,
                                       AssetType type,
                                       absl::string_view query) {
  const std::string needle =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(query));
  std::map<std::string, std::string> titles;
  if (type == AssetType::kSkillGraph) {
    for (const GraphNode& node : snapshot.nodes) titles[node.id] = node.title;
  }
  const auto contains = [&](absl::string_view hay) {
    return absl::AsciiStrToLower(hay).find(needle) != std::string::npos;
  };
  std::vector<const Asset*> out;
  for (const Asset& asset : snapshot.Of(type)) {
    if (contains(asset.name) || contains(asset.relative_path) ||
        contains(asset.body) || contains(titles[asset.name])) {
      out.push_back(&asset);
    }
  }
  return out;
}

json GraphJson(const AssetSnapshot& snapshot) {
  json nodes = json::array();
  for (const GraphNode& n : snapshot.nodes) {
    nodes.push_back({{"id", n.id},
                     {"path", n.path},
                     {"relative_path", n.relative_path},
                     {"title", n.title}});
  }
  json edges = json::array();
  for (const GraphEdge& e : snapshot.edges) {
    edges.push_back({{"from", e.from}, {"to", e.to}});
  }
  return {{"nodes", std::move(nodes)}, {"edges", std::move(edges)}};
}

}  // namespace jcs::runtime::assets
