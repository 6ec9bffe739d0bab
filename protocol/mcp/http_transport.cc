#include "protocol/mcp/http_transport.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "egress/http_request.h"
#include "nlohmann/json.hpp"
#include "protocol/http/http_io.h"
#include "protocol/mcp/json_rpc.h"

namespace jcs::protocol::mcp {

using nlohmann::json;

struct McpHttpServer::Connection {
  int fd = -1;
  HttpPeer peer;
  bool authorized_peer = true;  // unix_socket: SO_PEERCRED allowed
  std::string in;               // bytes read and not yet consumed
  std::thread thread;
  std::atomic<bool> done{false};
};

struct McpHttpServer::Request {
  egress::RequestHead head;
  std::string body;
};

struct McpHttpServer::Session {
  struct Waiter {
    bool stream = false;             // SSE: progress and log notifications too
    json progress_token;             // null: none
    std::deque<std::string> events;  // serialized lines, oldest first
    bool done = false;               // the response (or the cancel) came
  };

  // A GET stream's queue: distinct lines (list_changed notifications only
  // say "list again"; a repeat adds nothing), so at most one per kind.
  struct Listener {
    std::deque<std::string> events;
  };

  ~Session() {
    // No watch may call into the server while it is destroyed.
    if (backend != nullptr) backend->StopWatchingTools();
  }

  std::string id;
  std::string project;
  HttpPeer peer;
  std::mutex handle_mu;  // McpServer::HandleLine: one thread at a time
  std::mutex mu;         // guards what follows
  std::condition_variable cv;
  std::map<std::string, std::shared_ptr<Waiter>> waiters;  // by id.dump()
  std::list<std::shared_ptr<Listener>> listeners;  // GET streams, newest last
  // list_changed lines by method while no GET stream is open.
  std::map<std::string, std::string> pending;
  bool ended = false;
  absl::Time last_used;
  int in_flight = 0;  // requests being handled: never idle then
  // Last: the server (whose threads call the sink) goes before the rest.
  std::unique_ptr<ToolBackend> backend;
  std::unique_ptr<McpServer> server;

  // The McpServer's sink: responses go to their request's waiter, progress
  // to the stream of the call that asked for it, other notifications (log
  // messages) to every open stream; what nobody waits for is dropped.
  void Route(const json& message, std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    if (message.contains("id") &&
        (message.contains("result") || message.contains("error"))) {
      const auto it = waiters.find(message["id"].dump());
      if (it != waiters.end() && !it->second->done) {
        it->second->events.emplace_back(line);
        it->second->done = true;
      }
    } else if (absl::EndsWith(json_fields::String(message, "method"),
                              "/list_changed")) {
      // Server-initiated, answering no request: the GET stream's.
      if (listeners.empty()) {
        pending[message["method"].get<std::string>()] = std::string(line);
      } else {
        Queue(*listeners.back(), std::string(line));
      }
    } else if (json_fields::String(message, "method") ==
               "notifications/progress") {
      const json token = json_fields::Member(
          json_fields::Member(message, "params"), "progressToken");
      for (auto& [key, waiter] : waiters) {
        if (waiter->stream && !waiter->done &&
            waiter->progress_token == token) {
          waiter->events.emplace_back(line);
        }
      }
    } else {
      for (auto& [key, waiter] : waiters) {
        if (waiter->stream && !waiter->done) waiter->events.emplace_back(line);
      }
    }
    cv.notify_all();
  }

