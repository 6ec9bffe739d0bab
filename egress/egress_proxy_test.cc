// Integration tests of the egress proxy with a real io_uring loop, real
// clients (curl, openssl s_client, raw sockets) and python3 origin servers.
// Every server listens on 127.0.0.1 only; names resolve through an injected
// resolver (no real DNS).
#include "egress/egress_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "egress/test_client_hello.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loop/event_loop.h"

namespace jcs::egress {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string TmpDir() {
  static std::string dir = [] {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/egressXXXXXX";
    char* d = mkdtemp(tmpl.data());
    return std::string(d ? d : "/tmp");
  }();
  return dir;
}

// Runs argv, returns the exit status; stdout+stderr into *out.
int RunCommand(const std::vector<std::string>& argv, std::string* out) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) {
    if (out != nullptr) out->append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ListenLocal(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int ConnectLocal(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n =
        send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads until EOF, `until` appears, or the timeout.
std::string ReadFor(int fd, int timeout_ms, const std::string& until = "") {
  std::string out;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - std::chrono::steady_clock::now())
                             .count());
    if (left <= 0) break;
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) break;
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

constexpr char kServerPy[] = R"PY(
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(("hello %s host=%s conn=%s\n" % (self.path,
            self.headers.get("Host"), self.headers.get("Connection"))).encode())
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.reply(b"posted " + self.rfile.read(n) + b"\n")
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if sys.argv[1] == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
)PY";

// A python3 origin server on 127.0.0.1 (plain or TLS).
class Origin {
 public:
  explicit Origin(bool tls) {
    const std::string script = TmpDir() + "/server.py";
    std::ofstream(script) << kServerPy;
    int pipefd[2];
    EXPECT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(pipefd[1], 1);
      const std::string cert = TmpDir() + "/cert.pem";
      const std::string key = TmpDir() + "/key.pem";
      execlp("python3", "python3", script.c_str(), tls ? "tls" : "plain",
             cert.c_str(), key.c_str(), nullptr);
      _exit(127);
    }
    close(pipefd[1]);
    std::string line;
    char c;
    while (read(pipefd[0], &c, 1) == 1 && c != '\n') line += c;
    close(pipefd[0]);
    port_ = static_cast<uint16_t>(atoi(line.c_str()));
    EXPECT_NE(port_, 0) << "python3 origin server did not start";
  }
  ~Origin() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A raw TCP origin on 127.0.0.1 that records every byte it receives, so a
// test can tell exactly what passed the proxy. It answers each segment that
// starts with "GET " or "POST " and ends with a blank line with a short HTTP
// response ("ok N", N counting the answers).
class Recorder {
 public:
  Recorder() {
    listen_fd_ = ListenLocal(&port_);
    EXPECT_GE(listen_fd_, 0);
    EXPECT_EQ(pipe2(stop_, O_CLOEXEC), 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~Recorder() {
    (void)!write(stop_[1], "x", 1);
    thread_.join();
    close(stop_[0]);
    close(stop_[1]);
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string Received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  // Waits until `n` connections were accepted and closed by the peer (the
  // proxy closes its upstream side when it refuses or ends a tunnel);
  // returns what was received by then.
  std::string ReceivedAfterClosed(int n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      return closed_ >= n;
    })) << "the proxy did not close its upstream connection";
    return received_;
  }

 private:
  void Run() {
    std::vector<int> clients;
    std::map<int, std::string> segment;  // per client: bytes since the last
                                         // blank line
    for (;;) {
      std::vector<pollfd> fds = {{stop_[0], POLLIN, 0},
                                 {listen_fd_, POLLIN, 0}};
      for (int c : clients) fds.push_back({c, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) break;
      if (fds[1].revents & POLLIN) {
        const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) clients.push_back(c);
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        const int c = fds[i].fd;
        char buf[65536];
        const ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) {
          close(c);
          clients.erase(std::find(clients.begin(), clients.end(), c));
          segment.erase(c);
          std::lock_guard<std::mutex> lock(mu_);
          ++closed_;
          cv_.notify_all();
          continue;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          received_.append(buf, static_cast<size_t>(n));
        }
        std::string& seg = segment[c];
        seg.append(buf, static_cast<size_t>(n));
        for (size_t end; (end = seg.find("\r\n\r\n")) != std::string::npos;) {
          if (seg.rfind("GET ", 0) == 0 || seg.rfind("POST ", 0) == 0) {
            const std::string body = "ok " + std::to_string(++answers_);
            SendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
          }
          seg.erase(0, end + 4);
        }
      }
    }
    for (int c : clients) close(c);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  int stop_[2] = {-1, -1};
  int answers_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string received_;
  int closed_ = 0;
};

