// jcs's conversations as A2A 0.3 objects (issue 15): a task is a
// conversation (task id = conversation id = contextId), its history the
// conversation's user and assistant messages, its artifacts the assistant's
// answers; the project's agent card carries the original jcs card (project,
// agent id, tools, asset counts) as the params of an AgentExtension.
//
// Task state from the conversation's status:
//   running                         working
//   cancelled, stopped              canceled
//   idle, the last turn's model failed (conversation.llm.failed after the
//        last user message)         failed
//   idle, after a user message      completed (a later message/send to the
//                                   task starts another turn: working again)
//   idle, no message yet            submitted
#ifndef JCS_PROTOCOL_A2A_MAPPING_H_
#define JCS_PROTOCOL_A2A_MAPPING_H_

#include <optional>
#include <string>

#include "nlohmann/json.hpp"

namespace jcs::protocol::a2a {

inline constexpr char kProtocolVersion[] = "0.3.0";
// The extension whose params are the original jcs agent card.
inline constexpr char kJcsCardExtension[] = "urn:jcs:a2a:agent-card:v1";

struct AgentInfo {
  std::string project_id;
  std::string url;      // the JSON-RPC endpoint (absolute URL)
  std::string version;  // jcs's
  nlohmann::json tools = nlohmann::json::array();  // [{name, description,
                                                   //   input_schema}]
  nlohmann::json asset_counts = nlohmann::json::object();
  bool bearer = false;  // TCP: the Authorization header is required
};

// The A2A AgentCard for `info`.
nlohmann::json AgentCard(const AgentInfo& info);

// The A2A TaskState of a conversation with `status` (its snapshot's) and
// `timeline` (its timeline projection: event payloads, oldest first).
std::string TaskState(const std::string& status,
                      const nlohmann::json& timeline);
bool TerminalState(const std::string& state);

// The Task object; history keeps the last `history_length` messages (all
// when unset).
nlohmann::json Task(const std::string& task_id, const std::string& status,
                    const nlohmann::json& timeline,
                    std::optional<int> history_length);

// What a stream sends for one conversation event (its payload): a
// status-update or artifact-update event, or nothing for events A2A has no
// place for (deltas, model bookkeeping).
std::optional<nlohmann::json> StreamEvent(const std::string& task_id,
                                          const nlohmann::json& payload);

// The last event of a stream: the task's state, final.
nlohmann::json FinalStatusEvent(const std::string& task_id,
                                const std::string& state);

}  // namespace jcs::protocol::a2a

#endif  // JCS_PROTOCOL_A2A_MAPPING_H_
