// Which telemetry events become which structured log lines (the bus sink of
// the daemon's log):
//   info  project.started, project.stopped, project.restore_failed;
//         each finished tool call: msg "tool.call" with project_id,
//         conversation_id, correlation_id, call_id, tool, status (ok, error,
//         timeout, cancelled), duration_ms and, when it failed, reason;
//   warn  every denial (policy.denied, security.*) and every alert (alert.*
//         and the alert_signal_events) with its payload and, for an
//         alert, alert_severity (the router's): a critical one logs at
//         error;
//   debug every other event, with its payload.
// Payloads come from the bus, already redacted; the log redacts again.
#ifndef JCS_TELEMETRY_LOGGING_EVENT_LOG_H_
#define JCS_TELEMETRY_LOGGING_EVENT_LOG_H_

#include <set>
#include <string>

#include "telemetry/bus.h"
#include "telemetry/logging/structured_log.h"

namespace jcs::telemetry::logging {

// `alert_events`: the configured alert_signal_events (logged as alerts).
void LogEvent(StructuredLog& log, const Event& event,
              const std::set<std::string, std::less<>>& alert_events = {});

}  // namespace jcs::telemetry::logging

#endif  // JCS_TELEMETRY_LOGGING_EVENT_LOG_H_