// The proxy on its own loop thread.
class Harness {
 public:
  Harness(EgressPolicy policy, EgressLimits limits = {}) {
    std::promise<void> ready;
    thread_ = std::thread([&, policy = std::move(policy), limits] {
      absl::StatusOr<std::unique_ptr<runtime::EventLoop>> loop =
          runtime::EventLoop::Create();
      ASSERT_TRUE(loop.ok()) << loop.status();
      EgressOptions options;
      options.resolve = [](const std::string& host)
          -> absl::StatusOr<std::vector<IpAddress>> {
        static const std::map<std::string, std::vector<std::string>> kNames = {
            {"api.example.test", {"127.0.0.1"}},
            {"other.example.test", {"127.0.0.1"}},
            {"loopback.example.test", {"127.0.0.1"}},
            {"metadata.example.test", {"169.254.169.254"}},
            {"mixed.example.test", {"203.0.113.10", "10.0.0.5"}},
            {"self.example.test", {"127.0.0.1"}},
        };
        auto it = kNames.find(host);
        if (it == kNames.end()) return absl::NotFoundError(host);
        std::vector<IpAddress> out;
        for (const std::string& a : it->second) {
          out.push_back(*IpAddress::Parse(a));
        }
        return out;
      };
      absl::StatusOr<std::unique_ptr<EgressProxy>> proxy = EgressProxy::Create(
          loop->get(), policy, limits,
          [this](const EgressDenial& d) {
            std::lock_guard<std::mutex> lock(mu_);
            denials_.push_back(d);
            cv_.notify_all();
          },
          std::move(options));
      ASSERT_TRUE(proxy.ok()) << proxy.status();
      const int fd = ListenLocal(&port_);
      ASSERT_GE(fd, 0);
      ASSERT_TRUE((*proxy)->Serve(fd).ok());
      loop_ = loop->get();
      proxy_ = proxy->get();
      ready.set_value();
      ASSERT_TRUE((*loop)->Run().ok());
      (*proxy)->Shutdown();
      proxy->reset();
    });
    ready.get_future().wait();
  }
  ~Harness() {
    loop_->Stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  EgressStats stats() const { return proxy_->stats(); }

  // Waits until at least n denials arrived; returns them.
  std::vector<EgressDenial> Denials(size_t n, int timeout_ms = 5000) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                 [&] { return denials_.size() >= n; });
    return denials_;
  }

 private:
  std::thread thread_;
  runtime::EventLoop* loop_ = nullptr;
  EgressProxy* proxy_ = nullptr;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<EgressDenial> denials_;
};

EgressPolicy ApiPolicy() {
  EgressPolicy p;
  p.allow = {{"api.example.test", std::nullopt},
             {"other.example.test", std::nullopt},
             {"loopback.example.test", std::nullopt},
             {"metadata.example.test", std::nullopt},
             {"mixed.example.test", std::nullopt},
             {"self.example.test", std::nullopt}};
  p.allow_private = {{"api.example.test", std::nullopt},
                     {"other.example.test", std::nullopt},
                     {"self.example.test", std::nullopt}};
  return p;
}

void ExpectDenial(const EgressDenial& d, const std::string& host, uint16_t port,
                  const std::string& reason, const std::string& detail) {
  EXPECT_EQ(d.host, host);
  EXPECT_EQ(d.port, port);
  EXPECT_EQ(d.reason, reason);
  EXPECT_EQ(d.detail, detail);
}

class EgressProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);
    std::string out;
    const int rc = RunCommand(
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
         "/CN=api.example.test", "-addext",
         "subjectAltName=DNS:api.example.test", "-days", "2", "-keyout",
         TmpDir() + "/key.pem", "-out", TmpDir() + "/cert.pem"},
        &out);
    ASSERT_EQ(rc, 0) << out;
  }
};

