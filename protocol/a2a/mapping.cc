#include "protocol/a2a/mapping.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/json_fields.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

json TextParts(const std::string& text) {
  return json::array({{{"kind", "text"}, {"text", text}}});
}

// The message of a timeline entry (user or assistant message), if it is one.
std::optional<json> MessageOf(const std::string& task_id, const json& entry) {
  if (!entry.is_object()) return std::nullopt;
  const std::string type = json_fields::String(entry, "event_type");
  const json data = json_fields::Object(entry, "data");
  if (!data.is_object()) return std::nullopt;
  const bool user = type == "conversation.user.message";
  if (!user && type != "conversation.assistant.message") return std::nullopt;
  std::string message_id = json_fields::String(data, "a2a_message_id");
  if (message_id.empty()) {
    message_id = absl::StrCat(
        task_id, "-", json_fields::Int(entry, "seq_in_conversation", 0));
  }
  return json{{"kind", "message"},
              {"messageId", message_id},
              {"role", user ? "user" : "agent"},
              {"parts", TextParts(json_fields::String(data, "content"))},
              {"taskId", task_id},
              {"contextId", task_id}};
}

json Artifact(const json& entry) {
  return {{"artifactId",
           absl::StrCat("answer-",
                        json_fields::Int(entry, "seq_in_conversation", 0))},
          {"name", "answer"},
          {"parts", TextParts(json_fields::String(
                        json_fields::Object(entry, "data"), "content"))}};
}

json StatusUpdate(const std::string& task_id, const std::string& state,
                  bool final, json message = nullptr) {
  json status = {{"state", state}};
  if (!message.is_null()) status["message"] = std::move(message);
  return {{"kind", "status-update"},
          {"taskId", task_id},
          {"contextId", task_id},
          {"status", std::move(status)},
          {"final", final}};
}

}  // namespace

json AgentCard(const AgentInfo& info) {
  json skills = json::array();
  json tools = json::array();
  for (const json& tool : info.tools) {
    if (!tool.is_object()) continue;
    const std::string name = json_fields::String(tool, "name");
    const std::string description = json_fields::String(tool, "description");
    skills.push_back({{"id", name},
                      {"name", name},
                      {"description", description},
                      {"tags", json::array({"tool"})}});
    tools.push_back(
        {{"name", name},
         {"description", description},
         {"input_schema", json_fields::Member(tool, "input_schema")}});
  }
  // The original agent card (spec: agent_card(project_id)).
  json original = {
      {"project_id", info.project_id},
      {"agent_id", absl::StrCat("jidocodeserver:", info.project_id)},
      {"protocols", json::array({"a2a"})},
      {"capabilities",
       {{"tool_count", tools.size()},
        {"tools", std::move(tools)},
        {"asset_counts",
         {{"skills", json_fields::Int(info.asset_counts, "skills", 0)},
          {"commands", json_fields::Int(info.asset_counts, "commands", 0)},
          {"workflows",
           json_fields::Int(info.asset_counts, "workflows", 0)}}}}}};
  json card = {
      {"protocolVersion", kProtocolVersion},
      {"name", absl::StrCat("jcs project ", info.project_id)},
      {"description",
       absl::StrCat("Jido Code Server project ", info.project_id,
                    ": a coding conversation whose tools run in the "
                    "project's sandbox. A task is a conversation.")},
      {"url", info.url},
      {"preferredTransport", "JSONRPC"},
      {"version", info.version},
      {"capabilities",
       {{"streaming", true},
        {"pushNotifications", false},
        {"stateTransitionHistory", false},
        {"extensions",
         json::array({{{"uri", kJcsCardExtension},
                       {"description",
                        "The jcs agent card: project, agent id, tools and "
                        "asset counts"},
                       {"required", false},
                       {"params", std::move(original)}}})}}},
      {"defaultInputModes", json::array({"text/plain"})},
      {"defaultOutputModes", json::array({"text/plain"})},
      {"skills", std::move(skills)},
      {"supportsAuthenticatedExtendedCard", false}};
  if (info.bearer) {
    card["securitySchemes"] = {
        {"bearer",
         {{"type", "http"},
          {"scheme", "bearer"},
          {"description", "the daemon's HTTP bearer token file"}}}};
    card["security"] = json::array({{{"bearer", json::array()}}});
  }
  return card;
}

std::string TaskState(const std::string& status, const json& timeline) {
  if (status == "running") return "working";
  if (status == "cancelled" || status == "stopped") return "canceled";
  bool messaged = false;
  bool failed = false;
  if (timeline.is_array()) {
    for (const json& entry : timeline) {
      if (!entry.is_object()) continue;
      const std::string type = json_fields::String(entry, "event_type");
      if (type == "conversation.user.message") {
        messaged = true;
        failed = false;
      } else if (type == "conversation.llm.failed") {
        failed = true;
      }
    }
  }
  if (failed) return "failed";
  return messaged ? "completed" : "submitted";
}

bool TerminalState(const std::string& state) {
  return state == "completed" || state == "canceled" || state == "failed" ||
         state == "rejected";
}

json Task(const std::string& task_id, const std::string& status,
          const json& timeline, std::optional<int> history_length) {
  json history = json::array();
  json artifacts = json::array();
  json last_agent;
  if (timeline.is_array()) {
    for (const json& entry : timeline) {
      std::optional<json> message = MessageOf(task_id, entry);
      if (!message.has_value()) continue;
      if ((*message)["role"] == "agent") {
        artifacts.push_back(Artifact(entry));
        last_agent = *message;
      }
      history.push_back(*std::move(message));
    }
  }
  if (history_length.has_value() &&
      history.size() > static_cast<size_t>(*history_length)) {
    history.erase(history.begin(),
                  history.end() - static_cast<ptrdiff_t>(*history_length));
  }
  json task_status = {{"state", TaskState(status, timeline)}};
  if (!last_agent.is_null()) task_status["message"] = std::move(last_agent);
  return {{"kind", "task"},
          {"id", task_id},
          {"contextId", task_id},
          {"status", std::move(task_status)},
          {"history", std::move(history)},
          {"artifacts", std::move(artifacts)}};
}

std::optional<json> StreamEvent(const std::string& task_id,
                                const json& payload) {
  if (!payload.is_object()) return std::nullopt;
  const std::string type = json_fields::String(payload, "event_type");
  if (type == "conversation.user.message" ||
      type == "conversation.tool.requested" ||
      type == "conversation.tool.completed" ||
      type == "conversation.tool.failed") {
    json event = StatusUpdate(task_id, "working", false);
    event["metadata"] = {{"event_type", type}};
    return event;
  }
  if (type == "conversation.assistant.message") {
    return json{{"kind", "artifact-update"}, {"taskId", task_id},
                {"contextId", task_id},      {"artifact", Artifact(payload)},
                {"append", false},           {"lastChunk", true}};
  }
  return std::nullopt;
}

json FinalStatusEvent(const std::string& task_id, const std::string& state) {
  return StatusUpdate(task_id, state, true);
}

}  // namespace jcs::protocol::a2a
