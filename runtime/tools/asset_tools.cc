#include "runtime/tools/asset_tools.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/policy/path_policy.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;
using assets::AssetType;

constexpr size_t kMaxArgBytes = 4096;

ToolOutcome InvalidArg(const std::string& field, const std::string& problem) {
  return ToolOutcome::Fail("invalid_tool_args",
                           {{"field", field}, {"problem", problem}});
}

// Reads a required string argument.
std::optional<ToolOutcome> RequiredString(const json& args, const char* field,
                                          std::string* out) {
  auto it = args.find(field);
  if (it == args.end()) return InvalidArg(field, "missing");
  if (!it->is_string()) return InvalidArg(field, "expected_string");
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > kMaxArgBytes) return InvalidArg(field, "too_long");
  *out = value;
  return std::nullopt;
}

// The root-relative path of the file `key` would name, as the sensitive-path
// policy sees it: data_dir's empty and "." segments dropped ("./.jido//" is
// ".jido"), as fs tools normalize the paths they check.
std::string PolicyPath(const std::string& data_dir, AssetType type,
                       const std::string& key) {
  std::string out;
  for (absl::string_view segment : absl::StrSplit(data_dir, '/')) {
    if (segment.empty() || segment == ".") continue;
    absl::StrAppend(&out, segment, "/");
  }
  absl::StrAppend(&out, assets::AssetTypeDir(type), "/", key, ".md");
  return out;
}

ToolOutcome Run(const AssetToolContext& ctx, std::string_view tool,
                const json& args) {
  if (!IsAssetTool(tool)) {
    return ToolOutcome::Fail("unknown_tool", {{"tool", std::string(tool)}});
  }
  if (!args.is_object()) return InvalidArg("$", "expected_object");
  std::string type_name;
  if (auto error = RequiredString(args, "type", &type_name)) return *error;
  std::string query, key;
  if (tool == "asset.search") {
    if (auto error = RequiredString(args, "query", &query)) return *error;
  }
  if (tool == "asset.get") {
    if (auto error = RequiredString(args, "key", &key)) return *error;
    if (key.empty()) return InvalidArg("key", "empty");
    if (key.find('\0') != std::string::npos) {
      return InvalidArg("key", "contains_nul");
    }
  }
  if (type_name.empty()) {
    if (tool == "asset.get") {
      return ToolOutcome::Fail("asset_not_found",
                               {{"type", type_name}, {"key", key}});
    }
    return ToolOutcome::Ok({{"items", json::array()}});
  }
  const std::optional<AssetType> type = assets::ParseAssetType(type_name);
  if (!type) {
    return ToolOutcome::Fail("invalid_asset_type", {{"type", type_name}});
  }
  const char* kind = assets::AssetTypeName(*type);
  if (tool == "asset.get") {
    // Refused before the lookup: the answer does not depend on whether the
    // file exists.
    const std::string file = PolicyPath(ctx.data_dir, *type, key);
    if (IsSensitivePathOrAncestor(file, ctx.sensitive_denylist,
                                  ctx.sensitive_allowlist) ||
        IsSensitivePathOrAncestor(file.substr(0, file.size() - 3),
                                  ctx.sensitive_denylist,
                                  ctx.sensitive_allowlist)) {
      return ToolOutcome::Fail(
          "sensitive_path_denied",
          {{"type", kind},
           {"key", key},
           {"path", absl::StrCat(ctx.data_dir, "/", assets::AssetTypeDir(*type),
                                 "/", key, ".md")}});
    }
  }
  if (ctx.assets == nullptr) {
    return ToolOutcome::Fail("assets_not_loaded", json::object());
  }
  const assets::AssetSnapshot& snapshot = *ctx.assets->snapshot;
  if (tool == "asset.get") {
    const assets::Asset* asset = assets::FindAsset(snapshot, *type, key);
    if (asset == nullptr) {
      return ToolOutcome::Fail("asset_not_found",
                               {{"type", kind}, {"key", key}});
    }
    return ToolOutcome::Ok({{"asset", assets::AssetDocument(*asset)}});
  }
  json items = json::array();
  if (tool == "asset.search") {
    for (const assets::Asset* asset :
         assets::SearchAssets(snapshot, *type, query)) {
      items.push_back(assets::AssetItem(*asset));
    }
    return ToolOutcome::Ok({{"items", std::move(items)}});
  }
  for (const assets::Asset& asset : snapshot.Of(*type)) {
    items.push_back(assets::AssetItem(asset));
  }
  json result = {{"items", std::move(items)},
                 {"generation", ctx.assets->generation},
                 {"version", ctx.assets->versions.at(*type)}};
  if (*type == AssetType::kSkillGraph) {
    result["graph"] = assets::GraphJson(snapshot);
  }
  return ToolOutcome::Ok(std::move(result));
}

}  // namespace

bool IsAssetTool(std::string_view tool_name) {
  return tool_name == "asset.list" || tool_name == "asset.search" ||
         tool_name == "asset.get";
}

ToolOutcome RunAssetTool(const AssetToolContext& ctx,
                         std::string_view tool_name, const json& args) {
  return Run(ctx, tool_name, args);
}

}  // namespace jcs::runtime
