// Escape suite: network egress (`jcs run --net egress`). The jail's only way
// out is the supervisor's proxy; real clients inside the jail (curl, Python's
// urllib, openssl s_client) reach allowed local HTTP and HTTPS servers through
// it, and every other route is refused and reported: denied hosts, denied
// schemes, IP literals, names resolving to loopback, SNI that differs from the
// CONNECT host, a tunnel carrying anything but complete HTTP requests for the
// CONNECT target (when "tcp" is not an allowed scheme), programs that ignore
// the proxy variables, DNS.
//
// Servers run on 127.0.0.1 of the host only (the proxy runs in the host's
// network namespace, the jail has its own empty one).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool WaitForPort(int port, double timeout_s) {
  for (int i = 0; i < timeout_s * 50; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rc =
        connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
    close(fd);
    if (rc == 0) return true;
    usleep(20'000);
  }
  return false;
}

// A one-line body the servers return, so a test can tell a real answer.
constexpr char kServer[] = R"PY(
import http.server, ssl, sys
port, body, cert = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(('127.0.0.1', port), H)
if cert != '-':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert + '/cert.pem', cert + '/key.pem')
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
)PY";

class EscapeEgress : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = UniqueToken("EGRESSOK");
    // A self-signed certificate for "localhost", readable inside the jail.
    const ProcessResult gen = RunProcess(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost", "-keyout", project_.Path("key.pem"),
         "-out", project_.Path("cert.pem")});
    ASSERT_TRUE(gen.exited && gen.exit_code == 0) << gen.Describe();
    chmod(project_.Path("key.pem").c_str(), 0644);
    http_port_ = FreePort();
    https_port_ = FreePort();
    ProcessOptions server_options;
    server_options.kill_after_s = 120;
    http_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/python3", "-c", kServer,
                                 std::to_string(http_port_), token_, "-"},
        server_options);
    https_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/python3", "-c", kServer,
                                 std::to_string(https_port_), token_,
                                 project_.root()},
        server_options);
    ASSERT_TRUE(WaitForPort(http_port_, 10));
    ASSERT_TRUE(WaitForPort(https_port_, 10));
  }
  void TearDown() override {
    for (auto* server : {&http_, &https_}) {
      if (*server != nullptr) {
        (*server)->Signal(SIGKILL);
        (*server)->Wait();
      }
    }
  }

  std::string Http() const { return "localhost:" + std::to_string(http_port_); }
  std::string Https() const {
    return "localhost:" + std::to_string(https_port_);
  }
  // Flags allowing both local servers (names resolving to loopback need
  // --allow-private-host).
  std::vector<std::string> AllowLocal() const {
    return {"--net",        "egress", "--allow-host",         Http(),
            "--allow-host", Https(),  "--allow-private-host", "localhost"};
  }
  static std::vector<nlohmann::json> Denials(const JcsResult& r) {
    std::vector<nlohmann::json> out;
    if (!r.has_report || !r.report.contains("egress")) return out;
    for (const nlohmann::json& d : r.report["egress"]["denials"]) {
      out.push_back(d);
    }
    return out;
  }

  Project project_;
  std::string token_;
  int http_port_ = 0;
  int https_port_ = 0;
  std::unique_ptr<Process> http_, https_;
};

TEST_F(EscapeEgress, CurlAndUrllibReachAllowedHttpAndHttpsServers) {
  const JcsResult r = RunJail(
      project_, AllowLocal(),
      Bash("curl -sS --max-time 10 http://" + Http() +
           "/ && echo && curl -sS --max-time 10 --cacert cert.pem https://" +
           Https() +
           "/ && echo && python3 -c \"import urllib.request,sys; "
           "print(urllib.request.urlopen('http://" +
           Http() + "/', timeout=10).read().decode())\""));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, token_ + "\n" + token_ + "\n" + token_ + "\n");
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["egress"]["allowed"], 3) << r.report["egress"];
  EXPECT_EQ(r.report["egress"]["denied"], 0);
  EXPECT_GT(r.report["egress"]["bytes_in"].get<uint64_t>(), 0u);
  // The proxy variables are set for every common client.
  const JcsResult env = RunJail(project_, AllowLocal(), {"/usr/bin/env"});
  for (const char* var :
       {"HTTP_PROXY=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
        "ALL_PROXY=http://127.0.0.1:3128", "NO_PROXY=\n"}) {
    EXPECT_NE(env.out.find(var), std::string::npos) << var << env.out;
  }
}

