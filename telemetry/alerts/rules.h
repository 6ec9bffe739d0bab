// The runbook's alert thresholds as rules over the telemetry stream
// ("Primary Signals and Alert Thresholds", "Escalation Criteria"). Each rule
// is evaluated per project over a sliding window of event times (the event's
// own `at`, so a test injects the clock through the bus). When a rule starts
// firing, Observe() returns an alert event "alert.<rule>" for the router;
// Rules() and FiringRules() say what fires now, which is what project health
// reports (a single expected denial no longer makes a project "degraded").
//
//   tool_failure_ratio      tool.failed / (tool.completed + tool.failed) over
//                           5 min > 5%, once at least 20 calls ended in the
//                           window (one denial out of one call is not a
//                           "sustained" ratio)                      warning
//   tool_timeouts           tool.timeout in 5 min > 10              critical
//   policy_denied_spike     policy.denied in the last 5 min > 3 x baseline;
//                           baseline = max(5, mean per 5 min over the hour
//                           before those 5 min, i.e. count / 12)    warning
//   watcher_reload_warning  a project.watcher_reload_failed in the last
//                           10 min (the runbook warns on the first) warning
//   watcher_reload_failed   project.watcher_reload_failed >= 3 in 10 min
//                                                                   critical
//   assets_reload_errors    >= 3 successive project.assets_reloaded with
//                           error_count > 0 (a clean reload resets) warning
//   repeated_timeout_failures  a security.repeated_timeout_failures in the
//                           last 5 min; alerted on the first per project
//                                                                   critical
//   repeated_timeout_multi_project  security.repeated_timeout_failures from
//                           >= 2 projects within 5 min (immediate escalation;
//                           global, listed for each project involved) critical
//   sandbox_violation       any security.sandbox_violation in the last 5 min
//                           (immediate escalation)                  critical
//
// Not thread-safe: it lives on the event loop with the bus. Memory is bounded:
// each window keeps at most Options::max_times event times, and a project's
// state goes with its project.stopped / project.started events.
#ifndef JCS_TELEMETRY_ALERTS_RULES_H_
#define JCS_TELEMETRY_ALERTS_RULES_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "telemetry/bus.h"

namespace jcs::telemetry::alerts {

struct RuleAlert {
  std::string event_name;  // "alert.<rule>"
  nlohmann::json payload;  // {rule, project_id, value, threshold, ...}
};

class RuleEngine {
 public:
  struct Options {
    absl::Duration failure_window = absl::Minutes(5);
    double failure_ratio = 0.05;
    int64_t failure_min_calls = 20;
    absl::Duration timeout_window = absl::Minutes(5);
    int64_t timeout_limit = 10;
    absl::Duration denial_window = absl::Minutes(5);
    absl::Duration denial_baseline_span = absl::Hours(1);
    double denial_factor = 3;
    double denial_floor = 5;
    absl::Duration watcher_window = absl::Minutes(10);
    int64_t watcher_failures = 3;
    int64_t asset_error_reloads = 3;
    absl::Duration security_window = absl::Minutes(5);
    int64_t multi_project_count = 2;
    size_t max_times = 100000;
  };

  RuleEngine() : RuleEngine(Options()) {}
  explicit RuleEngine(Options options) : options_(options) {}

  // Feeds one (redacted) bus event; returns the alerts of the rules that
  // started firing with it. alert.* events are ignored.
  std::vector<RuleAlert> Observe(const Event& event);

  // Every rule for `project_id` at `now`: [{rule, firing, since (when
  // firing), value, threshold, window_ms, severity}], in the table's order.
  nlohmann::json Rules(std::string_view project_id, absl::Time now) const;
  // The firing subset: [{rule, since, value, threshold, severity}].
  nlohmann::json FiringRules(std::string_view project_id, absl::Time now) const;

 private:
  struct Window {
    std::deque<absl::Time> times;
    void Add(absl::Time t, size_t cap);
    int64_t CountIn(absl::Time from, absl::Time to) const;  // (from, to]
    void PruneBefore(absl::Time t);
  };
  struct ProjectState {
    Window completed, failed, timeouts, denials, watcher_failures,
        repeated_timeouts, violations;
    int64_t asset_error_streak = 0;
    bool repeated_timeout_paged = false;
    std::map<std::string, absl::Time> firing_since;
  };
  struct Value {
    explicit Value(std::string name) : rule(std::move(name)) {}
    std::string rule;
    bool firing = false;
    double value = 0;
    double threshold = 0;
    absl::Duration window;
    std::string severity;
    nlohmann::json extra = nlohmann::json::object();
  };

  std::vector<Value> Evaluate(const std::string& project,
                              const ProjectState& state, absl::Time now) const;
  Value MultiProject(absl::Time now) const;
  // Drops firing marks of rules that stopped firing by `now`.
  void Settle(const std::string& project, ProjectState& state, absl::Time now);
  void Prune(ProjectState& state, absl::Time now);
  static nlohmann::json ToJson(const Value& v, bool with_since,
                               absl::Time since);

  Options options_;
  std::map<std::string, ProjectState, std::less<>> projects_;
  // The last security.repeated_timeout_failures of each project.
  std::map<std::string, absl::Time, std::less<>> repeated_timeout_last_;
  bool multi_firing_ = false;
  absl::Time multi_since_;
};

}  // namespace jcs::telemetry::alerts

#endif  // JCS_TELEMETRY_ALERTS_RULES_H_
