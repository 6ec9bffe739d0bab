#include "protocol/mcp/http_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

constexpr char kToken[] = "s3cret-token-0123456789";

// "echo" answers with its arguments; "block" runs until cancelled.
class FakeBackend : public ToolBackend {
 public:
  absl::StatusOr<json> ListTools() override {
    return json::array({{{"name", "echo"},
                         {"description", "echo"},
                         {"args", json::array()},
                         {"safety", json::object()}}});
  }
  absl::StatusOr<json> RunTool(
      const std::string& name, const json& args, const json&,
      const std::function<void(const std::string&)>& started) override {
    std::unique_lock<std::mutex> lock(mu);
    const std::string call_id = "call-" + std::to_string(++next);
    lock.unlock();
    started(call_id);
    lock.lock();
    if (name == "block") {
      running.insert(call_id);
      cv.notify_all();
      cv.wait(lock, [&] { return cancelled.count(call_id) > 0; });
      running.erase(call_id);
      cv.notify_all();
      return json{{"status", "error"}, {"tool", name}, {"reason", "cancelled"}};
    }
    return json{{"status", "ok"},
                {"tool", name},
                {"call_id", call_id},
                {"result", args}};
  }
  absl::Status CancelTool(const std::string& call_id) override {
    std::lock_guard<std::mutex> lock(mu);
    cancelled.insert(call_id);
    cv.notify_all();
    return absl::OkStatus();
  }
  absl::Status AuthorizeProtocol(const std::string& operation) override {
    std::lock_guard<std::mutex> lock(mu);
    if (deny_protocol) {
      return absl::PermissionDeniedError("protocol_denied: mcp");
    }
    return absl::OkStatus();
  }
  // The sessions' WatchTools: Changed() calls every watch.
  int Watch(std::function<void()> changed) {
    std::lock_guard<std::mutex> lock(watch_mu);
    watches[++next_watch] = std::move(changed);
    return next_watch;
  }
  void Unwatch(int id) {
    std::lock_guard<std::mutex> lock(watch_mu);
    watches.erase(id);
  }
  void Changed() {
    std::lock_guard<std::mutex> lock(watch_mu);
    for (auto& [id, changed] : watches) changed();
  }
  size_t watch_count() {
    std::lock_guard<std::mutex> lock(watch_mu);
    return watches.size();
  }
  bool WaitRunning(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10),
                       [&] { return running.size() == n; });
  }

  std::mutex mu;
  std::condition_variable cv;
  int next = 0;
  std::set<std::string> running;
  std::set<std::string> cancelled;
  bool deny_protocol = false;
  std::mutex watch_mu;  // held while the watches run, as the daemon's is
  std::map<int, std::function<void()>> watches;
  int next_watch = 0;
};

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Reads one response: to Content-Length, or to the end of the stream.
Reply ReadReply(int fd) {
  std::string in;
  char buffer[8192];
  Reply reply;
  size_t head_end = std::string::npos;
  while (true) {
    if (head_end == std::string::npos) {
      head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::vector<std::string> lines =
            absl::StrSplit(in.substr(0, head_end), "\r\n");
        std::vector<std::string> status = absl::StrSplit(lines[0], ' ');
        if (status.size() > 1) (void)absl::SimpleAtoi(status[1], &reply.status);
        for (size_t i = 1; i < lines.size(); ++i) {
          const size_t colon = lines[i].find(':');
          reply.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
              std::string(
                  absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
        }
        in.erase(0, head_end + 4);
      }
    }
    if (head_end != std::string::npos &&
        reply.headers.count("content-length")) {
      size_t length = 0;
      (void)absl::SimpleAtoi(reply.headers["content-length"], &length);
      if (in.size() >= length) {
        reply.body = in.substr(0, length);
        return reply;
      }
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    in.append(buffer, static_cast<size_t>(n));
  }
  reply.body = in;
  return reply;
}

int ConnectTcp(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

int ConnectUnix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& data) {
  ASSERT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(data.size()));
}