  // Under mu.
  static void Queue(Listener& listener, std::string line) {
    if (std::find(listener.events.begin(), listener.events.end(), line) ==
        listener.events.end()) {
      listener.events.push_back(std::move(line));
    }
  }
};

namespace {

constexpr absl::Duration kKeepAliveEvery = absl::Seconds(15);

// A JSON-RPC error document, the body of a refused HTTP request.
std::string RpcErrorBody(const json& id, int code, const std::string& message) {
  return SerializeLine(ErrorResponse(id, RpcError{code, message}));
}

std::string NewSessionId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abort();  // no randomness: never hand out a guessable id
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

}  // namespace

McpHttpServer::McpHttpServer(HttpOptions options, BackendFactory factory)
    : options_(std::move(options)), factory_(std::move(factory)) {}

absl::StatusOr<std::unique_ptr<McpHttpServer>> McpHttpServer::Start(
    HttpOptions options, BackendFactory factory) {
  if (options.tcp_address.empty() && options.unix_path.empty()) {
    return absl::InvalidArgumentError(
        "MCP HTTP: neither a TCP address nor a Unix socket to listen on");
  }
  if (!options.tcp_address.empty() && options.bearer_token.empty()) {
    return absl::FailedPreconditionError(
        "MCP HTTP: a TCP listener needs a bearer token (loopback TCP has no "
        "peer credentials to authorize by); refusing to serve without one");
  }
  std::unique_ptr<McpHttpServer> server(
      new McpHttpServer(std::move(options), std::move(factory)));
  if (absl::Status s = server->Listen(); !s.ok()) return s;
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

absl::Status McpHttpServer::Listen() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return absl::ErrnoToStatus(errno, "MCP HTTP: eventfd");
  if (!options_.tcp_address.empty()) {
    absl::StatusOr<std::pair<int, uint16_t>> tcp =
        http::ListenLoopback(options_.tcp_address, "MCP HTTP");
    if (!tcp.ok()) return tcp.status();
    tcp_fd_ = tcp->first;
    tcp_port_ = tcp->second;
  }
  if (!options_.unix_path.empty()) {
    // A stale socket from an earlier run is replaced; any other file is not.
    absl::StatusOr<int> fd =
        http::ListenUnix(options_.unix_path, options_.unix_mode, "MCP HTTP");
    if (!fd.ok()) return fd.status();
    unix_fd_ = *fd;
  }
  return absl::OkStatus();
}

McpHttpServer::~McpHttpServer() {
  Stop();
  for (int fd : {tcp_fd_, unix_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

size_t McpHttpServer::session_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

void McpHttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (acceptor_.joinable()) acceptor_.join();
  if (!options_.unix_path.empty()) unlink(options_.unix_path.c_str());
  std::list<std::shared_ptr<Connection>> connections;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connections = connections_;
    sessions = sessions_;
  }
  // Wakes every connection thread: blocked reads and writes fail, and
  // waiters see `ended`.
  for (const auto& conn : connections) shutdown(conn->fd, SHUT_RDWR);
  for (auto& [id, session] : sessions) {
    std::lock_guard<std::mutex> lock(session->mu);
    session->ended = true;
    session->cv.notify_all();
  }
  for (const auto& conn : connections) {
    if (conn->thread.joinable()) conn->thread.join();
    close(conn->fd);
  }
  for (auto& [id, session] : sessions) EndSession(session);
  std::lock_guard<std::mutex> lock(mu_);
  connections_.clear();
}

void McpHttpServer::AcceptLoop() {
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
    ReapIdleSessions();
  }
}

void McpHttpServer::OnAccept(int fd, bool unix_socket) {
  auto conn = std::make_shared<Connection>();
  conn->fd = fd;
  conn->peer.unix_socket = unix_socket;
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
                       "too many connections to the MCP HTTP transport\n",
                       /*keep_alive=*/false);
    (void)!send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    return;
  }
  connections_.push_back(conn);
  conn->thread = std::thread([this, conn] {
    Serve(conn);
    shutdown(conn->fd, SHUT_RDWR);
    conn->done.store(true);
  });
}

