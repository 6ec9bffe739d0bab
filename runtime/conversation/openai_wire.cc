#include "runtime/conversation/openai_wire.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "runtime/conversation/llm_error.h"

namespace jcs::runtime::conversation {
namespace {

using nlohmann::json;

// Deeper documents are rejected: nothing the API sends nests this far, and
// a bound keeps a hostile body from building a deep tree.
constexpr int kMaxJsonDepth = 64;

std::optional<json> ParseBounded(absl::string_view text) {
  bool too_deep = false;
  json::parser_callback_t limit =
      [&too_deep](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start ||
             event == json::parse_event_t::array_start) &&
            depth >= kMaxJsonDepth) {
          too_deep = true;
          return false;
        }
        return true;
      };
  json parsed = json::parse(text.begin(), text.end(), limit,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded() || too_deep) return std::nullopt;
  return parsed;
}

absl::Status Malformed(absl::string_view what) {
  return LlmError(absl::StatusCode::kDataLoss, kLlmMalformedResponse, what);
}

absl::Status BadRequest(absl::string_view what) {
  return LlmError(absl::StatusCode::kInvalidArgument, kLlmBadRequest, what);
}

std::string StringOr(const json& object, const char* key,
                     std::string fallback = "") {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>()
                                               : fallback;
}

// Tool-call arguments arrive as a JSON string holding an object; an empty
// string means no arguments.
absl::StatusOr<json> DecodeArguments(const std::string& text, size_t index) {
  if (absl::StripAsciiWhitespace(text).empty()) return json::object();
  std::optional<json> parsed = ParseBounded(text);
  if (!parsed.has_value() || !parsed->is_object()) {
    return Malformed(
        absl::StrCat("tool call ", index, ": arguments are not a JSON object"));
  }
  return *std::move(parsed);
}

// The history's tool calls, as the conversation runtime stores them
// ({id, name, arguments}) or in the API's own form ({id, type, function}).
absl::StatusOr<json> WireToolCalls(const json& calls, const ToolNameMap& names,
                                   size_t message_index) {
  json out = json::array();
  if (calls.is_null()) return out;
  if (!calls.is_array()) {
    return BadRequest(absl::StrCat("messages[", message_index,
                                   "].tool_calls: expected an array"));
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    const json& call = calls[i];
    const json& function =
        call.is_object() && call.contains("function") ? call["function"] : call;
    std::string id = StringOr(call, "id");
    std::string name = StringOr(function, "name");
    if (id.empty() || name.empty()) {
      return BadRequest(absl::StrCat("messages[", message_index,
                                     "].tool_calls[", i,
                                     "]: expected string id and name"));
    }
    std::string arguments = "{}";
    if (function.is_object() && function.contains("arguments")) {
      const json& args = function["arguments"];
      arguments = args.is_string() ? args.get<std::string>() : args.dump();
    }
    out.push_back({{"id", id},
                   {"type", "function"},
                   {"function",
                    {{"name", names.ToApi(name)}, {"arguments", arguments}}}});
  }
  return out;
}

}  // namespace

absl::StatusOr<json> BuildChatRequestBody(const LlmRequest& request,
                                          const ToolNameMap& names,
                                          bool stream) {
  if (request.model.empty()) {
    return BadRequest("no model: set the runtime option llm_model");
  }
  json messages = json::array();
  if (!request.system_prompt.empty()) {
    messages.push_back(
        {{"role", "system"}, {"content", request.system_prompt}});
  }
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const LlmMessage& m = request.messages[i];
    json wire = {{"role", m.role}};
    if (m.role == "system" || m.role == "user") {
      wire["content"] = m.content;
    } else if (m.role == "assistant") {
      absl::StatusOr<json> calls = WireToolCalls(m.tool_calls, names, i);
      if (!calls.ok()) return calls.status();
      // The API wants content null, not "", beside tool calls.
      wire["content"] = m.content.empty() && !calls->empty() ? json(nullptr)
                                                             : json(m.content);
      if (!calls->empty()) wire["tool_calls"] = *std::move(calls);
    } else if (m.role == "tool") {
      if (m.tool_call_id.empty()) {
        return BadRequest(absl::StrCat("messages[", i,
                                       "]: a tool message needs tool_call_id"));
      }
      wire["tool_call_id"] = m.tool_call_id;
      wire["content"] = m.content;
    } else {
      return BadRequest(absl::StrCat(
          "messages[", i, "].role: expected system, user, assistant or tool"));
    }
    messages.push_back(std::move(wire));
  }
  json body = {{"model", request.model},
               {"messages", std::move(messages)},
               {"stream", stream}};
  if (!request.tools.empty()) {
    json tools = json::array();
    for (const LlmToolSpec& tool : request.tools) {
      json parameters =
          tool.input_schema.is_object()
              ? tool.input_schema
              : json{{"type", "object"}, {"properties", json::object()}};
      tools.push_back({{"type", "function"},
                       {"function",
                        {{"name", names.ToApi(tool.name)},
                         {"description", tool.description},
                         {"parameters", std::move(parameters)}}}});
    }
    body["tools"] = std::move(tools);
  }
  if (request.temperature.has_value()) {
    body["temperature"] = *request.temperature;
  }
  if (request.max_tokens.has_value()) body["max_tokens"] = *request.max_tokens;
  return body;
}