struct Post {
  std::string method = "POST";
  std::string path = "/mcp/demo";
  std::string body;
  std::string token = kToken;  // "" for none
  std::string session;
  std::string host = "127.0.0.1";
  std::string accept = "application/json, text/event-stream";
  std::vector<std::string> extra;  // whole header lines
};

std::string Render(const Post& p) {
  std::string out =
      absl::StrCat(p.method, " ", p.path, " HTTP/1.1\r\nHost: ", p.host,
                   "\r\nAccept: ", p.accept, "\r\n");
  if (!p.token.empty())
    absl::StrAppend(&out, "Authorization: Bearer ", p.token, "\r\n");
  if (!p.session.empty())
    absl::StrAppend(&out, "Mcp-Session-Id: ", p.session, "\r\n");
  for (const std::string& line : p.extra) absl::StrAppend(&out, line, "\r\n");
  if (p.method == "POST") {
    absl::StrAppend(&out, "Content-Type: application/json\r\nContent-Length: ",
                    p.body.size(), "\r\n");
  }
  absl::StrAppend(&out, "\r\n", p.body);
  return out;
}

const char kInitialize[] =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{)"
    R"("protocolVersion":"2025-06-18","capabilities":{},)"
    R"("clientInfo":{"name":"t","version":"1"}}})";

// A backend per session, all forwarding to the one fake.
struct Forward : ToolBackend {
  explicit Forward(FakeBackend* b) : b(b) {}
  absl::StatusOr<json> ListTools() override { return b->ListTools(); }
  absl::StatusOr<json> RunTool(
      const std::string& n, const json& a, const json& m,
      const std::function<void(const std::string&)>& s) override {
    return b->RunTool(n, a, m, s);
  }
  absl::Status CancelTool(const std::string& id) override {
    return b->CancelTool(id);
  }
  absl::Status AuthorizeProtocol(const std::string& operation) override {
    return b->AuthorizeProtocol(operation);
  }
  absl::Status WatchTools(std::function<void()> changed) override {
    watch = b->Watch(std::move(changed));
    return absl::OkStatus();
  }
  void StopWatchingTools() override {
    if (watch != 0) b->Unwatch(std::exchange(watch, 0));
  }
  ~Forward() override { StopWatchingTools(); }
  FakeBackend* b;
  int watch = 0;
};

class HttpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start(HttpOptions options = {}) {
    server_.reset();
    options.tcp_address = "127.0.0.1:0";
    if (options.bearer_token.empty()) options.bearer_token = kToken;
    auto started = McpHttpServer::Start(
        options,
        [this](const std::string& project, const HttpPeer& peer)
            -> absl::StatusOr<std::unique_ptr<ToolBackend>> {
          std::lock_guard<std::mutex> lock(peer_mu_);
          last_peer_ = peer;
          if (project == "missing") {
            return absl::NotFoundError("project_not_found: missing");
          }
          return std::unique_ptr<ToolBackend>(new Forward(&backend_));
        });
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }

  Reply Exchange(const Post& p) {
    const int fd = ConnectTcp(server_->tcp_port());
    SendAll(fd, Render(p));
    Reply r = ReadReply(fd);
    close(fd);
    return r;
  }

  std::string Initialize() {
    Post p;
    p.body = kInitialize;
    Reply r = Exchange(p);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.headers["mcp-session-id"];
  }

  HttpPeer LastPeer() {
    std::lock_guard<std::mutex> lock(peer_mu_);
    return last_peer_;
  }

  FakeBackend backend_;
  std::mutex peer_mu_;  // the factory runs on a connection's thread
  HttpPeer last_peer_;
  std::unique_ptr<McpHttpServer> server_;
};

