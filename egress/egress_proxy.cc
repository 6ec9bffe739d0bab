#include "egress/egress_proxy.h"

#include "egress/egress_proxy_impl.h"

namespace jcs::egress {

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
