// HTTP/1.1 building blocks for the daemon's loopback gateways (issue 15):
// bounded blocking socket I/O with deadlines, responses, the bearer-token
// check in constant time, the loopback Host/Origin checks that stop DNS
// rebinding, loopback listeners and SO_PEERCRED peers. Request heads are
// parsed by egress/http_request.h's strict parser.
//
// The A2A gateway (protocol/a2a/http_server.h) and MCP's HTTP transport
// (protocol/mcp/http_transport.h) both use these.
#ifndef JCS_PROTOCOL_HTTP_HTTP_IO_H_
#define JCS_PROTOCOL_HTTP_HTTP_IO_H_

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace jcs::protocol::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// "HTTP/1.1 <status> <text>" with Content-Length, `headers`, and
// "Connection: close" unless keep_alive.
std::string Response(int status, const Headers& headers,
                     const std::string& body, bool keep_alive);

// Writes all of `data`, waiting at most `timeout` for each write to
// progress; false when the peer is gone or stopped reading.
bool WriteAll(int fd, std::string_view data, absl::Duration timeout);
// Reads what is there (waiting at most `timeout`) onto `in`; false at end of
// stream, on an error or when nothing came in time.
bool ReadSome(int fd, std::string& in, absl::Duration timeout);
// The same, waiting until `deadline` at most. A request's head (and body)
// are read against one deadline, so a client that sends a byte now and then
// cannot hold a connection (and its thread) past it.
bool ReadSomeBefore(int fd, std::string& in, absl::Time deadline);

// Constant-time comparison: a secret's bytes must not leak through timing.
bool SameSecret(std::string_view a, std::string_view b);
// localhost, 127.0.0.0/8, ::1 / [::1].
bool IsLoopbackHost(const std::string& host);
// An Origin header's host ("http://127.0.0.1:8080" -> "127.0.0.1").
std::optional<std::string> OriginHost(std::string_view origin);
// A project id in a URL path: [A-Za-z0-9._-]{1,128}, not "." or "..".
bool ValidProjectId(std::string_view id);

// OK when `address` is a numeric loopback HOST:PORT (127.0.0.0/8 or
// [::1]; port 0..65535); otherwise what is wrong with it.
absl::Status CheckLoopbackAddress(const std::string& address);
// Listens on a loopback host:port (numeric 127.0.0.0/8 or [::1]; port 0:
// any free port); `what` names the listener in errors. Returns the socket
// and the bound port.
absl::StatusOr<std::pair<int, uint16_t>> ListenLoopback(
    const std::string& address, const std::string& what);
// Listens on a Unix socket at `path` with `mode` (a stale socket there is
// replaced, any other file is not).
absl::StatusOr<int> ListenUnix(const std::string& path, mode_t mode,
                               const std::string& what);

struct Peer {
  bool unix_socket = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// SO_PEERCRED and SO_PEERGROUPS of a Unix socket connection.
absl::StatusOr<Peer> UnixPeer(int fd);
// The control socket's rule: uid 0, the daemon's euid, an allowed uid, or a
// primary or supplementary gid in allowed_gids.
bool PeerAllowed(const Peer& peer, const std::set<uid_t>& allowed_uids,
                 const std::set<gid_t>& allowed_gids);

}  // namespace jcs::protocol::http

#endif  // JCS_PROTOCOL_HTTP_HTTP_IO_H_
