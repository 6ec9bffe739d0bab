// The control API's request handler: project lifecycle and diagnostics over
// the project registry, each project's tool runtime (list/run/cancel tools)
// and conversation runtime (created and destroyed with it),
// errors mapped to stable machine reasons, and every event through the
// telemetry bus (per-project counters and bounded rings for diagnostics,
// streamed to subscribers).
#ifndef JCS_SUPERVISOR_CONTROL_SERVICE_H_
#define JCS_SUPERVISOR_CONTROL_SERVICE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "loop/event_loop.h"
#include "proto/control.pb.h"
#include "runtime/conversation/conversation_runtime.h"
#include "runtime/journal/journal.h"
#include "runtime/project/project_registry.h"
#include "runtime/project/value.h"
#include "runtime/tools/tool_runtime.h"
#include "supervisor/control_server.h"
#include "telemetry/alerts/router.h"
#include "telemetry/alerts/rules.h"
#include "telemetry/bus.h"
#include "telemetry/logging/structured_log.h"
#include "telemetry/metrics/daemon_metrics.h"
#include "telemetry/metrics/exposition.h"

namespace jcs::supervisor {

// The Error message for a failed registry call (reason, key, detail, message).
proto::Error ErrorFromStatus(const absl::Status& status);

struct ControlServiceOptions {
  // Come first; a request's own options override them by key (validation sees
  // both, in that order).
  runtime::OptionList default_options;
  // Besides uid 0 and the daemon's euid: peers that see and use every
  // project (a gid matches the primary or a supplementary group).
  std::set<uid_t> admin_uids;
  std::set<gid_t> admin_gids;
  // The daemon's own files no project root may contain (socket, state dir,
  // config file).
  std::vector<std::string> daemon_paths;
  // The alert router: signal events, sinks (embedders may add callback
  // sinks), queue bound. Replaced at run time by ReconfigureAlerts.
  telemetry::alerts::RouterConfig alerts;
};

// Who may do what: root and the daemon's uid ("privileged") start projects on
// any root and choose run_as; any other peer starts projects only as itself
// on roots it can use (runtime/project/root_access.h). A project is used (stop,
// diagnostics, tools, subscriptions, list) only by the peer that started it
// and by admins (privileged, admin_uids, admin_gids); others get
// "unauthorized" naming their uid.
class ControlService : public RequestHandler {
 public:
  // Tool calls run on `loop`.
  ControlService(runtime::EventLoop* loop, ControlServiceOptions options = {});
  ~ControlService();

  // Where events go (ControlServer::Publish). Set before serving.
  // Events, tool results and project starts/stops go to `journal` (owned
  // by the caller, outliving this service). Subscribers then get each event
  // once it is durable (see proto Event.durable).
  void set_journal(runtime::journal::Journal* journal) { journal_ = journal; }
  // The journal's callbacks (runtime::journal::Journal::Callbacks).
  void OnJournalDurable(uint64_t seq);
  void OnJournalHealth(const absl::Status& status, size_t pending);
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
  // the StartProject request), and journals the start (`boot`: from the
  // supervisor config, which starts it again itself).
  absl::StatusOr<std::string> StartProject(
      const std::string& root, const runtime::OptionList& options,
      const runtime::StartProjectParams& params, bool boot = false);

  // Starts again the projects the journal says were running when the daemon
  // last stopped (before the boot projects). A start that now fails is
  // reported (stderr and a project.restore_failed event) and forgotten;
  // boot projects, and any whose id a boot project takes (`boot_ids`), are
  // left to the config. Returns how many came back.
  int RestoreProjects(const std::set<std::string>& boot_ids);

  void Handle(const proto::Request& request, const PeerCredentials& peer,
              Respond respond) override;
  std::optional<proto::Error> AuthorizeSubscribe(
      const PeerCredentials& peer, const std::string& project_id) override;
  bool MaySee(const PeerCredentials& peer, const proto::Event& event) override;

  // Root or the daemon's own uid.
  static bool Privileged(const PeerCredentials& peer);
  // Privileged, or listed in admin_uids / admin_gids.
  bool IsAdmin(const PeerCredentials& peer) const;

