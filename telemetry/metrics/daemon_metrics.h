// What the daemon counts for its Prometheus scrape (`jcs metrics`): fed by
// the telemetry bus (every event, already redacted), by each finished tool
// call's response (the jail's timings) and by the journal's commits; the
// caller adds the gauges it reads at scrape time (running calls, queues).
//
// Label values come from data (project ids, tool names: a project's assets
// name tools), so every labelled family is bounded: past its cap, new label
// values are counted under "_other" and jcs_metrics_series_capped_total
// moves. A project's series go when it stops (a reused id starts at zero,
// as its diagnostics do).
//
// Not thread-safe: it belongs to the supervisor's event loop thread.
#ifndef JCS_TELEMETRY_METRICS_DAEMON_METRICS_H_
#define JCS_TELEMETRY_METRICS_DAEMON_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "telemetry/bus.h"
#include "telemetry/metrics/exposition.h"

namespace jcs::telemetry::metrics {

// Bucket upper bounds, in seconds.
extern const std::vector<double> kToolCallBuckets;
extern const std::vector<double> kJailSetupBuckets;
extern const std::vector<double> kJournalCommitBuckets;

class DaemonMetrics {
 public:
  static constexpr size_t kMaxEventSeries = 4096;
  static constexpr size_t kMaxToolSeries = 256;
  static constexpr char kOther[] = "_other";

  // A bus sink: counts the event per project and name; tool.completed and
  // tool.failed feed the tool-call latency histogram; project.stopped drops
  // the project's series.
  void Observe(const Event& event);
  // A finished tool call's response document (ToolRuntimeConfig::on_result):
  // a jailed call's setup time (timing_us.setup_total_to_exec, the part on
  // the call's path) and whether a warm jail took it (timing_us.warm_jail).
  void ObserveToolResult(const nlohmann::json& response);
  // One journal transaction: how long it took to commit, how many entries.
  void ObserveJournalCommit(absl::Duration took, size_t entries);

  // Appends every family kept here (declared even before they move).
  void AppendTo(Exposition& exp) const;

  uint64_t series_capped() const { return series_capped_; }

 private:
  // Keys a bounded family: `key` itself while fewer than `cap` keys exist
  // (or it is known), else kOther.
  template <typename Map>
  typename Map::key_type Bounded(const Map& map, typename Map::key_type key,
                                 size_t cap);

  std::map<std::pair<std::string, std::string>, uint64_t> events_;
  // (tool, status) -> latency.
  std::map<std::pair<std::string, std::string>, Histogram> tool_calls_;
  Histogram jail_setup_warm_{kJailSetupBuckets};
  Histogram jail_setup_cold_{kJailSetupBuckets};
  uint64_t warm_hits_ = 0;
  uint64_t warm_misses_ = 0;
  Histogram journal_commit_{kJournalCommitBuckets};
  uint64_t journal_entries_ = 0;
  uint64_t series_capped_ = 0;
};

}  // namespace jcs::telemetry::metrics

#endif  // JCS_TELEMETRY_METRICS_DAEMON_METRICS_H_