void McpHttpServer::Serve(const std::shared_ptr<Connection>& conn) {
  while (!stopping_.load()) {
    // The head, whole within idle_timeout (of the connection's start, or of
    // the previous answer), however it is dripped in.
    const absl::Time head_deadline = absl::Now() + options_.idle_timeout;
    egress::ParseResult parsed;
    while (true) {
      parsed = egress::ParseRequestHead(conn->in, options_.max_header_bytes,
                                        egress::HeadContext::kTunnel);
      if (parsed.state != egress::ParseResult::State::kNeedMore) break;
      if (!http::ReadSomeBefore(conn->fd, conn->in, head_deadline)) return;
    }
    if (parsed.state == egress::ParseResult::State::kError) {
      http::WriteAll(
          conn->fd,
          http::Response(parsed.status, {{"Content-Type", "text/plain"}},
                         parsed.error + "\n", false),
          options_.idle_timeout);
      return;
    }
    conn->in.erase(0, parsed.head_bytes);
    Request request;
    request.head = std::move(parsed.head);
    const egress::RequestHead& head = request.head;
    if (head.has_transfer_encoding) {
      http::WriteAll(
          conn->fd,
          http::Response(411, {{"Content-Type", "text/plain"}},
                         "send the body with a Content-Length\n", false),
          options_.idle_timeout);
      return;
    }
    const uint64_t length = head.content_length.value_or(0);
    if (length > options_.max_body_bytes) {
      http::WriteAll(
          conn->fd,
          http::Response(
              413, {{"Content-Type", "application/json"}},
              RpcErrorBody(nullptr, kInvalidRequest,
                           absl::StrCat("invalid request: body "
                                        "larger than ",
                                        options_.max_body_bytes, " bytes")),
              false),
          options_.idle_timeout);
      return;
    }
    if (length > 0 && conn->in.size() < length &&
        absl::EqualsIgnoreCase(head.Header("expect").value_or(""),
                               "100-continue")) {
      if (!http::WriteAll(conn->fd, "HTTP/1.1 100 Continue\r\n\r\n",
                          options_.idle_timeout)) {
        return;
      }
    }
    const absl::Time body_deadline = absl::Now() + options_.idle_timeout;
    while (conn->in.size() < length) {
      if (!http::ReadSomeBefore(conn->fd, conn->in, body_deadline)) return;
    }
    request.body = conn->in.substr(0, length);
    conn->in.erase(0, length);
    if (!HandleRequest(*conn, request)) return;
  }
}

