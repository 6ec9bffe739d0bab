// MCP's Streamable HTTP transport (issue 15; MCP 2025-06-18 "Transports"),
// served by `jcs serve` on a loopback TCP address and/or a Unix socket, on
// the same McpServer (server.h) as stdio: one McpServer per session.
//
// Endpoint: /mcp/<project_id> (the project is chosen by the URL path).
//   POST    one JSON-RPC message (batches are refused, as on stdio).
//           A notification or a response: 202 Accepted, no body.
//           initialize (without Mcp-Session-Id): a new session; the answer
//           carries its Mcp-Session-Id header.
//           tools/call: an SSE stream (text/event-stream, when the client
//           accepts it): its progress notifications, then its response;
//           a call cancelled with notifications/cancelled ends the stream
//           without a response (MCP: a cancelled request gets none).
//           Any other request: its response as application/json.
//   GET     (Accept: text/event-stream, with Mcp-Session-Id) the session's
//           server-to-client SSE stream ("Listening for Messages from the
//           Server"): notifications/{tools,prompts,resources}/list_changed
//           when the project's assets reload (the backend's WatchTools;
//           initialize then advertises listChanged). Each goes to one stream
//           only (the newest open one); while none is open the latest of
//           each kind waits for the next GET. No event ids: a stream is not
//           resumable (Last-Event-ID is ignored; list_changed only says to
//           list again). At most max_streams_per_session per session (429)
//           and max_streams in all, never more than half of max_connections
//           (503), so requests keep connections; a comment line every 15 s
//           finds clients that are gone; the stream ends (the connection
//           closes) at DELETE, session end and Stop(). Without an Accept of
//           text/event-stream: 406.
//   DELETE  ends the session: its running calls are cancelled (their
//           process trees killed).
// Every request but initialize carries Mcp-Session-Id: missing -> 400,
// unknown (or ended, or another peer's) -> 404. MCP-Protocol-Version, when
// sent, must be a version jcs speaks (400 otherwise).
//
// Authorization (fail closed):
//   Unix socket  SO_PEERCRED: uid 0, the daemon's euid, allowed_uids or a gid
//                in allowed_gids (the control socket's rule), else 403. A
//                session is used only by the uid that opened it.
//   TCP          loopback only (no peer credentials there): every request
//                needs "Authorization: Bearer <token>" (compared in constant
//                time), else 401. The server refuses to start TCP without a
//                token. The Host header must name a loopback host and an
//                Origin header, when present, a loopback origin (403
//                otherwise): a web page's DNS rebinding cannot reach it.
// Bounds: the head (request line and headers) at most max_header_bytes
// (431), a body at most max_body_bytes (413; Content-Length required: a
// chunked body gets 411), at most max_connections connections (503 beyond),
// at most max_sessions sessions (503), idle_timeout for a whole head
// (counted from the connection's start or the previous answer) and a whole
// body to arrive, however slowly they are dripped in, and for a write to
// progress; sessions unused for
// session_idle_timeout end like a DELETE.
//
// Threads: each connection is served on its own thread (a blocking socket
// with poll deadlines), so a slow or malicious client holds only its own
// thread, never the daemon's event loop (the backend posts its work to the
// loop and waits) nor other clients; max_connections bounds the threads. An
// acceptor thread accepts and reaps idle sessions.
#ifndef JCS_PROTOCOL_MCP_HTTP_TRANSPORT_H_
#define JCS_PROTOCOL_MCP_HTTP_TRANSPORT_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protocol/http/http_io.h"
#include "protocol/mcp/server.h"

namespace jcs::protocol::mcp {

// Who sent a request (unix_socket false: TCP loopback, authorized by the
// token).
using HttpPeer = http::Peer;

struct HttpOptions {
  // "127.0.0.1:8765", "[::1]:8765" (port 0: any free port, see tcp_port());
  // "" for none. Only loopback addresses are accepted.
  std::string tcp_address;
  // A Unix socket path ("" for none), created with unix_mode.
  std::string unix_path;
  mode_t unix_mode = 0660;
  // Required with tcp_address.
  std::string bearer_token;
  // Unix peers allowed besides uid 0 and the server's euid.
  std::set<uid_t> allowed_uids;
  std::set<gid_t> allowed_gids;
  size_t max_body_bytes = kMaxMessageBytes;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 64;
  size_t max_sessions = 256;
  // GET streams (see above).
  size_t max_streams_per_session = 2;
  size_t max_streams = 32;
  absl::Duration idle_timeout = absl::Seconds(30);
  absl::Duration session_idle_timeout = absl::Hours(1);
};

// Opens the backend of a new session: project `project_id` for `peer`.
// NotFound -> 404, PermissionDenied -> 403, another error -> 500; the body is
// a JSON-RPC error naming the reason.
using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<ToolBackend>>(
        const std::string& project_id, const HttpPeer& peer)>;

class McpHttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<McpHttpServer>> Start(
      HttpOptions options, BackendFactory factory);
  ~McpHttpServer();  // Stop()
  McpHttpServer(const McpHttpServer&) = delete;
  McpHttpServer& operator=(const McpHttpServer&) = delete;

  // Closes the listeners and every connection, ends every session (its
  // calls cancelled) and joins the threads. Call it while the backends can
  // still answer, or after making them fail fast.
  void Stop();
  // The bound TCP port (0 without tcp_address).
  uint16_t tcp_port() const { return tcp_port_; }
  size_t session_count() const;

 private:
  struct Session;
  struct Connection;
  struct Request;
  McpHttpServer(HttpOptions options, BackendFactory factory);
  absl::Status Listen();
  void AcceptLoop();
  void OnAccept(int fd, bool unix_socket);
  void Serve(const std::shared_ptr<Connection>& conn);
  // Handles one request; false: close the connection after it.
  bool HandleRequest(Connection& conn, const Request& request);
  bool HandlePost(Connection& conn, const Request& request,
                  const std::string& project);
  // The GET stream; always closes the connection after it.
  bool HandleGet(Connection& conn, const Request& request,
                 const std::string& project);
  std::shared_ptr<Session> FindSession(const Request& request,
                                       const std::string& project,
                                       const HttpPeer& peer);
  void EndSession(const std::shared_ptr<Session>& session);
  void ReapIdleSessions();

  const HttpOptions options_;
  const BackendFactory factory_;
  int tcp_fd_ = -1;
  int unix_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the acceptor
  uint16_t tcp_port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;  // guards what follows
  std::list<std::shared_ptr<Connection>> connections_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  size_t streams_ = 0;  // open GET streams
};

}  // namespace jcs::protocol::mcp

#endif  // JCS_PROTOCOL_MCP_HTTP_TRANSPORT_H_