TEST_F(HttpTransportTest, InitializeListAndCall) {
  Post p;
  p.body = kInitialize;
  Reply init = Exchange(p);
  ASSERT_EQ(init.status, 200) << init.body;
  EXPECT_EQ(init.headers["content-type"], "application/json");
  const std::string session = init.headers["mcp-session-id"];
  EXPECT_EQ(session.size(), 32u);
  json doc = json::parse(init.body);
  EXPECT_EQ(doc["result"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(doc["result"]["serverInfo"]["name"], "jcs");
  EXPECT_FALSE(LastPeer().unix_socket);

  p.session = session;
  p.body = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
  EXPECT_EQ(Exchange(p).status, 202);

  p.body = R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})";
  p.extra = {"MCP-Protocol-Version: 2025-06-18"};
  Reply list = Exchange(p);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(json::parse(list.body)["result"]["tools"][0]["name"], "echo");

  // tools/call: an SSE stream whose one event is the response.
  p.body = R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":)"
           R"({"name":"echo","arguments":{"x":1}}})";
  Reply call = Exchange(p);
  ASSERT_EQ(call.status, 200) << call.body;
  EXPECT_EQ(call.headers["content-type"], "text/event-stream");
  ASSERT_TRUE(absl::StartsWith(call.body, "event: message\ndata: "))
      << call.body;
  const std::string data = call.body.substr(strlen("event: message\ndata: "));
  json result = json::parse(data.substr(0, data.find('\n')));
  EXPECT_EQ(result["id"], 3);
  EXPECT_EQ(result["result"]["structuredContent"]["result"]["x"], 1);

  // Without text/event-stream in Accept: the response as JSON.
  p.accept = "application/json";
  p.body = R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":)"
           R"({"name":"echo","arguments":{"y":2}}})";
  Reply json_call = Exchange(p);
  ASSERT_EQ(json_call.status, 200) << json_call.body;
  EXPECT_EQ(
      json::parse(json_call.body)["result"]["structuredContent"]["result"]["y"],
      2);
}

// protocol_allowlist without mcp: initialize is refused and no session is
// left behind.
TEST_F(HttpTransportTest, ProtocolDeniedInitializeOpensNoSession) {
  {
    std::lock_guard<std::mutex> lock(backend_.mu);
    backend_.deny_protocol = true;
  }
  Post p;
  p.body = kInitialize;
  Reply r = Exchange(p);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], kProtocolDenied);
  EXPECT_EQ(r.headers.count("mcp-session-id"), 0u);
  EXPECT_EQ(server_->session_count(), 0u);
}

TEST_F(HttpTransportTest, KeepAliveServesSeveralRequests) {
  const std::string session = Initialize();
  const int fd = ConnectTcp(server_->tcp_port());
  for (int id = 10; id < 13; ++id) {
    Post p;
    p.session = session;
    p.body =
        absl::StrCat(R"({"jsonrpc":"2.0","id":)", id, R"(,"method":"ping"})");
    SendAll(fd, Render(p));
    Reply r = ReadReply(fd);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(r.body)["id"], id);
  }
  close(fd);
}

TEST_F(HttpTransportTest, TokenIsRequired) {
  Post p;
  p.body = kInitialize;
  p.token = "";
  Reply none = Exchange(p);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"jcs\"");
  p.token = "s3cret-token-0123456788";  // one byte off
  EXPECT_EQ(Exchange(p).status, 401);
  p.token = "s3cret-token-01234567890";  // a byte longer
  EXPECT_EQ(Exchange(p).status, 401);
  p.token = "";
  p.extra = {"Authorization: Basic czNjcmV0"};
  EXPECT_EQ(Exchange(p).status, 401);
  EXPECT_EQ(server_->session_count(), 0u);
}

TEST_F(HttpTransportTest, OversizedBodyIs413) {
  HttpOptions options;
  options.max_body_bytes = 1024;
  Start(options);
  Post p;
  p.body = absl::StrCat(
      R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":")",
      std::string(2000, 'a'), R"("}})");
  EXPECT_EQ(Exchange(p).status, 413);
  // The head is bounded too.
  p.body = kInitialize;
  p.extra = {absl::StrCat("X-Pad: ", std::string(20000, 'b'))};
  EXPECT_EQ(Exchange(p).status, 431);
}

