// Internal to the egress proxy (egress_proxy.cc: accept, CONNECT and
// absolute-form handling, upstream connect and relay; egress_proxy_tunnel.cc:
// what a CONNECT tunnel may carry): the connection state and EgressProxy::Impl.
#ifndef JCS_EGRESS_EGRESS_PROXY_IMPL_H_
#define JCS_EGRESS_EGRESS_PROXY_IMPL_H_

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
#include "egress/egress_proxy.h"
#include "egress/http_request.h"
#include "egress/tls_client_hello.h"

namespace jcs::egress {
namespace proxy_internal {

using runtime::EventLoop;
using runtime::OpId;

inline constexpr size_t kReadChunk = 16384;
inline constexpr int64_t kDrainNs = int64_t{2} * 1000 * 1000 * 1000;
inline constexpr size_t kDrainMaxBytes = 64 * 1024;
inline constexpr size_t kMaxDraining = 256;
inline constexpr int kPumpBatch = 64;
inline constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();
// TLS alert record: fatal (2), access_denied (49).
inline constexpr char kTlsAccessDenied[] = {0x15, 0x03, 0x03, 0x00,
                                            0x02, 0x02, 0x31};

inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

inline const char* StatusText(int status) {
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

inline std::string HttpAnswer(int status, std::string_view line) {
  std::string body(line);
  body += "\n";
  return absl::StrCat("HTTP/1.1 ", status, " ", StatusText(status),
                      "\r\nContent-Type: text/plain\r\nContent-Length: ",
                      body.size(), "\r\nConnection: close\r\n\r\n", body);
}

inline bool ToSockaddr(const IpAddress& a, uint16_t port, sockaddr_storage* ss,
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

inline void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace proxy_internal

using proxy_internal::CloseFd;
using proxy_internal::EventLoop;
using proxy_internal::HttpAnswer;
using proxy_internal::kDrainMaxBytes;
using proxy_internal::kDrainNs;
using proxy_internal::kMaxDraining;
using proxy_internal::kPumpBatch;
using proxy_internal::kReadChunk;
using proxy_internal::kTlsAccessDenied;
using proxy_internal::kUnlimited;
using proxy_internal::NowNs;
using proxy_internal::OpId;
using proxy_internal::StatusText;
using proxy_internal::ToSockaddr;

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

}  // namespace jcs::egress

#endif  // JCS_EGRESS_EGRESS_PROXY_IMPL_H_
