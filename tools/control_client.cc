#include "tools/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace jcs::tools {
namespace {

constexpr char kErrorPayloadUrl[] = "type.googleapis.com/jcs.proto.Error";

}  // namespace

absl::Status StatusFromError(const proto::Error& error) {
  std::string message =
      error.detail().empty()
          ? (error.message().empty() ? error.reason() : error.message())
          : (error.reason() == "invalid_runtime_opt"
                 ? absl::StrCat("invalid_runtime_opt{key: \"", error.key(),
                                "\", reason: \"", error.detail(), "\"}")
                 : absl::StrCat(error.reason(), ": ", error.detail()));
  // The daemon's suggested fix, e.g. the nearest option key.
  if (!error.hint().empty() && error.reason() == "invalid_runtime_opt") {
    absl::StrAppend(&message, " (did you mean ", error.hint(), "?)");
  }
  absl::Status status(absl::StatusCode::kFailedPrecondition, message);
  status.SetPayload(kErrorPayloadUrl, absl::Cord(error.SerializeAsString()));
  return status;
}

std::optional<proto::Error> ErrorOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kErrorPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  proto::Error error;
  if (!error.ParseFromString(std::string(*payload))) return std::nullopt;
  return error;
}

absl::StatusOr<std::unique_ptr<ControlClient>> ControlClient::Connect(
    const std::string& socket_path, absl::Duration timeout) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--socket: invalid socket path '", socket_path, "'"));
  }
  memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to the jcs daemon at ", socket_path, ": ",
        strerror(err),
        err == ENOENT || err == ECONNREFUSED ? " (is `jcs serve` running?)"
                                             : ""));
  }
  return std::unique_ptr<ControlClient>(new ControlClient(fd, timeout));
}

ControlClient::~ControlClient() { close(fd_); }