TEST_F(HttpTransportTest, ForeignOriginAndHostAre403) {
  Post p;
  p.body = kInitialize;
  p.extra = {"Origin: http://evil.example"};
  EXPECT_EQ(Exchange(p).status, 403);
  p.extra = {"Origin: http://127.0.0.1.evil.example:80"};
  EXPECT_EQ(Exchange(p).status, 403);
  // DNS rebinding: the page's host name resolves to 127.0.0.1.
  p.extra = {};
  p.host = "evil.example:8080";
  EXPECT_EQ(Exchange(p).status, 403);
  p.host = "localhost:8080";
  p.extra = {"Origin: http://localhost:3000"};
  EXPECT_EQ(Exchange(p).status, 200);
}

TEST_F(HttpTransportTest, SessionsAreChecked) {
  Post p;
  p.body = R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})";
  EXPECT_EQ(Exchange(p).status, 400);  // no Mcp-Session-Id
  p.session = "0123456789abcdef0123456789abcdef";
  Reply unknown = Exchange(p);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(json::parse(unknown.body)["id"], 2);
  // A session is bound to its project.
  p.session = Initialize();
  p.path = "/mcp/other";
  EXPECT_EQ(Exchange(p).status, 404);
  p.path = "/mcp/demo";
  EXPECT_EQ(Exchange(p).status, 200);
  // An unknown project refuses initialize.
  Post missing;
  missing.path = "/mcp/missing";
  missing.body = kInitialize;
  EXPECT_EQ(Exchange(missing).status, 404);
  Post bad_path;
  bad_path.path = "/mcp/../etc";
  bad_path.body = kInitialize;
  EXPECT_EQ(Exchange(bad_path).status, 404);
  // An unsupported MCP-Protocol-Version.
  p.extra = {"MCP-Protocol-Version: 1999-01-01"};
  EXPECT_EQ(Exchange(p).status, 400);
}

TEST_F(HttpTransportTest, MalformedBodyIsAJsonRpcError) {
  const std::string session = Initialize();
  Post p;
  p.session = session;
  p.body = "{not json";
  Reply r = Exchange(p);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], kParseError);
  p.body = R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])";
  EXPECT_EQ(json::parse(Exchange(p).body)["error"]["code"], kInvalidRequest);
}

TEST_F(HttpTransportTest, PutIs405AndDeleteEndsTheSession) {
  const std::string session = Initialize();
  Post put;
  put.method = "PUT";
  put.session = session;
  Reply r = Exchange(put);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "GET, POST, DELETE");

  Post del;
  del.method = "DELETE";
  del.session = session;
  EXPECT_EQ(Exchange(del).status, 200);
  EXPECT_EQ(server_->session_count(), 0u);
  Post ping;
  ping.session = session;
  ping.body = R"({"jsonrpc":"2.0","id":5,"method":"ping"})";
  EXPECT_EQ(Exchange(ping).status, 404);
  EXPECT_EQ(Exchange(del).status, 404);
}

TEST_F(HttpTransportTest, CancelEndsTheStreamWithoutAResponse) {
  const std::string session = Initialize();
  Post call;
  call.session = session;
  call.body = R"({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":)"
              R"({"name":"block","arguments":{}}})";
  const int fd = ConnectTcp(server_->tcp_port());
  SendAll(fd, Render(call));
  ASSERT_TRUE(backend_.WaitRunning(1));
  Post cancel;
  cancel.session = session;
  cancel.body = R"({"jsonrpc":"2.0","method":"notifications/cancelled",)"
                R"("params":{"requestId":"c1","reason":"test"}})";
  EXPECT_EQ(Exchange(cancel).status, 202);
  Reply stream = ReadReply(fd);  // ends at the connection's close
  close(fd);
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(stream.body.find("data:"), std::string::npos) << stream.body;
  EXPECT_TRUE(backend_.WaitRunning(0));
  EXPECT_EQ(backend_.cancelled.size(), 1u);
}

