#include "supervisor/a2a_http.h"

#include <unistd.h>

#include <condition_variable>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "base/version.h"
#include "nlohmann/json.hpp"

namespace jcs::supervisor {

using nlohmann::json;

struct A2aEventHub::Queue {
  std::string project_id;
  std::string conversation_id;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<json> events;
};

class A2aEventHub::Handle : public protocol::a2a::Subscription {
 public:
  Handle(A2aEventHub* hub, std::shared_ptr<Queue> queue)
      : hub_(hub), queue_(std::move(queue)) {}
  ~Handle() override {
    std::lock_guard<std::mutex> lock(hub_->mu_);
    hub_->queues_.remove(queue_);
  }

  std::optional<json> Next(absl::Duration timeout) override {
    std::unique_lock<std::mutex> lock(queue_->mu);
    queue_->cv.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                        [&] { return !queue_->events.empty(); });
    if (queue_->events.empty()) return std::nullopt;
    json event = std::move(queue_->events.front());
    queue_->events.pop_front();
    return event;
  }

 private:
  A2aEventHub* const hub_;
  const std::shared_ptr<Queue> queue_;
};

void A2aEventHub::Publish(const proto::Event& event) {
  if (event.name().rfind("conversation.", 0) != 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (queues_.empty()) return;
  json payload = json::parse(event.payload_json(), nullptr, false);
  if (!payload.is_object()) return;
  const std::string conversation =
      json_fields::String(payload, "conversation_id");
  for (const std::shared_ptr<Queue>& queue : queues_) {
    if (queue->project_id != event.project_id() ||
        queue->conversation_id != conversation) {
      continue;
    }
    std::lock_guard<std::mutex> queue_lock(queue->mu);
    if (queue->events.size() >= max_queued_) queue->events.pop_front();
    queue->events.push_back(payload);
    queue->cv.notify_all();
  }
}

std::unique_ptr<protocol::a2a::Subscription> A2aEventHub::Subscribe(
    const std::string& project_id, const std::string& conversation_id) {
  auto queue = std::make_shared<Queue>();
  queue->project_id = project_id;
  queue->conversation_id = conversation_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queues_.push_back(queue);
  }
  return std::make_unique<Handle>(this, std::move(queue));
}

namespace {

constexpr auto kReplace = json::error_handler_t::replace;
// A turn's wait: the control API's longest ConversationCall.
constexpr uint32_t kTurnTimeoutMs = 600000;

absl::Status StatusFromError(const proto::Error& error) {
  const std::string message =
      error.message().empty() ? error.reason() : error.message();
  const std::string& reason = error.reason();
  if (reason == "protocol_denied") return absl::PermissionDeniedError(message);
  if (reason == "project_not_found" || reason == "conversation_not_found") {
    return absl::NotFoundError(message);
  }
  if (reason == "conversation_already_started") {
    return absl::AlreadyExistsError(message);
  }
  if (reason == "unauthorized") return absl::UnauthenticatedError(message);
  return absl::FailedPreconditionError(message);
}

class ControlA2aBackend : public protocol::a2a::Backend {
 public:
  ControlA2aBackend(LoopBridge* bridge, A2aEventHub* hub, std::string project,
                    PeerCredentials peer)
      : bridge_(bridge),
        hub_(hub),
        project_(std::move(project)),
        peer_(std::move(peer)) {}

  absl::Status Authorize(const std::string& operation) override {
    proto::Request request;
    proto::AuthorizeProtocolRequest* ask = request.mutable_authorize_protocol();
    ask->set_project_id(project_);
    ask->set_protocol("a2a");
    ask->set_operation(operation);
    return CallOk(std::move(request)).status();
  }

  absl::StatusOr<json> Tools() override {
    proto::Request request;
    request.mutable_list_tools()->set_project_id(project_);
    absl::StatusOr<proto::Response> response = CallOk(std::move(request));
    if (!response.ok()) return response.status();
    json tools =
        json::parse(response->list_tools().tools_json(), nullptr, false);
    if (!tools.is_array()) {
      return absl::InternalError("the project's tool list is not an array");
    }
    return tools;
  }

  absl::StatusOr<json> AssetCounts() override {
    proto::Request request;
    request.mutable_diagnostics()->set_project_id(project_);
    absl::StatusOr<proto::Response> response = CallOk(std::move(request));
    if (!response.ok()) return response.status();
    const json doc =
        json::parse(response->diagnostics().json(), nullptr, false);
    if (!doc.is_object() || !doc.contains("assets") ||
        !doc["assets"].is_object()) {
      return json::object();
    }
    // The store counts by type name (skill, command, workflow); the card
    // names them in the plural, as the original's asset_counts.
    const json counts = json_fields::Object(doc["assets"], "counts");
    if (!counts.is_object()) return json::object();
    return json{{"skills", json_fields::Int(counts, "skill", 0)},
                {"commands", json_fields::Int(counts, "command", 0)},
                {"workflows", json_fields::Int(counts, "workflow", 0)}};
  }

  absl::Status StartConversation(const std::string& id) override {
    proto::Request request;
    request.mutable_start_conversation()->set_project_id(project_);
    request.mutable_start_conversation()->set_conversation_id(id);
    return CallOk(std::move(request)).status();
  }

