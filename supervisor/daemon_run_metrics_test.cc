#include "supervisor/daemon_run_metrics.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "telemetry/metrics/exposition.h"
#include "telemetry/metrics/exposition_check.h"

namespace jcs::supervisor {
namespace {

// The scrape, checked against the text format; the samples by series.
std::map<std::string, double> Scrape(const DaemonRunMetrics& metrics) {
  telemetry::metrics::Exposition exp;
  metrics.AppendTo(exp);
  EXPECT_EQ(exp.rejected(), 0u);
  const std::string text = exp.Render();
  auto parsed = telemetry::metrics::CheckExposition(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  return parsed.ok() ? *parsed : std::map<std::string, double>();
}

jail::RunResult Ended(jail::RunStatus status) {
  jail::RunResult result;
  result.status = status;
  return result;
}

TEST(DaemonRunMetricsTest, EveryFamilyIsThereBeforeAnyRun) {
  std::map<std::string, double> s = Scrape(DaemonRunMetrics());
  EXPECT_EQ(s.at("jcs_daemon_runs_started_total{jail=\"warm\"}"), 0);
  EXPECT_EQ(s.at("jcs_daemon_runs_started_total{jail=\"cold\"}"), 0);
  EXPECT_EQ(s.at("jcs_daemon_runs_finished_total{status=\"setup_error\"}"), 0);
  EXPECT_EQ(s.at("jcs_daemon_runs_active"), 0);
  EXPECT_EQ(s.at("jcs_daemon_runs_refused_total{reason=\"unauthorized\"}"), 0);
  EXPECT_EQ(s.at("jcs_daemon_runs_refused_total{reason=\"other\"}"), 0);
  EXPECT_EQ(s.at("jcs_daemon_run_violations_total"), 0);
}

TEST(DaemonRunMetricsTest, RunsAreCountedByJailAndByHowTheyEnded) {
  DaemonRunMetrics metrics;
  metrics.Started(true);
  metrics.Started(true);
  metrics.Started(false);
  std::map<std::string, double> s = Scrape(metrics);
  EXPECT_EQ(s["jcs_daemon_runs_started_total{jail=\"warm\"}"], 2);
  EXPECT_EQ(s["jcs_daemon_runs_started_total{jail=\"cold\"}"], 1);
  EXPECT_EQ(s["jcs_daemon_runs_active"], 3);

  jail::RunResult denied = Ended(jail::RunStatus::kViolation);
  denied.violations.push_back({101, "ptrace", 3});
  denied.violations.push_back({165, "mount", 2});
  metrics.Finished(denied);
  metrics.Finished(Ended(jail::RunStatus::kExited));
  s = Scrape(metrics);
  EXPECT_EQ(s["jcs_daemon_runs_finished_total{status=\"violation\"}"], 1);
  EXPECT_EQ(s["jcs_daemon_runs_finished_total{status=\"exited\"}"], 1);
  EXPECT_EQ(s["jcs_daemon_runs_finished_total{status=\"timeout\"}"], 0);
  EXPECT_EQ(s["jcs_daemon_runs_active"], 1);
  EXPECT_EQ(s["jcs_daemon_run_violations_total"], 5);
}

TEST(DaemonRunMetricsTest, RefusalsAreCountedByAKnownReasonOnly) {
  DaemonRunMetrics metrics;
  metrics.Refused("daemon_run_busy");
  metrics.Refused("daemon_run_busy");
  metrics.Refused("unauthorized");
  // A reason this code does not give never becomes a label value.
  metrics.Refused("a\"reason{from}somewhere");
  std::map<std::string, double> s = Scrape(metrics);
  EXPECT_EQ(s["jcs_daemon_runs_refused_total{reason=\"daemon_run_busy\"}"], 2);
  EXPECT_EQ(s["jcs_daemon_runs_refused_total{reason=\"unauthorized\"}"], 1);
  EXPECT_EQ(s["jcs_daemon_runs_refused_total{reason=\"other\"}"], 1);
  EXPECT_EQ(s["jcs_daemon_runs_refused_total{reason=\"invalid_spec\"}"], 0);
  // Refusals are not runs.
  EXPECT_EQ(s["jcs_daemon_runs_active"], 0);
}

}  // namespace
}  // namespace jcs::supervisor
