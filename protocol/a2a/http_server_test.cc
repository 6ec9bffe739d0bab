#include "protocol/a2a/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// A project whose conversations answer at once; `denied` refuses A2A.
class StubBackend : public Backend {
 public:
  explicit StubBackend(bool denied) : denied_(denied) {}
  absl::Status Authorize(const std::string&) override {
    return denied_ ? absl::PermissionDeniedError("not in protocol_allowlist")
                   : absl::OkStatus();
  }
  absl::StatusOr<json> Tools() override { return json::array(); }
  absl::StatusOr<json> AssetCounts() override { return json::object(); }
  absl::Status StartConversation(const std::string&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Status(const std::string&) override {
    return std::string("idle");
  }
  absl::StatusOr<json> Timeline(const std::string&) override {
    return timeline_;
  }
  absl::Status Call(const std::string&, const json& signal) override {
    timeline_.push_back({{"event_type", "conversation.user.message"},
                         {"data", signal["data"]}});
    return absl::OkStatus();
  }
  absl::Status Cast(const std::string& id, const json& signal) override {
    return Call(id, signal);
  }
  std::unique_ptr<Subscription> Subscribe(const std::string&) override {
    struct None : Subscription {
      std::optional<json> Next(absl::Duration) override { return std::nullopt; }
    };
    return std::make_unique<None>();
  }

 private:
  const bool denied_;
  json timeline_ = json::array();
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpOptions options, int projects = 1) {
    options.gateway.poll_every = absl::Milliseconds(5);
    absl::StatusOr<std::unique_ptr<A2aHttpServer>> server =
        A2aHttpServer::Start(
            std::move(options),
            [](const std::string& project,
               const http::Peer&) -> absl::StatusOr<std::unique_ptr<Backend>> {
              if (project == "missing") return absl::NotFoundError(project);
              return std::make_unique<StubBackend>(project == "denied");
            },
            [projects](const http::Peer&) -> std::optional<std::string> {
              if (projects != 1) return std::nullopt;
              return "only";
            });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void StartTcp(int projects = 1) {
    HttpOptions options;
    options.tcp_address = "127.0.0.1:0";
    options.bearer_token = kToken;
    Start(std::move(options), projects);
  }

  // Sends `request` on a new connection and returns everything until the
  // server closes it (requests send Connection: close).
  std::string Exchange(const std::string& request) {
    return Talk(Connect(), request);
  }
  int Connect() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->tcp_port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }
  static std::string Talk(int fd, const std::string& request) {
    EXPECT_TRUE(http::WriteAll(fd, request, absl::Seconds(5)));
    std::string out;
    while (http::ReadSome(fd, out, absl::Seconds(5))) {
    }
    close(fd);
    return out;
  }

  static std::string Get(const std::string& path,
                         const std::string& headers = absl::StrCat(
                             "Authorization: Bearer ", kToken, "\r\n")) {
    return absl::StrCat("GET ", path,
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                        headers, "\r\n");
  }
  static std::string Post(const std::string& path, const std::string& body,
                          const std::string& extra = "") {
    return absl::StrCat("POST ", path,
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                        "Authorization: Bearer ",
                        kToken,
                        "\r\nContent-Type: application/json\r\n"
                        "Content-Length: ",
                        body.size(), "\r\n", extra, "\r\n", body);
  }
  static json Body(const std::string& response) {
    const size_t at = response.find("\r\n\r\n");
    if (at == std::string::npos) return nullptr;
    return json::parse(response.substr(at + 4), nullptr, false);
  }

  std::unique_ptr<A2aHttpServer> server_;
};

const char kCard[] = "/projects/p1/.well-known/agent-card.json";

TEST_F(HttpServerTest, CardWithTheToken) {
  StartTcp();
  const std::string out = Exchange(Get(kCard));
  ASSERT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
  const json card = Body(out);
  EXPECT_EQ(card["url"], "http://127.0.0.1/projects/p1/a2a");
  EXPECT_EQ(card["protocolVersion"], "0.3.0");
}