TEST_F(EscapeEgress, DeniedHostIsRefusedAndReported) {
  // example.test is not allowlisted; the answer never reaches a resolver.
  const JcsResult r =
      RunJail(project_, AllowLocal(),
              Bash("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "
                   "http://example.test/"));
  EXPECT_EQ(r.out, "403") << r.Describe();
  const std::vector<nlohmann::json> denials = Denials(r);
  ASSERT_EQ(denials.size(), 1u) << r.Describe();
  EXPECT_EQ(denials[0]["host"], "example.test");
  EXPECT_EQ(denials[0]["port"], 80);
  EXPECT_EQ(denials[0]["reason"], "network_endpoint_denied");
  EXPECT_EQ(denials[0]["detail"], "host_not_allowlisted");
}

// --allow-private-host is the stronger statement: it allows the host too,
// exactly (before, it allowed nothing without a matching --allow-host).
TEST_F(EscapeEgress, AllowPrivateHostAloneAllowsThatHostOnly) {
  const JcsResult r = RunJail(
      project_, {"--net", "egress", "--allow-private-host", Http()},
      Bash("curl -sS --max-time 10 http://" + Http() +
           "/ && echo && curl -sS -o /dev/null -w '%{http_code}' --max-time "
           "10 http://" +
           Https() + "/"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, token_ + "\n403") << r.Describe();
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["egress"]["allowed"], 1) << r.report["egress"];
  EXPECT_EQ(r.report["egress"]["denied"], 1) << r.report["egress"];
  // What was refused, in one line (not the program's: curl printed none).
  EXPECT_EQ(r.err, "jcs: the egress proxy refused 1 connection: " + Https() +
                       " (network_endpoint_denied)\n");
}

TEST_F(EscapeEgress, DeniedSchemeIsRefusedAndReported) {
  std::vector<std::string> flags = AllowLocal();
  flags.insert(flags.end(), {"--allow-scheme", "https"});
  const JcsResult r = RunJail(
      project_, flags,
      Bash("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 http://" +
           Http() +
           "/; echo; curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "
           "ftp://" +
           Http() + "/x"));
  EXPECT_EQ(r.out, "403\n403") << r.Describe();
  const std::vector<nlohmann::json> denials = Denials(r);
  ASSERT_EQ(denials.size(), 2u) << r.Describe();
  for (const nlohmann::json& d : denials) {
    EXPECT_EQ(d["reason"], "network_protocol_denied") << d;
  }
}

TEST_F(EscapeEgress, IpLiteralsAndNamesResolvingToLoopbackAreRefused) {
  // 127.0.0.1 is not allowlisted as a literal; "localhost" is allowlisted but
  // resolves to loopback and lacks --allow-private-host.
  const JcsResult r = RunJail(
      project_,
      {"--net", "egress", "--allow-host", Http(), "--allow-host", "127.0.0.2"},
      Bash("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "
           "http://127.0.0.1:" +
           std::to_string(http_port_) +
           "/; echo; curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "
           "http://" +
           Http() +
           "/; echo; curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "
           "http://127.0.0.2:" +
           std::to_string(http_port_) + "/"));
  EXPECT_EQ(r.out, "403\n403\n403") << r.Describe();
  const std::vector<nlohmann::json> denials = Denials(r);
  ASSERT_EQ(denials.size(), 3u) << r.Describe();
  EXPECT_EQ(denials[0]["detail"], "ip_literal_not_allowlisted");
  EXPECT_EQ(denials[1]["detail"], "resolves_to_private_address 127.0.0.1");
  // An allowlisted literal that is not public still needs
  // --allow-private-host.
  EXPECT_NE(denials[2]["detail"].get<std::string>().find("private"),
            std::string::npos)
      << denials[2];
  EXPECT_EQ(r.out.find(token_), std::string::npos);
}

