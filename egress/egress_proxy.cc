#include "egress/egress_proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "egress/chunked_body.h"
#include "egress/http_request.h"
#include "egress/tls_client_hello.h"

namespace jcs::egress {
namespace {

using runtime::EventLoop;
using runtime::OpId;

constexpr size_t kReadChunk = 16384;
constexpr int64_t kDrainNs = int64_t{2} * 1000 * 1000 * 1000;
constexpr size_t kDrainMaxBytes = 64 * 1024;
constexpr size_t kMaxDraining = 256;
constexpr int kPumpBatch = 64;
constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();
// TLS alert record: fatal (2), access_denied (49).
constexpr char kTlsAccessDenied[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31};

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "Connection established";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

std::string HttpAnswer(int status, std::string_view line) {
  std::string body(line);
  body += "\n";
  return absl::StrCat("HTTP/1.1 ", status, " ", StatusText(status),
                      "\r\nContent-Type: text/plain\r\nContent-Length: ",
                      body.size(), "\r\nConnection: close\r\n\r\n", body);
}

bool ToSockaddr(const IpAddress& a, uint16_t port, sockaddr_storage* ss,
                socklen_t* len) {
  memset(ss, 0, sizeof(*ss));
  if (a.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    memcpy(&in->sin_addr, a.bytes.data(), 4);
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (a.family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    memcpy(&in6->sin6_addr, a.bytes.data(), 16);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

// Named (not anonymous): EgressProxy::Impl, declared in the header, uses them.
namespace proxy_internal {

enum class State {
  kHead,
  kResolving,
  kConnecting,
  kSending,
  kPeeking,
  kRelaying,
  kDraining,
};

struct Pump {
  int src = -1;
  int dst = -1;
  int pipe_r = -1;
  int pipe_w = -1;
  size_t in_pipe = 0;
  std::string staged;  // checked bytes from user space, sent before src's
  uint64_t limit = kUnlimited;  // bytes src may still send
  bool eof = false;
  bool done = false;
  bool waiting = false;
};

struct Conn {
  uint64_t id = 0;
  int client = -1;
  int upstream = -1;
  State state = State::kHead;
  bool active = false;  // counted against max_connections
  bool closed = false;
  uint64_t epoch = 0;  // bumped when pending operations become stale

  std::string in;  // client bytes not handled yet
  RequestHead req;
  std::string host;
  uint16_t port = 0;
  std::vector<IpAddress> addrs;
  size_t next_addr = 0;
  int connect_errno = 0;
  bool tls = false;

  // A plain-HTTP tunnel: client bytes reach upstream only as checked
  // requests (heads, Content-Length or chunked bodies).
  bool framed = false;
  enum class Frame { kHead, kChunked } frame = Frame::kHead;
  ChunkedBody chunked;
  uint64_t requests = 0;          // heads forwarded so far
  int64_t frame_deadline_ns = 0;  // an incomplete head or chunk line is due

  // SendThen state.
  std::string out;
  size_t out_off = 0;
  int out_fd = -1;
  void (EgressProxy::Impl::*after_out)(const std::shared_ptr<Conn>&) = nullptr;

  Pump up;    // client -> upstream
  Pump down;  // upstream -> client

  absl::flat_hash_map<uint64_t, OpId> ops;
  uint64_t next_tag = 0;
  uint64_t timer_tag = 0;
  int64_t start_ns = 0;
  int64_t last_ns = 0;
  int64_t peek_deadline_ns = 0;
  int64_t drain_deadline_ns = 0;
  size_t drained = 0;
};

using ConnPtr = std::shared_ptr<Conn>;

}  // namespace proxy_internal

using proxy_internal::Conn;
using proxy_internal::ConnPtr;
using proxy_internal::Pump;
using proxy_internal::State;

class EgressProxy::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(EventLoop* loop, EgressPolicy policy, EgressLimits limits,
       std::function<void(const EgressDenial&)> on_denied,
       EgressOptions options)
      : loop_(loop),
        policy_(std::move(policy)),
        limits_(limits),
        on_denied_(std::move(on_denied)),
        pipe_bytes_(std::max(options.pipe_bytes, 4096)),
        resolver_(std::make_unique<Resolver>(std::move(options.resolve),
                                             options.resolver_threads,
                                             options.resolver_queue)) {}

  absl::Status Serve(int listen_fd);
  void Shutdown();
  EgressStats stats() const {
    EgressStats s;
    s.connections = connections_.load(std::memory_order_relaxed);
    s.allowed = allowed_.load(std::memory_order_relaxed);
    s.denied = denied_.load(std::memory_order_relaxed);
    s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
    s.bytes_out = bytes_out_.load(std::memory_order_relaxed);
    return s;
  }

  // Continuations (member pointers are stored in Conn::after_out).
  void StartPeek(const ConnPtr& c);
  void StartRelay(const ConnPtr& c);

 private:
  void ArmAccept();
  void OnAccept(int res, bool more);
  void HandleClient(int fd);

  // Starts a loop operation for `c`; `next` runs unless the connection was
  // closed, reset (epoch) or the proxy shut down meanwhile.
  bool ArmPoll(const ConnPtr& c, int fd, uint32_t events,
               absl::AnyInvocable<void(int)> next);
  void ArmTimer(const ConnPtr& c);
  void OnTimer(const ConnPtr& c);
  void CancelOps(const ConnPtr& c);
  void Touch(const ConnPtr& c) { c->last_ns = NowNs(); }

  // Appends what the client sent (up to `limit` bytes in c->in): kData;
  // nothing yet: re-arms `retry`, kPending; end of stream (or no room left):
  // kEnd; an error: closes, kClosed.
  enum class Read { kData, kPending, kEnd, kClosed };
  Read ReadClient(const ConnPtr& c, size_t limit,
                  void (Impl::*retry)(const ConnPtr&));
  void OnHeadReadable(const ConnPtr& c);
  void Decide(const ConnPtr& c);
  void OnResolved(const ConnPtr& c,
                  absl::StatusOr<std::vector<IpAddress>> addrs);
  bool IsSelf(const IpAddress& a, uint16_t port) const;
  void TryNextAddress(const ConnPtr& c);
  void OnConnected(const ConnPtr& c);
  void SendThen(const ConnPtr& c, int fd, std::string data,
                void (Impl::*next)(const ConnPtr&));
  void ContinueSend(const ConnPtr& c);
  void OnPeekReadable(const ConnPtr& c);
  // `ended`: the peek deadline passed or the client ended its stream.
  void ExaminePeek(const ConnPtr& c, bool ended);
  void ExaminePlainTunnel(const ConnPtr& c, bool ended);
  void ApproveTunnel(const ConnPtr& c);
  // A framed tunnel's next client bytes (see Conn::framed): true when it
  // staged bytes, set a body length or hit the end of the stream (the pump
  // goes on); false when it waits for the client or closed the connection.
  bool NextFramedBytes(const ConnPtr& c);
  void OnFramedReadable(const ConnPtr& c);
  // The detail of a tunnel refused as "tcp": `why`, and which request.
  std::string TcpDetail(const ConnPtr& c, std::string_view why) const;
  // Refuses a tunnel's request: a 403 before anything was relayed, else a
  // close (an answer would interleave with a response).
  void DenyFramed(const ConnPtr& c, const char* reason, std::string detail);
  void RunPump(const ConnPtr& c, bool down);
  void FinishPump(const ConnPtr& c, bool down);
  void CheckRelayDone(const ConnPtr& c);

  // Answers (best effort, one nonblocking send), then drains and closes.
  void Answer(const ConnPtr& c, std::string_view bytes);
  void Reply(const ConnPtr& c, int status, std::string_view line) {
    Answer(c, HttpAnswer(status, line));
  }
  // A policy refusal: answers `status` (403 unless told) and reports it.
  void Deny(const ConnPtr& c, const char* reason, std::string detail,
            int status = 403);
  // A refusal after the tunnel's 200: a TLS alert to TLS clients.
  void DenyTunnel(const ConnPtr& c, const char* reason, std::string detail);
  void StartDrain(const ConnPtr& c);
  void OnDrainReadable(const ConnPtr& c);
  void Close(const ConnPtr& c);

  EventLoop* const loop_;
  const EgressPolicy policy_;
  const EgressLimits limits_;
  const std::function<void(const EgressDenial&)> on_denied_;
  const int pipe_bytes_;
  std::unique_ptr<Resolver> resolver_;

  int listen_fd_ = -1;
  IpAddress listen_addr_;
  uint16_t listen_port_ = 0;
  OpId accept_op_ = 0;
  bool shut_down_ = false;

  absl::flat_hash_map<uint64_t, ConnPtr> conns_;
  uint64_t next_id_ = 0;
  int active_ = 0;
  size_t draining_ = 0;

  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> allowed_{0};
  std::atomic<uint64_t> denied_{0};
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
};

absl::Status EgressProxy::Impl::Serve(int listen_fd) {
  if (shut_down_) {
    close(listen_fd);
    return absl::FailedPreconditionError("EgressProxy: shut down");
  }
  if (listen_fd_ >= 0) {
    close(listen_fd);
    return absl::FailedPreconditionError("EgressProxy: already serving");
  }
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    const int err = errno;
    close(listen_fd);
    return absl::InvalidArgumentError(absl::StrCat(
        "EgressProxy: getsockname on the listener: ", strerror(err)));
  }
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    listen_addr_.family = AF_INET;
    memcpy(listen_addr_.bytes.data(), &in->sin_addr, 4);
    listen_port_ = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    listen_addr_.family = AF_INET6;
    memcpy(listen_addr_.bytes.data(), &in6->sin6_addr, 16);
    listen_port_ = ntohs(in6->sin6_port);
  } else {
    close(listen_fd);
    return absl::InvalidArgumentError(
        "EgressProxy: the listener is not an IPv4/IPv6 socket");
  }
  listen_fd_ = listen_fd;
  ArmAccept();
  if (accept_op_ == 0) {
    return absl::InternalError("EgressProxy: could not start accepting");
  }
  return absl::OkStatus();
}

void EgressProxy::Impl::ArmAccept() {
  auto self = shared_from_this();
  absl::StatusOr<OpId> id = loop_->AcceptMultishot(
      listen_fd_, [self](int res, bool more) { self->OnAccept(res, more); });
  accept_op_ = id.ok() ? *id : 0;
}

void EgressProxy::Impl::OnAccept(int res, bool more) {
  if (!more) accept_op_ = 0;
  if (shut_down_) {
    if (res >= 0) close(res);
    return;
  }
  if (res >= 0) HandleClient(res);
  if (!more && listen_fd_ >= 0) {
    if (res >= 0 || res == -ENOBUFS || res == -EAGAIN || res == -EINTR) {
      ArmAccept();
    } else {
      // Back off briefly on errors (EMFILE, ...) instead of spinning.
      auto self = shared_from_this();
      absl::StatusOr<OpId> id =
          loop_->Timeout(absl::Milliseconds(50), [self](int r) {
            self->accept_op_ = 0;
            if (!self->shut_down_ && self->listen_fd_ >= 0) self->ArmAccept();
          });
      accept_op_ = id.ok() ? *id : 0;
    }
  }
}

void EgressProxy::Impl::HandleClient(int fd) {
  connections_.fetch_add(1, std::memory_order_relaxed);
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    close(fd);
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto c = std::make_shared<Conn>();
  c->id = ++next_id_;
  c->client = fd;
  c->start_ns = c->last_ns = NowNs();
  conns_[c->id] = c;
  if (active_ >= limits_.max_connections) {
    Reply(c, 503, "too_many_connections");
    return;
  }
  c->active = true;
  ++active_;
  ArmTimer(c);
  ArmPoll(c, fd, POLLIN | POLLRDHUP, [this, c](int) { OnHeadReadable(c); });
}

bool EgressProxy::Impl::ArmPoll(const ConnPtr& c, int fd, uint32_t events,
                                absl::AnyInvocable<void(int)> next) {
  const uint64_t tag = ++c->next_tag;
  const uint64_t epoch = c->epoch;
  auto self = shared_from_this();
  absl::StatusOr<OpId> id = loop_->Poll(
      fd, events,
      [self, c, tag, epoch, next = std::move(next)](int res) mutable {
        c->ops.erase(tag);
        if (c->closed || self->shut_down_ || c->epoch != epoch) return;
        next(res);
      });
  if (!id.ok()) {
    Close(c);
    return false;
  }
  c->ops[tag] = *id;
  return true;
}

void EgressProxy::Impl::ArmTimer(const ConnPtr& c) {
  if (c->timer_tag != 0) {
    if (auto it = c->ops.find(c->timer_tag); it != c->ops.end()) {
      (void)loop_->Cancel(it->second);
      c->ops.erase(it);
    }
    c->timer_tag = 0;
  }
  int64_t deadline;
  if (c->state == State::kDraining) {
    deadline = c->drain_deadline_ns;
  } else {
    deadline =
        std::min(c->last_ns + int64_t{limits_.idle_timeout_ms} * 1000000,
                 c->start_ns + int64_t{limits_.total_timeout_ms} * 1000000);
    if (c->state == State::kPeeking) {
      deadline = std::min(deadline, c->peek_deadline_ns);
    }
    if (c->state == State::kRelaying && c->frame_deadline_ns != 0) {
      deadline = std::min(deadline, c->frame_deadline_ns);
    }
  }
  const uint64_t tag = ++c->next_tag;
  auto self = shared_from_this();
  absl::StatusOr<OpId> id = loop_->Timeout(
      absl::Nanoseconds(deadline - NowNs()), [self, c, tag](int res) {
        c->ops.erase(tag);
        if (c->closed || self->shut_down_ || c->timer_tag != tag || res < 0) {
          return;
        }
        c->timer_tag = 0;
        self->OnTimer(c);
      });
  if (!id.ok()) {
    Close(c);
    return;
  }
  c->timer_tag = tag;
  c->ops[tag] = *id;
}

void EgressProxy::Impl::OnTimer(const ConnPtr& c) {
  const int64_t now = NowNs();
  if (c->state == State::kDraining) {
    if (now >= c->drain_deadline_ns) {
      Close(c);
      return;
    }
  } else {
    const bool expired =
        now >= c->last_ns + int64_t{limits_.idle_timeout_ms} * 1000000 ||
        now >= c->start_ns + int64_t{limits_.total_timeout_ms} * 1000000;
    // The peek and frame deadlines are at most the idle one (give or take
    // the clock reads): decide the tunnel or refuse the request first, so
    // the refusal is reported.
    if (c->state == State::kPeeking &&
        (expired || now >= c->peek_deadline_ns)) {
      ExaminePeek(c, /*ended=*/true);
      if (!c->closed && c->timer_tag == 0) ArmTimer(c);
      return;
    }
    if (c->state == State::kRelaying && c->frame_deadline_ns != 0 &&
        (expired || now >= c->frame_deadline_ns)) {
      DenyFramed(c, kProtocolDenied,
                 TcpDetail(c, c->frame == Conn::Frame::kHead
                                  ? "request_head_incomplete_at_deadline"
                                  : "chunk_line_incomplete_at_deadline"));
      return;
    }
    if (expired) {
      switch (c->state) {
        case State::kHead:
          Reply(c, 408, "request_timeout");
          return;
        case State::kResolving:
        case State::kConnecting:
          Reply(c, 504, "upstream_timeout");
          return;
        default:
          Close(c);
          return;
      }
    }
  }
  ArmTimer(c);
}

void EgressProxy::Impl::CancelOps(const ConnPtr& c) {
  for (const auto& [tag, id] : c->ops) (void)loop_->Cancel(id);
  c->ops.clear();
  c->timer_tag = 0;
  ++c->epoch;
}

EgressProxy::Impl::Read EgressProxy::Impl::ReadClient(
    const ConnPtr& c, size_t limit, void (Impl::*retry)(const ConnPtr&)) {
  char buf[kReadChunk];
  const size_t room =
      std::min(sizeof(buf), limit > c->in.size() ? limit - c->in.size() : 0);
  const ssize_t n = room == 0 ? 0 : recv(c->client, buf, room, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    if (!ArmPoll(c, c->client, POLLIN | POLLRDHUP,
                 [this, c, retry](int) { (this->*retry)(c); })) {
      return Read::kClosed;
    }
    return Read::kPending;
  }
  if (n < 0) {
    Close(c);
    return Read::kClosed;
  }
  if (n == 0) return Read::kEnd;
  Touch(c);
  c->in.append(buf, static_cast<size_t>(n));
  return Read::kData;
}

void EgressProxy::Impl::OnHeadReadable(const ConnPtr& c) {
  const Read read =
      ReadClient(c, limits_.max_header_bytes, &Impl::OnHeadReadable);
  if (read == Read::kEnd) Close(c);
  if (read != Read::kData) return;
  ParseResult r = ParseRequestHead(c->in, limits_.max_header_bytes);
  switch (r.state) {
    case ParseResult::State::kNeedMore:
      ArmPoll(c, c->client, POLLIN | POLLRDHUP,
              [this, c](int) { OnHeadReadable(c); });
      return;
    case ParseResult::State::kError:
      Reply(c, r.status, r.error);
      return;
    case ParseResult::State::kComplete:
      c->in.erase(0, r.head_bytes);
      c->req = std::move(r.head);
      Decide(c);
      return;
  }
}

bool EgressProxy::Impl::IsSelf(const IpAddress& a, uint16_t port) const {
  if (port != listen_port_ || listen_addr_.family == 0) return false;
  if (a == listen_addr_) return true;
  const AddressClass listen_class = ClassifyAddress(listen_addr_);
  if (listen_class == AddressClass::kUnspecified) {
    const AddressClass cls = ClassifyAddress(a);
    return cls == AddressClass::kLoopback || cls == AddressClass::kUnspecified;
  }
  // Connecting to 0.0.0.0 or :: reaches the local host.
  return ClassifyAddress(a) == AddressClass::kUnspecified &&
         listen_class == AddressClass::kLoopback;
}

void EgressProxy::Impl::Decide(const ConnPtr& c) {
  const RequestHead& r = c->req;
  c->host = r.host;
  c->port = r.port;
  if (!r.is_connect) {
    if (!IsSchemeAllowed(policy_, r.scheme)) {
      Deny(c, kProtocolDenied, absl::StrCat("scheme_not_allowed ", r.scheme));
      return;
    }
    if (r.scheme != "http") {
      Deny(c, kProtocolDenied, absl::StrCat("scheme_not_supported ", r.scheme));
      return;
    }
    if (r.host_header.has_value()) {
      absl::StatusOr<HostPort> hp = ParseHostPort(*r.host_header);
      if (!hp.ok() || hp->host != r.host ||
          hp->port.value_or(DefaultPort(r.scheme)) != r.port) {
        Deny(c, kEndpointDenied, "host_header_mismatch");
        return;
      }
    }
    if (r.has_transfer_encoding) {
      Reply(c, 501, "transfer_encoding_not_supported");
      return;
    }
  } else if (r.port == 443 && !IsSchemeAllowed(policy_, "https")) {
    Deny(c, kProtocolDenied, "scheme_not_allowed https");
    return;
  }

  if (r.host_is_ip) {
    std::optional<IpAddress> a = IpAddress::Parse(r.host);
    if (!a.has_value()) {
      Reply(c, 400, "malformed_request_target");
      return;
    }
    if (IsSelf(*a, r.port)) {
      Deny(c, kEndpointDenied, "proxy_loop");
      return;
    }
    if (!IsHostAllowed(policy_, r.host, r.port)) {
      Deny(c, kEndpointDenied, "ip_literal_not_allowlisted");
      return;
    }
    if (!IsPublic(*a) && !IsPrivateAllowed(policy_, r.host, r.port)) {
      Deny(c, kEndpointDenied,
           absl::StrCat("private_address_not_allowed ", a->ToString()));
      return;
    }
    c->addrs = {*a};
    c->state = State::kConnecting;
    TryNextAddress(c);
    return;
  }
  if (!IsHostAllowed(policy_, r.host, r.port)) {
    Deny(c, kEndpointDenied, "host_not_allowlisted");
    return;
  }
  c->state = State::kResolving;
  std::weak_ptr<Impl> weak = weak_from_this();
  EventLoop* loop = loop_;
  const uint64_t id = c->id;
  absl::Status s = resolver_->Submit(
      r.host, [weak, loop, id](absl::StatusOr<std::vector<IpAddress>> addrs) {
        // On a resolver thread: only hand the answer to the loop.
        (void)loop->Post([weak, id, addrs = std::move(addrs)]() mutable {
          std::shared_ptr<Impl> self = weak.lock();
          if (self == nullptr || self->shut_down_) return;
          auto it = self->conns_.find(id);
          if (it == self->conns_.end()) return;
          ConnPtr conn = it->second;
          self->OnResolved(conn, std::move(addrs));
        });
      });
  if (!s.ok()) Reply(c, 503, "resolver_busy");
}

void EgressProxy::Impl::OnResolved(
    const ConnPtr& c, absl::StatusOr<std::vector<IpAddress>> addrs) {
  if (c->closed || c->state != State::kResolving) return;
  if (!addrs.ok() || addrs->empty()) {
    Deny(c, kEndpointDenied, "dns_failed", 502);
    return;
  }
  for (const IpAddress& a : *addrs) {
    if (IsSelf(a, c->port)) {
      Deny(c, kEndpointDenied, "proxy_loop");
      return;
    }
  }
  if (!IsPrivateAllowed(policy_, c->host, c->port)) {
    for (const IpAddress& a : *addrs) {
      if (!IsPublic(a)) {
        Deny(c, kEndpointDenied,
             absl::StrCat("resolves_to_private_address ", a.ToString()));
        return;
      }
    }
  }
  c->addrs = *std::move(addrs);
  c->state = State::kConnecting;
  TryNextAddress(c);
}

void EgressProxy::Impl::TryNextAddress(const ConnPtr& c) {
  CloseFd(&c->upstream);
  while (c->next_addr < c->addrs.size()) {
    const IpAddress& a = c->addrs[c->next_addr++];
    sockaddr_storage ss;
    socklen_t len;
    if (!ToSockaddr(a, c->port, &ss, &len)) continue;
    const int fd =
        socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      c->connect_errno = errno;
      continue;
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
      c->upstream = fd;
      OnConnected(c);
      return;
    }
    if (errno == EINPROGRESS) {
      c->upstream = fd;
      ArmPoll(c, fd, POLLOUT, [this, c](int) {
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(c->upstream, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
          err = errno;
        }
        if (err != 0) {
          c->connect_errno = err;
          TryNextAddress(c);
        } else {
          OnConnected(c);
        }
      });
      return;
    }
    c->connect_errno = errno;
    close(fd);
  }
  Reply(c, 502,
        absl::StrCat(
            "upstream_connect_failed ",
            c->connect_errno != 0 ? strerror(c->connect_errno) : "no address"));
}

void EgressProxy::Impl::OnConnected(const ConnPtr& c) {
  Touch(c);
  const int one = 1;
  setsockopt(c->upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (c->req.is_connect) {
    SendThen(c, c->client, "HTTP/1.1 200 Connection established\r\n\r\n",
             &Impl::StartPeek);
    return;
  }
  const uint64_t body = c->req.content_length.value_or(0);
  const size_t take =
      static_cast<size_t>(std::min<uint64_t>(body, c->in.size()));
  std::string head = BuildUpstreamHead(c->req);
  head.append(c->in, 0, take);
  c->in.clear();  // bytes past the body (pipelining) are not forwarded
  c->up.limit = body - take;
  SendThen(c, c->upstream, std::move(head), &Impl::StartRelay);
}

void EgressProxy::Impl::SendThen(const ConnPtr& c, int fd, std::string data,
                                 void (Impl::*next)(const ConnPtr&)) {
  c->state = State::kSending;
  c->out = std::move(data);
  c->out_off = 0;
  c->out_fd = fd;
  c->after_out = next;
  ContinueSend(c);
}

void EgressProxy::Impl::ContinueSend(const ConnPtr& c) {
  while (c->out_off < c->out.size()) {
    const ssize_t n =
        send(c->out_fd, c->out.data() + c->out_off, c->out.size() - c->out_off,
             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->out_off += static_cast<size_t>(n);
      if (c->out_fd == c->upstream) {
        bytes_out_.fetch_add(static_cast<uint64_t>(n),
                             std::memory_order_relaxed);
      }
      Touch(c);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      ArmPoll(c, c->out_fd, POLLOUT, [this, c](int) { ContinueSend(c); });
      return;
    }
    Close(c);
    return;
  }
  c->out.clear();
  c->out_fd = -1;
  (this->*(c->after_out))(c);
}

void EgressProxy::Impl::StartPeek(const ConnPtr& c) {
  c->state = State::kPeeking;
  c->peek_deadline_ns =
      NowNs() +
      int64_t{std::min(kPeekTimeoutMs, limits_.idle_timeout_ms)} * 1000000;
  ArmTimer(c);
  if (c->closed) return;
  ExaminePeek(c, /*timed_out=*/false);
}

void EgressProxy::Impl::OnPeekReadable(const ConnPtr& c) {
  // Room for a ClientHello or a request head with the start of its body.
  const size_t limit = std::max(kMaxClientHelloPeek, limits_.max_header_bytes);
  switch (ReadClient(c, limit, &Impl::OnPeekReadable)) {
    case Read::kData:
      ExaminePeek(c, /*ended=*/false);
      return;
    case Read::kEnd:
      if (c->in.empty()) {
        Close(c);  // the client gave up before trying anything
      } else {
        ExaminePeek(c, /*ended=*/true);
      }
      return;
    case Read::kPending:
    case Read::kClosed:
      return;
  }
}

void EgressProxy::Impl::ExaminePeek(const ConnPtr& c, bool ended) {
  const ClientHelloInfo info = ParseClientHello(c->in);
  using S = ClientHelloInfo::State;
  const bool full = c->in.size() >= kMaxClientHelloPeek;
  if (!ended && !full && info.state == S::kNeedMore) {
    ArmPoll(c, c->client, POLLIN | POLLRDHUP,
            [this, c](int) { OnPeekReadable(c); });
    return;
  }
  if (info.state == S::kComplete) {
    c->tls = true;
    if (!IsSchemeAllowed(policy_, "https")) {
      DenyTunnel(c, kProtocolDenied, "scheme_not_allowed https");
    } else if (info.has_ech) {
      DenyTunnel(c, kProtocolDenied, "tls_ech_not_allowed");
    } else if (!info.has_sni) {
      if (c->req.host_is_ip) {
        ApproveTunnel(c);
      } else {
        DenyTunnel(c, kEndpointDenied, "sni_missing");
      }
    } else if (info.server_name != c->host) {
      DenyTunnel(c, kEndpointDenied,
                 absl::StrCat("sni_mismatch ", info.server_name));
    } else {
      ApproveTunnel(c);
    }
    return;
  }
  if (info.state == S::kMalformed) {
    c->tls = true;
    DenyTunnel(c, kProtocolDenied, absl::StrCat("tls_malformed ", info.error));
    return;
  }
  if (info.state == S::kNeedMore && !c->in.empty()) {
    c->tls = true;
    DenyTunnel(c, kProtocolDenied, "tls_incomplete_client_hello");
    return;
  }
  // Not TLS, or nothing at all before the peek deadline.
  if (c->port == 443) {
    DenyTunnel(c, kProtocolDenied, "tls_expected");
    return;
  }
  ExaminePlainTunnel(c, ended);
}

void EgressProxy::Impl::ExaminePlainTunnel(const ConnPtr& c, bool ended) {
  if (IsSchemeAllowed(policy_, "tcp")) {
    ApproveTunnel(c);  // any bytes may pass: nothing to check
    return;
  }
  if (c->in.empty()) {
    // Only reached at the deadline: a server-speaks-first protocol.
    DenyTunnel(c, kProtocolDenied, TcpDetail(c, "no_request_before_deadline"));
    return;
  }
  // Plain HTTP only as a complete, valid request head naming the CONNECT
  // target: a prefix that merely looks like HTTP ("A ") proves nothing.
  ParseResult r =
      ParseRequestHead(c->in, limits_.max_header_bytes, HeadContext::kTunnel);
  switch (r.state) {
    case ParseResult::State::kNeedMore:
      if (!ended) {
        ArmPoll(c, c->client, POLLIN | POLLRDHUP,
                [this, c](int) { OnPeekReadable(c); });
      } else {
        DenyTunnel(c, kProtocolDenied,
                   TcpDetail(c, "request_head_incomplete_at_deadline"));
      }
      return;
    case ParseResult::State::kError:
      DenyTunnel(c, kProtocolDenied, TcpDetail(c, r.error));
      return;
    case ParseResult::State::kComplete:
      break;
  }
  if (!IsSchemeAllowed(policy_, "http")) {
    DenyTunnel(c, kProtocolDenied, "scheme_not_allowed http");
    return;
  }
  if (absl::Status s = CheckTunnelRequestTarget(r.head, c->host, c->port);
      !s.ok()) {
    DenyTunnel(c, kEndpointDenied, std::string(s.message()));
    return;
  }
  // The head is parsed (and checked) again by NextFramedBytes: one path
  // forwards every request.
  c->framed = true;
  ApproveTunnel(c);
}

std::string EgressProxy::Impl::TcpDetail(const ConnPtr& c,
                                         std::string_view why) const {
  // In a chunked body the current request is at fault, else the next one.
  const uint64_t request =
      c->frame == Conn::Frame::kHead ? c->requests + 1 : c->requests;
  if (request == 1 && c->frame == Conn::Frame::kHead) {
    return absl::StrCat("scheme_not_allowed tcp (", std::string(why), ")");
  }
  return absl::StrCat("scheme_not_allowed tcp (request ", request, ": ",
                      std::string(why), ")");
}

void EgressProxy::Impl::DenyFramed(const ConnPtr& c, const char* reason,
                                   std::string detail) {
  if (c->state == State::kPeeking) {
    DenyTunnel(c, reason, std::move(detail));
    return;
  }
  denied_.fetch_add(1, std::memory_order_relaxed);
  if (on_denied_) on_denied_(EgressDenial{c->host, c->port, reason, detail});
  Close(c);
}

void EgressProxy::Impl::ApproveTunnel(const ConnPtr& c) {
  if (c->framed) {
    c->up.limit = 0;  // NextFramedBytes takes c->in request by request
  } else {
    c->up.limit = kUnlimited;
    c->up.staged = std::move(c->in);
    c->in.clear();
  }
  StartRelay(c);
}

void EgressProxy::Impl::OnFramedReadable(const ConnPtr& c) {
  c->up.waiting = false;
  RunPump(c, /*down=*/false);
}

bool EgressProxy::Impl::NextFramedBytes(const ConnPtr& c) {
  Pump& p = c->up;
  for (;;) {
    // Each checked unit (head, body, chunk line) is forwarded before the next
    // one is looked at, so what reaches upstream does not depend on how the
    // client's bytes were split: every valid unit before the first invalid
    // one, nothing after it.
    if (!p.staged.empty()) return true;
    // A complete unit is staged and the loop goes on; an incomplete one
    // falls through to reading more.
    if (c->frame == Conn::Frame::kHead) {
      if (!c->in.empty()) {
        ParseResult r = ParseRequestHead(c->in, limits_.max_header_bytes,
                                         HeadContext::kTunnel);
        if (r.state == ParseResult::State::kError) {
          DenyFramed(c, kProtocolDenied, TcpDetail(c, r.error));
          return false;
        }
        if (r.state == ParseResult::State::kComplete) {
          if (absl::Status s =
                  CheckTunnelRequestTarget(r.head, c->host, c->port);
              !s.ok()) {
            std::string detail(s.message());
            if (c->requests > 0) {
              absl::StrAppend(&detail, " (request ", c->requests + 1, ")");
            }
            DenyFramed(c, kEndpointDenied, std::move(detail));
            return false;
          }
          ++c->requests;
          c->frame_deadline_ns = 0;
          p.staged.append(c->in, 0, r.head_bytes);
          c->in.erase(0, r.head_bytes);
          if (r.head.has_transfer_encoding) {
            c->frame = Conn::Frame::kChunked;  // the parse allows only chunked
            c->chunked = ChunkedBody();
            continue;
          }
          const uint64_t body = r.head.content_length.value_or(0);
          const size_t take =
              static_cast<size_t>(std::min<uint64_t>(body, c->in.size()));
          p.staged.append(c->in, 0, take);
          c->in.erase(0, take);
          p.limit = body - take;  // when > 0, c->in is empty: splice the rest
          if (p.limit > 0) return true;
          continue;
        }
      }
    } else {
      ChunkedBody::Step step = c->chunked.Next(c->in);
      using K = ChunkedBody::Step::Kind;
      switch (step.kind) {
        case K::kError:
          DenyFramed(c, kProtocolDenied, TcpDetail(c, step.error));
          return false;
        case K::kNeedMore:
          break;
        case K::kFraming:
        case K::kDone:
          c->frame_deadline_ns = 0;
          p.staged.append(c->in, 0, static_cast<size_t>(step.bytes));
          c->in.erase(0, static_cast<size_t>(step.bytes));
          if (step.kind == K::kDone) c->frame = Conn::Frame::kHead;
          continue;
        case K::kData: {
          const size_t take =
              static_cast<size_t>(std::min<uint64_t>(step.bytes, c->in.size()));
          p.staged.append(c->in, 0, take);
          c->in.erase(0, take);
          p.limit = step.bytes - take;
          if (p.limit > 0) return true;
          continue;
        }
      }
    }
    if (!c->in.empty() && c->frame_deadline_ns == 0) {
      // A head or chunk line has started: it must complete in time (a
      // slow one holds a connection; nothing of it is forwarded).
      c->frame_deadline_ns =
          NowNs() +
          int64_t{std::min(kPeekTimeoutMs, limits_.idle_timeout_ms)} * 1000000;
      ArmTimer(c);
      if (c->closed) return false;
    }
    // The parsers fail at their size bounds, so there is room to read.
    const size_t limit = c->in.size() + kReadChunk;
    switch (ReadClient(c, limit, &Impl::OnFramedReadable)) {
      case Read::kData:
        continue;
      case Read::kPending:
        p.waiting = true;
        return false;
      case Read::kClosed:
        return false;
      case Read::kEnd:
        if (c->in.empty() && c->frame == Conn::Frame::kHead) {
          p.eof = true;  // between requests: a normal end
          return true;
        }
        DenyFramed(c, kProtocolDenied,
                   TcpDetail(c, c->frame == Conn::Frame::kHead
                                    ? "request_head_incomplete_at_end"
                                    : "chunked_body_incomplete_at_end"));
        return false;
    }
  }
}

void EgressProxy::Impl::StartRelay(const ConnPtr& c) {
  c->state = State::kRelaying;
  allowed_.fetch_add(1, std::memory_order_relaxed);
  for (Pump* p : {&c->up, &c->down}) {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      Close(c);
      return;
    }
    p->pipe_r = fds[0];
    p->pipe_w = fds[1];
    (void)fcntl(p->pipe_w, F_SETPIPE_SZ, pipe_bytes_);
  }
  c->up.src = c->client;
  c->up.dst = c->upstream;
  c->down.src = c->upstream;
  c->down.dst = c->client;
  if (c->up.limit == 0 && !c->framed) c->up.done = true;
  ArmTimer(c);
  if (c->closed) return;
  RunPump(c, /*down=*/true);
  if (c->closed || c->state != State::kRelaying) return;
  RunPump(c, /*down=*/false);
}

void EgressProxy::Impl::RunPump(const ConnPtr& c, bool down) {
  Pump& p = down ? c->down : c->up;
  if (p.done || p.waiting) return;
  std::atomic<uint64_t>& counter = down ? bytes_in_ : bytes_out_;
  const uint64_t max_total =
      down ? limits_.max_bytes_in : limits_.max_bytes_out;
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  bool moved = false;
  for (int i = 0; i < kPumpBatch; ++i) {
    if (p.in_pipe > 0) {
      const ssize_t n =
          splice(p.pipe_r, nullptr, p.dst, nullptr, p.in_pipe, kFlags);
      if (n > 0) {
        p.in_pipe -= static_cast<size_t>(n);
        moved = true;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (moved) Touch(c);
        p.waiting = true;
        ArmPoll(c, p.dst, POLLOUT, [this, c, down](int) {
          (down ? c->down : c->up).waiting = false;
          RunPump(c, down);
        });
        return;
      }
      Close(c);  // the peer reset or went away
      return;
    }
    const uint64_t used = counter.load(std::memory_order_relaxed);
    const uint64_t quota = used >= max_total ? 0 : max_total - used;
    if (!p.staged.empty()) {
      // The pipe is empty here, so the write makes progress.
      const size_t len = static_cast<size_t>(std::min<uint64_t>(
          {p.staged.size(), quota, static_cast<uint64_t>(pipe_bytes_)}));
      const ssize_t n = len == 0 ? -1 : write(p.pipe_w, p.staged.data(), len);
      if (n <= 0) {
        Close(c);  // the proxy's byte limit is exhausted, or the pipe failed
        return;
      }
      p.staged.erase(0, static_cast<size_t>(n));
      p.in_pipe += static_cast<size_t>(n);
      counter.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      moved = true;
      continue;
    }
    if (p.eof) {
      if (moved) Touch(c);
      FinishPump(c, down);
      return;
    }
    if (!down && c->framed && p.limit == 0) {
      if (!NextFramedBytes(c)) return;
      continue;
    }
    const uint64_t want = std::min<uint64_t>(
        {static_cast<uint64_t>(pipe_bytes_), p.limit, quota});
    if (want == 0) {
      if (p.limit == 0) {
        p.done = true;  // the request body is complete
        CheckRelayDone(c);
      } else {
        Close(c);  // the proxy's byte limit is exhausted
      }
      return;
    }
    const ssize_t n = splice(p.src, nullptr, p.pipe_w, nullptr,
                             static_cast<size_t>(want), kFlags);
    if (n > 0) {
      p.in_pipe += static_cast<size_t>(n);
      if (p.limit != kUnlimited) p.limit -= static_cast<uint64_t>(n);
      counter.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      moved = true;
      continue;
    }
    if (n == 0) {
      p.eof = true;
      continue;
    }
    if (errno == EAGAIN || errno == EINTR) {
      if (moved) Touch(c);
      p.waiting = true;
      ArmPoll(c, p.src, POLLIN | POLLRDHUP, [this, c, down](int) {
        (down ? c->down : c->up).waiting = false;
        RunPump(c, down);
      });
      return;
    }
    Close(c);
    return;
  }
  // Batch used up: let other connections run, then continue.
  Touch(c);
  p.waiting = true;
  auto self = shared_from_this();
  const uint64_t epoch = c->epoch;
  absl::Status s = loop_->Post([self, c, down, epoch] {
    if (c->closed || self->shut_down_ || c->epoch != epoch) return;
    (down ? c->down : c->up).waiting = false;
    self->RunPump(c, down);
  });
  if (!s.ok()) Close(c);
}

void EgressProxy::Impl::FinishPump(const ConnPtr& c, bool down) {
  Pump& p = down ? c->down : c->up;
  p.done = true;
  shutdown(p.dst, SHUT_WR);
  CheckRelayDone(c);
}

void EgressProxy::Impl::CheckRelayDone(const ConnPtr& c) {
  if (c->req.is_connect) {
    if (c->up.done && c->down.done) Close(c);
  } else if (c->down.done) {
    // The response is complete (Connection: close upstream).
    StartDrain(c);
  }
}

void EgressProxy::Impl::Answer(const ConnPtr& c, std::string_view bytes) {
  (void)send(c->client, bytes.data(), bytes.size(),
             MSG_NOSIGNAL | MSG_DONTWAIT);
  StartDrain(c);
}

void EgressProxy::Impl::Deny(const ConnPtr& c, const char* reason,
                             std::string detail, int status) {
  denied_.fetch_add(1, std::memory_order_relaxed);
  Reply(c, status, absl::StrCat(reason, " ", detail));
  if (on_denied_) on_denied_(EgressDenial{c->host, c->port, reason, detail});
}

void EgressProxy::Impl::DenyTunnel(const ConnPtr& c, const char* reason,
                                   std::string detail) {
  denied_.fetch_add(1, std::memory_order_relaxed);
  if (c->tls) {
    Answer(c, std::string_view(kTlsAccessDenied, sizeof(kTlsAccessDenied)));
  } else {
    Reply(c, 403, absl::StrCat(reason, " ", detail));
  }
  if (on_denied_) on_denied_(EgressDenial{c->host, c->port, reason, detail});
}

void EgressProxy::Impl::StartDrain(const ConnPtr& c) {
  if (c->closed) return;
  CancelOps(c);
  CloseFd(&c->upstream);
  for (Pump* p : {&c->up, &c->down}) {
    CloseFd(&p->pipe_r);
    CloseFd(&p->pipe_w);
  }
  if (c->active) {
    c->active = false;
    --active_;
  }
  if (draining_ >= kMaxDraining) {
    Close(c);
    return;
  }
  ++draining_;
  c->state = State::kDraining;
  shutdown(c->client, SHUT_WR);
  c->drain_deadline_ns = NowNs() + kDrainNs;
  ArmTimer(c);
  if (c->closed) return;
  ArmPoll(c, c->client, POLLIN | POLLRDHUP,
          [this, c](int) { OnDrainReadable(c); });
}

void EgressProxy::Impl::OnDrainReadable(const ConnPtr& c) {
  char buf[kReadChunk];
  const ssize_t n = recv(c->client, buf, sizeof(buf), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    ArmPoll(c, c->client, POLLIN | POLLRDHUP,
            [this, c](int) { OnDrainReadable(c); });
    return;
  }
  if (n <= 0) {
    Close(c);
    return;
  }
  c->drained += static_cast<size_t>(n);
  if (c->drained > kDrainMaxBytes) {
    Close(c);
    return;
  }
  ArmPoll(c, c->client, POLLIN | POLLRDHUP,
          [this, c](int) { OnDrainReadable(c); });
}

void EgressProxy::Impl::Close(const ConnPtr& c) {
  if (c->closed) return;
  c->closed = true;
  CancelOps(c);
  CloseFd(&c->client);
  CloseFd(&c->upstream);
  for (Pump* p : {&c->up, &c->down}) {
    CloseFd(&p->pipe_r);
    CloseFd(&p->pipe_w);
  }
  if (c->active) {
    c->active = false;
    --active_;
  }
  if (c->state == State::kDraining) --draining_;
  conns_.erase(c->id);
}

void EgressProxy::Impl::Shutdown() {
  if (shut_down_) return;
  std::vector<ConnPtr> all;
  all.reserve(conns_.size());
  for (auto& [id, c] : conns_) all.push_back(c);
  for (const ConnPtr& c : all) Close(c);
  shut_down_ = true;
  if (accept_op_ != 0) (void)loop_->Cancel(accept_op_);
  accept_op_ = 0;
  CloseFd(&listen_fd_);
  resolver_->Stop();
}

EgressProxy::EgressProxy(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

EgressProxy::~EgressProxy() { Shutdown(); }

absl::StatusOr<std::unique_ptr<EgressProxy>> EgressProxy::Create(
    runtime::EventLoop* loop, EgressPolicy policy, EgressLimits limits,
    std::function<void(const EgressDenial&)> on_denied, EgressOptions options) {
  if (loop == nullptr) {
    return absl::InvalidArgumentError("EgressProxy: no event loop");
  }
  if (limits.max_connections < 1 || limits.idle_timeout_ms < 1 ||
      limits.total_timeout_ms < 1) {
    return absl::InvalidArgumentError(
        "EgressProxy: max_connections, idle_timeout_ms and total_timeout_ms "
        "must be positive");
  }
  if (limits.max_header_bytes < 256 || limits.max_header_bytes > (1u << 20)) {
    return absl::InvalidArgumentError(
        "EgressProxy: max_header_bytes must be in 256..1048576");
  }
  if (options.resolver_threads < 1 || options.resolver_queue < 1) {
    return absl::InvalidArgumentError(
        "EgressProxy: resolver_threads and resolver_queue must be positive");
  }
  auto impl = std::make_shared<Impl>(loop, std::move(policy), limits,
                                     std::move(on_denied), std::move(options));
  return std::unique_ptr<EgressProxy>(new EgressProxy(std::move(impl)));
}

absl::Status EgressProxy::Serve(int listen_fd) {
  return impl_->Serve(listen_fd);
}

EgressStats EgressProxy::stats() const { return impl_->stats(); }

void EgressProxy::Shutdown() { impl_->Shutdown(); }

}  // namespace jcs::egress
