// Each runbook rule at, just below and just above its threshold, with event
// times injected (the engine reads only Event::at).
#include "telemetry/alerts/rules.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace jcs::telemetry::alerts {
namespace {

using ::nlohmann::json;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

class RulesTest : public ::testing::Test {
 protected:
  // Feeds one event at kT0 + `at`; returns the alert event names it raised.
  std::vector<std::string> Feed(const std::string& name,
                                const std::string& project, absl::Duration at,
                                json payload = json::object()) {
    Event e;
    e.name = name;
    e.project_id = project;
    payload["project_id"] = project;
    e.payload = payload;
    e.at = kT0 + at;
    std::vector<std::string> names;
    for (const RuleAlert& a : engine_.Observe(e)) {
      names.push_back(a.event_name);
      last_alert_ = a.payload;
    }
    return names;
  }
  // `n` events spread 1 s apart starting at kT0 + `from`.
  std::vector<std::string> FeedN(int n, const std::string& name,
                                 const std::string& project,
                                 absl::Duration from,
                                 json payload = json::object()) {
    std::vector<std::string> all;
    for (int i = 0; i < n; ++i) {
      for (std::string& a :
           Feed(name, project, from + absl::Seconds(i), payload)) {
        all.push_back(std::move(a));
      }
    }
    return all;
  }
  std::vector<std::string> Firing(const std::string& project,
                                  absl::Duration at) {
    std::vector<std::string> names;
    for (const json& r : engine_.FiringRules(project, kT0 + at)) {
      names.push_back(r["rule"]);
    }
    return names;
  }
  json Rule(const std::string& project, absl::Duration at,
            const std::string& rule) {
    for (const json& r : engine_.Rules(project, kT0 + at)) {
      if (r["rule"] == rule) return r;
    }
    return json();
  }

  RuleEngine engine_;
  json last_alert_;
};

using Names = std::vector<std::string>;

TEST_F(RulesTest, FailureRatioNeedsTwentyCallsAndMoreThanFivePercent) {
  // 19 completed + 1 failed = exactly 5%: not above.
  EXPECT_EQ(FeedN(19, "tool.completed", "p", absl::ZeroDuration()), Names());
  EXPECT_EQ(Feed("tool.failed", "p", absl::Seconds(20)), Names());
  EXPECT_EQ(Rule("p", absl::Seconds(20), "tool_failure_ratio")["value"], 0.05);
  // One more failure: 2/21 = 9.5% > 5%.
  EXPECT_EQ(Feed("tool.failed", "p", absl::Seconds(21)),
            Names({"alert.tool_failure_ratio"}));
  EXPECT_EQ(last_alert_["rule"], "tool_failure_ratio");
  EXPECT_EQ(last_alert_["project_id"], "p");
  EXPECT_EQ(last_alert_["threshold"], 0.05);
  EXPECT_EQ(last_alert_["severity"], "warning");
  EXPECT_EQ(Firing("p", absl::Seconds(21)), Names({"tool_failure_ratio"}));
  // Still firing: no second alert.
  EXPECT_EQ(Feed("tool.failed", "p", absl::Seconds(22)), Names());
  // Five minutes after the failures they leave the window.
  EXPECT_EQ(Firing("p", absl::Seconds(22) + absl::Minutes(5)), Names());
}

TEST_F(RulesTest, OneFailureOfFewCallsIsNotASustainedRatio) {
  EXPECT_EQ(Feed("tool.failed", "p", absl::ZeroDuration()), Names());
  EXPECT_EQ(FeedN(18, "tool.failed", "q", absl::ZeroDuration()), Names());
  EXPECT_EQ(Feed("tool.failed", "q", absl::Seconds(30)), Names());
  EXPECT_EQ(Firing("q", absl::Seconds(30)), Names());  // 19 calls: too few
  EXPECT_EQ(Feed("tool.failed", "q", absl::Seconds(31)),
            Names({"alert.tool_failure_ratio"}));  // 20 calls, 100%
}

TEST_F(RulesTest, MoreThanTenTimeoutsInFiveMinutes) {
  EXPECT_EQ(FeedN(10, "tool.timeout", "p", absl::ZeroDuration()), Names());
  EXPECT_EQ(Rule("p", absl::Seconds(10), "tool_timeouts")["value"], 10);
  EXPECT_EQ(Feed("tool.timeout", "p", absl::Seconds(20)),
            Names({"alert.tool_timeouts"}));
  EXPECT_EQ(last_alert_["severity"], "critical");
  EXPECT_EQ(last_alert_["value"], 11);
  // Per project: another project's timeouts do not add up.
  EXPECT_EQ(FeedN(10, "tool.timeout", "q", absl::ZeroDuration()), Names());
  // The first timeout leaves the window 5 min after it happened.
  EXPECT_EQ(Firing("p", absl::Minutes(5) - absl::Seconds(1)),
            Names({"tool_timeouts"}));
  EXPECT_EQ(Firing("p", absl::Minutes(5)), Names());
}

TEST_F(RulesTest, TimeoutsSpreadOverMoreThanFiveMinutesDoNotFire) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Feed("tool.timeout", "p", absl::Seconds(31 * i)), Names()) << i;
  }
}

