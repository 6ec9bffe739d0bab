// ToolRuntime's asset store: loads and reloads under the project's identity,
// and their events (tool_runtime.h, "Assets").
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/tools/tool_runtime.h"

namespace jcs::runtime {

absl::Status ToolRuntime::LoadAssets() {
  const bool strict = config_.options.strict_asset_loading;
  absl::StatusOr<assets::LoadSummary> loaded = assets_->Load(strict);
  if (!loaded.ok()) return loaded.status();
  asset_tools_ = std::make_shared<const AssetToolSet>(assets_->Current());
  nlohmann::json event = loaded->event;
  event["project_id"] = config_.project_id;
  event["trigger"] = "start";
  bus_->Emit("project.assets_loaded", event);
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ToolRuntime::ReloadAssets(
    std::string_view trigger) {
  const bool strict = config_.options.strict_asset_loading;
  absl::StatusOr<assets::LoadSummary> loaded = assets_->Reload(strict);
  if (!loaded.ok()) {
    bus_->Emit("project.assets_reload_failed",
               {{"project_id", config_.project_id},
                {"trigger", std::string(trigger)},
                {"error", std::string(loaded.status().message())}});
    return loaded.status();
  }
  asset_tools_ = std::make_shared<const AssetToolSet>(assets_->Current());
  nlohmann::json event = loaded->event;
  event["project_id"] = config_.project_id;
  event["trigger"] = std::string(trigger);
  bus_->Emit("project.assets_reloaded", event);
  return event;
}

}  // namespace jcs::runtime