TEST_F(HttpTransportTest, DeleteCancelsRunningCalls) {
  const std::string session = Initialize();
  Post call;
  call.session = session;
  call.body = R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":)"
              R"({"name":"block","arguments":{}}})";
  const int fd = ConnectTcp(server_->tcp_port());
  SendAll(fd, Render(call));
  ASSERT_TRUE(backend_.WaitRunning(1));
  Post del;
  del.method = "DELETE";
  del.session = session;
  EXPECT_EQ(Exchange(del).status, 200);
  EXPECT_TRUE(backend_.WaitRunning(0));
  Reply stream = ReadReply(fd);
  close(fd);
  EXPECT_EQ(stream.body.find("data:"), std::string::npos) << stream.body;
}

TEST_F(HttpTransportTest, StopCancelsRunningCalls) {
  const std::string session = Initialize();
  Post call;
  call.session = session;
  call.body = R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":)"
              R"({"name":"block","arguments":{}}})";
  const int fd = ConnectTcp(server_->tcp_port());
  SendAll(fd, Render(call));
  ASSERT_TRUE(backend_.WaitRunning(1));
  server_->Stop();
  EXPECT_TRUE(backend_.WaitRunning(0));
  close(fd);
}

TEST_F(HttpTransportTest, ConnectionsAreCapped) {
  HttpOptions options;
  options.max_connections = 2;
  Start(options);
  const int a = ConnectTcp(server_->tcp_port());
  const int b = ConnectTcp(server_->tcp_port());
  // Both held (idle); the third is refused at once.
  Reply refused;
  for (int attempt = 0; attempt < 100 && refused.status != 503; ++attempt) {
    const int c = ConnectTcp(server_->tcp_port());
    refused = ReadReply(c);
    close(c);
  }
  EXPECT_EQ(refused.status, 503);
  close(a);
  close(b);
}

TEST_F(HttpTransportTest, IdleConnectionsAreClosed) {
  HttpOptions options;
  options.idle_timeout = absl::Milliseconds(200);
  Start(options);
  const int fd = ConnectTcp(server_->tcp_port());
  SendAll(fd, "POST /mcp/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n");  // never ends
  char byte;
  pollfd p = {fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);  // closed by the server, not by the poll
  EXPECT_EQ(recv(fd, &byte, 1, 0), 0);
  close(fd);
}