TEST_F(EgressProxyTest, CurlHttpsThroughConnect) {
  Origin origin(/*tls=*/true);
  Harness h(ApiPolicy());
  std::string out;
  const int rc = RunCommand(
      {"curl", "-sS", "--max-time", "10", "--proxy", h.url(), "--cacert",
       TmpDir() + "/cert.pem",
       "https://api.example.test:" + std::to_string(origin.port()) + "/hello"},
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("hello /hello host=api.example.test:"));
  EXPECT_TRUE(h.Denials(0, 0).empty());
  EXPECT_EQ(h.stats().allowed, 1u);
  EXPECT_GT(h.stats().bytes_in, 100u);
  EXPECT_GT(h.stats().bytes_out, 100u);
}

TEST_F(EgressProxyTest, CurlHttpAbsoluteForm) {
  Origin origin(/*tls=*/false);
  Harness h(ApiPolicy());
  const std::string url =
      "http://api.example.test:" + std::to_string(origin.port()) + "/a?b=c";
  std::string out;
  int rc = RunCommand(
      {"curl", "-sS", "--max-time", "10", "--proxy", h.url(), url}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("hello /a?b=c host=api.example.test:"));
  EXPECT_THAT(out, HasSubstr("conn=close"));
  out.clear();
  rc = RunCommand({"curl", "-sS", "--max-time", "10", "--proxy", h.url(),
                   "--data", "payload-123", url},
                  &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("posted payload-123"));
  EXPECT_TRUE(h.Denials(0, 0).empty());
  EXPECT_EQ(h.stats().allowed, 2u);
}

TEST_F(EgressProxyTest, PythonUrllibThroughProxy) {
  Origin origin(/*tls=*/false);
  Harness h(ApiPolicy());
  const std::string code =
      "import urllib.request,sys\n"
      "p=urllib.request.ProxyHandler({'http':sys.argv[1]})\n"
      "print(urllib.request.build_opener(p).open(sys.argv[2],timeout=10)"
      ".read().decode())\n";
  std::string out;
  const int rc = RunCommand(
      {"python3", "-c", code, h.url(),
       "http://api.example.test:" + std::to_string(origin.port()) + "/py"},
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("hello /py"));
}

TEST_F(EgressProxyTest, DeniedHost) {
  Harness h(ApiPolicy());
  std::string out;
  const int rc = RunCommand({"curl", "-sS", "--max-time", "10", "--proxy",
                             h.url(), "https://evil.example.org/"},
                            &out);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("403"));
  std::vector<EgressDenial> d = h.Denials(1);
  ASSERT_EQ(d.size(), 1u);
  ExpectDenial(d[0], "evil.example.org", 443, kEndpointDenied,
               "host_not_allowlisted");
  EXPECT_EQ(h.stats().denied, 1u);
  EXPECT_EQ(h.stats().allowed, 0u);
}

TEST_F(EgressProxyTest, DeniedHostAnswerBody) {
  Harness h(ApiPolicy());
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "GET http://notapi.example.test/ HTTP/1.1\r\n\r\n");
  const std::string answer = ReadFor(fd, 5000);
  close(fd);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 403 Forbidden\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\n\r\nnetwork_endpoint_denied "
                                "host_not_allowlisted\n"));
  ExpectDenial(h.Denials(1).at(0), "notapi.example.test", 80, kEndpointDenied,
               "host_not_allowlisted");
}

TEST_F(EgressProxyTest, DeniedScheme) {
  Harness h(ApiPolicy());
  std::string out;
  const int rc = RunCommand(
      {"curl", "-sS", "--max-time", "10", "--proxy", h.url(), "-o", "/dev/null",
       "-w", "%{http_code}", "ftp://api.example.test/file"},
      &out);
  EXPECT_THAT(out, HasSubstr("403")) << rc;
  ExpectDenial(h.Denials(1).at(0), "api.example.test", 21, kProtocolDenied,
               "scheme_not_allowed ftp");

  // https in absolute-form is allowed as a scheme but not originated.
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "GET https://api.example.test/ HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
  close(fd);
  ExpectDenial(h.Denials(2).at(1), "api.example.test", 443, kProtocolDenied,
               "scheme_not_supported https");
}

