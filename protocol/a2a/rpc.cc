#include "protocol/a2a/rpc.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

ParseResult Fail(int code, std::string message, json id) {
  ParseResult result;
  result.error = RpcError{code, std::move(message)};
  result.error_id = std::move(id);
  return result;
}

// An optional string field of `object`: absent (or null) -> nullopt; a
// string of 1..kMaxIdBytes bytes -> it; else the error naming `where`.
std::optional<std::string> OptionalId(const json& object, const char* key,
                                      const std::string& where,
                                      std::optional<RpcError>* error) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
      it->get_ref<const std::string&>().size() > kMaxIdBytes) {
    *error =
        RpcError{kInvalidParams, absl::StrCat("invalid params: ", where, key,
                                              ": expected a string of 1 to ",
                                              kMaxIdBytes, " bytes")};
    return std::nullopt;
  }
  return it->get<std::string>();
}

std::optional<int> HistoryLength(const json& object, const std::string& where,
                                 std::optional<RpcError>* error) {
  const auto it = object.find("historyLength");
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > 100000) {
    *error = RpcError{kInvalidParams,
                      absl::StrCat("invalid params: ", where,
                                   "historyLength: expected an integer of 0 "
                                   "to 100000")};
    return std::nullopt;
  }
  return static_cast<int>(it->get<int64_t>());
}

