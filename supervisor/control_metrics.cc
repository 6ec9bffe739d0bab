// ControlService::MetricsText: the `jcs metrics` scrape. Counters and
// histograms kept since start come from telemetry/metrics/daemon_metrics.h;
// what is read now (running calls, queue depths) is added here. README
// "Metrics and logs" lists every family.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/version.h"
#include "supervisor/control_service.h"
#include "telemetry/logging/line_writer.h"

namespace jcs::supervisor {
namespace {

double Num(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number() ? it->get<double>() : 0;
}

}  // namespace

std::string ControlService::MetricsText() const {
  using telemetry::metrics::Exposition;
  Exposition exp;
  exp.Gauge("jcs_build_info", "Always 1; the daemon's version as a label.",
            {{"version", kJcsVersion}}, 1);
  exp.Gauge("jcs_draining", "1 while the daemon drains (SIGTERM), else 0.", {},
            draining_ ? 1 : 0);
  const std::vector<runtime::ProjectSummary> projects =
      registry_.ListProjects();
  exp.Gauge("jcs_projects", "Running projects.", {},
            static_cast<double>(projects.size()));
  static constexpr char kCalls[] = "jcs_active_tool_calls";
  static constexpr char kCallsHelp[] = "Tool calls running now, by project.";
  static constexpr char kConv[] = "jcs_active_conversations";
  static constexpr char kConvHelp[] = "Conversations open now, by project.";
  static constexpr char kQueue[] = "jcs_conversation_queue_depth";
  static constexpr char kQueueHelp[] =
      "Signals queued in a project's conversations, not yet handled.";
  exp.Declare(kCalls, "gauge", kCallsHelp);
  exp.Declare(kConv, "gauge", kConvHelp);
  exp.Declare(kQueue, "gauge", kQueueHelp);
  for (const auto& [id, tools] : tools_) {
    exp.Gauge(kCalls, kCallsHelp, {{"project", id}},
              static_cast<double>(tools->running()));
  }
  for (const auto& [id, conversations] : conversations_) {
    exp.Gauge(kConv, kConvHelp, {{"project", id}},
              static_cast<double>(conversations->count()));
  }
  for (const auto& [id, conversations] : conversations_) {
    double queued = 0;
    for (const nlohmann::json& c : conversations->Diagnostics()) {
      queued += Num(c, "queue_size");
    }
    exp.Gauge(kQueue, kQueueHelp, {{"project", id}}, queued);
  }
  exp.Gauge("jcs_events_awaiting_durability",
            "Events journaled but not yet committed, held back from "
            "subscribers.",
            {}, static_cast<double>(held_events_.size()));
  if (journal_ != nullptr) {
    const nlohmann::json journal = journal_->Diagnostics();
    exp.Gauge("jcs_journal_pending_entries",
              "Journal entries queued for the writer thread.", {},
              Num(journal, "pending"));
    exp.Counter("jcs_journal_dropped_entries_total",
                "Journal entries dropped because its queue was full.", {},
                Num(journal, "dropped"));
    exp.Counter("jcs_journal_write_failures_total",
                "Journal commits that failed (a full disk, an I/O error).", {},
                Num(journal, "write_failures"));
  }
  const nlohmann::json router = router_->Diagnostics();
  exp.Gauge("jcs_alert_router_queue_depth",
            "Alerts waiting for the router's sinks.", {},
            Num(router, "queued"));
  exp.Counter("jcs_alert_router_routed_total", "Alerts given to the router.",
              {}, Num(router, "routed"));
  exp.Counter("jcs_alert_router_delivered_total", "Alerts delivered to a sink.",
              {}, Num(router, "delivered"));
  exp.Counter("jcs_alert_router_dropped_total",
              "Alerts dropped because the router's queue was full.", {},
              Num(router, "dropped"));
  exp.Counter("jcs_alert_router_sink_failures_total",
              "Deliveries that failed or timed out.", {},
              Num(router, "sink_failures"));
  const runtime::EventLoop::Stats& loop = loop_->stats();
  exp.Counter("jcs_event_loop_rounds_total",
              "Event loop rounds that ran a callback or task.", {},
              static_cast<double>(loop.rounds));
  exp.Gauge("jcs_event_loop_max_round_seconds",
            "The longest event loop round since start, wall time (every "
            "client waits while one runs).",
            {}, static_cast<double>(loop.max_wall_us) / 1e6);
  if (log_ != nullptr) {
    exp.Counter("jcs_log_lines_total", "Structured log lines written.", {},
                static_cast<double>(log_->lines()));
    exp.Counter("jcs_log_lines_dropped_total",
                "Structured log lines lost to a failed write.", {},
                static_cast<double>(log_->dropped()));
  }
  metrics_.AppendTo(exp);
  if (collect_metrics_) collect_metrics_(exp);
  if (exp.rejected() > 0) {
    // A bug in the names above, never input: said once per scrape.
    telemetry::logging::StderrLine(absl::StrFormat(
        "jcs: metrics: %zu sample(s) left out (invalid name)", exp.rejected()));
  }
  return exp.Render();
}

}  // namespace jcs::supervisor
