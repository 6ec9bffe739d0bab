// The control API's request handler: project lifecycle and diagnostics over
// the project registry, errors mapped to stable machine reasons, and every
// registry event published to subscribers with per-project counters for
// diagnostics (`telemetry.event_counts`, bounded `telemetry.recent_errors`).
#ifndef JCS_SUPERVISOR_CONTROL_SERVICE_H_
#define JCS_SUPERVISOR_CONTROL_SERVICE_H_

#include <deque>
#include <functional>
#include <map>
#include <string>

#include "proto/control.pb.h"
#include "runtime/project_registry.h"
#include "runtime/value.h"
#include "supervisor/control_server.h"

namespace jcs::supervisor {

// The Error message for a failed registry call (reason, key, detail, message).
proto::Error ErrorFromStatus(const absl::Status& status);

class ControlService : public RequestHandler {
 public:
  static constexpr size_t kRecentErrorsCap = 50;

  // `default_options` come first; a request's own options override them by
  // key (validation sees both, in that order).
  explicit ControlService(runtime::OptionList default_options = {});

  // Where events go (ControlServer::Publish). Set before serving.
  void set_publisher(std::function<void(const proto::Event&)> publish) {
    publish_ = std::move(publish);
  }
  runtime::ProjectRegistry& registry() { return registry_; }

  // Starts a project with the default options merged in (boot projects, and
  // the StartProject request).
  absl::StatusOr<std::string> StartProject(
      const std::string& root, const runtime::OptionList& options,
      const runtime::StartProjectParams& params);

  void Handle(const proto::Request& request, const PeerCredentials& peer,
              Respond respond) override;

  // The diagnostics document of one project, or nullopt when unknown.
  std::optional<nlohmann::json> Diagnostics(
      const std::string& project_id) const;

 private:
  void OnEvent(absl::string_view name, const nlohmann::json& payload);

  runtime::OptionList default_options_;
  std::function<void(const proto::Event&)> publish_;
  std::map<std::string, std::map<std::string, uint64_t>> event_counts_;
  std::map<std::string, std::deque<nlohmann::json>> recent_errors_;
  runtime::ProjectRegistry registry_;
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_CONTROL_SERVICE_H_