TEST_F(EgressProxyTest, HttpsNotAllowed) {
  EgressPolicy p = ApiPolicy();
  p.allowed_schemes = {"http"};
  Harness h(p);
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT api.example.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
  close(fd);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", 443, kProtocolDenied,
               "scheme_not_allowed https");
}

TEST_F(EgressProxyTest, IpLiteralNotAllowlisted) {
  Origin origin(/*tls=*/false);
  Harness h(ApiPolicy());
  std::string out;
  RunCommand({"curl", "-sS", "--max-time", "10", "--proxy", h.url(), "-o",
              "/dev/null", "-w", "%{http_code}",
              "http://127.0.0.1:" + std::to_string(origin.port()) + "/"},
             &out);
  EXPECT_THAT(out, HasSubstr("403"));
  ExpectDenial(h.Denials(1).at(0), "127.0.0.1", origin.port(), kEndpointDenied,
               "ip_literal_not_allowlisted");
  // inet_aton forms are IP literals too.
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT 2130706433:443 HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
  close(fd);
  ExpectDenial(h.Denials(2).at(1), "127.0.0.1", 443, kEndpointDenied,
               "ip_literal_not_allowlisted");
}

TEST_F(EgressProxyTest, AllowlistedPrivateIpLiteralNeedsAllowPrivate) {
  Origin origin(/*tls=*/false);
  EgressPolicy p = ApiPolicy();
  p.allow.push_back({"127.0.0.1", std::nullopt});
  Harness h(p);
  const std::string url =
      "http://127.0.0.1:" + std::to_string(origin.port()) + "/ip";
  std::string out;
  RunCommand({"curl", "-sS", "--max-time", "10", "--proxy", h.url(), url},
             &out);
  EXPECT_THAT(out, HasSubstr("private_address_not_allowed 127.0.0.1"));
  ExpectDenial(h.Denials(1).at(0), "127.0.0.1", origin.port(), kEndpointDenied,
               "private_address_not_allowed 127.0.0.1");
}

TEST_F(EgressProxyTest, NamesResolvingToPrivateAddresses) {
  Harness h(ApiPolicy());
  struct Case {
    const char* host;
    const char* detail;
  } cases[] = {
      {"loopback.example.test", "resolves_to_private_address 127.0.0.1"},
      {"metadata.example.test", "resolves_to_private_address 169.254.169.254"},
      {"mixed.example.test", "resolves_to_private_address 10.0.0.5"},
  };
  size_t n = 0;
  for (const Case& c : cases) {
    const int fd = ConnectLocal(h.port());
    SendAll(fd, std::string("CONNECT ") + c.host + ":443 HTTP/1.1\r\n\r\n");
    EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403")) << c.host;
    close(fd);
    ExpectDenial(h.Denials(n + 1).at(n), c.host, 443, kEndpointDenied,
                 c.detail);
    ++n;
  }
  // A name the resolver does not know.
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT nx.api.example.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 502"));
  close(fd);
  ExpectDenial(h.Denials(n + 1).at(n), "nx.api.example.test", 443,
               kEndpointDenied, "dns_failed");
  EXPECT_EQ(h.stats().allowed, 0u);
}

TEST_F(EgressProxyTest, SniMismatchWithOpenssl) {
  Origin origin(/*tls=*/true);
  Harness h(ApiPolicy());
  std::string out;
  const int rc =
      RunCommand({"timeout", "10", "openssl", "s_client", "-proxy",
                  "127.0.0.1:" + std::to_string(h.port()), "-connect",
                  "api.example.test:" + std::to_string(origin.port()),
                  "-servername", "other.example.test"},
                 &out);
  EXPECT_NE(rc, 0) << out;
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kEndpointDenied, "sni_mismatch other.example.test");
  EXPECT_EQ(h.stats().allowed, 0u);
}

