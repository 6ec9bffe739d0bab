// C++ client of the jcs control API (proto/control.proto) over the daemon's
// Unix socket: blocking calls with request ids, and subscription streams.
#ifndef JCS_TOOLS_CONTROL_CLIENT_H_
#define JCS_TOOLS_CONTROL_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/control.pb.h"
#include "runtime/project/value.h"
#include "supervisor/framing.h"

namespace jcs::tools {

// An error Response as a status: the message is "<reason>: <detail>" or the
// daemon's message; the Error proto is attached as a payload (ErrorOf).
absl::Status StatusFromError(const proto::Error& error);
std::optional<proto::Error> ErrorOf(const absl::Status& status);

class ControlClient {
 public:
  static absl::StatusOr<std::unique_ptr<ControlClient>> Connect(
      const std::string& socket_path,
      absl::Duration timeout = absl::Seconds(30));
  ~ControlClient();

  // Sends `request` with a fresh id and waits for its response (events for
  // other ids that arrive meanwhile are queued for NextEvent). An error
  // Response comes back as a Response with `error` set; transport failures
  // as a status.
  absl::StatusOr<proto::Response> Call(proto::Request request);

  // Typed helpers: errors (transport or daemon) as statuses.
  absl::StatusOr<std::string> StartProject(
      const std::string& root, const runtime::OptionList& options,
      std::optional<std::string> project_id = std::nullopt,
      std::optional<std::string> data_dir = std::nullopt);
  // The whole response (project id and the tools' identity).
  absl::StatusOr<proto::StartProjectResponse> StartProject(
      proto::StartProjectRequest start);
  absl::Status StopProject(const std::string& project_id);
  absl::StatusOr<std::vector<proto::ProjectSummary>> ListProjects();
  absl::StatusOr<std::string> Diagnostics(const std::string& project_id);
  // The daemon's metrics, Prometheus text format (admins only).
  absl::StatusOr<std::string> Metrics();
  // The project's visible tools as a JSON array.
  absl::StatusOr<std::string> ListTools(const std::string& project_id);
  // One tool call; the response document as JSON (status ok, error or
  // accepted). Waits as long as the call runs.
  absl::StatusOr<std::string> RunTool(const std::string& project_id,
                                      const std::string& name,
                                      const std::string& args_json,
                                      const std::string& meta_json);
  // A finished call's response document; `wait`: a running call answers
  // when it ends (else the error call_running).
  absl::StatusOr<std::string> GetToolResult(const std::string& project_id,
                                            const std::string& call_id,
                                            bool wait);
  // Reloads the project's assets; the project.assets_reloaded payload.
  absl::StatusOr<std::string> ReloadAssets(const std::string& project_id);
  // OK when the project's protocol_allowlist allows `protocol`; the daemon's
  // protocol_denied error otherwise (ErrorOf gives its reason).
  absl::Status AuthorizeProtocol(const std::string& project_id,
                                 const std::string& protocol,
                                 const std::string& operation);
  // A conversation's incident timeline document (proto IncidentTimeline).
  absl::StatusOr<std::string> IncidentTimeline(
      const std::string& project_id, const std::string& conversation_id,
      const std::string& correlation_id, int64_t limit);
  // Cancels a call (call_id) or a conversation's calls; how many.
  absl::StatusOr<uint32_t> CancelTool(const std::string& project_id,
                                      const std::string& call_id,
                                      const std::string& conversation_id,
                                      const std::string& meta_json = "");
  // Conversations (proto ConversationCall etc.): the JSON documents.
  absl::StatusOr<std::string> StartConversation(
      const std::string& project_id, const std::string& conversation_id);
  absl::Status StopConversation(const std::string& project_id,
                                const std::string& conversation_id);
  // Waits until the conversation settled (or timeout_ms, 0: the daemon's
  // default); the snapshot.
  absl::StatusOr<std::string> ConversationCall(
      const std::string& project_id, const std::string& conversation_id,
      const std::string& signal_json, uint32_t timeout_ms = 0);
  absl::StatusOr<std::string> ConversationCast(
      const std::string& project_id, const std::string& conversation_id,
      const std::string& signal_json);
  absl::StatusOr<std::string> ConversationState(
      const std::string& project_id, const std::string& conversation_id);
  absl::StatusOr<std::string> ConversationProjection(
      const std::string& project_id, const std::string& conversation_id,
      const std::string& key);
  // Subscribes (empty project: all); events then come from NextEvent.
  absl::Status Subscribe(const std::string& project_id);
  absl::StatusOr<proto::Event> NextEvent(absl::Duration timeout);

 private:
  explicit ControlClient(int fd, absl::Duration timeout)
      : fd_(fd), timeout_(timeout) {}
  // Call, with an error Response turned into a status.
  absl::StatusOr<proto::Response> CallOk(proto::Request request);
  absl::Status SendFrame(const std::string& payload);
  // After a failed send: the daemon's connection-level error (e.g.
  // unauthorized, sent right before it closed) if one is waiting, else
  // `send_error`.
  absl::Status DaemonErrorOr(absl::Status send_error);
  absl::StatusOr<proto::Response> ReadResponse(absl::Duration timeout);

  int fd_;
  absl::Duration timeout_;
  uint64_t next_id_ = 1;
  supervisor::FrameDecoder decoder_;
  std::deque<proto::Event> events_;
};

}  // namespace jcs::tools

#endif  // JCS_TOOLS_CONTROL_CLIENT_H_