// A closed connection frees its slot at once, before the server has joined
// its thread (which the accept loop does after accepting).
TEST_F(HttpTransportTest, AClosedConnectionFreesItsSlot) {
  HttpOptions options;
  options.max_connections = 1;
  Start(options);
  const int held = ConnectTcp(server_->tcp_port());
  usleep(100'000);  // accepted: it holds the only slot
  close(held);
  usleep(200'000);  // its thread has seen the end of it
  const int fd = ConnectTcp(server_->tcp_port());
  Post initialize;
  initialize.body = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
  SendAll(fd, Render(initialize));
  const Reply reply = ReadReply(fd);
  EXPECT_GT(reply.status, 0) << "not served";
  EXPECT_NE(reply.status, 503);
  close(fd);
}

// Slowloris: a head dripped in a byte at a time, each well within
// idle_timeout of the last, is cut off once the whole head has not come
// within idle_timeout; so is a body.
TEST_F(HttpTransportTest, AHeadOrBodyDrippedInIsCutOffAtTheDeadline) {
  HttpOptions options;
  options.idle_timeout = absl::Milliseconds(400);
  Start(options);
  Post ping;
  ping.body = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
  const std::string request = Render(ping);
  for (const bool drip_body : {false, true}) {
    const size_t drip_from = drip_body ? request.size() - ping.body.size() : 0;
    const int fd = ConnectTcp(server_->tcp_port());
    SendAll(fd, request.substr(0, drip_from));
    const absl::Time start = absl::Now();
    bool cut = false;
    std::string out;
    for (size_t i = drip_from; i < request.size() && !cut; ++i) {
      if (send(fd, &request[i], 1, MSG_NOSIGNAL) != 1) cut = true;
      usleep(100'000);
      char buffer[4096];
      const ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0) out.append(buffer, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN)) cut = true;
      if (absl::Now() - start > absl::Seconds(3)) break;
    }
    close(fd);
    EXPECT_TRUE(cut) << (drip_body ? "body" : "head")
                     << " dripped for 3 s was not cut off; got: " << out;
    EXPECT_EQ(out.find("HTTP/1.1 200 "), std::string::npos) << out;
  }
}

TEST(HttpTransportStartTest, RefusesNonLoopbackAndMissingToken) {
  const auto factory =
      [](const std::string&,
         const HttpPeer&) -> absl::StatusOr<std::unique_ptr<ToolBackend>> {
    return absl::UnavailableError("unused");
  };
  for (const char* address : {"0.0.0.0:0", "10.0.0.1:80", "[::]:0",
                              "localhost:80", "127.0.0.1", "127.0.0.1:99999"}) {
    HttpOptions options;
    options.tcp_address = address;
    options.bearer_token = kToken;
    auto started = McpHttpServer::Start(options, factory);
    EXPECT_TRUE(absl::IsInvalidArgument(started.status())) << address;
    EXPECT_FALSE(http::CheckLoopbackAddress(address).ok()) << address;
  }
  EXPECT_TRUE(http::CheckLoopbackAddress("127.0.0.1:8765").ok());
  EXPECT_TRUE(http::CheckLoopbackAddress("127.1.2.3:0").ok());
  EXPECT_TRUE(http::CheckLoopbackAddress("[::1]:8765").ok());
  HttpOptions no_token;
  no_token.tcp_address = "127.0.0.1:0";
  EXPECT_TRUE(absl::IsFailedPrecondition(
      McpHttpServer::Start(no_token, factory).status()));
}

// The Unix socket: SO_PEERCRED decides, no token; another uid is refused
// unless allowed.
TEST(HttpTransportUnixTest, PeerCredentialsDecide) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  char dir_template[] = "/tmp/jcs-mcp-http.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/mcp.sock";
  FakeBackend fake;
  HttpOptions options;
  options.unix_path = path;
  options.unix_mode = 0666;
  options.allowed_uids = {65533};
  std::mutex seen_mu;  // the factory runs on a connection's thread
  HttpPeer seen;
  auto started = McpHttpServer::Start(
      options,
      [&](const std::string&, const HttpPeer& peer)
          -> absl::StatusOr<std::unique_ptr<ToolBackend>> {
        std::lock_guard<std::mutex> lock(seen_mu);
        seen = peer;
        return std::unique_ptr<ToolBackend>(new Forward(&fake));
      });
  ASSERT_TRUE(started.ok()) << started.status();
  chmod(dir_template, 0755);

  Post p;
  p.token = "";
  p.host = "localhost";
  p.body = kInitialize;
  int fd = ConnectUnix(path);
  SendAll(fd, Render(p));
  Reply root = ReadReply(fd);
  close(fd);
  ASSERT_EQ(root.status, 200) << root.body;
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_TRUE(seen.unix_socket);
    EXPECT_EQ(seen.uid, 0u);
  }
  const std::string root_session = root.headers["mcp-session-id"];

  // As uid 65534 (not allowed) and 65533 (allowed, but not the session's
  // owner): status codes come back through the exit code.
  const auto as_uid = [&](uid_t uid, const std::string& session,
                          const std::string& body) {
    const pid_t pid = fork();
    if (pid == 0) {
      if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
        _exit(1);
      }
      Post q = p;
      q.session = session;
      q.body = body;
      const int c = ConnectUnix(path);
      if (c < 0) _exit(2);
      const std::string request = Render(q);
      (void)!send(c, request.data(), request.size(), MSG_NOSIGNAL);
      _exit(ReadReply(c).status - 200);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) + 200 : -1;
  };
  EXPECT_EQ(as_uid(65534, "", kInitialize), 403);
  EXPECT_EQ(as_uid(65533, "", kInitialize), 200);
  EXPECT_EQ(as_uid(65533, root_session,
                   R"({"jsonrpc":"2.0","id":2,"method":"ping"})"),
            404);
  (*started)->Stop();
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // the socket file is removed
  rmdir(dir_template);
}