  // Replaces the alert router's signal events and sinks (SIGHUP). Refused,
  // keeping the current ones, when a file or socket sink lies inside a
  // running project's root (its jail would see the alerts).
  absl::Status ReconfigureAlerts(telemetry::alerts::RouterConfig config);

  // The structured log (owned by the caller, outliving this service): every
  // event goes to it (telemetry/logging/event_log.h). Unset: no log.
  void set_log(telemetry::logging::StructuredLog* log) { log_ = log; }
  // The journal's `committed` callback (commit-latency metric).
  void OnJournalCommitted(absl::Duration took, size_t entries) {
    metrics_.ObserveJournalCommit(took, entries);
  }
  // Adds the caller's own figures to each scrape (the control server's).
  void set_metrics_collector(
      std::function<void(telemetry::metrics::Exposition&)> collect) {
    collect_metrics_ = std::move(collect);
  }
  // The daemon's metrics, Prometheus text format (control_metrics.cc): the
  // counters kept since start, and gauges read now.
  std::string MetricsText() const;

  // The diagnostics document of one project, or nullopt when unknown.
  std::optional<nlohmann::json> Diagnostics(
      const std::string& project_id) const;

 private:
  void OnEvent(absl::string_view name, const nlohmann::json& payload);
  // root_contains_daemon_files when `root` holds (or is inside) an alert
  // sink path.
  absl::Status CheckAlertSinksOutside(const std::string& root) const;
  // Bus sink: routes signal events, feeds the rules and emits their alerts.
  void OnAlertSignal(const telemetry::Event& event);
  void HandleToolRequest(const proto::Request& request,
                         proto::Response& response, Respond& respond);
  void CheckDrained();
  // Start/StopConversation, ConversationCall/Cast/State/Projection
  // (control_conversations.cc).
  void HandleConversationRequest(const proto::Request& request,
                                 const PeerCredentials& peer,
                                 proto::Response& response, Respond& respond);
  void HandleGetToolResult(const proto::Request& request,
                           const PeerCredentials& peer,
                           proto::Response& response, Respond& respond);
  void HandleIncidentTimeline(const proto::Request& request,
                              const PeerCredentials& peer,
                              proto::Response& response, Respond& respond);
  void Publish(proto::Event event);
  // An "unauthorized" error when `project_id` runs and `peer` may not use it.
  std::optional<proto::Error> AuthorizeProject(
      const PeerCredentials& peer, const std::string& project_id) const;

  runtime::EventLoop* const loop_;
  const ControlServiceOptions options_;
  // The uid that started each running project (kept until its
  // project.stopped event has been delivered).
  std::map<std::string, uid_t> owners_;
  std::function<void(const proto::Event&)> publish_;
  // Before the bus and the runtimes: what they emit while being destroyed
  // still finds the rules and the router.
  telemetry::alerts::RuleEngine rules_;
  std::unique_ptr<telemetry::alerts::Router> router_;
  // The router's file and socket paths.
  std::vector<std::string> alert_sink_paths_;
  telemetry::Bus bus_;
  runtime::ProjectRegistry registry_;
  std::map<std::string, std::unique_ptr<runtime::ToolRuntime>> tools_;
  // Declared after tools_: destroyed first (a conversation's stop cancels
  // its calls in the tool runtime).
  std::map<std::string,
           std::unique_ptr<runtime::conversation::ConversationRuntime>>
      conversations_;
  bool draining_ = false;
  std::function<void()> drained_;

  telemetry::metrics::DaemonMetrics metrics_;
  std::function<void(telemetry::metrics::Exposition&)> collect_metrics_;
  telemetry::logging::StructuredLog* log_ = nullptr;
  // alert_signal_events as configured now (logged as alerts).
  std::set<std::string, std::less<>> alert_events_;

  runtime::journal::Journal* journal_ = nullptr;
  bool journal_failing_ = false;
  // Events journaled but not yet durable, oldest first. Bounded: past
  // kMaxHeldEvents the oldest are sent as not durable.
  static constexpr size_t kMaxHeldEvents = 10000;
  std::deque<proto::Event> held_events_;
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_CONTROL_SERVICE_H_
