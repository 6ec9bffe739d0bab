#include "telemetry/alerts/rules.h"

#include <algorithm>
#include <set>

namespace jcs::telemetry::alerts {
namespace {

constexpr char kCritical[] = "critical";
constexpr char kWarning[] = "warning";
constexpr char kMultiProject[] = "repeated_timeout_multi_project";

bool IsRuleAlert(const std::string& name) {
  return name.rfind("alert.", 0) == 0;
}

}  // namespace

void RuleEngine::Window::Add(absl::Time t, size_t cap) {
  // Kept sorted for CountIn even if the wall clock steps back.
  if (!times.empty() && t < times.back()) t = times.back();
  times.push_back(t);
  // A flood beyond `cap` undercounts the oldest; every rule has fired long
  // before that.
  while (times.size() > cap) times.pop_front();
}

// Times arrive in order (the bus stamps them on the loop thread), so a count
// is two binary searches, not a walk: a flood of events stays cheap.
int64_t RuleEngine::Window::CountIn(absl::Time from, absl::Time to) const {
  const auto begin = std::upper_bound(times.begin(), times.end(), from);
  const auto end = std::upper_bound(begin, times.end(), to);
  return end - begin;
}

void RuleEngine::Window::PruneBefore(absl::Time t) {
  while (!times.empty() && times.front() <= t) times.pop_front();
}

std::vector<RuleEngine::Value> RuleEngine::Evaluate(const std::string& project,
                                                    const ProjectState& s,
                                                    absl::Time now) const {
  const Options& o = options_;
  std::vector<Value> out;

  Value ratio{"tool_failure_ratio"};
  const int64_t failed = s.failed.CountIn(now - o.failure_window, now);
  const int64_t calls =
      failed + s.completed.CountIn(now - o.failure_window, now);
  ratio.value = calls == 0 ? 0 : static_cast<double>(failed) / calls;
  ratio.threshold = o.failure_ratio;
  ratio.firing = calls >= o.failure_min_calls && ratio.value > o.failure_ratio;
  ratio.window = o.failure_window;
  ratio.severity = kWarning;
  ratio.extra = {
      {"calls", calls}, {"failed", failed}, {"min_calls", o.failure_min_calls}};
  out.push_back(ratio);

  Value timeouts{"tool_timeouts"};
  timeouts.value = s.timeouts.CountIn(now - o.timeout_window, now);
  timeouts.threshold = o.timeout_limit;
  timeouts.firing = timeouts.value > timeouts.threshold;
  timeouts.window = o.timeout_window;
  timeouts.severity = kCritical;
  out.push_back(timeouts);

  Value denied{"policy_denied_spike"};
  const absl::Time recent_from = now - o.denial_window;
  const double baseline_windows =
      absl::FDivDuration(o.denial_baseline_span, o.denial_window);
  const double baseline =
      s.denials.CountIn(recent_from - o.denial_baseline_span, recent_from) /
      baseline_windows;
  denied.value = s.denials.CountIn(recent_from, now);
  denied.threshold = o.denial_factor * std::max(baseline, o.denial_floor);
  denied.firing = denied.value > denied.threshold;
  denied.window = o.denial_window;
  denied.severity = kWarning;
  denied.extra = {{"baseline", baseline}, {"baseline_floor", o.denial_floor}};
  out.push_back(denied);

  // The runbook warns on the first failure and pages on the third in the
  // window: two rules over the same window.
  Value watcher_warning{"watcher_reload_warning"};
  watcher_warning.value =
      s.watcher_failures.CountIn(now - o.watcher_window, now);
  watcher_warning.threshold = 1;
  watcher_warning.firing = watcher_warning.value >= 1;
  watcher_warning.window = o.watcher_window;
  watcher_warning.severity = kWarning;
  out.push_back(watcher_warning);

  Value watcher{"watcher_reload_failed"};
  watcher.value = s.watcher_failures.CountIn(now - o.watcher_window, now);
  watcher.threshold = o.watcher_failures;
  watcher.firing = watcher.value >= watcher.threshold;
  watcher.window = o.watcher_window;
  watcher.severity = kCritical;
  out.push_back(watcher);

  Value assets{"assets_reload_errors"};
  assets.value = s.asset_error_streak;
  assets.threshold = o.asset_error_reloads;
  assets.firing = assets.value >= assets.threshold;
  assets.severity = kWarning;
  out.push_back(assets);

  Value repeated{"repeated_timeout_failures"};
  repeated.value = s.repeated_timeouts.CountIn(now - o.security_window, now);
  repeated.threshold = 1;
  repeated.firing = repeated.value >= 1;
  repeated.window = o.security_window;
  repeated.severity = kCritical;
  out.push_back(repeated);

  Value multi = MultiProject(now);
  const nlohmann::json& involved = multi.extra["projects"];
  if (multi.firing && std::find(involved.begin(), involved.end(),
                                nlohmann::json(project)) == involved.end()) {
    multi.firing = false;  // fires, but this project is not involved
  }
  out.push_back(multi);

  Value violation{"sandbox_violation"};
  violation.value = s.violations.CountIn(now - o.security_window, now);
  violation.threshold = 1;
  violation.firing = violation.value >= 1;
  violation.window = o.security_window;
  violation.severity = kCritical;
  violation.extra = {{"escalation", "immediate"}};
  out.push_back(violation);
  return out;
}

RuleEngine::Value RuleEngine::MultiProject(absl::Time now) const {
  Value multi{kMultiProject};
  std::set<std::string> involved;
  for (const auto& [project, at] : repeated_timeout_last_) {
    if (at > now - options_.security_window && at <= now) {
      involved.insert(project);
    }
  }
  multi.value = static_cast<double>(involved.size());
  multi.threshold = static_cast<double>(options_.multi_project_count);
  multi.firing = multi.value >= multi.threshold;
  multi.window = options_.security_window;
  multi.severity = kCritical;
  multi.extra = {{"projects", involved}, {"escalation", "immediate"}};
  return multi;
}

nlohmann::json RuleEngine::ToJson(const Value& v, bool with_since,
                                  absl::Time since) {
  nlohmann::json doc = {{"rule", v.rule},
                        {"firing", v.firing},
                        {"value", v.value},
                        {"threshold", v.threshold},
                        {"severity", v.severity}};
  if (v.window != absl::ZeroDuration()) {
    doc["window_ms"] = absl::ToInt64Milliseconds(v.window);
  }
  if (with_since) doc["since"] = Rfc3339(since);
  for (const auto& [key, value] : v.extra.items()) doc[key] = value;
  return doc;
}

void RuleEngine::Settle(const std::string& project, ProjectState& state,
                        absl::Time now) {
  for (const Value& v : Evaluate(project, state, now)) {
    if (!v.firing) state.firing_since.erase(v.rule);
  }
  if (multi_firing_ && !MultiProject(now).firing) multi_firing_ = false;
}

void RuleEngine::Prune(ProjectState& s, absl::Time now) {
  const Options& o = options_;
  s.completed.PruneBefore(now - o.failure_window);
  s.failed.PruneBefore(now - o.failure_window);
  s.timeouts.PruneBefore(now - o.timeout_window);
  s.denials.PruneBefore(now - o.denial_window - o.denial_baseline_span);
  s.watcher_failures.PruneBefore(now - o.watcher_window);
  s.repeated_timeouts.PruneBefore(now - o.security_window);
  s.violations.PruneBefore(now - o.security_window);
}

std::vector<RuleAlert> RuleEngine::Observe(const Event& event) {
  const std::string& name = event.name;
  if (IsRuleAlert(name)) return {};
  const std::string& project = event.project_id;
  if (name == "project.started" || name == "project.stopped") {
    projects_.erase(project);
    repeated_timeout_last_.erase(project);
    return {};
  }
  static const std::set<std::string, std::less<>> kWatched = {
      "tool.completed",
      "tool.failed",
      "tool.timeout",
      "policy.denied",
      "project.watcher_reload_failed",
      "project.assets_reloaded",
      "security.repeated_timeout_failures",
      "security.sandbox_violation"};
  if (kWatched.count(name) == 0) return {};
  const absl::Time t = event.at;
  ProjectState& s = projects_[project];
  Settle(project, s, t);
  const size_t cap = options_.max_times;
  if (name == "tool.completed") {
    s.completed.Add(t, cap);
  } else if (name == "tool.failed") {
    s.failed.Add(t, cap);
  } else if (name == "tool.timeout") {
    s.timeouts.Add(t, cap);
  } else if (name == "policy.denied") {
    s.denials.Add(t, cap);
  } else if (name == "project.watcher_reload_failed") {
    s.watcher_failures.Add(t, cap);
  } else if (name == "project.assets_reloaded") {
    bool had_errors = false;
    if (event.payload.is_object() && event.payload.contains("error_count") &&
        event.payload["error_count"].is_number()) {
      had_errors = event.payload["error_count"].get<double>() > 0;
    }
    s.asset_error_streak = had_errors ? s.asset_error_streak + 1 : 0;
  } else if (name == "security.repeated_timeout_failures") {
    s.repeated_timeouts.Add(t, cap);
    repeated_timeout_last_[project] = t;
  } else if (name == "security.sandbox_violation") {
    s.violations.Add(t, cap);
  }
  Prune(s, t);

  std::vector<RuleAlert> alerts;
  const auto alert = [&](const Value& v, absl::Time since) {
    nlohmann::json payload = ToJson(v, true, since);
    payload.erase("firing");
    payload["project_id"] =
        v.rule == kMultiProject ? nlohmann::json() : nlohmann::json(project);
    alerts.push_back({"alert." + v.rule, std::move(payload)});
  };
  for (const Value& v : Evaluate(project, s, t)) {
    if (!v.firing || v.rule == kMultiProject) continue;
    if (s.firing_since.count(v.rule) > 0) continue;
    s.firing_since[v.rule] = t;
    if (v.rule == "repeated_timeout_failures") {
      // The runbook pages on the first occurrence per project only.
      if (s.repeated_timeout_paged) continue;
      s.repeated_timeout_paged = true;
    }
    alert(v, t);
  }
  const Value multi = MultiProject(t);
  if (multi.firing && !multi_firing_) {
    multi_firing_ = true;
    multi_since_ = t;
    alert(multi, t);
  }
  return alerts;
}

nlohmann::json RuleEngine::Rules(std::string_view project_id,
                                 absl::Time now) const {
  static const ProjectState kEmpty;
  auto it = projects_.find(project_id);
  const ProjectState& s = it == projects_.end() ? kEmpty : it->second;
  nlohmann::json out = nlohmann::json::array();
  for (const Value& v : Evaluate(std::string(project_id), s, now)) {
    absl::Time since = now;
    if (v.rule == kMultiProject && multi_firing_) {
      since = multi_since_;
    } else if (auto f = s.firing_since.find(v.rule);
               f != s.firing_since.end()) {
      since = f->second;
    }
    out.push_back(ToJson(v, v.firing, since));
  }
  return out;
}

nlohmann::json RuleEngine::FiringRules(std::string_view project_id,
                                       absl::Time now) const {
  nlohmann::json out = nlohmann::json::array();
  for (nlohmann::json& rule : Rules(project_id, now)) {
    if (!rule["firing"].get<bool>()) continue;
    nlohmann::json brief = {{"rule", rule["rule"]},
                            {"since", rule["since"]},
                            {"value", rule["value"]},
                            {"threshold", rule["threshold"]},
                            {"severity", rule["severity"]}};
    out.push_back(std::move(brief));
  }
  return out;
}

}  // namespace jcs::telemetry::alerts