// A GET stream, read as it comes: the head, then `in` grows until it holds
// `needle` (true) or nothing more comes in 10 s or the server closes (false).
struct Stream {
  int fd = -1;
  Reply head;
  std::string in;

  bool ReadUntil(std::string_view needle, int timeout_ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(timeout_ms);
    char buffer[4096];
    while (in.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p = {fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return false;
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      in.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  // Whether the server closed the stream within 10 s.
  bool Closed() {
    char buffer[4096];
    while (true) {
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 10000) <= 0) return false;
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return true;
      in.append(buffer, static_cast<size_t>(n));
    }
  }
  size_t Count(std::string_view what) const {
    size_t n = 0;
    for (size_t at = in.find(what); at != std::string::npos;
         at = in.find(what, at + 1)) {
      ++n;
    }
    return n;
  }
};

class HttpGetStreamTest : public HttpTransportTest {
 protected:
  // Opens a GET stream; reads its head (and for a refusal its body).
  Stream Open(const std::string& session,
              std::string accept = "text/event-stream") {
    Post get;
    get.method = "GET";
    get.session = session;
    get.accept = std::move(accept);
    Stream s;
    s.fd = ConnectTcp(server_->tcp_port());
    SendAll(s.fd, Render(get));
    EXPECT_TRUE(s.ReadUntil("\r\n\r\n"));
    const size_t end = s.in.find("\r\n\r\n");
    std::vector<std::string> status = absl::StrSplit(s.in.substr(0, end), ' ');
    if (status.size() > 1) (void)absl::SimpleAtoi(status[1], &s.head.status);
    s.head.body = s.in.substr(0, end);
    s.in.erase(0, end + 4);
    return s;
  }
};

constexpr char kToolsChanged[] =
    R"(data: {"jsonrpc":"2.0","method":"notifications/tools/list_changed")";
constexpr char kPromptsChanged[] =
    R"(data: {"jsonrpc":"2.0","method":"notifications/prompts/list_changed")";
constexpr char kResourcesChanged[] =
    R"(data: {"jsonrpc":"2.0","method":"notifications/resources/)"
    R"(list_changed")";

TEST_F(HttpGetStreamTest, ListChangedArrivesOnTheStreamAndDeleteEndsIt) {
  Post p;
  p.body = kInitialize;
  Reply init = Exchange(p);
  const json caps = json::parse(init.body)["result"]["capabilities"];
  EXPECT_EQ(caps["tools"]["listChanged"], true);
  EXPECT_EQ(caps["prompts"]["listChanged"], true);
  EXPECT_EQ(caps["resources"]["listChanged"], true);
  const std::string session = init.headers["mcp-session-id"];
  ASSERT_EQ(backend_.watch_count(), 1u);

  Stream s = Open(session);
  ASSERT_EQ(s.head.status, 200) << s.head.body;
  EXPECT_TRUE(absl::StrContains(s.head.body, "Content-Type: text/event-stream"))
      << s.head.body;
  backend_.Changed();
  ASSERT_TRUE(s.ReadUntil(kResourcesChanged)) << s.in;
  EXPECT_EQ(s.Count(kToolsChanged), 1u) << s.in;
  EXPECT_EQ(s.Count(kPromptsChanged), 1u) << s.in;
  EXPECT_TRUE(absl::StartsWith(s.in, "event: message\ndata: ")) << s.in;

  Post del;
  del.method = "DELETE";
  del.session = session;
  EXPECT_EQ(Exchange(del).status, 200);
  EXPECT_TRUE(s.Closed());
  close(s.fd);
  EXPECT_EQ(backend_.watch_count(), 0u);  // no watch outlives its session
}

