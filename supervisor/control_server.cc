#include "supervisor/control_server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "absl/strings/str_cat.h"
#include "supervisor/framing.h"

namespace jcs::supervisor {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kListenBacklog = 512;
constexpr absl::Duration kAcceptRetryDelay = absl::Milliseconds(100);

proto::Response ErrorResponse(uint64_t id, const std::string& reason,
                              absl::string_view detail,
                              absl::string_view message) {
  proto::Response response;
  response.set_id(id);
  response.mutable_error()->set_reason(reason);
  response.mutable_error()->set_detail(std::string(detail));
  response.mutable_error()->set_message(std::string(message));
  return response;
}

// The peer's supplementary groups (SO_PEERGROUPS, sized by a first call).
absl::StatusOr<std::vector<gid_t>> PeerGroups(int fd) {
  std::vector<gid_t> groups(16);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) break;
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return absl::InternalError(absl::StrCat("SO_PEERGROUPS: ", strerror(errno)));
}

// Best effort, never blocks: used for peers that are refused at accept time.
void SendAndForget(int fd, const proto::Response& response) {
  const std::string frame = EncodeFrame(response.SerializeAsString());
  (void)send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

absl::StatusOr<int> BindSocket(const ControlServerOptions& options,
                               int* lock_fd_out) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (options.socket_path.empty() ||
      options.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket_path: expected 1 to ", sizeof(addr.sun_path) - 1,
                     " bytes, got '", options.socket_path, "'"));
  }
  memcpy(addr.sun_path, options.socket_path.data(), options.socket_path.size());
  // One daemon per socket: the lock next to it is held for the daemon's life
  // and released by the kernel the moment it dies, so a socket file without a
  // lock holder is stale and may be replaced.
  const std::string lock_path = options.socket_path + ".lock";
  const int lock_fd =
      open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("control socket lock ", lock_path, ": ", strerror(errno)));
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd);
    return absl::FailedPreconditionError(
        absl::StrCat("another daemon is listening on ", options.socket_path,
                     " (it holds ", lock_path, ")"));
  }
  *lock_fd_out = lock_fd;
  struct stat st;
  if (lstat(options.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("socket_path ", options.socket_path,
                       " exists and is not a socket; refusing to replace it"));
    }
    unlink(options.socket_path.c_str());  // stale socket of a dead daemon
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      chmod(options.socket_path.c_str(), options.socket_mode) != 0 ||
      listen(fd, kListenBacklog) != 0) {
    const int err = errno;
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "control socket ", options.socket_path, ": ", strerror(err)));
  }
  return fd;
}

}  // namespace

