// Parsing of HTTP/1.x request heads (issue 5): the requests sent to the
// proxy (CONNECT in authority-form, absolute-form requests) and the requests
// sent inside a CONNECT tunnel to a plain-HTTP origin (origin-form or
// absolute-form http, see HeadContext::kTunnel).
//
// Strictness (request smuggling and header tricks are refused, not
// repaired):
//   - Lines end with CRLF; a bare CR or LF, a NUL or another control
//     character (other than HT in header values) inside a line -> 400.
//   - Request line: METHOD SP target SP HTTP/1.0|HTTP/1.1, method a token.
//     It is checked as soon as its CRLF has arrived, so a stream that is not
//     HTTP is refused before the rest of a head could arrive.
//     kProxy: origin-form ("GET / HTTP/1.1") and asterisk-form -> 400.
//   - CONNECT: authority-form host:port (port mandatory); absolute-form:
//     scheme "://" host[:port] [path-abempty ["?" query]]; userinfo ('@') or
//     a fragment -> 400; the default port comes from the scheme (http 80,
//     https 443, ws 80, wss 443, ftp 21), an unknown scheme without a port
//     gets 0 (it is refused on the scheme anyway).
//   - Header lines: token ":" OWS value OWS; obs-fold (a line starting with
//     SP/HT) -> 400; at most 100 header lines.
//   - Host: at most one (more -> 400). Content-Length: digits only, several
//     only when equal, together with Transfer-Encoding -> 400.
//   - The whole head (request line through the blank line) must fit in
//     max_header_bytes; otherwise 431.
//   - kTunnel (a request inside a tunnel, where the proxy must know the
//     request's end to check the next one): origin-form ("/" path) or
//     absolute-form with scheme http; CONNECT, asterisk-form and other
//     schemes -> 400. Exactly one Host header (a valid host[:port]) -> else
//     400. Transfer-Encoding: only a single "chunked" (other codings hide the
//     body's end) -> else 501. host/port/host_is_ip come from the URL
//     (absolute-form) or the Host header (origin-form), port 80 by default.
#ifndef JCS_EGRESS_HTTP_REQUEST_H_
#define JCS_EGRESS_HTTP_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace jcs::egress {

// An RFC 9110 token character (methods, header names, chunk extensions).
bool IsTokenChar(char c);

inline constexpr size_t kMaxHeaderLines = 100;

struct RequestHead {
  std::string method;   // as sent (case-sensitive token)
  std::string target;   // the request-target as sent
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> headers;  // name, value

  bool is_connect = false;
  std::string scheme;  // downcased; "" for CONNECT
  std::string host;    // normalized (see egress_policy.h)
  bool host_is_ip = false;
  uint16_t port = 0;
  std::string origin_form;  // absolute-form: path and query ("/" if none)
  std::optional<uint64_t> content_length;
  bool has_transfer_encoding = false;      // kTunnel: the body is chunked
  std::optional<std::string> host_header;  // the Host header's value

  // The first value of header `name` (case-insensitive), if any.
  std::optional<std::string> Header(std::string_view name) const;
};

struct ParseResult {
  enum class State { kNeedMore, kComplete, kError };
  State state = State::kNeedMore;
  int status = 0;         // kError: 400, 431 or 501
  std::string error;      // kError: one line
  size_t head_bytes = 0;  // kComplete: bytes up to and including CRLFCRLF
  RequestHead head;       // kComplete
};

// Where a head was read: sent to the proxy, or inside a CONNECT tunnel.
enum class HeadContext { kProxy, kTunnel };

// Parses the head at the start of `data` (which may hold more bytes after
// it). kNeedMore while no blank line has arrived and data is shorter than
// max_header_bytes.
ParseResult ParseRequestHead(std::string_view data, size_t max_header_bytes,
                             HeadContext context = HeadContext::kProxy);

// For a head parsed with kTunnel inside a tunnel to connect_host:
// connect_port (normalized, as the CONNECT parse gives them): OK when the
// Host header and an absolute-form URL name exactly that host and port (no
// port means 80); else PermissionDenied whose message is the denial detail
// "host_header_mismatch VALUE" or "request_target_mismatch HOST:PORT". A
// tunnel's request naming another host would reach another site behind a
// shared address (virtual hosting, a CDN, a forward proxy at the origin).
absl::Status CheckTunnelRequestTarget(const RequestHead& head,
                                      std::string_view connect_host,
                                      uint16_t connect_port);

// The head to send upstream for an absolute-form request: origin-form
// request line with HTTP/1.1, the client's headers minus hop-by-hop and
// proxy headers (Connection, Proxy-Connection, Keep-Alive, Proxy-*, TE,
// Trailer, Upgrade, and headers named by Connection), a Host header when the
// client sent none, and "Connection: close" (one request per upstream
// connection: the next request could name another host).
std::string BuildUpstreamHead(const RequestHead& head);

// Default port of a scheme, 0 when unknown.
uint16_t DefaultPort(std::string_view scheme);

}  // namespace jcs::egress

#endif  // JCS_EGRESS_HTTP_REQUEST_H_
