// The A2A (Agent2Agent protocol 0.3) JSON-RPC requests the gateway serves
// (issue 15): one HTTP POST body parsed into a typed request, or into the
// JSON-RPC error the client gets back. The envelope is protocol/mcp's
// JSON-RPC 2.0 parser (bounded depth, no batches, string or integer ids);
// this adds A2A's methods and the params each one takes.
//
// Methods:
//   message/send, message/stream   MessageSendParams {message{kind:"message",
//                                  messageId, role:"user", parts[{kind:"text",
//                                  text}], taskId?, contextId?, metadata?},
//                                  configuration?{blocking?, historyLength?}}
//   tasks/get                      TaskQueryParams {id, historyLength?}
//   tasks/cancel, tasks/resubscribe  TaskIdParams {id}
//   tasks/pushNotificationConfig/*  -32003 (push notifications not offered)
//   agent/getAuthenticatedExtendedCard  -32007 (no extended card)
// A notification (no id) is refused with -32600: every A2A method answers.
#ifndef JCS_PROTOCOL_A2A_RPC_H_
#define JCS_PROTOCOL_A2A_RPC_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "protocol/mcp/json_rpc.h"

namespace jcs::protocol::a2a {

using mcp::RpcError;

// JSON-RPC's.
inline constexpr int kParseError = mcp::kParseError;
inline constexpr int kInvalidRequest = mcp::kInvalidRequest;
inline constexpr int kMethodNotFound = mcp::kMethodNotFound;
inline constexpr int kInvalidParams = mcp::kInvalidParams;
inline constexpr int kInternalError = mcp::kInternalError;
// A2A 0.3's (section 8.2, "A2A-Specific Errors").
inline constexpr int kTaskNotFound = -32001;
inline constexpr int kTaskNotCancelable = -32002;
inline constexpr int kPushNotificationNotSupported = -32003;
inline constexpr int kUnsupportedOperation = -32004;
inline constexpr int kContentTypeNotSupported = -32005;
inline constexpr int kAuthenticatedExtendedCardNotConfigured = -32007;
// jcs's: the project's protocol_allowlist does not allow A2A. MCP's gateway
// answers -32003, which A2A already gives to PushNotificationNotSupported
// (the SDK would report a denial as that), so A2A's is a server error code
// (-32000..-32099) that A2A 0.3 leaves unused.
inline constexpr int kProtocolDenied = -32010;

// A user message's text is bounded like a conversation signal (256 KiB):
// the conversation keeps it in its timeline and model context.
inline constexpr size_t kMaxMessageTextBytes = 200 << 10;
// Ids the gateway echoes or turns into conversation ids.
inline constexpr size_t kMaxIdBytes = 128;

enum class Method {
  kMessageSend,
  kMessageStream,
  kTasksGet,
  kTasksCancel,
  kTasksResubscribe,
};

std::string_view MethodName(Method method);

struct SendParams {
  std::string text;  // the text parts joined with "\n"
  std::string message_id;
  std::optional<std::string> task_id;
  std::optional<std::string> context_id;
  // message.metadata.llm: the model directive a conversation accepts in a
  // user message's data.llm (the deterministic model's text, delay_ms...).
  nlohmann::json llm;
  bool blocking = true;
  std::optional<int> history_length;
};

struct Request {
  nlohmann::json id;
  Method method = Method::kMessageSend;
  SendParams send;                    // message/send, message/stream
  std::string task_id;                // tasks/*
  std::optional<int> history_length;  // tasks/get
};

struct ParseResult {
  std::optional<Request> request;
  std::optional<RpcError> error;
  nlohmann::json error_id;  // the request's id when it could be read
};

ParseResult ParseRequest(std::string_view body);

// Whether `id` may name a task (a conversation id: [A-Za-z0-9._:-]{1,128}).
bool ValidTaskId(std::string_view id);

}  // namespace jcs::protocol::a2a

#endif  // JCS_PROTOCOL_A2A_RPC_H_
