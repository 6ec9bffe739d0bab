#include "runtime/conversation/deterministic_adapter.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/json_fields.h"

namespace jcs::runtime::conversation {
namespace {

absl::Status BadDirective(const std::string& detail) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid_llm_adapter_response: ", detail));
}

const nlohmann::json* Directive(const nlohmann::json& source) {
  for (const char* where : {"data", "meta"}) {
    if (source.is_object() && source.contains(where) &&
        source[where].is_object() && source[where].contains("llm") &&
        source[where]["llm"].is_object()) {
      return &source[where]["llm"];
    }
  }
  return nullptr;
}

absl::StatusOr<LlmResponse> FromDirective(const nlohmann::json& d,
                                          const LlmRequest& request) {
  LlmResponse response;
  response.provider = "deterministic";
  response.model = request.model.empty() ? "deterministic" : request.model;
  if (d.contains("error")) {
    const std::string reason =
        d["error"].is_string() ? d["error"].get<std::string>() : "llm_error";
    return absl::UnavailableError(
        absl::StrCat(reason, ": the directive asked for a failure"));
  }
  if (d.contains("text")) {
    if (!d["text"].is_string()) return BadDirective("text: expected a string");
    response.text = d["text"].get<std::string>();
  }
  if (d.contains("delta_chunks")) {
    if (!d["delta_chunks"].is_array()) {
      return BadDirective("delta_chunks: expected an array of strings");
    }
    for (const nlohmann::json& chunk : d["delta_chunks"]) {
      if (!chunk.is_string()) {
        return BadDirective("delta_chunks: expected an array of strings");
      }
      response.delta_chunks.push_back(chunk.get<std::string>());
    }
  }
  if (d.contains("tool_calls")) {
    if (!d["tool_calls"].is_array()) {
      return BadDirective("tool_calls: expected an array");
    }
    int n = 0;
    for (const nlohmann::json& call : d["tool_calls"]) {
      ++n;
      if (!call.is_object() || !call.contains("name") ||
          !call["name"].is_string()) {
        return BadDirective(
            absl::StrCat("tool_calls[", n - 1, "]: expected {name, args}"));
      }
      LlmToolCall out;
      out.name = call["name"].get<std::string>();
      out.id = call.contains("id") && call["id"].is_string()
                   ? call["id"].get<std::string>()
                   : absl::StrCat("call_", n);
      nlohmann::json args = call.contains("arguments") ? call["arguments"]
                            : call.contains("args")    ? call["args"]
                                                    : nlohmann::json::object();
      if (args.is_string()) {
        args = nlohmann::json::parse(args.get<std::string>(), nullptr, false);
      }
      if (args.is_null()) args = nlohmann::json::object();
      if (!args.is_object()) {
        return BadDirective(
            absl::StrCat("tool_calls[", n - 1, "].args: expected an object"));
      }
      out.arguments = std::move(args);
      response.tool_calls.push_back(std::move(out));
    }
  }
  response.finish_reason = response.tool_calls.empty() ? "stop" : "tool_calls";
  return response;
}

}  // namespace

absl::StatusOr<LlmResponse> DeterministicAdapter::Answer(
    const LlmRequest& request) {
  LlmResponse response;
  response.provider = "deterministic";
  response.model = request.model.empty() ? "deterministic" : request.model;
  response.finish_reason = "stop";
  if (!request.messages.empty() && request.messages.back().role == "tool") {
    const nlohmann::json& source = request.source_event;
    const nlohmann::json data = source.is_object() && source.contains("data")
                                    ? source["data"]
                                    : nlohmann::json();
    const std::string name = json_fields::String(data, "name", "tool");
    const bool failed =
        json_fields::String(source, "event_type") == "conversation.tool.failed";
    response.text =
        absl::StrCat("Tool ", name, failed ? " failed." : " completed.");
    return response;
  }
  if (const nlohmann::json* directive = Directive(request.source_event)) {
    return FromDirective(*directive, request);
  }
  std::string content;
  for (auto it = request.messages.rbegin(); it != request.messages.rend();
       ++it) {
    if (it->role == "user") {
      content = it->content;
      break;
    }
  }
  const std::string lower = absl::AsciiStrToLower(content);
  for (const char* kind : {"skill", "workflow"}) {
    if (absl::StrContains(lower, absl::StrCat("list ", kind, "s"))) {
      response.tool_calls.push_back(
          {"call_1", "asset.list", nlohmann::json{{"type", kind}}});
      response.finish_reason = "tool_calls";
      return response;
    }
  }
  response.text = absl::StrCat("Acknowledged: ", content);
  return response;
}

void DeterministicAdapter::Complete(
    LlmRequest request, std::function<void(std::string delta)> on_delta,
    std::function<void(absl::StatusOr<LlmResponse>)> done) {
  absl::StatusOr<LlmResponse> answer = Answer(request);
  int64_t delay_ms = 0;
  if (const nlohmann::json* d = Directive(request.source_event);
      d != nullptr && d->contains("delay_ms") &&
      (*d)["delay_ms"].is_number_integer()) {
    delay_ms = std::max<int64_t>(0, (*d)["delay_ms"].get<int64_t>());
  }
  std::weak_ptr<bool> token = token_;
  auto deliver = [token, answer = std::move(answer),
                  on_delta = std::move(on_delta),
                  done = std::move(done)](bool timed_out) mutable {
    if (token.expired()) return;
    if (timed_out) {
      done(absl::DeadlineExceededError(
          "llm_timeout: the model did not answer within llm_timeout_ms"));
      return;
    }
    if (answer.ok()) {
      for (const std::string& chunk : answer->delta_chunks) {
        on_delta(chunk);
        if (token.expired()) return;  // cancelled from a delta
      }
    }
    done(std::move(answer));
  };
  if (delay_ms == 0) {
    (void)loop_->Post(
        [deliver = std::move(deliver)]() mutable { deliver(false); });
    return;
  }
  const bool timed_out = delay_ms > request.timeout_ms;
  (void)loop_->Timeout(
      absl::Milliseconds(timed_out ? request.timeout_ms : delay_ms),
      [deliver = std::move(deliver), timed_out](int res) mutable {
        if (res < 0) return;
        deliver(timed_out);
      });
}

void DeterministicAdapter::CancelAll() {
  token_ = std::make_shared<bool>(true);
}

}  // namespace jcs::runtime::conversation
