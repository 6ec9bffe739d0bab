// ToolRuntime's asset store: loads and reloads under the project's identity,
// and their events (tool_runtime.h, "Assets").
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/tools/tool_call.h"
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
  // Listed as the project's user, like the loads.
  watch.enter_identity = assets_->config().enter_identity;
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
    ReloadAssets("watcher",
                 [this, event = std::move(event)](
                     absl::StatusOr<nlohmann::json> reloaded) mutable {
                   if (reloaded.ok()) {
                     event["generation"] = (*reloaded)["generation"];
                     event["error_count"] = (*reloaded)["error_count"];
                     bus_->Emit("project.watcher_reload_completed", event);
                   } else {
                     event["error"] = std::string(reloaded.status().message());
                     bus_->Emit("project.watcher_reload_failed", event);
                   }
                 });
  };
  // The spec's `project.watcher_stopped {project_id, reason:
  // :file_system_stop}`: the tree can no longer be watched (its file system
  // was unmounted, the root removed). Reloads still work by request.
  watch.on_stopped = [this, alive](std::string detail) {
    if (alive.expired() || stopping_) return;
    bus_->Emit("project.watcher_stopped", {{"project_id", config_.project_id},
                                           {"reason", "file_system_stop"},
                                           {"detail", std::move(detail)}});
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

void ToolRuntime::ReloadAssets(
    std::string_view trigger,
    std::function<void(absl::StatusOr<nlohmann::json>)> done) {
  const bool strict = config_.options.strict_asset_loading;
  // The store outlives the work: it is owned by this runtime, and the
  // runtime's destructor waits for nothing, so the work holds the store
  // through a shared pointer to it.
  std::shared_ptr<assets::AssetStore> store = assets_;
  absl::Status queued = RunOffLoop<absl::StatusOr<assets::LoadSummary>>(
      loop_, alive_,
      [store, strict]() -> absl::StatusOr<assets::LoadSummary> {
        return store->Reload(strict);
      },
      [this, trigger = std::string(trigger),
       done](absl::StatusOr<assets::LoadSummary> loaded) {
        absl::StatusOr<nlohmann::json> event =
            FinishReload(trigger, std::move(loaded));
        if (done) done(std::move(event));
      });
  if (!queued.ok() && done) {
    done(absl::UnavailableError(absl::StrCat(
        "busy: the worker pool refused the reload (", queued.message(), ")")));
  }
}

absl::StatusOr<nlohmann::json> ToolRuntime::FinishReload(
    const std::string& trigger, absl::StatusOr<assets::LoadSummary> loaded) {
  if (!loaded.ok()) {
    bus_->Emit("project.assets_reload_failed",
               {{"project_id", config_.project_id},
                {"trigger", trigger},
                {"error", std::string(loaded.status().message())}});
    return loaded.status();
  }
  asset_tools_ = std::make_shared<const AssetToolSet>(assets_->Current());
  nlohmann::json event = loaded->event;
  event["project_id"] = config_.project_id;
  event["trigger"] = trigger;
  bus_->Emit("project.assets_reloaded", event);
  return event;
}

}  // namespace jcs::runtime
