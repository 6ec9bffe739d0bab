#include "runtime/assets/asset_snapshot.h"

namespace jcs::runtime::assets {

const char* AssetTypeName(AssetType type) {
  switch (type) {
    case AssetType::kSkill:
      return "skill";
    case AssetType::kCommand:
      return "command";
    case AssetType::kWorkflow:
      return "workflow";
    case AssetType::kSkillGraph:
      return "skill_graph";
  }
  return "skill";
}

const char* AssetTypeDir(AssetType type) {
  switch (type) {
    case AssetType::kSkill:
      return "skills";
    case AssetType::kCommand:
      return "commands";
    case AssetType::kWorkflow:
      return "workflows";
    case AssetType::kSkillGraph:
      return "skill_graph";
  }
  return "skills";
}

std::optional<AssetType> ParseAssetType(absl::string_view text) {
  if (text == "skill" || text == "skills") return AssetType::kSkill;
  if (text == "command" || text == "commands") return AssetType::kCommand;
  if (text == "workflow" || text == "workflows") return AssetType::kWorkflow;
  if (text == "skill_graph") return AssetType::kSkillGraph;
  return std::nullopt;
}

const std::vector<Asset>& AssetSnapshot::Of(AssetType type) const {
  static const std::vector<Asset>* const kEmpty = new std::vector<Asset>();
  auto it = assets.find(type);
  return it == assets.end() ? *kEmpty : it->second;
}

const Asset* AssetSnapshot::Find(AssetType type, absl::string_view name) const {
  for (const Asset& asset : Of(type)) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

nlohmann::json LoadErrorToJson(const LoadError& error) {
  nlohmann::json out = {{"type", AssetTypeName(error.type)},
                        {"loader", AssetTypeDir(error.type)},
                        {"path", error.path},
                        {"reason", error.reason}};
  if (!error.detail.empty()) out["detail"] = error.detail;
  return out;
}

}  // namespace jcs::runtime::assets