TEST_F(EgressProxyTest, SniCheckedWithCraftedHellos) {
  Origin origin(/*tls=*/true);
  Harness h(ApiPolicy());
  const std::string target =
      "api.example.test:" + std::to_string(origin.port());
  struct Case {
    testing::HelloOptions hello;
    const char* reason;
    const char* detail;
  } cases[] = {
      {{.server_names = {"evil.example.org"}, .record_size = 40},
       kEndpointDenied,
       "sni_mismatch evil.example.org"},
      {{}, kEndpointDenied, "sni_missing"},
      {{.server_names = {"api.example.test"}, .ech = true},
       kProtocolDenied,
       "tls_ech_not_allowed"},
  };
  size_t n = 0;
  for (const Case& c : cases) {
    const int fd = ConnectLocal(h.port());
    SendAll(fd, "CONNECT " + target + " HTTP/1.1\r\n\r\n");
    EXPECT_THAT(ReadFor(fd, 5000, "\r\n\r\n"),
                StartsWith("HTTP/1.1 200 Connection established"));
    SendAll(fd, testing::BuildClientHello(c.hello));
    // A TLS access_denied alert, then the end.
    EXPECT_EQ(ReadFor(fd, 5000),
              std::string("\x15\x03\x03\x00\x02\x02\x31", 7));
    close(fd);
    ExpectDenial(h.Denials(n + 1).at(n), "api.example.test", origin.port(),
                 c.reason, c.detail);
    ++n;
  }
}

TEST_F(EgressProxyTest, PlainHttpInsideTunnelAndRawTcpDenied) {
  Origin origin(/*tls=*/false);
  Harness h(ApiPolicy());
  const std::string target =
      "api.example.test:" + std::to_string(origin.port());
  int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT " + target + " HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000, "\r\n\r\n"), HasSubstr(" 200 "));
  SendAll(fd, "GET /tunnel HTTP/1.1\r\nHost: " + target +
                  "\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), HasSubstr("hello /tunnel"));
  close(fd);

  fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT " + target + " HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000, "\r\n\r\n"), HasSubstr(" 200 "));
  SendAll(fd, "SSH-2.0-OpenSSH_9.2p1 Debian\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
  close(fd);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kProtocolDenied,
               "scheme_not_allowed tcp (malformed_request_line)");
}

TEST_F(EgressProxyTest, ProxyLoop) {
  EgressPolicy p = ApiPolicy();
  p.allow.push_back({"127.0.0.1", std::nullopt});
  p.allow_private.push_back({"127.0.0.1", std::nullopt});
  Harness h(p);
  const std::string port = std::to_string(h.port());
  for (const std::string host : {"127.0.0.1", "self.example.test"}) {
    const int fd = ConnectLocal(h.port());
    SendAll(fd, "CONNECT " + host + ":" + port + " HTTP/1.1\r\n\r\n");
    EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
    close(fd);
  }
  std::vector<EgressDenial> d = h.Denials(2);
  ASSERT_EQ(d.size(), 2u);
  ExpectDenial(d[0], "127.0.0.1", h.port(), kEndpointDenied, "proxy_loop");
  ExpectDenial(d[1], "self.example.test", h.port(), kEndpointDenied,
               "proxy_loop");
}

TEST_F(EgressProxyTest, HostHeaderMismatch) {
  Origin origin(/*tls=*/false);
  Harness h(ApiPolicy());
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "GET http://api.example.test:" + std::to_string(origin.port()) +
                  "/ HTTP/1.1\r\nHost: evil.example.org\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
  close(fd);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kEndpointDenied, "host_header_mismatch");
}

TEST_F(EgressProxyTest, MalformedAndOversized) {
  EgressLimits limits;
  limits.max_header_bytes = 1024;
  Harness h(ApiPolicy(), limits);
  int fd = ConnectLocal(h.port());
  SendAll(fd, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 400 Bad Request"));
  close(fd);
  fd = ConnectLocal(h.port());
  SendAll(fd, "GET http://api.example.test/ HTTP/1.1\r\nX: " +
                  std::string(2000, 'a'));
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 431"));
  close(fd);
  fd = ConnectLocal(h.port());
  SendAll(fd,
          "POST http://api.example.test/ HTTP/1.1\r\nTransfer-Encoding: "
          "chunked\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 501"));
  close(fd);
  fd = ConnectLocal(h.port());
  SendAll(fd, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9) +
                  std::string(2000, '\0'));
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 400"));
  close(fd);
  EXPECT_TRUE(h.Denials(0, 0).empty());
}