absl::Status ControlClient::SendFrame(const std::string& payload) {
  const std::string frame = supervisor::EncodeFrame(payload);
  size_t sent = 0;
  while (sent < frame.size()) {
    const ssize_t n =
        send(fd_, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(
          absl::StrCat("send to the daemon: ", strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::Response> ControlClient::ReadResponse(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (std::optional<std::string> frame = decoder_.Next()) {
      proto::Response response;
      if (!response.ParseFromString(*frame)) {
        return absl::DataLossError("the daemon sent a malformed response");
      }
      return response;
    }
    if (!decoder_.status().ok()) return decoder_.status();
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) {
      return absl::DeadlineExceededError("no response from the daemon in time");
    }
    struct pollfd p = {fd_, POLLIN, 0};
    const int ready =
        poll(&p, 1, static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
    if (ready < 0 && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("poll: ", strerror(errno)));
    }
    if (ready <= 0) continue;
    char buffer[65536];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n == 0) {
      return absl::UnavailableError("the daemon closed the connection");
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    }
    absl::Status status =
        decoder_.Append(absl::string_view(buffer, static_cast<size_t>(n)));
    if (!status.ok() && !decoder_.Next().has_value()) return status;
  }
}

absl::Status ControlClient::DaemonErrorOr(absl::Status send_error) {
  // A refused peer's connection is closed right after the error frame; the
  // frame stays readable behind the EPIPE/ECONNRESET of the send. Bounded
  // wait: the frame was sent before the close the send ran into.
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  while (true) {
    absl::StatusOr<proto::Response> response =
        ReadResponse(deadline - absl::Now());
    if (!response.ok()) return send_error;
    if (response->id() == 0 && response->has_error()) {
      return StatusFromError(response->error());
    }
    if (response->has_event()) events_.push_back(response->event());
  }
}

absl::StatusOr<proto::Response> ControlClient::Call(proto::Request request) {
  const uint64_t id = next_id_++;
  request.set_id(id);
  absl::Status status = SendFrame(request.SerializeAsString());
  if (!status.ok()) return DaemonErrorOr(std::move(status));
  while (true) {
    absl::StatusOr<proto::Response> response = ReadResponse(timeout_);
    if (!response.ok()) return response.status();
    if (response->id() == id) return response;
    if (response->has_event()) {
      events_.push_back(response->event());
    } else if (response->id() == 0 && response->has_error()) {
      return StatusFromError(response->error());  // connection-level error
    }
  }
}

absl::StatusOr<proto::Response> ControlClient::CallOk(proto::Request request) {
  absl::StatusOr<proto::Response> response = Call(std::move(request));
  if (response.ok() && response->has_error()) {
    return StatusFromError(response->error());
  }
  return response;
}

absl::StatusOr<std::string> ControlClient::StartProject(
    const std::string& root, const runtime::OptionList& options,
    std::optional<std::string> project_id,
    std::optional<std::string> data_dir) {
  proto::StartProjectRequest start;
  start.set_root(root);
  *start.mutable_options() = runtime::OptionsToProto(options);
  if (project_id.has_value()) start.set_project_id(*project_id);
  if (data_dir.has_value()) start.set_data_dir(*data_dir);
  absl::StatusOr<proto::StartProjectResponse> response =
      StartProject(std::move(start));
  if (!response.ok()) return response.status();
  return response->project_id();
}

absl::StatusOr<proto::StartProjectResponse> ControlClient::StartProject(
    proto::StartProjectRequest start) {
  proto::Request request;
  *request.mutable_start_project() = std::move(start);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->start_project();
}

absl::Status ControlClient::StopProject(const std::string& project_id) {
  proto::Request request;
  request.mutable_stop_project()->set_project_id(project_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<proto::ProjectSummary>>
ControlClient::ListProjects() {
  proto::Request request;
  request.mutable_list_projects();
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return std::vector<proto::ProjectSummary>(
      response->list_projects().projects().begin(),
      response->list_projects().projects().end());
}

absl::StatusOr<std::string> ControlClient::Diagnostics(
    const std::string& project_id) {
  proto::Request request;
  request.mutable_diagnostics()->set_project_id(project_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->diagnostics().json();
}

absl::StatusOr<std::string> ControlClient::Metrics() {
  proto::Request request;
  request.mutable_metrics();
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  if (!response->has_metrics()) {
    return absl::InternalError("the daemon answered without a MetricsResponse");
  }
  return response->metrics().text();
}

absl::StatusOr<std::string> ControlClient::ListTools(
    const std::string& project_id) {
  proto::Request request;
  request.mutable_list_tools()->set_project_id(project_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->list_tools().tools_json();
}

absl::StatusOr<std::string> ControlClient::RunTool(
    const std::string& project_id, const std::string& name,
    const std::string& args_json, const std::string& meta_json) {
  proto::Request request;
  proto::RunToolRequest* run = request.mutable_run_tool();
  run->set_project_id(project_id);
  run->set_name(name);
  run->set_args_json(args_json);
  run->set_meta_json(meta_json);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->run_tool().json();
}

absl::StatusOr<std::string> ControlClient::GetToolResult(
    const std::string& project_id, const std::string& call_id, bool wait) {
  proto::Request request;
  proto::GetToolResultRequest* get = request.mutable_get_tool_result();
  get->set_project_id(project_id);
  get->set_call_id(call_id);
  get->set_wait(wait);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->get_tool_result().json();
}

absl::StatusOr<std::string> ControlClient::ReloadAssets(
    const std::string& project_id) {
  proto::Request request;
  request.mutable_reload_assets()->set_project_id(project_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->reload_assets().json();
}

absl::Status ControlClient::AuthorizeProtocol(const std::string& project_id,
                                              const std::string& protocol,
                                              const std::string& operation) {
  proto::Request request;
  proto::AuthorizeProtocolRequest* ask = request.mutable_authorize_protocol();
  ask->set_project_id(project_id);
  ask->set_protocol(protocol);
  ask->set_operation(operation);
  return CallOk(std::move(request)).status();
}

absl::StatusOr<std::string> ControlClient::IncidentTimeline(
    const std::string& project_id, const std::string& conversation_id,
    const std::string& correlation_id, int64_t limit) {
  proto::Request request;
  proto::IncidentTimelineRequest* get = request.mutable_incident_timeline();
  get->set_project_id(project_id);
  get->set_conversation_id(conversation_id);
  get->set_correlation_id(correlation_id);
  get->set_limit(limit);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->incident_timeline().json();
}

absl::StatusOr<uint32_t> ControlClient::CancelTool(
    const std::string& project_id, const std::string& call_id,
    const std::string& conversation_id, const std::string& meta_json) {
  proto::Request request;
  proto::CancelToolRequest* cancel = request.mutable_cancel_tool();
  cancel->set_project_id(project_id);
  cancel->set_call_id(call_id);
  cancel->set_conversation_id(conversation_id);
  cancel->set_meta_json(meta_json);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->cancel_tool().cancelled();
}

absl::Status ControlClient::Subscribe(const std::string& project_id) {
  proto::Request request;
  request.mutable_subscribe()->set_project_id(project_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return absl::OkStatus();
}

absl::StatusOr<proto::Event> ControlClient::NextEvent(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (events_.empty()) {
    absl::StatusOr<proto::Response> response =
        ReadResponse(deadline - absl::Now());
    if (!response.ok()) return response.status();
    if (response->has_event()) events_.push_back(response->event());
  }
  proto::Event event = std::move(events_.front());
  events_.pop_front();
  return event;
}

absl::StatusOr<std::string> ControlClient::StartConversation(
    const std::string& project_id, const std::string& conversation_id) {
  proto::Request request;
  proto::StartConversationRequest* start = request.mutable_start_conversation();
  start->set_project_id(project_id);
  start->set_conversation_id(conversation_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->start_conversation().conversation_id();
}

absl::Status ControlClient::StopConversation(
    const std::string& project_id, const std::string& conversation_id) {
  proto::Request request;
  proto::StopConversationRequest* stop = request.mutable_stop_conversation();
  stop->set_project_id(project_id);
  stop->set_conversation_id(conversation_id);
  return CallOk(std::move(request)).status();
}

absl::StatusOr<std::string> ControlClient::ConversationCall(
    const std::string& project_id, const std::string& conversation_id,
    const std::string& signal_json, uint32_t timeout_ms) {
  proto::Request request;
  proto::ConversationCallRequest* call = request.mutable_conversation_call();
  call->set_project_id(project_id);
  call->set_conversation_id(conversation_id);
  call->set_signal_json(signal_json);
  call->set_timeout_ms(timeout_ms);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->conversation_call().snapshot_json();
}

absl::StatusOr<std::string> ControlClient::ConversationCast(
    const std::string& project_id, const std::string& conversation_id,
    const std::string& signal_json) {
  proto::Request request;
  proto::ConversationCastRequest* cast = request.mutable_conversation_cast();
  cast->set_project_id(project_id);
  cast->set_conversation_id(conversation_id);
  cast->set_signal_json(signal_json);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->conversation_cast().json();
}

absl::StatusOr<std::string> ControlClient::ConversationState(
    const std::string& project_id, const std::string& conversation_id) {
  proto::Request request;
  proto::ConversationStateRequest* state = request.mutable_conversation_state();
  state->set_project_id(project_id);
  state->set_conversation_id(conversation_id);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->conversation_state().json();
}

absl::StatusOr<std::string> ControlClient::ConversationProjection(
    const std::string& project_id, const std::string& conversation_id,
    const std::string& key) {
  proto::Request request;
  proto::ConversationProjectionRequest* get =
      request.mutable_conversation_projection();
  get->set_project_id(project_id);
  get->set_conversation_id(conversation_id);
  get->set_key(key);
  absl::StatusOr<proto::Response> response = CallOk(std::move(request));
  if (!response.ok()) return response.status();
  return response->conversation_projection().json();
}

}  // namespace jcs::tools
