// The model adapter interface of the conversation runtime (issue 12): one
// request to a language model with the conversation so far and the project's
// tools, answered asynchronously on the event loop.
#ifndef JCS_RUNTIME_CONVERSATION_LLM_ADAPTER_H_
#define JCS_RUNTIME_CONVERSATION_LLM_ADAPTER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime::conversation {

struct LlmMessage {
  std::string role;  // system|user|assistant|tool
  std::string content;
  std::string tool_call_id;                             // role tool
  nlohmann::json tool_calls = nlohmann::json::array();  // role assistant
};

struct LlmToolSpec {
  std::string name, description;
  nlohmann::json input_schema;
};

struct LlmRequest {
  std::string project_id, conversation_id, correlation_id;
  std::vector<LlmMessage> messages;
  std::vector<LlmToolSpec> tools;
  nlohmann::json source_event;  // the triggering signal
  std::string model, system_prompt;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  int64_t timeout_ms = 30000;
};

struct LlmToolCall {
  std::string id, name;
  nlohmann::json arguments;  // an object
};

struct LlmResponse {
  std::string text;
  std::vector<std::string> delta_chunks;
  std::vector<LlmToolCall> tool_calls;
  std::string finish_reason, provider, model;
};

class LlmAdapter {
 public:
  virtual ~LlmAdapter() = default;
  // Called on the event loop; `on_delta` and `done` are called on the loop,
  // `done` exactly once (also on timeout: DeadlineExceeded). Never blocks the
  // loop.
  virtual void Complete(
      LlmRequest request, std::function<void(std::string delta)> on_delta,
      std::function<void(absl::StatusOr<LlmResponse>)> done) = 0;
  // Conversation cancel/stop: pending requests end, done not called.
  virtual void CancelAll() = 0;
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_LLM_ADAPTER_H_
