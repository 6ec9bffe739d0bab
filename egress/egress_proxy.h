// The jail's egress proxy (issue 5, ARCHITECTURE "Jail" item 7): an HTTP/1.1
// forward proxy served on the supervisor's io_uring loop, the only way out of
// a jail in network mode `egress`.
//
// Requests. `CONNECT host:port HTTP/1.1` opens a tunnel; absolute-form
// requests (`GET http://host/path HTTP/1.1`) are forwarded in origin-form,
// one request per client connection (the proxy sends `Connection: close`
// upstream and closes after the response). Anything else is refused (see
// http_request.h for the parser's rules).
//
// Decision, in order (the first failing step answers and, for a policy
// refusal, calls on_denied once):
//   1. Scheme. Absolute-form: the URL's scheme must be allowed and be
//      "http" (the proxy does not originate TLS: https/ftp/... in
//      absolute-form -> network_protocol_denied "scheme_not_allowed X" or
//      "scheme_not_supported X"). CONNECT to port 443 counts as https.
//   2. Host header (absolute-form): when present it must name the URL's host
//      and port -> else network_endpoint_denied "host_header_mismatch".
//   3. Proxy loop: a target equal to the proxy's own listening address and
//      port (also via a name resolving to it; a wildcard listener matches
//      every loopback/unspecified address) -> "proxy_loop".
//   4. IP literal: must match an allow entry exactly -> else
//      "ip_literal_not_allowlisted"; a non-public literal must also be in
//      allow_private -> else "private_address_not_allowed A".
//   5. Name: must match the allowlist -> else "host_not_allowlisted"; then
//      it is resolved on a resolver thread. A lookup failure answers 502 and
//      is reported as network_endpoint_denied "dns_failed". When any resolved
//      address is not public (loopback, RFC 1918, fc00::/7, link-local,
//      metadata, CGNAT, unspecified, multicast, reserved) and the name is not
//      in allow_private -> "resolves_to_private_address A".
//   6. The proxy connects only to the addresses it vetted, in the
//      resolver's order (no second resolution: the DNS-rebinding defence).
//      All fail -> 502. Taking longer than the idle timeout -> 504.
//   7. CONNECT: answers 200, then reads the tunnel's first bytes (up to one
//      ClientHello, reassembled across records up to 32 KiB, or one request
//      head, within kPeekTimeoutMs):
//      - a TLS ClientHello: scheme https (must be allowed); an SNI that
//        differs from the CONNECT host -> "sni_mismatch S"; no SNI when the
//        CONNECT host is a name -> "sni_missing" (every TLS client sends SNI
//        for a name; without it the server's choice of site is unchecked);
//        an encrypted_client_hello extension -> network_protocol_denied
//        "tls_ech_not_allowed" (its inner SNI is invisible); a malformed
//        hello -> network_protocol_denied "tls_malformed";
//      - port 443 without a ClientHello -> network_protocol_denied
//        "tls_expected";
//      - anything else when "tcp" is an allowed scheme: relayed as it is;
//      - otherwise the tunnel carries plain HTTP (scheme http) and nothing
//        else, checked request by request. Each head must be complete and
//        valid for a tunnel (http_request.h, HeadContext::kTunnel: request
//        line, CRLF-terminated header block within max_header_bytes, a Host
//        header) and must name the CONNECT host and port (Host header and an
//        absolute-form URL; no port means 80) -> else network_endpoint_denied
//        "host_header_mismatch V" / "request_target_mismatch H:P". Its body
//        is framed by Content-Length or chunked (chunked_body.h; the data is
//        spliced), and the next head is read where the body ends. A head or
//        chunk line must complete within kPeekTimeoutMs of its first byte.
//        Bytes that are not such a head, a head too large or incomplete at
//        that deadline or at the end of the stream, broken chunk framing, or
//        nothing at all before the deadline (server-speaks-first protocols)
//        -> network_protocol_denied "scheme_not_allowed tcp (WHY)", WHY the
//        parser's reason, "(request N: WHY)" after the first request. Each
//        checked unit (head, body, chunk line) is forwarded before the next
//        is read, so upstream gets exactly the valid requests before the
//        first invalid byte, however the client split them. A protocol
//        switch (Upgrade, 101) ends at the client's first non-HTTP byte.
//        Why framing rather than one request per tunnel: clients reuse
//        tunnels (keep-alive), and closing after the first response would
//        need the response framed too; request framing needs only the
//        client's direction, whose bodies still bypass user space.
//      A refusal before anything was relayed answers a TLS access_denied
//      alert to a TLS client and the 403 text to others, then closes; a
//      refusal of a later request in a tunnel closes it (a 403 would be mixed
//      into the relayed responses).
//   8. Then the tunnel (or the request's body and the response) is spliced
//      between the two sockets through pipes with splice(2), driven by poll
//      readiness on the loop: the payload never enters user space.
//
// Answers: refusals `403 Forbidden` with a one-line `reason detail` body;
// malformed requests 400; an oversized head 431; too many connections 503;
// chunked request bodies 501; an idle client before its head 408; upstream
// failure 502, upstream timeout 504. After an error answer the proxy shuts
// down its sending side and drains the client briefly (so the client reads
// the answer instead of a reset) before closing.
//
// Limits: max_connections concurrent client connections; idle_timeout_ms
// without any byte moving either way; total_timeout_ms per connection;
// max_bytes_in (upstream -> client) and max_bytes_out (client -> upstream)
// across the proxy's lifetime (one proxy serves one jailed call): a
// connection that would exceed them is closed.
//
// Threading: every method runs on the loop's thread (stats() on any thread).
// Shutdown (or destruction) must happen before the loop is destroyed; it
// joins the resolver threads, so it may wait for a lookup in progress.
#ifndef JCS_EGRESS_EGRESS_PROXY_H_
#define JCS_EGRESS_EGRESS_PROXY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "egress/egress_policy.h"
#include "egress/resolver.h"
#include "loop/event_loop.h"