// Attack: no token, a wrong one, one that differs only in its last byte, a
// prefix of it: all 401.
TEST_F(HttpServerTest, TcpWithoutTheRightTokenIs401) {
  StartTcp();
  std::string wrong_last = kToken;
  wrong_last.back() = 'g';
  for (const std::string& auth :
       {std::string(), std::string("Authorization: Basic eDp5\r\n"),
        absl::StrCat("Authorization: Bearer ", wrong_last, "\r\n"),
        absl::StrCat("Authorization: Bearer ", std::string(kToken, 31),
                     "\r\n")}) {
    const std::string out = Exchange(Get(kCard, auth));
    EXPECT_EQ(out.rfind("HTTP/1.1 401 ", 0), 0u) << auth << out;
    EXPECT_EQ(Body(out)["error"]["code"], kInvalidRequest);
  }
  const std::string body =
      R"({"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"t"}})";
  const std::string post = absl::StrCat(
      "POST /projects/p1/a2a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Connection: close\r\nContent-Type: application/json\r\n"
      "Content-Length: ",
      body.size(), "\r\n\r\n", body);
  EXPECT_EQ(Exchange(post).rfind("HTTP/1.1 401 ", 0), 0u);
}

// Attack: DNS rebinding, a page's request with a foreign Host or Origin.
TEST_F(HttpServerTest, ForeignHostOrOriginIs403) {
  StartTcp();
  std::string request = Get(kCard);
  request.replace(request.find("Host: 127.0.0.1"), strlen("Host: 127.0.0.1"),
                  "Host: evil.example");
  std::string out = Exchange(request);
  EXPECT_EQ(out.rfind("HTTP/1.1 403 ", 0), 0u) << out;
  out =
      Exchange(Get(kCard, absl::StrCat("Authorization: Bearer ", kToken,
                                       "\r\nOrigin: http://evil.example\r\n")));
  EXPECT_EQ(out.rfind("HTTP/1.1 403 ", 0), 0u) << out;
  out =
      Exchange(Get(kCard, absl::StrCat("Authorization: Bearer ", kToken,
                                       "\r\nOrigin: http://127.0.0.1:3\r\n")));
  EXPECT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
}

TEST_F(HttpServerTest, RefusesTcpWithoutAToken) {
  HttpOptions options;
  options.tcp_address = "127.0.0.1:0";
  EXPECT_TRUE(absl::IsFailedPrecondition(
      A2aHttpServer::Start(std::move(options), nullptr, nullptr).status()));
  HttpOptions exposed;
  exposed.tcp_address = "0.0.0.0:0";
  exposed.bearer_token = kToken;
  EXPECT_FALSE(A2aHttpServer::Start(std::move(exposed), nullptr, nullptr).ok());
}

TEST_F(HttpServerTest, RoutesAndBounds) {
  HttpOptions options;
  options.tcp_address = "127.0.0.1:0";
  options.bearer_token = kToken;
  options.max_body_bytes = 1024;
  options.max_header_bytes = 2048;
  Start(std::move(options));
  EXPECT_EQ(Exchange(Get("/projects/../etc/.well-known/agent-card.json"))
                .rfind("HTTP/1.1 404 ", 0),
            0u);
  EXPECT_EQ(Exchange(Get("/projects/missing/.well-known/agent-card.json"))
                .rfind("HTTP/1.1 404 ", 0),
            0u);
  EXPECT_EQ(Exchange(Get("/projects/p1/a2a")).rfind("HTTP/1.1 405 ", 0), 0u);
  // The root card: the only project's.
  std::string out = Exchange(Get("/.well-known/agent-card.json"));
  ASSERT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
  EXPECT_EQ(Body(out)["url"], "http://127.0.0.1/projects/only/a2a");
  // A denied project's card: 403 with the protocol-level error.
  out = Exchange(Get("/projects/denied/.well-known/agent-card.json"));
  EXPECT_EQ(out.rfind("HTTP/1.1 403 ", 0), 0u) << out;
  EXPECT_EQ(Body(out)["error"]["code"], kProtocolDenied);
  // Bounds: body, head, chunked.
  out = Exchange(Post("/projects/p1/a2a", std::string(2000, ' ')));
  EXPECT_EQ(out.rfind("HTTP/1.1 413 ", 0), 0u) << out;
  out = Exchange(
      Get(kCard, absl::StrCat("X-Big: ", std::string(4000, 'a'), "\r\n")));
  EXPECT_EQ(out.rfind("HTTP/1.1 431 ", 0), 0u) << out;
  out = Exchange(
      "POST /projects/p1/a2a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 411 ", 0), 0u) << out;
  // A JSON-RPC error in a 200 answer, with its id.
  out = Exchange(
      Post("/projects/p1/a2a", R"({"jsonrpc":"2.0","id":9,"method":"nope"})"));
  EXPECT_EQ(Body(out)["error"]["code"], kMethodNotFound);
  EXPECT_EQ(Body(out)["id"], 9);
}

TEST_F(HttpServerTest, RootCardNeedsExactlyOneProject) {
  StartTcp(/*projects=*/2);
  EXPECT_EQ(
      Exchange(Get("/.well-known/agent-card.json")).rfind("HTTP/1.1 404 ", 0),
      0u);
}