TEST_F(EgressProxyTest, UpstreamRefused) {
  uint16_t dead_port = 0;
  close(ListenLocal(&dead_port));  // nothing listens there now
  Harness h(ApiPolicy());
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT api.example.test:" + std::to_string(dead_port) +
                  " HTTP/1.1\r\n\r\n");
  const std::string answer = ReadFor(fd, 5000);
  close(fd);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 502 Bad Gateway"));
  EXPECT_THAT(answer, HasSubstr("upstream_connect_failed"));
}

TEST_F(EgressProxyTest, ConnectionLimit) {
  EgressLimits limits;
  limits.max_connections = 1;
  Harness h(ApiPolicy(), limits);
  const int first = ConnectLocal(h.port());
  SendAll(first, "CONNECT api.example");  // incomplete: holds its slot
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int second = ConnectLocal(h.port());
  EXPECT_THAT(ReadFor(second, 5000),
              StartsWith("HTTP/1.1 503 Service Unavailable"));
  close(second);
  close(first);
  // The slot is free again once the first connection is gone.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int third = ConnectLocal(h.port());
  SendAll(third, "CONNECT evil.example.org:443 HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(third, 5000), StartsWith("HTTP/1.1 403"));
  close(third);
  EXPECT_EQ(h.stats().connections, 3u);
}

TEST_F(EgressProxyTest, IdleTimeout) {
  EgressLimits limits;
  limits.idle_timeout_ms = 300;
  Harness h(ApiPolicy(), limits);
  const auto start = std::chrono::steady_clock::now();
  const int fd = ConnectLocal(h.port());
  const std::string answer = ReadFor(fd, 5000);
  close(fd);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 408"));
  EXPECT_GE(ms, 250);
  EXPECT_LT(ms, 3000);
}

TEST_F(EgressProxyTest, IdleTunnelClosed) {
  Origin origin(/*tls=*/false);
  EgressLimits limits;
  limits.idle_timeout_ms = 400;
  Harness h(ApiPolicy(), limits);
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT api.example.test:" + std::to_string(origin.port()) +
                  " HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000, "\r\n\r\n"), HasSubstr(" 200 "));
  // Nothing sent: the peek ends (scheme tcp, denied) before the idle limit.
  const auto start = std::chrono::steady_clock::now();
  const std::string rest = ReadFor(fd, 5000);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  close(fd);
  EXPECT_LT(ms, 3000);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kProtocolDenied,
               "scheme_not_allowed tcp (no_request_before_deadline)");
}

TEST_F(EgressProxyTest, ByteLimit) {
  Origin origin(/*tls=*/false);
  EgressLimits limits;
  limits.max_bytes_in = 50;  // smaller than any response
  Harness h(ApiPolicy(), limits);
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "GET http://api.example.test:" + std::to_string(origin.port()) +
                  "/ HTTP/1.1\r\n\r\n");
  const std::string got = ReadFor(fd, 5000);
  close(fd);
  EXPECT_LE(got.size(), 50u);
  EXPECT_LE(h.stats().bytes_in, 50u);
}

// Opens a tunnel to api.example.test:port and returns the client socket
// after the 200.
int OpenTunnel(const Harness& h, uint16_t port) {
  const int fd = ConnectLocal(h.port());
  SendAll(fd, "CONNECT api.example.test:" + std::to_string(port) +
                  " HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadFor(fd, 5000, "\r\n\r\n"),
              StartsWith("HTTP/1.1 200 Connection established"));
  return fd;
}

std::string HostOf(const Recorder& r) {
  return "api.example.test:" + std::to_string(r.port());
}

// The bypass: "A " looked like the start of an HTTP request line, so the
// tunnel was classified http and then relayed raw bytes (tcp is not an
// allowed scheme).
TEST_F(EgressProxyTest, TunnelPrefixThatLooksLikeHttpIsTcp) {
  Recorder origin;
  Harness h(ApiPolicy());
  const int fd = OpenTunnel(h, origin.port());
  SendAll(fd, "A ");
  SendAll(fd, std::string("\x00\x01 raw tcp payload\r\n", 20));
  const std::string answer = ReadFor(fd, 5000);
  close(fd);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(answer, HasSubstr("scheme_not_allowed tcp"));
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kProtocolDenied,
               "scheme_not_allowed tcp (malformed_request_line)");
  EXPECT_EQ(origin.ReceivedAfterClosed(1), "");
  EXPECT_EQ(h.stats().allowed, 0u);
}