  absl::StatusOr<std::string> Status(const std::string& id) override {
    proto::Request request;
    request.mutable_conversation_state()->set_project_id(project_);
    request.mutable_conversation_state()->set_conversation_id(id);
    absl::StatusOr<proto::Response> response = CallOk(std::move(request));
    if (!response.ok()) return response.status();
    const json state =
        json::parse(response->conversation_state().json(), nullptr, false);
    if (!state.is_object() || !state.contains("domain") ||
        !state["domain"].is_object()) {
      return absl::InternalError("the conversation state has no domain");
    }
    return json_fields::String(state["domain"], "status");
  }

  absl::StatusOr<json> Timeline(const std::string& id) override {
    proto::Request request;
    proto::ConversationProjectionRequest* get =
        request.mutable_conversation_projection();
    get->set_project_id(project_);
    get->set_conversation_id(id);
    get->set_key("timeline");
    absl::StatusOr<proto::Response> response = CallOk(std::move(request));
    if (!response.ok()) return response.status();
    json timeline =
        json::parse(response->conversation_projection().json(), nullptr, false);
    if (!timeline.is_array()) return json::array();
    return timeline;
  }

  absl::Status Call(const std::string& id, const json& signal) override {
    proto::Request request;
    proto::ConversationCallRequest* call = request.mutable_conversation_call();
    call->set_project_id(project_);
    call->set_conversation_id(id);
    call->set_signal_json(signal.dump(-1, ' ', false, kReplace));
    call->set_timeout_ms(kTurnTimeoutMs);
    return CallOk(std::move(request)).status();
  }

  absl::Status Cast(const std::string& id, const json& signal) override {
    proto::Request request;
    proto::ConversationCastRequest* cast = request.mutable_conversation_cast();
    cast->set_project_id(project_);
    cast->set_conversation_id(id);
    cast->set_signal_json(signal.dump(-1, ' ', false, kReplace));
    return CallOk(std::move(request)).status();
  }

  std::unique_ptr<protocol::a2a::Subscription> Subscribe(
      const std::string& id) override {
    return hub_->Subscribe(project_, id);
  }

 private:
  absl::StatusOr<proto::Response> CallOk(proto::Request request) {
    absl::StatusOr<proto::Response> response =
        bridge_->Call(std::move(request), peer_);
    if (response.ok() && response->has_error()) {
      return StatusFromError(response->error());
    }
    return response;
  }

  LoopBridge* const bridge_;
  A2aEventHub* const hub_;
  const std::string project_;
  const PeerCredentials peer_;
};

PeerCredentials CredentialsOf(const protocol::http::Peer& peer) {
  PeerCredentials creds;
  if (peer.unix_socket) {
    creds.pid = peer.pid;
    creds.uid = peer.uid;
    creds.gid = peer.gid;
    creds.groups = peer.groups;
  } else {
    // The token holder: only the daemon's uid can read the token.
    creds.uid = geteuid();
    creds.gid = getegid();
  }
  return creds;
}

}  // namespace

std::unique_ptr<protocol::a2a::Backend> MakeControlA2aBackend(
    LoopBridge* bridge, A2aEventHub* hub, std::string project,
    PeerCredentials peer) {
  return std::make_unique<ControlA2aBackend>(bridge, hub, std::move(project),
                                             std::move(peer));
}

absl::StatusOr<std::unique_ptr<protocol::a2a::A2aHttpServer>> StartA2aHttp(
    const proto::SupervisorConfig& config, const std::string& token,
    LoopBridge* bridge, A2aEventHub* hub) {
  if (!config.has_a2a_http_address() && !config.has_a2a_http_socket()) {
    return std::unique_ptr<protocol::a2a::A2aHttpServer>();
  }
  protocol::a2a::HttpOptions options;
  options.tcp_address = config.a2a_http_address();
  options.unix_path = config.a2a_http_socket();
  options.unix_mode = config.a2a_http_socket_mode();
  options.bearer_token = token;
  options.allowed_uids.insert(config.allowed_uids().begin(),
                              config.allowed_uids().end());
  options.allowed_gids.insert(config.allowed_gids().begin(),
                              config.allowed_gids().end());
  options.max_connections = config.a2a_http_max_connections();
  options.max_body_bytes = config.max_frame_bytes();
  options.version = kJcsVersion;
  return protocol::a2a::A2aHttpServer::Start(
      std::move(options),
      [bridge, hub](const std::string& project,
                    const protocol::http::Peer& peer)
          -> absl::StatusOr<std::unique_ptr<protocol::a2a::Backend>> {
        std::unique_ptr<protocol::a2a::Backend> backend =
            MakeControlA2aBackend(bridge, hub, project, CredentialsOf(peer));
        // The project must exist and be this peer's: refused with the
        // control API's reason before any operation.
        if (absl::StatusOr<json> tools = backend->Tools(); !tools.ok()) {
          if (absl::IsUnauthenticated(tools.status())) {
            return absl::PermissionDeniedError(tools.status().message());
          }
          return tools.status();
        }
        return backend;
      },
      [bridge](const protocol::http::Peer& peer) -> std::optional<std::string> {
        proto::Request request;
        request.mutable_list_projects();
        absl::StatusOr<proto::Response> response =
            bridge->Call(std::move(request), CredentialsOf(peer));
        if (!response.ok() || !response->has_list_projects() ||
            response->list_projects().projects_size() != 1) {
          return std::nullopt;
        }
        return response->list_projects().projects(0).project_id();
      });
}

}  // namespace jcs::supervisor