struct ControlServer::Client {
  uint64_t id = 0;
  int fd = -1;
  PeerCredentials peer;
  FrameDecoder decoder;
  std::unique_ptr<char[]> read_buffer = std::make_unique<char[]>(kReadChunk);
  runtime::OpId read_op = 0;
  bool reading = false;
  std::deque<std::string> send_queue;
  size_t queued_bytes = 0;
  runtime::OpId write_op = 0;
  bool writing = false;
  bool closing = false;
  bool released = false;
  bool answered = false;             // a request other than daemon_run came
  runtime::OpId frame_deadline = 0;  // 0: none armed
  std::map<uint64_t, std::string> subscriptions;  // request id -> project
  // The read's message: the buffer and room for kMaxRequestFds descriptors.
  iovec iov = {};
  msghdr msg = {};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)];
  // Descriptors received and not yet handed on with a daemon_run; more than
  // kMaxRequestFds, or a truncated control message, ends the connection.
  std::vector<int> passed_fds;

  explicit Client(size_t max_frame) : decoder(max_frame) {}
  ~Client() { ClosePassedFds(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  void ClosePassedFds() {
    for (int fd : passed_fds) close(fd);
    passed_fds.clear();
  }
};

namespace {

// The SCM_RIGHTS descriptors of a received message, appended to `fds`.
void TakePassedFds(msghdr* msg, std::vector<int>* fds) {
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(msg); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    const size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      fds->push_back(fd);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(
    runtime::EventLoop* loop, const ControlServerOptions& options,
    RequestHandler* handler) {
  int lock_fd = -1;
  absl::StatusOr<int> fd = BindSocket(options, &lock_fd);
  if (!fd.ok()) {
    if (lock_fd >= 0) close(lock_fd);
    return fd.status();
  }
  std::unique_ptr<ControlServer> server(
      new ControlServer(loop, options, handler, *fd));
  server->lock_fd_ = lock_fd;
  server->ArmAccept();
  if (server->accept_op_ == 0) {
    return absl::InternalError("control socket: cannot start accepting");
  }
  return server;
}

ControlServer::ControlServer(runtime::EventLoop* loop,
                             const ControlServerOptions& options,
                             RequestHandler* handler, int listen_fd)
    : loop_(loop),
      options_(options),
      handler_(handler),
      listen_fd_(listen_fd) {}

ControlServer::~ControlServer() {
  *alive_ = false;
  StopAccepting();
  for (auto& [id, client] : clients_) {
    CancelFrameDeadline(client);
    if (client->reading) (void)loop_->Cancel(client->read_op);
    if (client->writing) (void)loop_->Cancel(client->write_op);
    close(client->fd);
    client->released = true;
  }
  clients_.clear();
}

void ControlServer::StopAccepting() {
  if (!accepting_) return;
  accepting_ = false;
  if (accept_op_ != 0) (void)loop_->Cancel(accept_op_);
  close(listen_fd_);
  listen_fd_ = -1;
  unlink(options_.socket_path.c_str());
  // The lock goes last, after the socket file is gone.
  if (lock_fd_ >= 0) close(lock_fd_);
  lock_fd_ = -1;
}

void ControlServer::ArmAccept() {
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<runtime::OpId> op =
      loop_->AcceptMultishot(listen_fd_, [this, alive](int res, bool more) {
        if (alive.expired()) {
          if (res >= 0) close(res);
          return;
        }
        if (res >= 0) OnAccept(res);
        if (!more) {
          accept_op_ = 0;
          if (!accepting_) return;
          if (res == -EMFILE || res == -ENFILE || res == -ENOMEM ||
              res == -ENOBUFS) {
            // Out of descriptors or memory: pending connections wait in the
            // backlog; retry later instead of spinning on the error.
            (void)loop_->Timeout(kAcceptRetryDelay, [this, alive](int) {
              if (!alive.expired() && accepting_ && accept_op_ == 0) {
                ArmAccept();
              }
            });
            return;
          }
          ArmAccept();
        }
      });
  accept_op_ = op.ok() ? *op : 0;
}

bool ControlServer::Authorized(const PeerCredentials& peer) const {
  if (peer.uid == 0 || peer.uid == geteuid() ||
      options_.allowed_uids.count(peer.uid) > 0) {
    return true;
  }
  for (gid_t gid : options_.allowed_gids) {
    if (peer.InGroup(gid)) return true;
  }
  return false;
}

void ControlServer::OnAccept(int fd) {
  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    close(fd);
    ++clients_rejected_;
    return;
  }
  PeerCredentials peer{cred.pid, cred.uid, cred.gid, {}};
  absl::StatusOr<std::vector<gid_t>> groups = PeerGroups(fd);
  if (!groups.ok()) {
    // Fail closed: group-based decisions need the groups.
    ++clients_rejected_;
    SendAndForget(fd,
                  ErrorResponse(0, "internal", "", groups.status().message()));
    close(fd);
    return;
  }
  peer.groups = *std::move(groups);
  if (!Authorized(peer)) {
    ++clients_rejected_;
    const std::string who = absl::StrCat("uid ", peer.uid, " gid ", peer.gid);
    SendAndForget(
        fd,
        ErrorResponse(0, "unauthorized",
                      absl::StrCat(who,
                                   " may not use this daemon (allowed: root, "
                                   "the daemon's uid, allowed_uids, "
                                   "allowed_gids)"),
                      absl::StrCat(who, " may not use this daemon")));
    close(fd);
    return;
  }
  if (clients_.size() >= options_.max_clients) {
    ++clients_rejected_;
    SendAndForget(
        fd, ErrorResponse(0, "too_many_clients", "",
                          absl::StrCat("the daemon serves at most ",
                                       options_.max_clients, " clients")));
    close(fd);
    return;
  }
  auto client = std::make_shared<Client>(options_.max_frame_bytes);
  client->id = next_client_id_++;
  client->fd = fd;
  client->peer = peer;
  clients_[client->id] = client;
  ArmRead(client);
}

void ControlServer::ArmRead(const std::shared_ptr<Client>& client) {
  std::weak_ptr<bool> alive = alive_;
  client->iov = {client->read_buffer.get(), kReadChunk};
  client->msg = {};
  client->msg.msg_iov = &client->iov;
  client->msg.msg_iovlen = 1;
  client->msg.msg_control = client->control;
  client->msg.msg_controllen = sizeof(client->control);
  absl::StatusOr<runtime::OpId> op =
      loop_->RecvMsg(client->fd, &client->msg, [this, alive, client](int res) {
        if (alive.expired()) return;
        OnRead(client, res);
      });
  if (!op.ok()) {
    Close(client, /*now=*/true);
    return;
  }
  client->read_op = *op;
  client->reading = true;
}

void ControlServer::OnRead(const std::shared_ptr<Client>& client, int res) {
  client->reading = false;
  if (client->closing) {
    MaybeRelease(client);
    return;
  }
  if (res >= 0) {
    TakePassedFds(&client->msg, &client->passed_fds);
    if ((client->msg.msg_flags & MSG_CTRUNC) != 0 ||
        client->passed_fds.size() > static_cast<size_t>(kMaxRequestFds)) {
      client->ClosePassedFds();
      Send(client, ErrorResponse(0, "malformed_request", "",
                                 absl::StrCat("at most ", kMaxRequestFds,
                                              " descriptors come with a "
                                              "request (daemon_run's stdio)")));
      Close(client, /*now=*/false);
      return;
    }
  }
  if (res <= 0) {  // peer closed, error, or cancelled
    Close(client, /*now=*/res < 0);
    return;
  }
  absl::Status status = client->decoder.Append(
      absl::string_view(client->read_buffer.get(), static_cast<size_t>(res)));
  bool frame_completed = false;
  while (true) {
    std::optional<std::string> frame = client->decoder.Next();
    if (!frame.has_value()) break;
    frame_completed = true;
    Dispatch(client, *frame);
    if (client->closing) {
      CancelFrameDeadline(client);
      return;
    }
  }
  if (status.ok()) status = client->decoder.status();
  if (!status.ok()) {
    Send(client,
         ErrorResponse(0,
                       status.code() == absl::StatusCode::kResourceExhausted
                           ? "frame_too_large"
                           : "malformed_frame",
                       "", status.message()));
    Close(client, /*now=*/false);
    return;
  }
  UpdateFrameDeadline(client, frame_completed);
  ArmRead(client);
}

void ControlServer::UpdateFrameDeadline(const std::shared_ptr<Client>& client,
                                        bool frame_completed) {
  if (!client->decoder.mid_frame()) {
    CancelFrameDeadline(client);
    return;
  }
  // A partial frame: its deadline runs from its first byte. One already
  // armed belongs to it unless a frame completed in this read (the partial
  // one then began in it).
  if (client->frame_deadline != 0 && !frame_completed) return;
  CancelFrameDeadline(client);
  std::weak_ptr<Client> weak = client;
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<runtime::OpId> op =
      loop_->Timeout(options_.frame_timeout, [this, weak, alive](int res) {
        if (alive.expired()) return;
        std::shared_ptr<Client> c = weak.lock();
        if (c == nullptr) return;
        if (res < 0) return;  // cancelled: the frame came, or the client went
        c->frame_deadline = 0;
        if (c->closing || !c->decoder.mid_frame()) return;
        Send(c, ErrorResponse(
                    0, "frame_timeout", "",
                    absl::StrCat("a request frame must arrive whole within ",
                                 absl::FormatDuration(options_.frame_timeout),
                                 " of its first byte; this one stopped "
                                 "part-way")));
        Close(c, /*now=*/false);
      });
  // Without a timer the connection is served as before (the loop's ring is
  // exhausted, which its own metrics show): no frame is refused for it.
  if (op.ok()) client->frame_deadline = *op;
}

void ControlServer::CancelFrameDeadline(const std::shared_ptr<Client>& client) {
  if (client->frame_deadline == 0) return;
  (void)loop_->Cancel(client->frame_deadline);
  client->frame_deadline = 0;
}

void ControlServer::Dispatch(const std::shared_ptr<Client>& client,
                             const std::string& frame) {
  proto::Request request;
  if (!request.ParseFromString(frame)) {
    Send(client, ErrorResponse(0, "malformed_request", "",
                               "the frame is not a jcs.proto.Request"));
    Close(client, /*now=*/false);
    return;
  }
  if (request.body_case() == proto::Request::BODY_NOT_SET) {
    Send(client,
         ErrorResponse(request.id(), "unknown_request", "",
                       "the request carries no known body (an unknown or "
                       "newer request type?)"));
    return;
  }
  if (request.has_daemon_run() && take_over_ != nullptr) {
    // What follows on the connection is the run's own protocol (descriptors
    // passed as SCM_RIGHTS, which this server's reads would drop), so the
    // request must be the connection's first and only one.
    if (client->answered || client->writing || !client->send_queue.empty() ||
        client->decoder.mid_frame() || !client->subscriptions.empty()) {
      Send(client, ErrorResponse(request.id(), "malformed_request", "",
                                 "daemon_run must be the first and only "
                                 "request on its connection"));
      Close(client, /*now=*/false);
      return;
    }
    client->closing = true;
    client->released = true;
    clients_.erase(client->id);
    std::vector<int> fds = std::move(client->passed_fds);
    client->passed_fds.clear();
    take_over_(client->fd, client->peer, std::move(request), std::move(fds));
    return;
  }
  if (!client->passed_fds.empty()) {
    client->ClosePassedFds();
    // A daemon_run here (this daemon does not serve them) gets the
    // handler's daemon_run_disabled; anything else is refused.
    if (!request.has_daemon_run()) {
      Send(client, ErrorResponse(request.id(), "malformed_request", "",
                                 "descriptors come only with a daemon_run "
                                 "request"));
      Close(client, /*now=*/false);
      return;
    }
  }
  client->answered = true;
  if (request.has_subscribe()) {
    proto::Response response;
    response.set_id(request.id());
    if (std::optional<proto::Error> refused = handler_->AuthorizeSubscribe(
            client->peer, request.subscribe().project_id())) {
      *response.mutable_error() = *std::move(refused);
    } else {
      client->subscriptions[request.id()] = request.subscribe().project_id();
      response.mutable_subscribe();
    }
    Send(client, response);
    return;
  }
  std::weak_ptr<Client> weak = client;
  std::weak_ptr<bool> alive = alive_;
  handler_->Handle(request, client->peer,
                   [this, weak, alive](proto::Response response) {
                     if (alive.expired()) return;
                     std::shared_ptr<Client> c = weak.lock();
                     if (c == nullptr || c->closing) return;
                     Send(c, response);
                   });
}

void ControlServer::Send(const std::shared_ptr<Client>& client,
                         const proto::Response& response) {
  if (client->released) return;
  std::string frame = EncodeFrame(response.SerializeAsString());
  if (client->queued_bytes + frame.size() > options_.max_send_queue_bytes) {
    // The client does not read what it asked for: drop it rather than buffer
    // without bound or stall everyone else.
    Close(client, /*now=*/true);
    return;
  }
  client->queued_bytes += frame.size();
  client->send_queue.push_back(std::move(frame));
  FlushSend(client);
}

void ControlServer::FlushSend(const std::shared_ptr<Client>& client) {
  if (client->writing || client->released || client->send_queue.empty()) {
    return;
  }
  const std::string& front = client->send_queue.front();
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<runtime::OpId> op = loop_->WriteAll(
      client->fd, absl::MakeConstSpan(front.data(), front.size()),
      [this, alive, client](int res) {
        if (alive.expired()) return;
        client->writing = false;
        if (res < 0) {
          client->send_queue.clear();
          client->queued_bytes = 0;
          Close(client, /*now=*/true);
          return;
        }
        client->queued_bytes -= client->send_queue.front().size();
        client->send_queue.pop_front();
        if (client->closing && client->send_queue.empty()) {
          MaybeRelease(client);
        } else {
          FlushSend(client);
        }
      });
  if (!op.ok()) {
    client->send_queue.clear();
    client->queued_bytes = 0;
    Close(client, /*now=*/true);
    return;
  }
  client->write_op = *op;
  client->writing = true;
}

void ControlServer::Close(const std::shared_ptr<Client>& client, bool now) {
  if (client->released) return;
  client->closing = true;
  client->subscriptions.clear();
  CancelFrameDeadline(client);
  if (client->reading) (void)loop_->Cancel(client->read_op);
  if (now) {
    if (client->writing) (void)loop_->Cancel(client->write_op);
    // Keep the frame being written alive until its callback has run.
    while (client->send_queue.size() > (client->writing ? 1 : 0)) {
      client->queued_bytes -= client->send_queue.back().size();
      client->send_queue.pop_back();
    }
  }
  MaybeRelease(client);
}

void ControlServer::MaybeRelease(const std::shared_ptr<Client>& client) {
  if (client->released || client->reading || client->writing) return;
  if (!client->send_queue.empty()) {
    FlushSend(client);
    return;
  }
  client->released = true;
  close(client->fd);
  clients_.erase(client->id);
}

void ControlServer::Publish(const proto::Event& event) {
  std::vector<std::shared_ptr<Client>> targets;
  for (auto& [id, client] : clients_) targets.push_back(client);
  for (const std::shared_ptr<Client>& client : targets) {
    if (client->closing || client->subscriptions.empty() ||
        !handler_->MaySee(client->peer, event)) {
      continue;
    }
    for (const auto& [request_id, project] : client->subscriptions) {
      if (!project.empty() && project != event.project_id()) continue;
      proto::Response response;
      response.set_id(request_id);
      *response.mutable_event() = event;
      Send(client, response);
      if (client->closing) break;
    }
  }
}

size_t ControlServer::queued_bytes() const {
  size_t bytes = 0;
  for (const auto& [id, client] : clients_) bytes += client->queued_bytes;
  return bytes;
}

}  // namespace jcs::supervisor