TEST_F(HttpServerTest, MessageStreamIsServerSentEvents) {
  StartTcp();
  const std::string out = Exchange(Post(
      "/projects/p1/a2a",
      R"({"jsonrpc":"2.0","id":"s","method":"message/stream","params":{"message":{"kind":"message","messageId":"m","role":"user","parts":[{"kind":"text","text":"hi"}]}}})"));
  ASSERT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
  EXPECT_NE(out.find("Content-Type: text/event-stream"), std::string::npos);
  std::vector<json> events;
  size_t at = 0;
  while ((at = out.find("data: ", at)) != std::string::npos) {
    const size_t end = out.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    events.push_back(json::parse(out.substr(at + 6, end - at - 6)));
    at = end;
  }
  ASSERT_EQ(events.size(), 2u) << out;
  EXPECT_EQ(events[0]["result"]["kind"], "task");
  EXPECT_EQ(events[1]["result"]["final"], true);
  EXPECT_EQ(events[1]["id"], "s");
}

TEST_F(HttpServerTest, UnixSocketNeedsNoToken) {
  char dir[] = "/tmp/a2a-http-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/a2a.sock");
  HttpOptions options;
  options.unix_path = path;
  Start(std::move(options));
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string out =
      Talk(fd,
           "GET /projects/p1/.well-known/agent-card.json HTTP/1.1\r\n"
           "Host: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
  EXPECT_EQ(Body(out)["url"], "http://localhost/projects/p1/a2a");
  EXPECT_FALSE(Body(out).contains("security"));
  server_.reset();
  rmdir(dir);
}

// Beyond max_connections a connection gets 503 with Retry-After and is
// closed; a connection the client closed frees its slot at once (before the
// server has joined its thread).
TEST_F(HttpServerTest, ConnectionsBeyondTheCapGet503UntilOneCloses) {
  HttpOptions options;
  options.tcp_address = "127.0.0.1:0";
  options.bearer_token = kToken;
  options.max_connections = 2;
  Start(std::move(options));
  const int first = Connect();
  const int second = Connect();
  // Accepted in order: both hold their slots when the third comes.
  std::string out = Exchange(Get(kCard));
  EXPECT_EQ(out.rfind("HTTP/1.1 503 ", 0), 0u) << out;
  EXPECT_NE(out.find("Retry-After: 1\r\n"), std::string::npos) << out;
  close(first);
  // The server sees the end of `first` (its thread returns) well within this.
  usleep(200'000);
  out = Exchange(Get(kCard));
  EXPECT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
  close(second);
}

// A connection that sends nothing is closed after idle_timeout.
TEST_F(HttpServerTest, AnIdleConnectionIsClosed) {
  HttpOptions options;
  options.tcp_address = "127.0.0.1:0";
  options.bearer_token = kToken;
  options.idle_timeout = absl::Milliseconds(300);
  Start(std::move(options));
  const int fd = Connect();
  const absl::Time start = absl::Now();
  std::string out;
  while (http::ReadSome(fd, out, absl::Seconds(5))) {
  }
  const absl::Duration held = absl::Now() - start;
  EXPECT_EQ(out, "");
  EXPECT_GE(held, absl::Milliseconds(250));
  EXPECT_LT(held, absl::Seconds(3)) << "the idle connection was kept";
  close(fd);
}

// Slowloris: a head sent one byte at a time, each well within idle_timeout
// of the last, is still cut off when the whole head has not come within
// idle_timeout; so is a body dripped in the same way.
TEST_F(HttpServerTest, AHeadOrBodyDrippedInIsCutOffAtTheDeadline) {
  HttpOptions options;
  options.tcp_address = "127.0.0.1:0";
  options.bearer_token = kToken;
  options.idle_timeout = absl::Milliseconds(400);
  Start(std::move(options));
  const std::string body = R"({"jsonrpc":"2.0","id":1,"method":"nope"})";
  for (const bool drip_body : {false, true}) {
    const std::string request = Post("/projects/p1/a2a", body);
    const size_t drip_from = drip_body ? request.size() - body.size() : 0;
    const int fd = Connect();
    ASSERT_TRUE(
        http::WriteAll(fd, request.substr(0, drip_from), absl::Seconds(5)));
    const absl::Time start = absl::Now();
    // Cut off: the server ends the connection (end of stream, or a reset
    // once it has closed the socket) while bytes still come.
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

}  // namespace
}  // namespace jcs::protocol::a2a