TEST_F(EscapeEgress, MismatchedSniIsRefused) {
  // CONNECT to the allowed host, then a ClientHello naming another one.
  const JcsResult r = RunJail(
      project_, AllowLocal(),
      Bash("echo | openssl s_client -proxy 127.0.0.1:3128 -connect " + Https() +
           " -servername evil.test -CAfile cert.pem 2>&1 | head -c 2000; "
           "curl -sS --max-time 10 --cacert cert.pem https://" +
           Https() + "/"));
  // Only the honest curl request gets the server's answer.
  EXPECT_NE(r.out.find(token_), std::string::npos) << r.Describe();
  EXPECT_EQ(r.out.find(token_), r.out.rfind(token_)) << r.Describe();
  const std::vector<nlohmann::json> denials = Denials(r);
  ASSERT_EQ(denials.size(), 1u) << r.Describe();
  EXPECT_EQ(denials[0]["detail"], "sni_mismatch evil.test");
  EXPECT_EQ(denials[0]["host"], "localhost");
}

// A raw TCP server on the host that appends every byte it receives to a file
// (and answers "RECORDER-GOT n"), and counts closed connections in another.
constexpr char kRecorder[] = R"PY(
import socket, sys, threading
port, path = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen(16)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        with lock, open(path, 'ab') as f:
            f.write(d)
        c.sendall(b'RECORDER-GOT %d\n' % len(d))
    c.close()
    with lock, open(path + '.closed', 'a') as f:
        f.write('x')
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)PY";

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(EscapeEgress, TunnelCarriesOnlyHttpRequestsForTheConnectTarget) {
  const int recorder_port = FreePort();
  const std::string recorded = project_.base() + "/recorded";
  ProcessOptions options;
  options.kill_after_s = 120;
  Process recorder({"/usr/bin/python3", "-c", kRecorder,
                    std::to_string(recorder_port), recorded},
                   options);
  ASSERT_TRUE(WaitForPort(recorder_port, 10));
  // WaitForPort's probe is one connection (without a byte): wait until the
  // recorder has seen it end, so that the count below is the proxy's.
  const auto WaitForClosed = [&](size_t n) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ReadWhole(recorded + ".closed").size() < n &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ReadWhole(recorded + ".closed").size();
  };
  ASSERT_EQ(WaitForClosed(1), 1u);
  const std::string target = "localhost:" + std::to_string(recorder_port);
  std::vector<std::string> flags = AllowLocal();
  flags.insert(flags.end(), {"--allow-host", target});
  // Inside the jail: two tunnels to the recorder that try to carry something
  // else than HTTP for it, then an honest HTTP request through a tunnel.
  const JcsResult r = RunJail(project_, flags,
                              Python(R"PY(
import json, socket, subprocess, sys
target, http = sys.argv[1], sys.argv[2]
def tunnel(*chunks):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
    s.sendall(b'CONNECT ' + target.encode() + b' HTTP/1.1\r\n\r\n')
    head = b''
    while b'\r\n\r\n' not in head:
        d = s.recv(1)
        if not d:
            return 'no tunnel: %r' % head
        head += d
    if b' 200 ' not in head:
        return 'no tunnel: %r' % head
    for c in chunks:
        s.sendall(c)
    got = b''
    try:
        while b'RECORDER-GOT' not in got:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except OSError as e:
        got += b' ' + type(e).__name__.encode()
    return got.decode('latin-1')
out = {}
# "A " reads like the start of a request line; raw bytes follow (no CRLF).
out['a_space'] = tunnel(b'A ', b'\x00\x01\x02 raw tcp for the recorder')
out['host_mismatch'] = tunnel(b'GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n')
out['honest'] = subprocess.run(
    ['curl', '-sS', '--max-time', '10', '--proxytunnel', 'http://' + http + '/'],
    capture_output=True, text=True).stdout
print(json.dumps(out))
)PY",
                                     {target, Http()}));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json out = nlohmann::json::parse(r.out);
  // Refused with the 403 text, never an answer of the recorder.
  for (const char* attack : {"a_space", "host_mismatch"}) {
    const std::string got = out[attack].get<std::string>();
    EXPECT_EQ(got.rfind("HTTP/1.1 403", 0), 0u) << attack << ": " << got;
    EXPECT_EQ(got.find("RECORDER-GOT"), std::string::npos) << attack;
  }
  EXPECT_EQ(out["honest"], token_) << out;
  const std::vector<nlohmann::json> denials = Denials(r);
  ASSERT_EQ(denials.size(), 2u) << r.Describe();
  EXPECT_EQ(denials[0]["reason"], "network_protocol_denied");
  EXPECT_EQ(denials[0]["detail"],
            "scheme_not_allowed tcp (malformed_request_line)");
  EXPECT_EQ(denials[1]["reason"], "network_endpoint_denied");
  EXPECT_EQ(denials[1]["detail"], "host_header_mismatch evil.test");
  for (const nlohmann::json& d : denials) {
    EXPECT_EQ(d["host"], "localhost");
    EXPECT_EQ(d["port"], recorder_port);
  }
  EXPECT_EQ(r.report["egress"]["allowed"], 1) << r.report["egress"];
  // The proxy connected to the recorder for both tunnels (it answers 200
  // only once connected) and closed both; not one byte reached it.
  EXPECT_EQ(WaitForClosed(3), 3u);
  EXPECT_EQ(ReadWhole(recorded), "");
  recorder.Signal(SIGKILL);
  recorder.Wait();
}

