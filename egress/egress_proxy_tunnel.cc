// What a CONNECT tunnel may carry: a TLS ClientHello (SNI checked) or, as
// http, complete requests for the CONNECT target, checked one by one.
#include "egress/egress_proxy_impl.h"

namespace jcs::egress {

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

}  // namespace jcs::egress