TEST_F(RulesTest, PolicyDeniedSpikeWithoutHistoryUsesTheFloor) {
  // No history: baseline = floor 5, threshold 15.
  EXPECT_EQ(FeedN(15, "policy.denied", "p", absl::ZeroDuration()), Names());
  const json rule = Rule("p", absl::Seconds(15), "policy_denied_spike");
  EXPECT_EQ(rule["threshold"], 15);
  EXPECT_EQ(rule["baseline"], 0);
  EXPECT_EQ(Feed("policy.denied", "p", absl::Seconds(30)),
            Names({"alert.policy_denied_spike"}));
}

TEST_F(RulesTest, PolicyDeniedSpikeIsThreeTimesTheTrailingHourMean) {
  // 120 denials in the hour before the last 5 min (none in those 5 min):
  // a baseline of 10 per 5 min, threshold 30.
  for (int i = 0; i < 120; ++i) {
    ASSERT_EQ(Feed("policy.denied", "p", absl::Seconds(25 * i)), Names()) << i;
  }
  const absl::Duration now = absl::Hours(1);  // the next 5 min start here
  EXPECT_EQ(FeedN(30, "policy.denied", "p", now), Names());
  const json rule = Rule("p", now + absl::Seconds(29), "policy_denied_spike");
  EXPECT_EQ(rule["value"], 30);
  EXPECT_EQ(rule["threshold"], 30);
  EXPECT_EQ(Feed("policy.denied", "p", now + absl::Seconds(30)),
            Names({"alert.policy_denied_spike"}));
  EXPECT_EQ(last_alert_["value"], 31);
}

TEST_F(RulesTest, WatcherReloadFailedThreeTimesInTenMinutes) {
  // The first failure warns (the runbook's "warning on first event").
  EXPECT_EQ(Firing("p", absl::ZeroDuration()), Names());
  EXPECT_EQ(Feed("project.watcher_reload_failed", "p", absl::ZeroDuration()),
            Names({"alert.watcher_reload_warning"}));
  EXPECT_EQ(last_alert_["severity"], "warning");
  EXPECT_EQ(Feed("project.watcher_reload_failed", "p", absl::Minutes(5)),
            Names());
  // The third, 10 min after the first: the first has left the window.
  EXPECT_EQ(Feed("project.watcher_reload_failed", "p", absl::Minutes(10)),
            Names());
  // The third within 10 min (5, 10, 11): pages.
  EXPECT_EQ(Feed("project.watcher_reload_failed", "p", absl::Minutes(11)),
            Names({"alert.watcher_reload_failed"}));
  EXPECT_EQ(last_alert_["severity"], "critical");
  // A fourth: still firing, no new alert.
  EXPECT_EQ(Feed("project.watcher_reload_failed", "p", absl::Minutes(12)),
            Names());
  EXPECT_EQ(Firing("p", absl::Minutes(12)),
            Names({"watcher_reload_warning", "watcher_reload_failed"}));
  // Ten quiet minutes later neither fires, and the next failure warns again.
  EXPECT_EQ(Firing("p", absl::Minutes(22)), Names());
  EXPECT_EQ(Feed("project.watcher_reload_failed", "p", absl::Minutes(23)),
            Names({"alert.watcher_reload_warning"}));
}

TEST_F(RulesTest, ThreeSuccessiveReloadsWithErrors) {
  const json bad = {{"error_count", 2}};
  const json good = {{"error_count", 0}};
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(1), bad),
            Names());
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(2), bad),
            Names());
  // A clean reload resets the streak.
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(3), good),
            Names());
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(4), bad),
            Names());
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(5), bad),
            Names());
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(6), bad),
            Names({"alert.assets_reload_errors"}));
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(7), bad),
            Names());
  EXPECT_EQ(Firing("p", absl::Seconds(7)), Names({"assets_reload_errors"}));
  EXPECT_EQ(Feed("project.assets_reloaded", "p", absl::Seconds(8), good),
            Names());
  EXPECT_EQ(Firing("p", absl::Seconds(8)), Names());
}

