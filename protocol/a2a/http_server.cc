#include "protocol/a2a/http_server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "protocol/a2a/rpc.h"

namespace jcs::protocol::a2a {

using nlohmann::json;

struct A2aHttpServer::Connection {
  int fd = -1;
  http::Peer peer;
  bool authorized_peer = true;  // unix_socket: SO_PEERCRED allowed
  std::string in;
  std::thread thread;
  std::atomic<bool> done{false};
};

namespace {

constexpr char kCardPath[] = "/.well-known/agent-card.json";
constexpr char kProjectsPrefix[] = "/projects/";

std::string Serialize(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ErrorBody(const json& id, int code, const std::string& message) {
  return Serialize(ErrorDocument(id, code, message));
}

// "/projects/<id><rest>" -> {id, rest}; nullopt for other paths or an
// invalid id.
std::optional<std::pair<std::string, std::string>> SplitProjectPath(
    const std::string& path) {
  if (!absl::StartsWith(path, kProjectsPrefix)) return std::nullopt;
  const std::string tail = path.substr(strlen(kProjectsPrefix));
  const size_t slash = tail.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::string id = tail.substr(0, slash);
  if (!http::ValidProjectId(id)) return std::nullopt;
  return std::make_pair(std::move(id), tail.substr(slash));
}

}  // namespace

A2aHttpServer::A2aHttpServer(HttpOptions options, BackendFactory factory,
                             SingleProject single_project)
    : options_(std::move(options)),
      factory_(std::move(factory)),
      single_project_(std::move(single_project)),
      gateway_(options_.gateway) {}

absl::StatusOr<std::unique_ptr<A2aHttpServer>> A2aHttpServer::Start(
    HttpOptions options, BackendFactory factory, SingleProject single_project) {
  if (options.tcp_address.empty() && options.unix_path.empty()) {
    return absl::InvalidArgumentError(
        "A2A HTTP: neither a TCP address nor a Unix socket to listen on");
  }
  if (!options.tcp_address.empty() && options.bearer_token.empty()) {
    return absl::FailedPreconditionError(
        "A2A HTTP: a TCP listener needs a bearer token (loopback TCP has no "
        "peer credentials to authorize by); refusing to serve without one");
  }
  std::unique_ptr<A2aHttpServer> server(new A2aHttpServer(
      std::move(options), std::move(factory), std::move(single_project)));
  server->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (server->wake_fd_ < 0) {
    return absl::ErrnoToStatus(errno, "A2A HTTP: eventfd");
  }
  const HttpOptions& o = server->options_;
  if (!o.tcp_address.empty()) {
    absl::StatusOr<std::pair<int, uint16_t>> tcp =
        http::ListenLoopback(o.tcp_address, "A2A HTTP");
    if (!tcp.ok()) return tcp.status();
    server->tcp_fd_ = tcp->first;
    server->tcp_port_ = tcp->second;
  }
  if (!o.unix_path.empty()) {
    absl::StatusOr<int> fd =
        http::ListenUnix(o.unix_path, o.unix_mode, "A2A HTTP");
    if (!fd.ok()) return fd.status();
    server->unix_fd_ = *fd;
  }
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

A2aHttpServer::~A2aHttpServer() {
  Stop();
  for (int fd : {tcp_fd_, unix_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void A2aHttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (acceptor_.joinable()) acceptor_.join();
  if (!options_.unix_path.empty()) unlink(options_.unix_path.c_str());
  std::list<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connections.swap(connections_);
  }
  for (const auto& conn : connections) shutdown(conn->fd, SHUT_RDWR);
  for (const auto& conn : connections) {
    if (conn->thread.joinable()) conn->thread.join();
    close(conn->fd);
  }
}

void A2aHttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd fds[3] = {
        {wake_fd_, POLLIN, 0}, {tcp_fd_, POLLIN, 0}, {unix_fd_, POLLIN, 0}};
    const int ready = poll(fds, 3, 1000);
    if (stopping_.load()) break;
    if (ready > 0) {
      for (int i = 1; i < 3; ++i) {
        if (fds[i].fd < 0 || (fds[i].revents & POLLIN) == 0) continue;
        const int fd = accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) OnAccept(fd, /*unix_socket=*/i == 2);
      }
    }
    // Joins the threads of closed connections.
    std::list<std::shared_ptr<Connection>> finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = connections_.begin(); it != connections_.end();) {
        if ((*it)->done.load()) {
          finished.push_back(*it);
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& conn : finished) {
      conn->thread.join();
      close(conn->fd);
    }
  }
}

void A2aHttpServer::OnAccept(int fd, bool unix_socket) {
  auto conn = std::make_shared<Connection>();
  conn->fd = fd;
  if (unix_socket) {
    absl::StatusOr<http::Peer> peer = http::UnixPeer(fd);
    if (!peer.ok()) {
      close(fd);
      return;
    }
    conn->peer = *std::move(peer);
    conn->authorized_peer = http::PeerAllowed(conn->peer, options_.allowed_uids,
                                              options_.allowed_gids);
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Connections already closed but not yet joined (the accept loop joins
  // them after accepting) hold no slot.
  const size_t open = static_cast<size_t>(std::count_if(
      connections_.begin(), connections_.end(),
      [](const std::shared_ptr<Connection>& c) { return !c->done.load(); }));
  if (open >= options_.max_connections) {
    // Best effort, never blocking the acceptor: the socket buffer takes it.
    const std::string busy =
        http::Response(503, {{"Retry-After", "1"}},
                       "too many connections to the A2A gateway\n",
                       /*keep_alive=*/false);
    (void)!send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    return;
  }
  connections_.push_back(conn);
  conn->thread = std::thread([this, raw = conn.get()] {
    Serve(*raw);
    shutdown(raw->fd, SHUT_RDWR);
    raw->done.store(true);
  });
}

void A2aHttpServer::Serve(Connection& conn) {
  const absl::Duration timeout = options_.idle_timeout;
  while (!stopping_.load()) {
    // The whole head within idle_timeout (of the connection's start, or of
    // the previous answer), however it is dripped in.
    const absl::Time head_deadline = absl::Now() + timeout;
    egress::ParseResult parsed;
    while (true) {
      parsed = egress::ParseRequestHead(conn.in, options_.max_header_bytes,
                                        egress::HeadContext::kTunnel);
      if (parsed.state != egress::ParseResult::State::kNeedMore) break;
      if (!http::ReadSomeBefore(conn.fd, conn.in, head_deadline)) return;
    }
    if (parsed.state == egress::ParseResult::State::kError) {
      http::WriteAll(
          conn.fd,
          http::Response(parsed.status, {{"Content-Type", "text/plain"}},
                         parsed.error + "\n", false),
          timeout);
      return;
    }
    conn.in.erase(0, parsed.head_bytes);
    const egress::RequestHead& head = parsed.head;
    if (head.has_transfer_encoding) {
      http::WriteAll(
          conn.fd,
          http::Response(411, {{"Content-Type", "text/plain"}},
                         "send the body with a Content-Length\n", false),
          timeout);
      return;
    }
    const uint64_t length = head.content_length.value_or(0);
    if (length > options_.max_body_bytes) {
      http::WriteAll(
          conn.fd,
          http::Response(
              413, {{"Content-Type", "application/json"}},
              ErrorBody(nullptr, kInvalidRequest,
                        absl::StrCat("invalid request: body larger than ",
                                     options_.max_body_bytes, " bytes")),
              false),
          timeout);
      return;
    }
    if (length > 0 && conn.in.size() < length &&
        absl::EqualsIgnoreCase(head.Header("expect").value_or(""),
                               "100-continue")) {
      if (!http::WriteAll(conn.fd, "HTTP/1.1 100 Continue\r\n\r\n", timeout)) {
        return;
      }
    }
    const absl::Time body_deadline = absl::Now() + timeout;
    while (conn.in.size() < length) {
      if (!http::ReadSomeBefore(conn.fd, conn.in, body_deadline)) return;
    }
    const std::string body = conn.in.substr(0, length);
    conn.in.erase(0, length);
    if (!HandleRequest(conn, head, body)) return;
  }
}

bool A2aHttpServer::HandleRequest(Connection& conn,
                                  const egress::RequestHead& head,
                                  const std::string& body) {
  const bool keep_alive =
      head.version == "HTTP/1.1" &&
      !absl::EqualsIgnoreCase(head.Header("connection").value_or(""), "close");
  const auto reply = [&](int status, const std::string& text,
                         http::Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return http::WriteAll(conn.fd,
                          http::Response(status, headers, text, keep_alive),
                          options_.idle_timeout) &&
           keep_alive;
  };
  const auto refuse = [&](int status, const std::string& message,
                          http::Headers headers = {}) {
    return reply(status, ErrorBody(nullptr, kInvalidRequest, message),
                 std::move(headers));
  };

  // Who: the Unix peer's uid, or the TCP client's Host and token.
  if (conn.peer.unix_socket) {
    if (!conn.authorized_peer) {
      refuse(403, absl::StrCat("forbidden: uid ", conn.peer.uid,
                               " may not use the jcs daemon"));
      return false;
    }
  } else {
    if (!http::IsLoopbackHost(head.host)) {
      return refuse(403, absl::StrCat("forbidden: Host '", head.host,
                                      "' is not a loopback host"));
    }
    const std::string auth = head.Header("authorization").value_or("");
    if (!absl::StartsWithIgnoreCase(auth, "Bearer ") ||
        !http::SameSecret(
            std::string(absl::StripAsciiWhitespace(auth.substr(7))),
            options_.bearer_token)) {
      return refuse(401,
                    "unauthorized: send Authorization: Bearer <token> (the "
                    "daemon's HTTP token file)",
                    {{"WWW-Authenticate", "Bearer realm=\"jcs\""}});
    }
  }
  // DNS rebinding: a browser sends the page's Origin.
  if (std::optional<std::string> origin = head.Header("origin")) {
    std::optional<std::string> host = http::OriginHost(*origin);
    if (!host.has_value() || !http::IsLoopbackHost(*host)) {
      return refuse(403, absl::StrCat("forbidden: Origin '", *origin,
                                      "' is not a loopback origin"));
    }
  }

  const std::string path = head.target.substr(0, head.target.find('?'));
  std::optional<std::pair<std::string, std::string>> route =
      SplitProjectPath(path);
  std::string project;
  bool card = false;
  if (path == kCardPath) {
    std::optional<std::string> only =
        single_project_ ? single_project_(conn.peer) : std::nullopt;
    if (!only.has_value()) {
      return refuse(404,
                    "not found: /.well-known/agent-card.json describes the "
                    "only running project, and there is none or several; "
                    "use /projects/<project_id>/.well-known/agent-card.json");
    }
    project = *only;
    card = true;
  } else if (route.has_value() && route->second == kCardPath) {
    project = route->first;
    card = true;
  } else if (route.has_value() && route->second == "/a2a") {
    project = route->first;
  } else {
    return refuse(404, absl::StrCat("not found: ", path.substr(0, 256),
                                    " (the endpoints are "
                                    "/projects/<project_id>/a2a and "
                                    "/projects/<project_id>/.well-known/"
                                    "agent-card.json)"));
  }
  if (card != (head.method == "GET")) {
    return refuse(
        405,
        absl::StrCat("method not allowed: ", head.method,
                     card ? " (GET the agent card)" : " (POST JSON-RPC)"),
        {{"Allow", card ? "GET" : "POST"}});
  }

  absl::StatusOr<std::unique_ptr<Backend>> backend =
      factory_(project, conn.peer);
  if (!backend.ok()) {
    const int status = absl::IsNotFound(backend.status())           ? 404
                       : absl::IsPermissionDenied(backend.status()) ? 403
                                                                    : 500;
    return reply(status, ErrorBody(nullptr, kInvalidRequest,
                                   std::string(backend.status().message())));
  }
  if (!card) return HandlePost(conn, head, body, project, **backend);

  AgentInfo info;
  info.project_id = project;
  info.url = absl::StrCat(
      "http://",
      conn.peer.unix_socket ? "localhost" : head.host_header.value_or(""),
      kProjectsPrefix, project, "/a2a");
  info.version = options_.version;
  info.bearer = !conn.peer.unix_socket;
  absl::StatusOr<json> document = gateway_.Card(**backend, std::move(info));
  if (!document.ok()) {
    if (absl::IsPermissionDenied(document.status())) {
      return reply(403, ErrorBody(nullptr, kProtocolDenied,
                                  absl::StrCat("protocol denied: ",
                                               document.status().message())));
    }
    return reply(500, ErrorBody(nullptr, kInternalError,
                                std::string(document.status().message())));
  }
  return reply(200, Serialize(*document));
}

bool A2aHttpServer::HandlePost(Connection& conn,
                               const egress::RequestHead& head,
                               const std::string& body,
                               const std::string& project, Backend& backend) {
  (void)project;
  const bool keep_alive =
      head.version == "HTTP/1.1" &&
      !absl::EqualsIgnoreCase(head.Header("connection").value_or(""), "close");
  const auto reply = [&](int status, const std::string& text) {
    return http::WriteAll(
               conn.fd,
               http::Response(status, {{"Content-Type", "application/json"}},
                              text, keep_alive),
               options_.idle_timeout) &&
           keep_alive;
  };
  const std::string content_type =
      absl::AsciiStrToLower(head.Header("content-type").value_or(""));
  if (!absl::StartsWith(content_type, "application/json")) {
    return reply(415, ErrorBody(nullptr, kInvalidRequest,
                                "unsupported media type: POST "
                                "application/json"));
  }
  ParseResult parsed = ParseRequest(body);
  if (parsed.error.has_value()) {
    return reply(200, ErrorBody(parsed.error_id, parsed.error->code,
                                parsed.error->message));
  }
  const Request& request = *parsed.request;
  if (!Streams(request.method)) {
    std::string answer;
    gateway_.Handle(request, backend, [&](const json& doc) {
      answer = Serialize(doc);
      return true;
    });
    return reply(200, answer);
  }
  // The SSE stream: the connection closes at its end, where the client's
  // reader stops (no chunked encoding to get wrong).
  if (!http::WriteAll(conn.fd,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                      options_.idle_timeout)) {
    return false;
  }
  gateway_.Handle(request, backend, [&](const json& doc) {
    return !stopping_.load() &&
           http::WriteAll(conn.fd,
                          absl::StrCat("data: ", Serialize(doc), "\n\n"),
                          options_.idle_timeout);
  });
  return false;
}

}  // namespace jcs::protocol::a2a
