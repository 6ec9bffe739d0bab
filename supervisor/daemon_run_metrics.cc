#include "supervisor/daemon_run_metrics.h"

#include <string>

namespace jcs::supervisor {
namespace {

constexpr char kStarted[] = "jcs_daemon_runs_started_total";
constexpr char kStartedHelp[] =
    "jcs run --daemon runs started, by jail: warm (built ahead) or cold.";
constexpr char kFinished[] = "jcs_daemon_runs_finished_total";
constexpr char kFinishedHelp[] =
    "jcs run --daemon runs ended, by status (exited, signaled, timeout, oom, "
    "pids_limit, violation, setup_error).";
constexpr char kActive[] = "jcs_daemon_runs_active";
constexpr char kActiveHelp[] =
    "jcs run --daemon runs running now (daemon_run_max_concurrent bounds "
    "them).";
constexpr char kRefused[] = "jcs_daemon_runs_refused_total";
constexpr char kRefusedHelp[] =
    "jcs run --daemon requests refused, by the reason the client was given.";
constexpr char kViolations[] = "jcs_daemon_run_violations_total";
constexpr char kViolationsHelp[] =
    "Syscalls the seccomp policy denied in jcs run --daemon runs.";

double Read(const std::atomic<uint64_t>& value) {
  return static_cast<double>(value.load(std::memory_order_relaxed));
}

}  // namespace

void DaemonRunMetrics::Started(bool warm) {
  (warm ? warm_ : cold_).fetch_add(1, std::memory_order_relaxed);
}

void DaemonRunMetrics::Finished(const jail::RunResult& result) {
  const size_t status = static_cast<size_t>(result.status);
  if (status < finished_.size()) {
    finished_[status].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t denied = 0;
  for (const jail::Violation& violation : result.violations) {
    denied += violation.count;
  }
  violations_.fetch_add(denied, std::memory_order_relaxed);
}

void DaemonRunMetrics::Refused(std::string_view reason) {
  size_t index = 0;
  while (index < kRefusals.size() && kRefusals[index] != reason) ++index;
  refused_[index].fetch_add(1, std::memory_order_relaxed);
}

void DaemonRunMetrics::AppendTo(telemetry::metrics::Exposition& exp) const {
  exp.Counter(kStarted, kStartedHelp, {{"jail", "warm"}}, Read(warm_));
  exp.Counter(kStarted, kStartedHelp, {{"jail", "cold"}}, Read(cold_));
  double ended = 0;
  for (size_t i = 0; i < finished_.size(); ++i) {
    ended += Read(finished_[i]);
    exp.Counter(
        kFinished, kFinishedHelp,
        {{"status", jail::RunStatusName(static_cast<jail::RunStatus>(i))}},
        Read(finished_[i]));
  }
  // Started minus ended: the ends were read first, and a run is counted as
  // started before it can end, so this is never below zero.
  const double started = Read(warm_) + Read(cold_);
  exp.Gauge(kActive, kActiveHelp, {}, started > ended ? started - ended : 0);
  for (size_t i = 0; i <= kRefusals.size(); ++i) {
    const std::string reason =
        i < kRefusals.size() ? std::string(kRefusals[i]) : "other";
    exp.Counter(kRefused, kRefusedHelp, {{"reason", reason}},
                Read(refused_[i]));
  }
  exp.Counter(kViolations, kViolationsHelp, {}, Read(violations_));
}

}  // namespace jcs::supervisor