TEST_F(EgressProxyTest, SlowTunnelHeadIsRefusedAtTheDeadline) {
  Recorder origin;
  EgressLimits limits;
  limits.idle_timeout_ms = 500;
  Harness h(ApiPolicy(), limits);
  const int fd = OpenTunnel(h, origin.port());
  const auto start = std::chrono::steady_clock::now();
  SendAll(fd, "A ");  // and nothing more
  EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403"));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  close(fd);
  EXPECT_LT(ms, 3000);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kProtocolDenied,
               "scheme_not_allowed tcp (request_head_incomplete_at_deadline)");
  EXPECT_EQ(origin.ReceivedAfterClosed(1), "");
}

TEST_F(EgressProxyTest, TunnelRequestsMustNameTheConnectTarget) {
  Recorder origin;
  EgressLimits limits;
  limits.max_header_bytes = 1024;
  Harness h(ApiPolicy(), limits);
  const std::string port = std::to_string(origin.port());
  struct Case {
    std::string request;
    const char* reason;
    std::string detail;
  } cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", kProtocolDenied,
       "scheme_not_allowed tcp (missing_host_header)"},
      {"GET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n", kEndpointDenied,
       "host_header_mismatch evil.example.test"},
      {"GET / HTTP/1.1\r\nHost: evil.example.test:" + port + "\r\n\r\n",
       kEndpointDenied, "host_header_mismatch evil.example.test:" + port},
      // The same host on another port, and without a port (80).
      {"GET / HTTP/1.1\r\nHost: api.example.test:1\r\n\r\n", kEndpointDenied,
       "host_header_mismatch api.example.test:1"},
      {"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n", kEndpointDenied,
       "host_header_mismatch api.example.test"},
      {"GET http://evil.example.test:" + port +
           "/ HTTP/1.1\r\nHost: " + "api.example.test:" + port + "\r\n\r\n",
       kEndpointDenied, "request_target_mismatch evil.example.test:" + port},
      {"GET / HTTP/1.1\r\nHost: api.example.test:" + port +
           "\r\nX: " + std::string(2000, 'a') + "\r\n\r\n",
       kProtocolDenied,
       "scheme_not_allowed tcp (request_header_fields_too_large)"},
  };
  size_t n = 0;
  for (const Case& c : cases) {
    const int fd = OpenTunnel(h, origin.port());
    SendAll(fd, c.request);
    EXPECT_THAT(ReadFor(fd, 5000), StartsWith("HTTP/1.1 403")) << c.detail;
    close(fd);
    ExpectDenial(h.Denials(n + 1).at(n), "api.example.test", origin.port(),
                 c.reason, c.detail);
    ++n;
  }
  EXPECT_EQ(origin.ReceivedAfterClosed(static_cast<int>(n)), "");
  EXPECT_EQ(h.stats().allowed, 0u);
}

TEST_F(EgressProxyTest, PipelinedRawTcpAfterAValidRequest) {
  Recorder origin;
  Harness h(ApiPolicy());
  const int fd = OpenTunnel(h, origin.port());
  const std::string first =
      "GET /1 HTTP/1.1\r\nHost: " + HostOf(origin) + "\r\n\r\n";
  SendAll(fd, first + "SSH-2.0-OpenSSH_9.2p1 Debian\r\n");
  ReadFor(fd, 5000);  // the first answer or not: the tunnel closes
  close(fd);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kProtocolDenied,
               "scheme_not_allowed tcp (request 2: malformed_request_line)");
  EXPECT_EQ(origin.ReceivedAfterClosed(1), first);
}

