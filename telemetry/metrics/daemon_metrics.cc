#include "telemetry/metrics/daemon_metrics.h"

namespace jcs::telemetry::metrics {

const std::vector<double> kToolCallBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
const std::vector<double> kJailSetupBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
const std::vector<double> kJournalCommitBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01,   0.025,   0.05,   0.1,   0.25,   1};

namespace {

std::string StringField(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

double NumberField(const nlohmann::json& doc, const char* key, double dflt) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number() ? it->get<double>() : dflt;
}

}  // namespace

template <typename Map>
typename Map::key_type DaemonMetrics::Bounded(const Map& map,
                                              typename Map::key_type key,
                                              size_t cap) {
  if (map.count(key) != 0 || map.size() < cap) return key;
  ++series_capped_;
  key.first = kOther;
  return key;
}

void DaemonMetrics::Observe(const Event& event) {
  if (event.name == "project.stopped") {
    events_.erase(events_.lower_bound({event.project_id, ""}),
                  events_.lower_bound({event.project_id + '\0', ""}));
    return;
  }
  ++events_[Bounded(events_, {event.project_id, event.name}, kMaxEventSeries)];
  if (event.name != "tool.completed" && event.name != "tool.failed") return;
  const std::string reason = StringField(event.payload, "reason");
  std::string status = "ok";
  if (event.name == "tool.failed")
    status = reason == "timeout" ? "timeout" : "error";
  // The name of a call that never reached a tool is the caller's text.
  std::string tool = StringField(event.payload, "tool");
  if (tool.empty() || reason == "unknown_tool" ||
      reason == "invalid_tool_call") {
    tool = "unknown";
  }
  const double seconds = NumberField(event.payload, "duration_ms", 0) / 1000;
  auto key = Bounded(tool_calls_, {tool, status}, kMaxToolSeries);
  tool_calls_.try_emplace(key, kToolCallBuckets).first->second.Observe(seconds);
}

void DaemonMetrics::ObserveToolResult(const nlohmann::json& response) {
  if (!response.is_object()) return;
  auto timing = response.find("timing_us");
  if (timing == response.end() || !timing->is_object()) return;  // not jailed
  auto warm = timing->find("warm_jail");
  const bool was_warm =
      warm != timing->end() && warm->is_boolean() && warm->get<bool>();
  ++(was_warm ? warm_hits_ : warm_misses_);
  const double setup_us = NumberField(*timing, "setup_total_to_exec", -1);
  if (setup_us >= 0) {
    (was_warm ? jail_setup_warm_ : jail_setup_cold_).Observe(setup_us / 1e6);
  }
}

void DaemonMetrics::ObserveJournalCommit(absl::Duration took, size_t entries) {
  journal_commit_.Observe(absl::ToDoubleSeconds(took));
  journal_entries_ += entries;
}

void DaemonMetrics::AppendTo(Exposition& exp) const {
  static constexpr char kEvents[] = "jcs_events_total";
  static constexpr char kEventsHelp[] =
      "Telemetry events by project (empty: daemon-wide) and event name.";
  exp.Declare(kEvents, "counter", kEventsHelp);
  for (const auto& [key, count] : events_) {
    exp.Counter(kEvents, kEventsHelp,
                {{"project", key.first}, {"event", key.second}},
                static_cast<double>(count));
  }
  static constexpr char kCalls[] = "jcs_tool_call_duration_seconds";
  static constexpr char kCallsHelp[] =
      "Tool call latency, request to response, by tool and status "
      "(ok, error, timeout).";
  exp.Declare(kCalls, "histogram", kCallsHelp);
  for (const auto& [key, histogram] : tool_calls_) {
    exp.AddHistogram(kCalls, kCallsHelp,
                     {{"tool", key.first}, {"status", key.second}}, histogram);
  }
  static constexpr char kSetup[] = "jcs_jail_setup_seconds";
  static constexpr char kSetupHelp[] =
      "Jail setup on a call's path, launch to exec, by whether a warm jail "
      "took the call.";
  exp.AddHistogram(kSetup, kSetupHelp, {{"warm", "true"}}, jail_setup_warm_);
  exp.AddHistogram(kSetup, kSetupHelp, {{"warm", "false"}}, jail_setup_cold_);
  exp.Counter("jcs_warm_jail_pool_hits_total",
              "Jailed calls that a prebuilt warm jail took.", {},
              static_cast<double>(warm_hits_));
  exp.Counter("jcs_warm_jail_pool_misses_total",
              "Jailed calls that started a jail cold.", {},
              static_cast<double>(warm_misses_));
  exp.AddHistogram("jcs_journal_commit_seconds",
                   "Journal transaction commit time (the writer thread).", {},
                   journal_commit_);
  exp.Counter("jcs_journal_committed_entries_total",
              "Entries (events, tool results, project changes) committed.", {},
              static_cast<double>(journal_entries_));
  exp.Counter("jcs_metrics_series_capped_total",
              "Observations counted under \"_other\" because a labelled "
              "family reached its series cap.",
              {}, static_cast<double>(series_capped_));
}

}  // namespace jcs::telemetry::metrics