namespace jcs::egress {

inline constexpr int kPeekTimeoutMs = 3000;

struct EgressLimits {
  int max_connections = 64;
  int idle_timeout_ms = 60000;
  int total_timeout_ms = 600000;
  uint64_t max_bytes_in = 1ull << 32;
  uint64_t max_bytes_out = 1ull << 30;
  size_t max_header_bytes = 16384;
};

struct EgressDenial {
  std::string host;
  uint16_t port = 0;
  std::string reason;  // kEndpointDenied or kProtocolDenied
  std::string detail;  // one line, e.g. "sni_mismatch other.test"
};

struct EgressStats {
  uint64_t connections = 0;  // client connections accepted
  uint64_t allowed = 0;      // requests/tunnels that reached upstream
  uint64_t denied = 0;       // on_denied calls
  uint64_t bytes_in = 0;     // upstream -> client
  uint64_t bytes_out = 0;    // client -> upstream
};

struct EgressOptions {
  // Name resolution; SystemResolve (getaddrinfo) when empty.
  ResolveFn resolve;
  int resolver_threads = 2;
  size_t resolver_queue = 256;
  // Per-direction pipe capacity for splicing (F_SETPIPE_SZ; best effort).
  int pipe_bytes = 1 << 20;
};

class EgressProxy {
 public:
  static absl::StatusOr<std::unique_ptr<EgressProxy>> Create(
      runtime::EventLoop* loop, EgressPolicy policy, EgressLimits limits,
      std::function<void(const EgressDenial&)> on_denied,
      EgressOptions options = {});
  ~EgressProxy();
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // Takes ownership of a listening TCP socket and accepts on the loop. At
  // most one listener per proxy.
  absl::Status Serve(int listen_fd);
  EgressStats stats() const;
  // Closes the listener and every connection; no callback runs afterwards.
  void Shutdown();

  class Impl;

 private:
  explicit EgressProxy(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace jcs::egress

#endif  // JCS_EGRESS_EGRESS_PROXY_H_