TEST_F(EgressProxyTest, KeepAliveRequestsAreCheckedOneByOne) {
  Recorder origin;
  Harness h(ApiPolicy());
  const int fd = OpenTunnel(h, origin.port());
  const std::string host = "Host: " + HostOf(origin) + "\r\n";
  const std::string first = "GET /1 HTTP/1.1\r\n" + host + "\r\n";
  const std::string second =
      "POST /2 HTTP/1.1\r\n" + host +
      "Content-Length: 30\r\n\r\nGET / HTTP/1.1\r\nHost: evil\r\n\r\n";
  SendAll(fd, first);
  EXPECT_THAT(ReadFor(fd, 5000, "ok 1"), HasSubstr("ok 1"));
  SendAll(fd, second);  // the body looks like a request: it is only a body
  EXPECT_THAT(ReadFor(fd, 5000, "ok 2"), HasSubstr("ok 2"));
  SendAll(fd, "GET /3 HTTP/1.1\r\nHost: evil.example.test\r\n\r\n");
  EXPECT_EQ(ReadFor(fd, 5000), "");  // closed, no answer mixed in
  close(fd);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kEndpointDenied,
               "host_header_mismatch evil.example.test (request 3)");
  EXPECT_EQ(origin.ReceivedAfterClosed(1), first + second);
  EXPECT_EQ(h.stats().allowed, 1u);
}

TEST_F(EgressProxyTest, ChunkedBodiesAreFramed) {
  Recorder origin;
  Harness h(ApiPolicy());
  const int fd = OpenTunnel(h, origin.port());
  const std::string host = "Host: " + HostOf(origin) + "\r\n";
  const std::string first =
      "POST /1 HTTP/1.1\r\n" + host +
      "Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n";
  const std::string second = "GET /2 HTTP/1.1\r\n" + host + "\r\n";
  const std::string third = "POST /3 HTTP/1.1\r\n" + host +
                            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello";
  // Split at odd places: framing does not depend on the reads.
  const std::string all = first + second + third + "XX raw tcp";
  for (size_t i = 0; i < all.size(); i += 7) {
    SendAll(fd, all.substr(i, 7));
  }
  ReadFor(fd, 5000);
  close(fd);
  ExpectDenial(
      h.Denials(1).at(0), "api.example.test", origin.port(), kProtocolDenied,
      "scheme_not_allowed tcp (request 3: chunk_data_not_followed_by_crlf)");
  EXPECT_EQ(origin.ReceivedAfterClosed(1), first + second + third);
}

TEST_F(EgressProxyTest, SlowSecondHeadIsRefused) {
  Recorder origin;
  EgressLimits limits;
  limits.idle_timeout_ms = 500;
  Harness h(ApiPolicy(), limits);
  const int fd = OpenTunnel(h, origin.port());
  const std::string first =
      "GET /1 HTTP/1.1\r\nHost: " + HostOf(origin) + "\r\n\r\n";
  SendAll(fd, first);
  EXPECT_THAT(ReadFor(fd, 5000, "ok 1"), HasSubstr("ok 1"));
  SendAll(fd, "GET /2 HTTP/1.1\r\nHo");  // and nothing more
  EXPECT_EQ(ReadFor(fd, 5000), "");
  close(fd);
  ExpectDenial(h.Denials(1).at(0), "api.example.test", origin.port(),
               kProtocolDenied,
               "scheme_not_allowed tcp (request 2: "
               "request_head_incomplete_at_deadline)");
  EXPECT_EQ(origin.ReceivedAfterClosed(1), first);
}

TEST_F(EgressProxyTest, RawTcpTunnelWhenTcpIsAllowed) {
  Recorder origin;
  EgressPolicy p = ApiPolicy();
  p.allowed_schemes = {"http", "https", "tcp"};
  Harness h(p);
  const int fd = OpenTunnel(h, origin.port());
  const std::string raw("A \x00\x01 raw tcp payload\r\n", 22);
  SendAll(fd, raw);
  shutdown(fd, SHUT_WR);
  ReadFor(fd, 5000);
  close(fd);
  EXPECT_EQ(origin.ReceivedAfterClosed(1), raw);
  EXPECT_TRUE(h.Denials(0, 0).empty());
}

TEST_F(EgressProxyTest, CurlProxytunnelPlainHttp) {
  Origin origin(/*tls=*/false);
  Harness h(ApiPolicy());
  std::string out;
  const int rc = RunCommand(
      {"curl", "-sS", "--max-time", "10", "--proxytunnel", "--proxy", h.url(),
       "http://api.example.test:" + std::to_string(origin.port()) + "/t"},
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("hello /t host=api.example.test:"));
  EXPECT_TRUE(h.Denials(0, 0).empty());
}

}  // namespace
}  // namespace jcs::egress