TEST_F(HttpGetStreamTest, RefusedWithoutSseOrASession) {
  const std::string session = Initialize();
  Stream s = Open(session, "application/json");
  EXPECT_EQ(s.head.status, 406);
  close(s.fd);
  s = Open("");
  EXPECT_EQ(s.head.status, 400);
  close(s.fd);
  s = Open("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(s.head.status, 404);
  close(s.fd);
  // Another project's session: unknown here.
  Post get;
  get.method = "GET";
  get.path = "/mcp/other";
  get.session = session;
  get.accept = "text/event-stream";
  EXPECT_EQ(Exchange(get).status, 404);
  // Without the token: 401 before anything else.
  get.path = "/mcp/demo";
  get.token = "";
  EXPECT_EQ(Exchange(get).status, 401);
}

// What changed while no stream was open waits for the next one, once per
// kind however often it changed.
TEST_F(HttpGetStreamTest, ChangesBeforeTheStreamWaitForIt) {
  const std::string session = Initialize();
  backend_.Changed();
  backend_.Changed();
  Stream s = Open(session);
  ASSERT_EQ(s.head.status, 200);
  ASSERT_TRUE(s.ReadUntil(kResourcesChanged)) << s.in;
  ASSERT_TRUE(s.ReadUntil(kToolsChanged)) << s.in;
  EXPECT_FALSE(
      s.ReadUntil("data: {\"jsonrpc\":\"2.0\",\"method\":"
                  "\"notifications/tools/list_changed\"}\n\ndata",
                  500))
      << s.in;
  EXPECT_EQ(s.Count(kToolsChanged), 1u) << s.in;
  close(s.fd);
}

// A message goes to one stream only (MCP: never broadcast), the newest.
TEST_F(HttpGetStreamTest, EachMessageOnOneStream) {
  const std::string session = Initialize();
  Stream older = Open(session);
  Stream newer = Open(session);
  ASSERT_EQ(older.head.status, 200);
  ASSERT_EQ(newer.head.status, 200);
  backend_.Changed();
  ASSERT_TRUE(newer.ReadUntil(kResourcesChanged)) << newer.in;
  EXPECT_FALSE(older.ReadUntil("data:", 500)) << older.in;
  close(older.fd);
  close(newer.fd);
}

// Attack: streams are held open for as long as the client likes; without
// bounds a few sessions' GETs would take every connection and thread.
TEST_F(HttpGetStreamTest, StreamsAreBoundedPerSessionAndInAll) {
  HttpOptions options;
  options.max_connections = 8;  // streams: at most 4
  options.max_streams_per_session = 2;
  Start(options);
  const std::string a = Initialize();
  Stream a1 = Open(a), a2 = Open(a);
  ASSERT_EQ(a1.head.status, 200);
  ASSERT_EQ(a2.head.status, 200);
  Stream a3 = Open(a);
  EXPECT_EQ(a3.head.status, 429) << a3.head.body;
  close(a3.fd);
  const std::string b = Initialize();
  Stream b1 = Open(b), b2 = Open(b);
  ASSERT_EQ(b1.head.status, 200);
  ASSERT_EQ(b2.head.status, 200);
  const std::string c = Initialize();
  Stream c1 = Open(c);
  EXPECT_EQ(c1.head.status, 503) << c1.head.body;
  close(c1.fd);
  // Requests still get connections.
  Post ping;
  ping.session = c;
  ping.body = R"({"jsonrpc":"2.0","id":2,"method":"ping"})";
  EXPECT_EQ(Exchange(ping).status, 200);
  // A client that goes away frees its slot.
  close(b2.fd);
  Stream c2;
  for (int attempt = 0; attempt < 50; ++attempt) {
    c2 = Open(c);
    if (c2.head.status == 200) break;
    close(c2.fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(c2.head.status, 200);
  for (int fd : {a1.fd, a2.fd, b1.fd, c2.fd}) close(fd);
}

TEST_F(HttpGetStreamTest, StopEndsTheStreams) {
  const std::string session = Initialize();
  Stream s = Open(session);
  ASSERT_EQ(s.head.status, 200);
  server_->Stop();
  EXPECT_TRUE(s.Closed());
  close(s.fd);
  EXPECT_EQ(backend_.watch_count(), 0u);
}

}  // namespace
}  // namespace jcs::protocol::mcp
