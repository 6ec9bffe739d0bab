#include "telemetry/bus.h"

#include <utility>

#include "telemetry/redact.h"

namespace jcs::telemetry {
namespace {

nlohmann::json Field(const nlohmann::json& payload, const char* key) {
  auto it = payload.find(key);
  return it == payload.end() ? nlohmann::json() : *it;
}

template <typename T>
void PushBounded(std::deque<T>& ring, T entry, size_t cap) {
  ring.push_front(std::move(entry));
  while (ring.size() > cap) ring.pop_back();
}

std::string Serialize(const nlohmann::json& entry) {
  return entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The first non-null of payload[key] and payload.detail[key] (the tool
// runtime puts what a failure was about, e.g. the denied path, in `detail`).
nlohmann::json TriageField(const nlohmann::json& payload, const char* key) {
  nlohmann::json value = Field(payload, key);
  if (!value.is_null()) return value;
  const nlohmann::json detail = Field(payload, "detail");
  return detail.is_object() ? Field(detail, key) : nlohmann::json();
}

// What an operator triages from (issue 12): which tool (one field name,
// `tool`, also for policy decisions that call it tool_name), why, and what
// it was about. Fields the event does not have are left out.
void AddTriageFields(const nlohmann::json& payload, nlohmann::json& entry) {
  nlohmann::json tool = Field(payload, "tool");
  if (tool.is_null()) tool = Field(payload, "tool_name");
  entry["tool"] = std::move(tool);
  nlohmann::json reason = Field(payload, "reason");
  if (reason.is_null()) reason = TriageField(payload, "reason");
  entry["reason"] = std::move(reason);
  entry["error"] = Field(payload, "error");
  for (const char* key :
       {"call_id", "path", "resolved_path", "target", "host", "port", "scheme",
        "errno", "syscall", "timeout_ms", "limit", "kind", "message"}) {
    nlohmann::json value = TriageField(payload, key);
    if (!value.is_null()) entry[key] = std::move(value);
  }
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

void Bus::Emit(std::string_view name, nlohmann::json payload) {
  if (hold_depth_ > 0) {
    held_.push_back(
        Event{std::string(name), "", std::move(payload), options_.clock()});
    return;
  }
  Process(std::string(name), std::move(payload), options_.clock());
}

void Bus::ReleaseHeld() {
  // A sink may emit (an alert rule firing): with no hold left that event is
  // processed at once, inside the sink, exactly as it would have been
  // without the hold, so the order of the whole stream is unchanged.
  while (!held_.empty()) {
    Event event = std::move(held_.front());
    held_.pop_front();
    Process(std::move(event.name), std::move(event.payload), event.at);
  }
}

void Bus::Process(std::string name, nlohmann::json payload,
                  absl::Time at_time) {
  if (!payload.is_object()) {
    payload = nlohmann::json{{"value", std::move(payload)}};
  }
  // First (spec §5.1 step 1): nothing below keeps or forwards a secret.
  Redact(payload);
  Event event;
  event.name = std::move(name);
  const nlohmann::json project = Field(payload, "project_id");
  if (project.is_string()) event.project_id = project.get<std::string>();
  event.at = at_time;
  const std::string at = Rfc3339(event.at);

  ProjectState& state = projects_[event.project_id];
  ++state.total;
  ++state.counts[event.name];
  nlohmann::json recent = {
      {"event", event.name},
      {"project_id", project},
      {"conversation_id", Field(payload, "conversation_id")},
      {"correlation_id", Field(payload, "correlation_id")},
      {"at", at}};
  AddTriageFields(payload, recent);
  if (EndsWith(event.name, ".failed") || payload.contains("error")) {
    nlohmann::json error = recent;
    error.erase("project_id");
    PushBounded(state.recent_errors, Serialize(error),
                options_.recent_errors_cap);
  }
  PushBounded(state.recent_events, Serialize(recent),
              options_.recent_events_cap);
  event.payload = std::move(payload);
  for (const Sink& sink : sinks_) sink(event);
}

uint64_t Bus::Count(std::string_view project_id, std::string_view name) const {
  auto project = projects_.find(project_id);
  if (project == projects_.end()) return 0;
  auto it = project->second.counts.find(name);
  return it == project->second.counts.end() ? 0 : it->second;
}

nlohmann::json Bus::Snapshot(std::string_view project_id) const {
  nlohmann::json snapshot = {
      {"project_id",
       project_id.empty() ? nlohmann::json() : nlohmann::json(project_id)},
      {"total_events", 0},
      {"event_counts", nlohmann::json::object()},
      {"recent_errors", nlohmann::json::array()},
      {"recent_events", nlohmann::json::array()}};
  auto it = projects_.find(project_id);
  if (it == projects_.end()) return snapshot;
  const ProjectState& state = it->second;
  snapshot["total_events"] = state.total;
  for (const auto& [name, count] : state.counts) {
    snapshot["event_counts"][name] = count;
  }
  for (const std::string& e : state.recent_errors) {
    snapshot["recent_errors"].push_back(
        nlohmann::json::parse(e, nullptr, false));
  }
  for (const std::string& e : state.recent_events) {
    snapshot["recent_events"].push_back(
        nlohmann::json::parse(e, nullptr, false));
  }
  return snapshot;
}

void Bus::Forget(std::string_view project_id) {
  auto it = projects_.find(project_id);
  if (it != projects_.end()) projects_.erase(it);
}

}  // namespace jcs::telemetry
