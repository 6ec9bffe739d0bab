// The A2A gateway's HTTP server (issue 15), served by `jcs serve` on a
// loopback TCP address and/or a Unix socket.
//
// Endpoints (one project per URL path):
//   GET  /projects/<id>/.well-known/agent-card.json   the project's card
//   GET  /.well-known/agent-card.json                 the card of the only
//        project running (404 naming the per-project URL when there are
//        none or several)
//   POST /projects/<id>/a2a                           JSON-RPC 2.0 (A2A 0.3):
//        message/stream and tasks/resubscribe answer text/event-stream
//        (each event a JSON-RPC response; the connection closes at its end),
//        the other methods application/json. A2A errors are JSON-RPC errors
//        in a 200 answer (the SDK reads them there); a denied protocol too.
// The card's url is this server's POST endpoint, as the client reached it
// (the Host header, which must be loopback).
//
// Authorization exactly as MCP over HTTP (protocol/mcp/http_transport.h):
//   Unix socket  SO_PEERCRED: uid 0, the daemon's euid, allowed_uids or a
//                gid in allowed_gids, else 403; the backend then sees that
//                peer, which reaches only the projects it could use through
//                the control socket.
//   TCP          loopback only: "Authorization: Bearer <token>" on every
//                request (constant-time comparison), else 401; no TCP
//                without a token. Host must be a loopback host, an Origin,
//                when sent, a loopback origin (403): DNS rebinding cannot
//                reach it.
// Bounds: head max_header_bytes (431), body max_body_bytes (413; a chunked
// body gets 411), max_connections (503 beyond), idle_timeout for a whole
// head (counted from the connection's start or the previous answer) and a
// whole body to arrive, however slowly they are dripped in, and for a write
// to progress. Each connection has its own thread, so a slow client holds
// only that, and only that long.
#ifndef JCS_PROTOCOL_A2A_HTTP_SERVER_H_
#define JCS_PROTOCOL_A2A_HTTP_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "egress/http_request.h"
#include "protocol/a2a/gateway.h"
#include "protocol/http/http_io.h"

namespace jcs::protocol::a2a {

struct HttpOptions {
  // "127.0.0.1:8766", "[::1]:8766" (port 0: any free port); "" for none.
  std::string tcp_address;
  std::string unix_path;  // "" for none
  mode_t unix_mode = 0660;
  std::string bearer_token;  // required with tcp_address
  std::set<uid_t> allowed_uids;
  std::set<gid_t> allowed_gids;
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 64;
  absl::Duration idle_timeout = absl::Seconds(30);
  std::string version;  // the agent card's version (jcs's)
  GatewayOptions gateway;
};

// Opens project `project_id` for `peer`: NotFound -> 404, PermissionDenied
// (the peer may not use it) -> 403, another error -> 500.
using BackendFactory = std::function<absl::StatusOr<std::unique_ptr<Backend>>(
    const std::string& project_id, const http::Peer& peer)>;
// The project the root agent card describes: the only one running (as
// `peer` may see them), or nullopt.
using SingleProject =
    std::function<std::optional<std::string>(const http::Peer& peer)>;

class A2aHttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<A2aHttpServer>> Start(
      HttpOptions options, BackendFactory factory,
      SingleProject single_project);
  ~A2aHttpServer();  // Stop()
  A2aHttpServer(const A2aHttpServer&) = delete;
  A2aHttpServer& operator=(const A2aHttpServer&) = delete;

  // Closes the listeners and every connection and joins the threads (a
  // stream waiting for its turn waits for the backend: make it fail fast
  // first).
  void Stop();
  uint16_t tcp_port() const { return tcp_port_; }

 private:
  struct Connection;
  A2aHttpServer(HttpOptions options, BackendFactory factory,
                SingleProject single_project);
  void AcceptLoop();
  void OnAccept(int fd, bool unix_socket);
  void Serve(Connection& conn);
  // One request; false: close the connection after it.
  bool HandleRequest(Connection& conn, const egress::RequestHead& head,
                     const std::string& body);
  bool HandlePost(Connection& conn, const egress::RequestHead& head,
                  const std::string& body, const std::string& project,
                  Backend& backend);

  const HttpOptions options_;
  const BackendFactory factory_;
  const SingleProject single_project_;
  const Gateway gateway_;
  int tcp_fd_ = -1;
  int unix_fd_ = -1;
  int wake_fd_ = -1;
  uint16_t tcp_port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards connections_
  std::list<std::shared_ptr<Connection>> connections_;
};

}  // namespace jcs::protocol::a2a

#endif  // JCS_PROTOCOL_A2A_HTTP_SERVER_H_
