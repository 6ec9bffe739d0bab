#include "telemetry/logging/event_log.h"

#include "absl/strings/match.h"
#include "telemetry/alerts/router.h"

namespace jcs::telemetry::logging {
namespace {

// The payload's value of `key`, or null.
nlohmann::json Field(const nlohmann::json& payload, const char* key) {
  auto it = payload.find(key);
  return it == payload.end() ? nlohmann::json() : *it;
}

bool IsDenial(const std::string& name) {
  return name == "policy.denied" || absl::StartsWith(name, "security.");
}

}  // namespace

void LogEvent(StructuredLog& log, const Event& event,
              const std::set<std::string, std::less<>>& alert_events) {
  const std::string& name = event.name;
  const nlohmann::json& p = event.payload;
  if (name == "tool.completed" || name == "tool.failed" ||
      name == "tool.cancelled") {
    const std::string reason = Field(p, "reason").is_string()
                                   ? Field(p, "reason").get<std::string>()
                                   : "";
    std::string status = "ok";
    if (name == "tool.cancelled") {
      status = "cancelled";
    } else if (name == "tool.failed") {
      status = reason == "timeout" ? "timeout" : "error";
    }
    nlohmann::json fields = {{"event", name},
                             {"project_id", event.project_id},
                             {"conversation_id", Field(p, "conversation_id")},
                             {"correlation_id", Field(p, "correlation_id")},
                             {"call_id", Field(p, "call_id")},
                             {"tool", Field(p, "tool")},
                             {"status", status},
                             {"duration_ms", Field(p, "duration_ms")}};
    if (!reason.empty()) fields["reason"] = reason;
    log.Log(status == "ok" ? LogLevel::kInfo : LogLevel::kWarn, "tool.call",
            std::move(fields));
    return;
  }
  const bool alert =
      absl::StartsWith(name, "alert.") || alert_events.count(name) != 0;
  LogLevel level = LogLevel::kDebug;
  if (alert || IsDenial(name)) {
    level = LogLevel::kWarn;
    // The router's severity: critical for the default signal events and
    // critical rules.
    if (alert && alerts::SeverityOf(name, p) == "critical") {
      level = LogLevel::kError;
    }
  } else if (name == "project.started" || name == "project.stopped" ||
             name == "project.restore_failed") {
    level = LogLevel::kInfo;
  }
  if (!log.Enabled(level)) return;
  nlohmann::json fields = {{"event", name},
                           {"project_id", event.project_id},
                           {"at", Rfc3339(event.at)}};
  if (alert) fields["alert_severity"] = alerts::SeverityOf(name, p);
  fields["payload"] = p;
  log.Log(level, name, std::move(fields));
}

}  // namespace jcs::telemetry::logging