bool McpHttpServer::HandleRequest(Connection& conn, const Request& request) {
  const egress::RequestHead& head = request.head;
  const bool keep_alive =
      head.version == "HTTP/1.1" &&
      !absl::EqualsIgnoreCase(head.Header("connection").value_or(""), "close");
  const auto reply =
      [&](int status, const std::string& body,
          std::vector<std::pair<std::string, std::string>> headers = {}) {
        headers.emplace_back("Content-Type", "application/json");
        return http::WriteAll(conn.fd,
                              http::Response(status, headers, body, keep_alive),
                              options_.idle_timeout) &&
               keep_alive;
      };
  const auto refuse =
      [&](int status, const std::string& message,
          std::vector<std::pair<std::string, std::string>> headers = {}) {
        return reply(status, RpcErrorBody(nullptr, kInvalidRequest, message),
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
                    "daemon's mcp_http token file)",
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
  if (!absl::StartsWith(path, "/mcp/") ||
      !http::ValidProjectId(path.substr(strlen("/mcp/")))) {
    return refuse(404, absl::StrCat("not found: ", path,
                                    " (the endpoint is /mcp/<project_id>)"));
  }
  const std::string project(path.substr(strlen("/mcp/")));
  if (std::optional<std::string> version =
          head.Header("mcp-protocol-version")) {
    const bool known =
        std::any_of(std::begin(kProtocolVersions), std::end(kProtocolVersions),
                    [&](const char* v) { return *version == v; });
    if (!known) {
      return refuse(400, absl::StrCat("bad request: unsupported "
                                      "MCP-Protocol-Version '",
                                      *version, "'"));
    }
  }
  if (head.method == "POST") return HandlePost(conn, request, project);
  if (head.method == "GET") return HandleGet(conn, request, project);
  if (head.method == "DELETE") {
    std::shared_ptr<Session> session = FindSession(request, project, conn.peer);
    if (session == nullptr) {
      return refuse(404, "not found: no such session (send initialize)");
    }
    EndSession(session);
    return reply(200, "");
  }
  return refuse(405,
                absl::StrCat("method not allowed: ", head.method,
                             " (POST JSON-RPC messages; GET opens the "
                             "session's event stream; DELETE ends the "
                             "session)"),
                {{"Allow", "GET, POST, DELETE"}});
}

std::shared_ptr<McpHttpServer::Session> McpHttpServer::FindSession(
    const Request& request, const std::string& project, const HttpPeer& peer) {
  const std::optional<std::string> id = request.head.Header("mcp-session-id");
  if (!id.has_value()) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = sessions_.find(*id);
  if (it == sessions_.end()) return nullptr;
  const Session& s = *it->second;
  // Another project's or another uid's session: as if it did not exist.
  if (s.project != project || s.peer.unix_socket != peer.unix_socket ||
      (peer.unix_socket && s.peer.uid != peer.uid)) {
    return nullptr;
  }
  return it->second;
}

bool McpHttpServer::HandlePost(Connection& conn, const Request& request,
                               const std::string& project) {
  const egress::RequestHead& head = request.head;
  const bool keep_alive =
      head.version == "HTTP/1.1" &&
      !absl::EqualsIgnoreCase(head.Header("connection").value_or(""), "close");
  const auto reply =
      [&](int status, const std::string& body,
          std::vector<std::pair<std::string, std::string>> headers = {}) {
        if (!body.empty())
          headers.emplace_back("Content-Type", "application/json");
        return http::WriteAll(conn.fd,
                              http::Response(status, headers, body, keep_alive),
                              options_.idle_timeout) &&
               keep_alive;
      };
  const std::string content_type =
      absl::AsciiStrToLower(head.Header("content-type").value_or(""));
  if (!absl::StartsWith(content_type, "application/json")) {
    return reply(415, RpcErrorBody(nullptr, kInvalidRequest,
                                   "unsupported media type: POST "
                                   "application/json"));
  }
  const std::string accept =
      absl::AsciiStrToLower(head.Header("accept").value_or(""));
  const bool accepts_sse = absl::StrContains(accept, "text/event-stream");

  ParseResult parsed = ParseMessage(request.body);
  if (parsed.error.has_value()) {
    return reply(400,
                 SerializeLine(ErrorResponse(parsed.error_id, *parsed.error)));
  }
  const Message& message = *parsed.message;
  const bool is_request = message.kind == Message::Kind::kRequest;

  std::shared_ptr<Session> session;
  if (is_request && message.method == "initialize") {
    if (session_count() >= options_.max_sessions) {
      return reply(503, RpcErrorBody(message.id, kInternalError,
                                     absl::StrCat("too many MCP sessions (",
                                                  options_.max_sessions,
                                                  "); DELETE unused ones")));
    }
    absl::StatusOr<std::unique_ptr<ToolBackend>> backend =
        factory_(project, conn.peer);
    if (!backend.ok()) {
      const int status = absl::IsNotFound(backend.status())           ? 404
                         : absl::IsPermissionDenied(backend.status()) ? 403
                                                                      : 500;
      return reply(status,
                   RpcErrorBody(message.id, kInvalidRequest,
                                std::string(backend.status().message())));
    }
    session = std::make_shared<Session>();
    session->id = NewSessionId();
    session->project = project;
    session->peer = conn.peer;
    session->backend = *std::move(backend);
    Session* raw = session.get();
    session->server = std::make_unique<McpServer>(
        session->backend.get(),
        McpServer::MessageSink([raw](const json& m, std::string_view line) {
          raw->Route(m, line);
        }));
    // The session's end (~Session, EndSession) stops the watch before the
    // server goes.
    if (session->backend
            ->WatchTools([raw] { raw->server->NotifyListsChanged(); })
            .ok()) {
      session->server->set_list_changed(true);
    }
  } else {
    session = FindSession(request, project, conn.peer);
    if (session == nullptr) {
      const bool missing = !head.Header("mcp-session-id").has_value();
      return reply(
          missing ? 400 : 404,
          RpcErrorBody(is_request ? message.id : json(), kInvalidRequest,
                       missing ? "bad request: Mcp-Session-Id "
                                 "missing (send initialize first)"
                               : "session not found: it ended or "
                                 "never existed; initialize a new "
                                 "one"));
    }
  }

  {
    std::lock_guard<std::mutex> lock(session->mu);
    ++session->in_flight;
    session->last_used = absl::Now();
  }
  struct Release {
    Session* s;
    ~Release() {
      std::lock_guard<std::mutex> lock(s->mu);
      --s->in_flight;
      s->last_used = absl::Now();
    }
  } release{session.get()};

  if (!is_request) {
    {
      std::lock_guard<std::mutex> lock(session->handle_mu);
      session->server->HandleLine(request.body);
    }
    // A cancelled call gets no response: its stream ends without one.
    if (message.method == "notifications/cancelled" &&
        message.params.is_object() && message.params.contains("requestId")) {
      std::lock_guard<std::mutex> lock(session->mu);
      const auto it = session->waiters.find(message.params["requestId"].dump());
      if (it != session->waiters.end()) it->second->done = true;
      session->cv.notify_all();
    }
    return reply(202, "");
  }

  const std::string key = message.id.dump();
  auto waiter = std::make_shared<Session::Waiter>();
  waiter->stream = accepts_sse && message.method == "tools/call";
  if (message.params.is_object() && message.params.contains("_meta") &&
      message.params["_meta"].is_object()) {
    waiter->progress_token =
        json_fields::Member(message.params["_meta"], "progressToken");
  }
  bool duplicate;
  {
    std::lock_guard<std::mutex> lock(session->mu);
    duplicate = !session->waiters.emplace(key, waiter).second;
  }
  if (duplicate) {
    return reply(400, RpcErrorBody(message.id, kInvalidRequest,
                                   absl::StrCat("invalid request: id ", key,
                                                " is already used by a "
                                                "request in progress")));
  }
  struct Forget {
    Session* s;
    std::string key;
    std::shared_ptr<Session::Waiter> waiter;
    ~Forget() {
      std::lock_guard<std::mutex> lock(s->mu);
      const auto it = s->waiters.find(key);
      if (it != s->waiters.end() && it->second == waiter) s->waiters.erase(it);
    }
  } forget{session.get(), key, waiter};
  {
    std::lock_guard<std::mutex> lock(session->handle_mu);
    session->server->HandleLine(request.body);
  }

  if (!waiter->stream) {
    std::string body;
    {
      std::unique_lock<std::mutex> lock(session->mu);
      session->cv.wait(lock, [&] {
        return waiter->done || session->ended || stopping_.load();
      });
      if (!waiter->events.empty()) body = waiter->events.back();
    }
    std::vector<std::pair<std::string, std::string>> headers;
    if (message.method == "initialize") {
      const json response = json::parse(body, nullptr, false);
      if (!response.is_object() || !response.contains("result")) {
        return reply(200, body);  // refused: no session
      }
      std::lock_guard<std::mutex> lock(mu_);
      sessions_[session->id] = session;
      headers.emplace_back("Mcp-Session-Id", session->id);
    }
    if (body.empty()) return reply(202, "");  // cancelled, or session ended
    return reply(200, body, std::move(headers));
  }

  // The SSE stream: the connection closes at its end, which is where the
  // client's reader stops (no chunked encoding to get wrong).
  if (!http::WriteAll(conn.fd,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                      options_.idle_timeout)) {
    return false;
  }
  while (true) {
    std::deque<std::string> events;
    bool finished;
    {
      std::unique_lock<std::mutex> lock(session->mu);
      session->cv.wait_for(lock, absl::ToChronoSeconds(kKeepAliveEvery), [&] {
        return !waiter->events.empty() || waiter->done || session->ended ||
               stopping_.load();
      });
      events.swap(waiter->events);
      finished = waiter->done || session->ended || stopping_.load();
    }
    std::string out;
    for (std::string& line : events) {
      while (!line.empty() && line.back() == '\n') line.pop_back();
      absl::StrAppend(&out, "event: message\ndata: ", line, "\n\n");
    }
    // A comment line: keeps idle proxies from closing a long call's stream
    // and finds a client that is gone.
    if (out.empty() && !finished) out = ": keep-alive\n\n";
    if (!out.empty() && !http::WriteAll(conn.fd, out, options_.idle_timeout)) {
      return false;
    }
    if (finished) return false;
  }
}

bool McpHttpServer::HandleGet(Connection& conn, const Request& request,
                              const std::string& project) {
  const auto refuse =
      [&](int status, const std::string& message,
          std::vector<std::pair<std::string, std::string>> headers = {}) {
        headers.emplace_back("Content-Type", "application/json");
        http::WriteAll(
            conn.fd,
            http::Response(status, headers,
                           RpcErrorBody(nullptr, kInvalidRequest, message),
                           /*keep_alive=*/false),
            options_.idle_timeout);
        return false;
      };
  if (!absl::StrContains(
          absl::AsciiStrToLower(request.head.Header("accept").value_or("")),
          "text/event-stream")) {
    return refuse(406,
                  "not acceptable: GET opens an SSE stream; send Accept: "
                  "text/event-stream");
  }
  std::shared_ptr<Session> session = FindSession(request, project, conn.peer);
  if (session == nullptr) {
    return refuse(
        request.head.Header("mcp-session-id").has_value() ? 404 : 400,
        "GET needs the Mcp-Session-Id of a live session (send initialize "
        "first)");
  }
  auto listener = std::make_shared<Session::Listener>();
  int refused = 0;  // an HTTP status, written once the locks are released
  std::string why;
  {
    // Never more than half the connections: requests must still get in.
    const size_t total_limit =
        std::min(options_.max_streams, options_.max_connections / 2);
    std::lock_guard<std::mutex> lock(mu_);
    std::lock_guard<std::mutex> session_lock(session->mu);
    if (session->ended) {
      refused = 404;
      why = "session not found: it ended";
    } else if (session->listeners.size() >= options_.max_streams_per_session) {
      refused = 429;
      why = absl::StrCat("too many streams: this session has ",
                         session->listeners.size(),
                         " open (max_streams_per_session)");
    } else if (streams_ >= total_limit) {
      refused = 503;
      why = absl::StrCat("too many streams: ", streams_, " open (at most ",
                         total_limit, ")");
    } else {
      ++streams_;
      ++session->in_flight;  // a session with a stream is in use
      session->listeners.push_back(listener);
      for (auto& [method, line] : session->pending) {
        Session::Queue(*listener, std::move(line));
      }
      session->pending.clear();
    }
  }
  if (refused == 404) return refuse(refused, why);
  if (refused != 0) return refuse(refused, why, {{"Retry-After", "15"}});
  struct Unlisten {
    McpHttpServer* server;
    Session* s;
    std::shared_ptr<Session::Listener> listener;
    ~Unlisten() {
      {
        std::lock_guard<std::mutex> lock(server->mu_);
        --server->streams_;
      }
      std::lock_guard<std::mutex> lock(s->mu);
      s->listeners.remove(listener);
      // What this stream did not send goes to the next one.
      for (std::string& line : listener->events) {
        if (s->listeners.empty()) {
          s->pending[json_fields::String(json::parse(line, nullptr, false),
                                         "method")] = std::move(line);
        } else {
          Session::Queue(*s->listeners.back(), std::move(line));
        }
      }
      --s->in_flight;
      s->last_used = absl::Now();
      s->cv.notify_all();
    }
  } unlisten{this, session.get(), listener};

  if (!http::WriteAll(conn.fd,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                      options_.idle_timeout)) {
    return false;
  }
  absl::Time last_write = absl::Now();
  while (true) {
    std::deque<std::string> events;
    bool finished;
    {
      std::unique_lock<std::mutex> lock(session->mu);
      // Wakes each second to notice a client that hung up.
      session->cv.wait_for(lock, std::chrono::seconds(1), [&] {
        return !listener->events.empty() || session->ended || stopping_.load();
      });
      events.swap(listener->events);
      finished = session->ended || stopping_.load();
    }
    std::string out;
    for (std::string& line : events) {
      while (!line.empty() && line.back() == '\n') line.pop_back();
      absl::StrAppend(&out, "event: message\ndata: ", line, "\n\n");
    }
    if (out.empty() && !finished &&
        absl::Now() - last_write >= kKeepAliveEvery) {
      out = ": keep-alive\n\n";
    }
    if (!out.empty()) {
      if (!http::WriteAll(conn.fd, out, options_.idle_timeout)) {
        std::lock_guard<std::mutex> lock(session->mu);
        // Unsent: the next stream's (Unlisten).
        for (std::string& line : events) {
          Session::Queue(*listener, line + "\n");
        }
        return false;
      }
      last_write = absl::Now();
    }
    if (finished) return false;
    pollfd p = {conn.fd, POLLRDHUP, 0};
    if (poll(&p, 1, 0) > 0 &&
        (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      return false;  // the client closed its end
    }
  }
}

void McpHttpServer::EndSession(const std::shared_ptr<Session>& session) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = sessions_.find(session->id);
    if (it != sessions_.end() && it->second == session) sessions_.erase(it);
  }
  {
    std::lock_guard<std::mutex> lock(session->mu);
    session->ended = true;
    session->cv.notify_all();
  }
  session->backend->StopWatchingTools();
  // Cancels its running calls (their process trees die) and joins them.
  std::lock_guard<std::mutex> lock(session->handle_mu);
  session->server->Shutdown();
}

void McpHttpServer::ReapIdleSessions() {
  std::vector<std::shared_ptr<Session>> idle;
  const absl::Time now = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, session] : sessions_) {
      std::lock_guard<std::mutex> session_lock(session->mu);
      if (session->in_flight == 0 &&
          now - session->last_used > options_.session_idle_timeout) {
        idle.push_back(session);
      }
    }
  }
  for (const auto& session : idle) EndSession(session);
}

}  // namespace jcs::protocol::mcp
