// What `jcs run --daemon` runs did, for the daemon's scrape (`jcs metrics`):
// runs started (warm or cold jail), finished (by how the run ended), running
// now, refused (by the reason the client was given), and the seccomp denials
// in them. The daemon runs' service counts on its own thread; the scrape
// reads on the supervisor's: every figure is an atomic.
#ifndef JCS_SUPERVISOR_DAEMON_RUN_METRICS_H_
#define JCS_SUPERVISOR_DAEMON_RUN_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "jail/runner.h"
#include "telemetry/metrics/exposition.h"

namespace jcs::supervisor {

class DaemonRunMetrics {
 public:
  // The reasons the service refuses a run with; any other is counted as
  // "other" (a label value never comes from a client).
  static constexpr std::array<std::string_view, 5> kRefusals = {
      "daemon_run_disabled", "daemon_run_busy", "malformed_request",
      "unauthorized", "invalid_spec"};

  void Started(bool warm);
  void Finished(const jail::RunResult& result);
  void Refused(std::string_view reason);

  // Every family, declared even before it moves. Thread-safe.
  void AppendTo(telemetry::metrics::Exposition& exp) const;

 private:
  static constexpr size_t kStatuses =
      static_cast<size_t>(jail::RunStatus::kSetupError) + 1;

  std::atomic<uint64_t> warm_{0};
  std::atomic<uint64_t> cold_{0};
  std::array<std::atomic<uint64_t>, kStatuses> finished_{};
  std::array<std::atomic<uint64_t>, kRefusals.size() + 1> refused_{};
  std::atomic<uint64_t> violations_{0};
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_DAEMON_RUN_METRICS_H_