absl::StatusOr<LlmResponse> ParseChatCompletion(absl::string_view body,
                                                const ToolNameMap& names) {
  std::optional<json> parsed = ParseBounded(body);
  if (!parsed.has_value() || !parsed->is_object()) {
    return Malformed("the response body is not a JSON object");
  }
  if (parsed->contains("error")) {
    return Malformed("the response is an error object with HTTP status 200");
  }
  auto choices = parsed->find("choices");
  if (choices == parsed->end() || !choices->is_array() || choices->empty() ||
      !(*choices)[0].is_object()) {
    return Malformed("the response has no choices[0]");
  }
  const json& choice = (*choices)[0];
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) {
    return Malformed("choices[0] has no message object");
  }
  LlmResponse response;
  response.provider = "openai";
  response.model = StringOr(*parsed, "model");
  response.finish_reason = StringOr(choice, "finish_reason");
  auto content = message->find("content");
  if (content != message->end() && !content->is_null()) {
    if (!content->is_string()) {
      return Malformed("choices[0].message.content is not a string");
    }
    response.text = content->get<std::string>();
  }
  auto calls = message->find("tool_calls");
  if (calls != message->end() && !calls->is_null()) {
    if (!calls->is_array() || calls->size() > kMaxToolCalls) {
      return Malformed(
          absl::StrCat("choices[0].message.tool_calls: expected "
                       "an array of at most ",
                       kMaxToolCalls));
    }
    for (size_t i = 0; i < calls->size(); ++i) {
      const json& call = (*calls)[i];
      const json* function = call.is_object() && call.contains("function")
                                 ? &call["function"]
                                 : nullptr;
      std::string name = function ? StringOr(*function, "name") : "";
      if (name.empty()) {
        return Malformed(
            absl::StrCat("tool call ", i, " has no function name"));
      }
      std::string arguments_text;
      if (function->contains("arguments")) {
        const json& args = (*function)["arguments"];
        if (!args.is_string()) {
          return Malformed(absl::StrCat("tool call ", i,
                                        ": arguments are not a JSON string"));
        }
        arguments_text = args.get<std::string>();
      }
      absl::StatusOr<json> arguments = DecodeArguments(arguments_text, i);
      if (!arguments.ok()) return arguments.status();
      response.tool_calls.push_back(
          {StringOr(call, "id"), names.FromApi(name), *std::move(arguments)});
    }
  }
  return response;
}

