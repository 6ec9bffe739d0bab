// The conversation requests of the control API (proto/control.proto):
// StartConversation, StopConversation, ConversationCall (answered once the
// conversation settled), ConversationCast, ConversationState and
// ConversationProjection, over the project's ConversationRuntime. Everything
// a client gets back is redacted (telemetry/redact.h) like every event.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "supervisor/control_service.h"
#include "telemetry/redact.h"

namespace jcs::supervisor {
namespace {

// A signal larger than this is refused before it is parsed: a conversation
// keeps its signals (queue, timeline, model context), so each is bounded.
constexpr size_t kMaxSignalJsonBytes = 256 << 10;
constexpr uint32_t kDefaultCallTimeoutMs = 30000;
constexpr uint32_t kMaxCallTimeoutMs = 600000;

std::string Dump(const nlohmann::json& doc) {
  return telemetry::Redacted(doc).dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The field a conversation error is about.
std::string KeyOf(const std::string& reason) {
  if (reason == "conversation_not_found" ||
      reason == "conversation_already_started" ||
      reason == "invalid_conversation_id") {
    return "conversation_id";
  }
  if (reason == "missing_type" || reason == "invalid_type" ||
      reason == "reserved_type" || reason == "external_type_not_allowed") {
    return "type";
  }
  if (reason == "missing_data_envelope" || reason == "invalid_signal_data") {
    return "data";
  }
  if (reason == "invalid_correlation_id") return "meta.correlation_id";
  if (reason == "invalid_signal_id") return "id";
  if (reason == "projection_not_found") return "key";
  return "signal_json";
}

void SetStatusError(proto::Response& response, const absl::Status& status) {
  const std::string text(status.message());
  const size_t colon = text.find(": ");
  proto::Error* error = response.mutable_error();
  const std::string reason =
      colon == std::string::npos ? "internal" : text.substr(0, colon);
  error->set_reason(reason);
  error->set_key(KeyOf(reason));
  error->set_detail(colon == std::string::npos ? text : text.substr(colon + 2));
  error->set_message(text);
}

void SetError(proto::Response& response, const std::string& reason,
              const std::string& key, const std::string& detail) {
  proto::Error* error = response.mutable_error();
  error->set_reason(reason);
  error->set_key(key);
  error->set_detail(detail);
  error->set_message(absl::StrCat(reason, ": ", detail));
}

// Parses a request's signal_json (bounded, an object).
bool ParseSignal(const std::string& text, nlohmann::json* out,
                 proto::Response& response) {
  if (text.size() > kMaxSignalJsonBytes) {
    SetError(
        response, "signal_too_large", "signal_json",
        absl::StrCat(text.size(), " bytes; at most ", kMaxSignalJsonBytes));
    return false;
  }
  // Before parsing: nothing may recurse over a hostile nesting depth.
  if (absl::Status depth = runtime::conversation::CheckSignalTextDepth(text);
      !depth.ok()) {
    SetStatusError(response, depth);
    return false;
  }
  *out = nlohmann::json::parse(text, nullptr, false);
  if (out->is_discarded()) {
    SetError(response, "invalid_signal", "signal_json", "malformed_json");
    return false;
  }
  return true;
}

const std::string& ProjectOf(const proto::Request& r) {
  switch (r.body_case()) {
    case proto::Request::kStartConversation:
      return r.start_conversation().project_id();
    case proto::Request::kStopConversation:
      return r.stop_conversation().project_id();
    case proto::Request::kConversationCall:
      return r.conversation_call().project_id();
    case proto::Request::kConversationCast:
      return r.conversation_cast().project_id();
    case proto::Request::kConversationState:
      return r.conversation_state().project_id();
    default:
      return r.conversation_projection().project_id();
  }
}

}  // namespace

void ControlService::HandleConversationRequest(const proto::Request& request,
                                               const PeerCredentials& peer,
                                               proto::Response& response,
                                               Respond& respond) {
  const std::string& project_id = ProjectOf(request);
  if (std::optional<proto::Error> refused =
          AuthorizeProject(peer, project_id)) {
    *response.mutable_error() = *std::move(refused);
    return;
  }
  auto it = conversations_.find(project_id);
  if (it == conversations_.end()) {
    SetError(response, "project_not_found", "project_id", project_id);
    return;
  }
  runtime::conversation::ConversationRuntime& conversations = *it->second;
  switch (request.body_case()) {
    case proto::Request::kStartConversation: {
      absl::StatusOr<std::string> id =
          conversations.Start(request.start_conversation().conversation_id());
      if (!id.ok()) {
        SetStatusError(response, id.status());
        return;
      }
      response.mutable_start_conversation()->set_conversation_id(*id);
      return;
    }
    case proto::Request::kStopConversation: {
      absl::Status status =
          conversations.Stop(request.stop_conversation().conversation_id());
      if (!status.ok()) {
        SetStatusError(response, status);
        return;
      }
      response.mutable_stop_conversation();
      return;
    }
    case proto::Request::kConversationCall: {
      const proto::ConversationCallRequest& call = request.conversation_call();
      nlohmann::json signal;
      if (!ParseSignal(call.signal_json(), &signal, response)) return;
      if (draining_) {
        SetError(response, "draining", "", "the supervisor is shutting down");
        return;
      }
      uint32_t timeout_ms =
          call.timeout_ms() == 0 ? kDefaultCallTimeoutMs : call.timeout_ms();
      if (timeout_ms > kMaxCallTimeoutMs) timeout_ms = kMaxCallTimeoutMs;
      const uint64_t id = request.id();
      Respond reply = std::move(respond);
      respond = nullptr;
      conversations.Call(call.conversation_id(), signal,
                         absl::Milliseconds(timeout_ms),
                         [id, reply](absl::StatusOr<nlohmann::json> snapshot) {
                           proto::Response out;
                           out.set_id(id);
                           if (snapshot.ok()) {
                             out.mutable_conversation_call()->set_snapshot_json(
                                 Dump(*snapshot));
                           } else {
                             SetStatusError(out, snapshot.status());
                           }
                           reply(std::move(out));
                         });
      return;
    }
    case proto::Request::kConversationCast: {
      const proto::ConversationCastRequest& cast = request.conversation_cast();
      nlohmann::json signal;
      if (!ParseSignal(cast.signal_json(), &signal, response)) return;
      if (draining_) {
        SetError(response, "draining", "", "the supervisor is shutting down");
        return;
      }
      absl::StatusOr<nlohmann::json> ingested =
          conversations.Cast(cast.conversation_id(), signal);
      if (!ingested.ok()) {
        SetStatusError(response, ingested.status());
        return;
      }
      response.mutable_conversation_cast()->set_json(Dump(*ingested));
      return;
    }
    case proto::Request::kConversationState: {
      absl::StatusOr<nlohmann::json> state =
          conversations.State(request.conversation_state().conversation_id());
      if (!state.ok()) {
        SetStatusError(response, state.status());
        return;
      }
      response.mutable_conversation_state()->set_json(Dump(*state));
      return;
    }
    default: {
      const proto::ConversationProjectionRequest& get =
          request.conversation_projection();
      absl::StatusOr<nlohmann::json> projection =
          conversations.Projection(get.conversation_id(), get.key());
      if (!projection.ok()) {
        SetStatusError(response, projection.status());
        return;
      }
      response.mutable_conversation_projection()->set_json(Dump(*projection));
      return;
    }
  }
}

}  // namespace jcs::supervisor
