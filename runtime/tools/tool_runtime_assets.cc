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
  if (config_.options.watcher) return StartWatcher();
  return absl::OkStatus();
}

absl::Status ToolRuntime::StartWatcher() {
  assets::AssetWatcher::Config watch;
  watch.root = config_.root;
  watch.data_dir = config_.data_dir;
  watch.debounce = absl::Milliseconds(config_.options.watcher_debounce_ms);
  std::weak_ptr<bool> alive = alive_;
  watch.on_settled = [this, alive](std::vector<std::string> changed,
                                   size_t count) {
    if (alive.expired() || stopping_) return;
    nlohmann::json paths = nlohmann::json::array();
    for (size_t i = 0; i < changed.size() && i < assets::kMaxChangedPathsShown;
         ++i) {
      paths.push_back(changed[i]);
    }
    nlohmann::json event = {{"project_id", config_.project_id},
                            {"changed_paths", paths},
                            {"changed_count", changed.size()},
                            {"event_count", count}};
    absl::StatusOr<nlohmann::json> reloaded = ReloadAssets("watcher");
    if (reloaded.ok()) {
      event["generation"] = (*reloaded)["generation"];
      event["error_count"] = (*reloaded)["error_count"];
      bus_->Emit("project.watcher_reload_completed", event);
    } else {
      event["error"] = std::string(reloaded.status().message());
      bus_->Emit("project.watcher_reload_failed", event);
    }
  };
  auto watcher = std::make_unique<assets::AssetWatcher>(loop_, watch);
  if (absl::Status started = watcher->Start(); !started.ok()) return started;
  watcher_ = std::move(watcher);
  bus_->Emit("project.watcher_started",
             {{"project_id", config_.project_id},
              {"watch_dirs", watcher_->WatchedDirs()},
              {"debounce_ms", config_.options.watcher_debounce_ms}});
  return absl::OkStatus();
}

nlohmann::json ToolRuntime::WatcherDiagnostics() const {
  nlohmann::json out = {{"enabled", config_.options.watcher}};
  if (watcher_ != nullptr) out.update(watcher_->Diagnostics());
  return out;
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