std::string ProviderErrorMessage(absl::string_view body) {
  std::string message;
  std::optional<json> parsed = ParseBounded(body);
  if (parsed.has_value() && parsed->is_object()) {
    const json& error =
        (*parsed).contains("error") ? (*parsed)["error"] : json();
    message = error.is_string() ? error.get<std::string>()
                                : StringOr(error, "message");
  }
  if (message.empty()) message = std::string(body);
  std::string out;
  for (char c : message) {
    if (out.size() >= 512) break;
    out.push_back(absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : ' ');
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

absl::Status SseDecoder::Feed(absl::string_view bytes) {
  for (char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      std::string line = std::move(line_);
      line_.clear();
      if (absl::Status s = Line(line); !s.ok()) return s;
      continue;
    }
    if (line_.size() >= kMaxSseLineBytes) {
      return LlmError(absl::StatusCode::kResourceExhausted,
                      kLlmResponseTooLarge,
                      absl::StrCat("an event-stream line is longer than ",
                                   kMaxSseLineBytes, " bytes"));
    }
    line_.push_back(c);
  }
  return absl::OkStatus();
}

absl::Status SseDecoder::Line(absl::string_view line) {
  if (line.empty()) {
    if (!has_data_) return absl::OkStatus();
    has_data_ = false;
    return on_event_(std::exchange(data_, std::string()));
  }
  if (line[0] == ':') return absl::OkStatus();  // a comment (keep-alive)
  absl::string_view field = line.substr(0, line.find(':'));
  if (field != "data") return absl::OkStatus();  // event, id, retry
  absl::string_view value =
      field.size() < line.size() ? line.substr(field.size() + 1) : "";
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (data_.size() + value.size() + 1 > kMaxSseLineBytes) {
    return LlmError(absl::StatusCode::kResourceExhausted, kLlmResponseTooLarge,
                    absl::StrCat("an event's data is longer than ",
                                 kMaxSseLineBytes, " bytes"));
  }
  if (has_data_) data_.push_back('\n');
  data_.append(value.data(), value.size());
  has_data_ = true;
  return absl::OkStatus();
}

absl::Status StreamAssembler::OnEvent(const std::string& data) {
  if (done_) return Malformed("an event after [DONE]");
  if (data == "[DONE]") {
    done_ = true;
    return absl::OkStatus();
  }
  std::optional<json> chunk = ParseBounded(data);
  if (!chunk.has_value() || !chunk->is_object()) {
    return Malformed("a stream event is not a JSON object");
  }
  if (chunk->contains("error")) {
    const json& error = (*chunk)["error"];
    return LlmError(
        absl::StatusCode::kUnavailable, kLlmHttpError,
        absl::StrCat("the provider reported an error in the "
                     "stream: ",
                     ProviderErrorMessage(json{{"error", error}}.dump())));
  }
  if (response_.model.empty()) response_.model = StringOr(*chunk, "model");
  auto choices = chunk->find("choices");
  // A chunk without choices (usage statistics) carries no delta.
  if (choices == chunk->end() || !choices->is_array() || choices->empty()) {
    return absl::OkStatus();
  }
  const json& choice = (*choices)[0];
  if (!choice.is_object()) return Malformed("choices[0] is not an object");
  std::string finish = StringOr(choice, "finish_reason");
  if (!finish.empty()) response_.finish_reason = finish;
  auto delta = choice.find("delta");
  if (delta == choice.end() || !delta->is_object()) return absl::OkStatus();
  auto content = delta->find("content");
  if (content != delta->end() && !content->is_null()) {
    if (!content->is_string()) {
      return Malformed("choices[0].delta.content is not a string");
    }
    std::string text = content->get<std::string>();
    if (!text.empty()) {
      response_.text += text;
      response_.delta_chunks.push_back(text);
      if (on_delta_) on_delta_(std::move(text));
    }
  }
  auto calls = delta->find("tool_calls");
  if (calls == delta->end() || calls->is_null()) return absl::OkStatus();
  if (!calls->is_array()) {
    return Malformed("choices[0].delta.tool_calls is not an array");
  }
  for (const json& fragment : *calls) {
    if (!fragment.is_object()) return Malformed("a tool-call fragment");
    auto index = fragment.find("index");
    // Some compatible servers leave the index out when there is one call.
    int64_t i = 0;
    if (index != fragment.end()) {
      if (!index->is_number_integer()) {
        return Malformed("a tool-call fragment's index is not an integer");
      }
      i = index->get<int64_t>();
    }
    if (i < 0 || i >= static_cast<int64_t>(kMaxToolCalls)) {
      return Malformed(absl::StrCat("tool-call index ", i, " is outside 0..",
                                    kMaxToolCalls - 1));
    }
    if (static_cast<size_t>(i) >= calls_.size()) calls_.resize(i + 1);
    PartialCall& call = calls_[i];
    std::string id = StringOr(fragment, "id");
    if (!id.empty()) call.id = id;
    auto function = fragment.find("function");
    if (function != fragment.end() && function->is_object()) {
      call.name += StringOr(*function, "name");
      call.arguments += StringOr(*function, "arguments");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LlmResponse> StreamAssembler::Finish() {
  if (!done_) {
    return LlmError(absl::StatusCode::kUnavailable, kLlmStreamTruncated,
                    "the event stream ended before [DONE]");
  }
  LlmResponse response = response_;
  response.provider = "openai";
  for (size_t i = 0; i < calls_.size(); ++i) {
    const PartialCall& call = calls_[i];
    if (call.name.empty()) {
      return Malformed(absl::StrCat("streamed tool call ", i, " has no name"));
    }
    absl::StatusOr<json> arguments = DecodeArguments(call.arguments, i);
    if (!arguments.ok()) return arguments.status();
    response.tool_calls.push_back(
        {call.id, names_.FromApi(call.name), *std::move(arguments)});
  }
  return response;
}

}  // namespace jcs::runtime::conversation