std::optional<RpcError> ParseSend(const json& params, SendParams* out) {
  const auto message = params.find("message");
  if (message == params.end() || !message->is_object()) {
    return RpcError{kInvalidParams,
                    "invalid params: message: expected an object"};
  }
  if (json_fields::String(*message, "kind") != "message") {
    return RpcError{kInvalidParams,
                    "invalid params: message.kind: expected \"message\""};
  }
  if (json_fields::String(*message, "role") != "user") {
    return RpcError{kInvalidParams,
                    "invalid params: message.role: expected \"user\" (the "
                    "client speaks as the user)"};
  }
  std::optional<RpcError> error;
  std::optional<std::string> message_id =
      OptionalId(*message, "messageId", "message.", &error);
  if (error.has_value()) return error;
  if (!message_id.has_value()) {
    return RpcError{kInvalidParams,
                    "invalid params: message.messageId: required"};
  }
  out->message_id = *std::move(message_id);
  out->task_id = OptionalId(*message, "taskId", "message.", &error);
  if (error.has_value()) return error;
  if (out->task_id.has_value() && !ValidTaskId(*out->task_id)) {
    return RpcError{kTaskNotFound,
                    absl::StrCat("task not found: '", *out->task_id,
                                 "' is not a task id of this agent")};
  }
  out->context_id = OptionalId(*message, "contextId", "message.", &error);
  if (error.has_value()) return error;
  const auto parts = message->find("parts");
  if (parts == message->end() || !parts->is_array() || parts->empty()) {
    return RpcError{kInvalidParams,
                    "invalid params: message.parts: expected a non-empty "
                    "array"};
  }
  std::string text;
  for (size_t i = 0; i < parts->size(); ++i) {
    const json& part = (*parts)[i];
    const std::string where = absl::StrCat("message.parts[", i, "]");
    if (!part.is_object()) {
      return RpcError{kInvalidParams, absl::StrCat("invalid params: ", where,
                                                   ": expected an object")};
    }
    if (!json_fields::Member(part, "kind").is_string()) {
      return RpcError{kInvalidParams, absl::StrCat("invalid params: ", where,
                                                   ".kind: expected a string")};
    }
    const std::string kind = json_fields::String(part, "kind");
    if (kind != "text") {
      return RpcError{kContentTypeNotSupported,
                      absl::StrCat("content type not supported: ", where,
                                   ".kind '", kind.substr(0, 32),
                                   "': this agent takes text parts only")};
    }
    const auto part_text = part.find("text");
    if (part_text == part.end() || !part_text->is_string()) {
      return RpcError{kInvalidParams, absl::StrCat("invalid params: ", where,
                                                   ".text: expected a string")};
    }
    if (!text.empty()) text += '\n';
    text += part_text->get_ref<const std::string&>();
    if (text.size() > kMaxMessageTextBytes) {
      return RpcError{kInvalidParams,
                      absl::StrCat("invalid params: message.parts: the text is "
                                   "longer than ",
                                   kMaxMessageTextBytes, " bytes")};
    }
  }
  if (absl::StripAsciiWhitespace(text).empty()) {
    return RpcError{kInvalidParams,
                    "invalid params: message.parts: the text is blank "
                    "(empty_content)"};
  }
  out->text = std::move(text);
  if (const auto metadata = message->find("metadata");
      metadata != message->end() && !metadata->is_null()) {
    if (!metadata->is_object()) {
      return RpcError{kInvalidParams,
                      "invalid params: message.metadata: expected an object"};
    }
    if (const auto llm = metadata->find("llm");
        llm != metadata->end() && !llm->is_null()) {
      if (!llm->is_object()) {
        return RpcError{kInvalidParams,
                        "invalid params: message.metadata.llm: expected an "
                        "object"};
      }
      out->llm = *llm;
    }
  }
  if (const auto config = params.find("configuration");
      config != params.end() && !config->is_null()) {
    if (!config->is_object()) {
      return RpcError{kInvalidParams,
                      "invalid params: configuration: expected an object"};
    }
    if (const auto blocking = config->find("blocking");
        blocking != config->end() && !blocking->is_null()) {
      if (!blocking->is_boolean()) {
        return RpcError{kInvalidParams,
                        "invalid params: configuration.blocking: expected a "
                        "boolean"};
      }
      out->blocking = blocking->get<bool>();
    }
    out->history_length = HistoryLength(*config, "configuration.", &error);
    if (error.has_value()) return error;
    if (const auto push = config->find("pushNotificationConfig");
        push != config->end() && !push->is_null()) {
      return RpcError{kPushNotificationNotSupported,
                      "push notifications are not supported: use "
                      "message/stream or tasks/get"};
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kMessageSend:
      return "message/send";
    case Method::kMessageStream:
      return "message/stream";
    case Method::kTasksGet:
      return "tasks/get";
    case Method::kTasksCancel:
      return "tasks/cancel";
    case Method::kTasksResubscribe:
      return "tasks/resubscribe";
  }
  return "";
}

bool ValidTaskId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

ParseResult ParseRequest(std::string_view body) {
  mcp::ParseResult envelope = mcp::ParseMessage(body);
  if (envelope.error.has_value()) {
    return Fail(envelope.error->code, envelope.error->message,
                envelope.error_id);
  }
  const mcp::Message& message = *envelope.message;
  if (message.kind != mcp::Message::Kind::kRequest) {
    return Fail(kInvalidRequest,
                "invalid request: expected a request with an id (A2A answers "
                "every method; notifications and responses are not taken)",
                nullptr);
  }
  const json& id = message.id;
  Request request;
  request.id = id;
  const std::string& method = message.method;
  const json params =
      message.params.is_object() ? message.params : json::object();
  if (absl::StartsWith(method, "tasks/pushNotificationConfig/")) {
    return Fail(kPushNotificationNotSupported,
                "push notifications are not supported: use message/stream or "
                "tasks/get",
                id);
  }
  if (method == "agent/getAuthenticatedExtendedCard") {
    return Fail(kAuthenticatedExtendedCardNotConfigured,
                "no authenticated extended card: the public agent card is "
                "the whole card",
                id);
  }
  if (method == "message/send" || method == "message/stream") {
    request.method = method == "message/send" ? Method::kMessageSend
                                              : Method::kMessageStream;
    if (std::optional<RpcError> error = ParseSend(params, &request.send)) {
      return Fail(error->code, error->message, id);
    }
    ParseResult result;
    result.request = std::move(request);
    return result;
  }
  if (method == "tasks/get" || method == "tasks/cancel" ||
      method == "tasks/resubscribe") {
    request.method = method == "tasks/get"      ? Method::kTasksGet
                     : method == "tasks/cancel" ? Method::kTasksCancel
                                                : Method::kTasksResubscribe;
    std::optional<RpcError> error;
    std::optional<std::string> task = OptionalId(params, "id", "", &error);
    if (error.has_value()) return Fail(error->code, error->message, id);
    if (!task.has_value()) {
      return Fail(kInvalidParams, "invalid params: id: required (the task id)",
                  id);
    }
    if (!ValidTaskId(*task)) {
      return Fail(kTaskNotFound,
                  absl::StrCat("task not found: '", *task,
                               "' is not a task id of this agent"),
                  id);
    }
    request.task_id = *std::move(task);
    if (request.method == Method::kTasksGet) {
      request.history_length = HistoryLength(params, "", &error);
      if (error.has_value()) return Fail(error->code, error->message, id);
    }
    ParseResult result;
    result.request = std::move(request);
    return result;
  }
  return Fail(kMethodNotFound,
              absl::StrCat("method not found: '", method.substr(0, 64),
                           "' (A2A 0.3: message/send, message/stream, "
                           "tasks/get, tasks/cancel, tasks/resubscribe)"),
              id);
}

}  // namespace jcs::protocol::a2a
