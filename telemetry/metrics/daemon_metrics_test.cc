#include "telemetry/metrics/daemon_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "telemetry/metrics/exposition_check.h"

namespace jcs::telemetry::metrics {
namespace {

Event Ev(const std::string& name, const std::string& project,
         nlohmann::json payload = nlohmann::json::object()) {
  payload["project_id"] = project;
  return {name, project, std::move(payload), absl::Now()};
}

std::map<std::string, double> Scrape(const DaemonMetrics& metrics) {
  Exposition exp;
  metrics.AppendTo(exp);
  EXPECT_EQ(exp.rejected(), 0u);
  absl::StatusOr<std::map<std::string, double>> parsed =
      CheckExposition(exp.Render());
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << exp.Render();
  return parsed.ok() ? *parsed : std::map<std::string, double>();
}

TEST(DaemonMetricsTest, CountsEventsAndToolLatencyPerToolAndStatus) {
  DaemonMetrics m;
  m.Observe(Ev("tool.started", "p1", {{"tool", "exec"}}));
  m.Observe(
      Ev("tool.completed", "p1", {{"tool", "exec"}, {"duration_ms", 40}}));
  m.Observe(
      Ev("tool.completed", "p1", {{"tool", "exec"}, {"duration_ms", 3000}}));
  m.Observe(
      Ev("tool.failed", "p1",
         {{"tool", "exec"}, {"duration_ms", 1000}, {"reason", "timeout"}}));
  m.Observe(Ev(
      "tool.failed", "p2",
      {{"tool", "fs.read"}, {"duration_ms", 1}, {"reason", "policy_denied"}}));
  std::map<std::string, double> s = Scrape(m);
  EXPECT_EQ(s["jcs_events_total{project=\"p1\",event=\"tool.completed\"}"], 2);
  EXPECT_EQ(s["jcs_events_total{project=\"p1\",event=\"tool.started\"}"], 1);
  EXPECT_EQ(s["jcs_events_total{project=\"p2\",event=\"tool.failed\"}"], 1);
  const std::string ok =
      "jcs_tool_call_duration_seconds_bucket{tool=\"exec\",status=\"ok\",";
  EXPECT_EQ(s[ok + "le=\"0.025\"}"], 0);
  EXPECT_EQ(s[ok + "le=\"0.05\"}"], 1);
  EXPECT_EQ(s[ok + "le=\"2.5\"}"], 1);
  EXPECT_EQ(s[ok + "le=\"5\"}"], 2);
  EXPECT_EQ(s[ok + "le=\"+Inf\"}"], 2);
  EXPECT_DOUBLE_EQ(
      s["jcs_tool_call_duration_seconds_sum{tool=\"exec\",status=\"ok\"}"],
      3.04);
  EXPECT_EQ(s["jcs_tool_call_duration_seconds_count{tool=\"exec\",status="
              "\"timeout\"}"],
            1);
  EXPECT_EQ(s["jcs_tool_call_duration_seconds_count{tool=\"fs.read\",status="
              "\"error\"}"],
            1);
}

TEST(DaemonMetricsTest, ProjectStopDropsItsSeries) {
  DaemonMetrics m;
  m.Observe(Ev("project.started", "p1"));
  m.Observe(Ev("project.started", "p10"));
  m.Observe(Ev("project.stopped", "p1"));
  std::map<std::string, double> s = Scrape(m);
  EXPECT_EQ(
      s.count("jcs_events_total{project=\"p1\",event=\"project.started\"}"),
      0u);
  EXPECT_EQ(s["jcs_events_total{project=\"p10\",event=\"project.started\"}"],
            1);
}

TEST(DaemonMetricsTest, CallerChosenToolNamesCannotGrowTheScrapeWithoutBound) {
  DaemonMetrics m;
  // An unknown tool's name is the caller's text: it is never a label.
  m.Observe(
      Ev("tool.failed", "p", {{"tool", "x\"y"}, {"reason", "unknown_tool"}}));
  EXPECT_EQ(Scrape(m).count("jcs_tool_call_duration_seconds_count{tool="
                            "\"unknown\",status=\"error\"}"),
            1u);
  // Asset-defined tools are data too: past the cap they share "_other".
  for (size_t i = 0; i < DaemonMetrics::kMaxToolSeries + 50; ++i) {
    m.Observe(Ev("tool.completed", "p", {{"tool", "t" + std::to_string(i)}}));
  }
  std::map<std::string, double> s = Scrape(m);
  size_t series = 0;
  for (const auto& [key, value] : s) {
    if (key.rfind("jcs_tool_call_duration_seconds_count{", 0) == 0) ++series;
  }
  EXPECT_EQ(series, DaemonMetrics::kMaxToolSeries + 1);
  EXPECT_EQ(
      s["jcs_tool_call_duration_seconds_count{tool=\"_other\",status=\"ok\"}"],
      51);
  EXPECT_EQ(s["jcs_metrics_series_capped_total"], 51);
}

TEST(DaemonMetricsTest, JailSetupWarmPoolAndJournal) {
  DaemonMetrics m;
  m.ObserveToolResult({{"status", "ok"}});  // in-process tool: no jail
  m.ObserveToolResult(
      {{"timing_us", {{"warm_jail", true}, {"setup_total_to_exec", 800}}}});
  m.ObserveToolResult(
      {{"timing_us", {{"warm_jail", false}, {"setup_total_to_exec", 30000}}}});
  m.ObserveToolResult(
      {{"timing_us", {{"warm_jail", false}, {"setup_total_to_exec", 20000}}}});
  m.ObserveJournalCommit(absl::Microseconds(700), 12);
  std::map<std::string, double> s = Scrape(m);
  EXPECT_EQ(s["jcs_warm_jail_pool_hits_total"], 1);
  EXPECT_EQ(s["jcs_warm_jail_pool_misses_total"], 2);
  EXPECT_EQ(s["jcs_jail_setup_seconds_bucket{warm=\"true\",le=\"0.001\"}"], 1);
  EXPECT_EQ(s["jcs_jail_setup_seconds_bucket{warm=\"false\",le=\"0.025\"}"], 1);
  EXPECT_EQ(s["jcs_jail_setup_seconds_count{warm=\"false\"}"], 2);
  EXPECT_EQ(s["jcs_journal_commit_seconds_bucket{le=\"0.0005\"}"], 0);
  EXPECT_EQ(s["jcs_journal_commit_seconds_bucket{le=\"0.001\"}"], 1);
  EXPECT_EQ(s["jcs_journal_committed_entries_total"], 12);
}

}  // namespace
}  // namespace jcs::telemetry::metrics