TEST_F(EscapeEgress, ProgramsIgnoringTheProxyAndDnsGetNowhere) {
  // Direct connections: the host's servers are not in the jail's namespace
  // (127.0.0.1 there is the jail's own lo), and there is no other route; no
  // resolver exists either.
  const JcsResult r = RunJail(
      project_, AllowLocal(),
      Python(R"PY(
import json, socket, sys
out = {}
def attempt(name, fn):
    try:
        out[name] = 'OK ' + str(fn())
    except OSError as e:
        out[name] = 'ERR ' + type(e).__name__
def direct(port):
    s = socket.create_connection(('127.0.0.1', port), timeout=3)
    s.sendall(b'GET / HTTP/1.0\r\n\r\n')
    return s.recv(100)
attempt('direct_http', lambda: direct(int(sys.argv[1])))
attempt('direct_https', lambda: direct(int(sys.argv[2])))
attempt('dns', lambda: socket.getaddrinfo('example.com', 80))
def direct_dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b'\x12\x34' + b'\x00' * 10, ('127.0.0.53', 53))
    return s.recv(512)
attempt('dns_udp', direct_dns)
with open('/proc/net/route') as f:
    out['routes'] = len(f.read().splitlines()) - 1
print(json.dumps(out))
)PY",
             {std::to_string(http_port_), std::to_string(https_port_)}));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["direct_http"], "ERR ConnectionRefusedError") << out;
  EXPECT_EQ(out["direct_https"], "ERR ConnectionRefusedError") << out;
  EXPECT_EQ(out["dns"].get<std::string>().rfind("ERR ", 0), 0u) << out;
  EXPECT_EQ(out["dns_udp"].get<std::string>().rfind("ERR ", 0), 0u) << out;
  EXPECT_EQ(out["routes"], 0) << "the jail has no route but lo";
  EXPECT_EQ(r.out.find(token_), std::string::npos);
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["egress"]["connections"], 0);
}

TEST_F(EscapeEgress, AllowFlagsNeedEgressModeAndValidEntries) {
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{
           {"--allow-host", "example.com"},
           {"--net", "egress", "--allow-host", "exa mple.com"},
           {"--net", "egress", "--allow-host", "example.com:99999"},
           {"--net", "egress", "--allow-scheme", "ht tp"},
           {"--net", "bogus"}}) {
    const JcsResult r = RunJail(project_, flags, {"/bin/true"});
    EXPECT_EQ(r.exit_code, 125) << r.Describe();
    EXPECT_EQ(r.StderrLines(), 1) << r.Describe();
  }
}

}  // namespace
}  // namespace jcs::testing
