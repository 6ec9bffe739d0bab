// The alert router (spec §5.6, runbook "Alert Router Configuration"): events
// whose name is in alert_signal_events, and the built-in rules' alert.*
// events (rules.h), go to the configured sinks as one JSON document
//   {"event": NAME, "payload": {...}, "metadata": {"alert_event": NAME,
//    "alert_severity": "critical"|"warning", "event_name": NAME,
//    "emitted_at": RFC3339}, "extra_args": [...]}
// Sinks: an append-only JSONL file, a Unix stream socket (one JSON line per
// connection), a program given the line on stdin (exec: run through the
// RouterConfig's ExecRunner, which the daemon makes a jailed run; without a
// runner an exec sink fails closed) and a C++ callback for embedders.
//
// Delivery runs on the router's own thread behind a bounded queue: Route()
// never blocks the event loop, whatever a sink does. A full queue drops the
// alert; drops are counted, logged to stderr and shown in Diagnostics().
// Payloads come from the telemetry bus, which has redacted them already; the
// router redacts again anyway (defence in depth: a caller of Enqueue need not
// be the bus).
#ifndef JCS_TELEMETRY_ALERTS_ROUTER_H_
#define JCS_TELEMETRY_ALERTS_ROUTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "telemetry/bus.h"

namespace jcs::telemetry::alerts {

// "critical" for the two default escalation events, a rule alert's own
// payload.severity ("critical" or "warning", set by rules.h), and "warning"
// for everything else.
std::string SeverityOf(std::string_view event_name,
                       const nlohmann::json& payload);

// The router's callback for embedders: (event_name, payload, metadata,
// extra_args...). Runs on the router thread.
using AlertCallback = std::function<void(
    const std::string& event_name, const nlohmann::json& payload,
    const nlohmann::json& metadata, const std::vector<std::string>& extra)>;

struct SinkConfig {
  enum class Kind { kFile, kUnixSocket, kCallback, kExec };
  Kind kind = Kind::kFile;
  std::string path;  // kFile, kUnixSocket
  AlertCallback callback;
  // kExec: the program (absolute) and its arguments; extra_args follow.
  std::vector<std::string> argv;
  std::vector<std::string> extra_args;
  // Bound on one delivery (socket connect + write; an exec sink's whole
  // run, after which its process tree is killed).
  absl::Duration timeout = absl::Seconds(2);
};

// Runs an exec sink's program with `argv` (the sink's argv, then its
// extra_args), `document` (the alert's JSON line) on stdin, output
// discarded, for at most `timeout`; OK when it exited 0. Called on the
// router's thread only. `cancelled` turns true when the router shuts down:
// the run is then to be ended at once.
using ExecRunner = std::function<absl::Status(
    const std::vector<std::string>& argv, const std::string& document,
    absl::Duration timeout, const std::function<bool()>& cancelled)>;

struct RouterConfig {
  // Names are trimmed, lowercased and deduplicated (spec §2).
  std::set<std::string> signal_events = {"security.sandbox_violation",
                                         "security.repeated_timeout_failures"};
  std::vector<SinkConfig> sinks;
  size_t queue_capacity = 1024;
  // For kExec sinks (supervisor/alert_exec.h: a jailed run).
  ExecRunner exec_runner;
};

// Normalizes event names as alert_signal_events does.
std::set<std::string> NormalizeSignalEvents(
    const std::vector<std::string>& names);

class Router {
 public:
  explicit Router(RouterConfig config);
  // Delivers what is queued, waiting up to two seconds for the thread; a
  // sink still hanging then is left behind (the thread owns its state)
  // rather than blocking shutdown.
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Replaces the signal list and sinks (SIGHUP). Alerts already queued go to
  // the new sinks.
  void Reconfigure(RouterConfig config);

  // Routes `event` when it is a signal event or a rule alert ("alert.*").
  // Never blocks on a sink.
  void Route(const Event& event);

  // Queues one alert; false when the queue was full and it was dropped.
  bool Enqueue(const std::string& event_name, nlohmann::json payload,
               absl::Time at);

  // {signal_events, sinks, queue_capacity, queued, routed, delivered,
  //  dropped, sink_failures, last_error}.
  nlohmann::json Diagnostics() const;

  // Test helper: true once the queue is empty and no delivery runs, false
  // at the deadline.
  bool WaitIdle(absl::Duration timeout) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace jcs::telemetry::alerts

#endif  // JCS_TELEMETRY_ALERTS_ROUTER_H_
