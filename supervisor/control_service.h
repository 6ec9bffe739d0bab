// The control API's request handler: project lifecycle and diagnostics over
// the project registry, each project's tool runtime (list/run/cancel tools),
// errors mapped to stable machine reasons, and every event through the
// telemetry bus (per-project counters and bounded rings for diagnostics,
// streamed to subscribers).
#ifndef JCS_SUPERVISOR_CONTROL_SERVICE_H_
#define JCS_SUPERVISOR_CONTROL_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "proto/control.pb.h"
#include "runtime/event_loop.h"
#include "runtime/project_registry.h"
#include "runtime/tool_runtime.h"
#include "runtime/value.h"
#include "supervisor/control_server.h"
#include "telemetry/bus.h"

namespace jcs::supervisor {

// The Error message for a failed registry call (reason, key, detail, message).
proto::Error ErrorFromStatus(const absl::Status& status);

class ControlService : public RequestHandler {
 public:
  // `default_options` come first; a request's own options override them by
  // key (validation sees both, in that order). Tool calls run on `loop`.
  ControlService(runtime::EventLoop* loop,
                 runtime::OptionList default_options = {});
  ~ControlService();

  // Where events go (ControlServer::Publish). Set before serving.
  void set_publisher(std::function<void(const proto::Event&)> publish) {
    publish_ = std::move(publish);
  }
  runtime::ProjectRegistry& registry() { return registry_; }
  telemetry::Bus& bus() { return bus_; }

  // Graceful drain: running tool calls get `grace` to finish, then are
  // killed; `drained` runs once no call is left. New tool calls are refused
  // (reason "draining") from now on.
  void Drain(absl::Duration grace, std::function<void()> drained);
  size_t running_tool_calls() const;

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
  void HandleToolRequest(const proto::Request& request,
                         proto::Response& response, Respond& respond);
  void CheckDrained();

  runtime::EventLoop* const loop_;
  runtime::OptionList default_options_;
  std::function<void(const proto::Event&)> publish_;
  telemetry::Bus bus_;
  runtime::ProjectRegistry registry_;
  std::map<std::string, std::unique_ptr<runtime::ToolRuntime>> tools_;
  bool draining_ = false;
  std::function<void()> drained_;
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_CONTROL_SERVICE_H_
