// The control API server: a Unix stream socket served on the event loop.
// Peers are authorized by SO_PEERCRED (and SO_PEERGROUPS); requests arrive as
// size-capped length-delimited frames (framing.h) and are handed to a
// RequestHandler; responses and subscription events go back through a bounded
// per-client send queue, so a slow or stuck client is disconnected instead of
// stalling the loop or growing memory without bound.
#ifndef JCS_SUPERVISOR_CONTROL_SERVER_H_
#define JCS_SUPERVISOR_CONTROL_SERVER_H_

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loop/event_loop.h"
#include "proto/control.pb.h"

namespace jcs::supervisor {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary (SO_PEERGROUPS)

  bool InGroup(gid_t g) const {
    return gid == g ||
           std::find(groups.begin(), groups.end(), g) != groups.end();
  }
};

// Handles one request; calls `respond` exactly once, now or later, on the loop
// thread. A handler that accepts a Subscribe calls ControlServer::Publish to
// stream events; the server delivers them to every matching subscription the
// handler lets the subscriber see.
class RequestHandler {
 public:
  using Respond = std::function<void(proto::Response)>;
  virtual ~RequestHandler() = default;
  virtual void Handle(const proto::Request& request,
                      const PeerCredentials& peer, Respond respond) = 0;
  // Whether `peer` may subscribe to `project_id` ("" = every project it may
  // see); an error (reason, detail, message) otherwise.
  virtual std::optional<proto::Error> AuthorizeSubscribe(
      const PeerCredentials& peer, const std::string& project_id) {
    return std::nullopt;
  }
  // Whether `peer` may receive `event` (checked for every delivery).
  virtual bool MaySee(const PeerCredentials& peer, const proto::Event& event) {
    return true;
  }
};

struct ControlServerOptions {
  std::string socket_path;
  mode_t socket_mode = 0660;
  // Besides uid 0 and the server's own euid; a gid matches the peer's
  // primary or a supplementary group.
  std::set<uid_t> allowed_uids;
  std::set<gid_t> allowed_gids;
  size_t max_frame_bytes = 4 << 20;
  size_t max_clients = 1024;
  size_t max_send_queue_bytes = 8 << 20;
  // A request's whole frame must arrive within this long of its first byte:
  // a client that stops mid-frame is answered `frame_timeout` and
  // disconnected, instead of holding its slot and up to max_frame_bytes of
  // buffer for ever. A connection with no partial frame (one waiting for
  // events, or idle between requests) is never timed out.
  absl::Duration frame_timeout = absl::Seconds(10);
};

class ControlServer {
 public:
  // Binds the socket (replacing a stale socket file, never another kind of
  // file), sets its mode and starts accepting. `loop` and `handler` must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(
      runtime::EventLoop* loop, const ControlServerOptions& options,
      RequestHandler* handler);
  ~ControlServer();

  // A connection whose first request is a daemon_run is taken over by
  // `take_over` (supervisor/daemon_run.h): the server forgets it and hands
  // on its fd (now the taker's), the peer, the request and the descriptors
  // that came with the request's bytes (SCM_RIGHTS; at most
  // kMaxRequestFds, now the taker's). Unset: the request goes to the
  // handler like any other. Descriptors sent with any other request are
  // closed and the request is refused.
  using TakeOver =
      std::function<void(int fd, const PeerCredentials& peer,
                         proto::Request request, std::vector<int> fds)>;
  static constexpr int kMaxRequestFds = 3;
  void set_take_over(TakeOver take_over) { take_over_ = std::move(take_over); }

  // Streams `event` to every subscription whose project filter matches
  // (empty filter: all projects).
  void Publish(const proto::Event& event);
  // Stops accepting new connections and removes the socket file; existing
  // clients keep being served.
  void StopAccepting();
  size_t client_count() const { return clients_.size(); }
  // Bytes of responses and events waiting to be written to clients.
  size_t queued_bytes() const;
  uint64_t clients_rejected() const { return clients_rejected_; }

 private:
  struct Client;
  ControlServer(runtime::EventLoop* loop, const ControlServerOptions& options,
                RequestHandler* handler, int listen_fd);
  void ArmAccept();
  void OnAccept(int fd);
  void ArmRead(const std::shared_ptr<Client>& client);
  void OnRead(const std::shared_ptr<Client>& client, int res);
  // (Re)starts, or stops, the deadline of the frame being read.
  void UpdateFrameDeadline(const std::shared_ptr<Client>& client,
                           bool frame_completed);
  void CancelFrameDeadline(const std::shared_ptr<Client>& client);
  void Dispatch(const std::shared_ptr<Client>& client,
                const std::string& frame);
  void Send(const std::shared_ptr<Client>& client,
            const proto::Response& response);
  void FlushSend(const std::shared_ptr<Client>& client);
  // Closes after what is queued has been written (or at once if `now`).
  void Close(const std::shared_ptr<Client>& client, bool now);
  void MaybeRelease(const std::shared_ptr<Client>& client);
  bool Authorized(const PeerCredentials& peer) const;

  runtime::EventLoop* const loop_;
  const ControlServerOptions options_;
  RequestHandler* const handler_;
  int listen_fd_;
  int lock_fd_ = -1;  // flock'ed "<socket_path>.lock", held while serving
  runtime::OpId accept_op_ = 0;
  bool accepting_ = true;
  uint64_t next_client_id_ = 1;
  uint64_t clients_rejected_ = 0;
  std::map<uint64_t, std::shared_ptr<Client>> clients_;
  TakeOver take_over_;
  // Liveness token: callbacks that outlive the server see it expired.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_CONTROL_SERVER_H_