TEST_F(RulesTest, RepeatedTimeoutsPageOnTheFirstPerProjectOnly) {
  EXPECT_EQ(Firing("p", absl::ZeroDuration()), Names());
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "p", absl::Seconds(1)),
            Names({"alert.repeated_timeout_failures"}));
  EXPECT_EQ(last_alert_["severity"], "critical");
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "p", absl::Seconds(2)),
            Names());
  // Out of the window, and again: still not a second page for p.
  EXPECT_EQ(Firing("p", absl::Minutes(6)), Names());
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "p", absl::Minutes(7)),
            Names());
  EXPECT_EQ(Firing("p", absl::Minutes(7)),
            Names({"repeated_timeout_failures"}));
  // A restarted project pages again.
  Feed("project.started", "p", absl::Minutes(8));
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "p", absl::Minutes(9)),
            Names({"alert.repeated_timeout_failures"}));
}

TEST_F(RulesTest, RepeatedTimeoutsAcrossTwoProjectsEscalateImmediately) {
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "p", absl::Seconds(1)),
            Names({"alert.repeated_timeout_failures"}));
  // One project: below the multi-project threshold.
  EXPECT_EQ(
      Rule("p", absl::Seconds(1), "repeated_timeout_multi_project")["firing"],
      false);
  // A second project 5 min later: p's has left the window.
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "q",
                 absl::Minutes(5) + absl::Seconds(1)),
            Names({"alert.repeated_timeout_failures"}));
  // A third within the window of q's: two projects.
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "r", absl::Minutes(6)),
            Names({"alert.repeated_timeout_failures",
                   "alert.repeated_timeout_multi_project"}));
  EXPECT_EQ(last_alert_["projects"], json::array({"q", "r"}));
  EXPECT_EQ(last_alert_["escalation"], "immediate");
  EXPECT_TRUE(last_alert_["project_id"].is_null());
  // Listed for the projects involved, not for p.
  const Names q = Firing("q", absl::Minutes(6));
  EXPECT_NE(std::find(q.begin(), q.end(), "repeated_timeout_multi_project"),
            q.end());
  EXPECT_EQ(Firing("p", absl::Minutes(6)), Names());
  // A fourth project while it fires: no second escalation.
  EXPECT_EQ(Feed("security.repeated_timeout_failures", "s", absl::Minutes(7)),
            Names({"alert.repeated_timeout_failures"}));
}

TEST_F(RulesTest, AnySandboxViolationFires) {
  EXPECT_EQ(Firing("p", absl::ZeroDuration()), Names());
  EXPECT_EQ(Feed("policy.denied", "p", absl::Seconds(1)), Names());
  EXPECT_EQ(Feed("security.sandbox_violation", "p", absl::Seconds(2)),
            Names({"alert.sandbox_violation"}));
  const json rule = Rule("p", absl::Seconds(3), "sandbox_violation");
  EXPECT_EQ(rule["firing"], true);
  EXPECT_EQ(rule["since"], "2027-01-15T08:00:02.000Z");
  EXPECT_EQ(Firing("p", absl::Minutes(5) + absl::Seconds(2)), Names());
  // Once the first has left the window, a new one alerts again.
  EXPECT_EQ(Feed("security.sandbox_violation", "p", absl::Minutes(6)),
            Names({"alert.sandbox_violation"}));
}

TEST_F(RulesTest, OneExpectedDenialFiresNothing) {
  Feed("tool.started", "p", absl::ZeroDuration());
  Feed("policy.denied", "p", absl::Seconds(1));
  Feed("tool.failed", "p", absl::Seconds(1), {{"reason", "denied"}});
  EXPECT_EQ(Firing("p", absl::Seconds(2)), Names());
  EXPECT_EQ(engine_.Rules("p", kT0).size(), 9u);
}

TEST_F(RulesTest, RuleAlertsAndStoppedProjectsAreForgotten) {
  FeedN(11, "tool.timeout", "p", absl::ZeroDuration());
  EXPECT_EQ(Firing("p", absl::Seconds(11)), Names({"tool_timeouts"}));
  EXPECT_EQ(Feed("alert.tool_timeouts", "p", absl::Seconds(12)), Names());
  Feed("project.stopped", "p", absl::Seconds(13));
  EXPECT_EQ(Firing("p", absl::Seconds(13)), Names());
}

}  // namespace
}  // namespace jcs::telemetry::alerts
