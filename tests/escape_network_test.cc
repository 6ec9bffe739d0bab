// Escape suite: the network namespace. The test listens on the host's
// loopback (TCP and UDP, kernel-chosen ports) and on a unique abstract unix
// socket; nothing in the jail may reach them, in either --net mode.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

// Tries every way out and prints the errno (0 = success) of each.
constexpr char kReachOut[] = R"PY(
import json, socket, sys
tcp_port, udp_port, abstract = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = {}
def attempt(name, f):
    try:
        f()
        out[name] = 0
    except socket.gaierror as e:
        out[name] = 'gai %d' % e.errno
    except OSError as e:
        out[name] = e.errno if e.errno is not None else -1
def tcp(host, port):
    s = socket.create_connection((host, port), timeout=3)
    s.sendall(b'escaped')
    s.close()
def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'escaped', (host, port))
    s.close()
def unix_abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect('\0' + abstract)
    s.sendall(b'escaped')
    s.close()
attempt('host_tcp', lambda: tcp('127.0.0.1', tcp_port))
attempt('host_udp', lambda: udp('127.0.0.1', udp_port))
attempt('abstract', unix_abstract)
if len(sys.argv) < 5:  # the host-side control skips the outside world
    attempt('public', lambda: tcp('1.1.1.1', 80))
    attempt('dns_name', lambda: socket.getaddrinfo('example.com', 80))
    attempt('dns_name2', lambda: socket.getaddrinfo('deb.debian.org', 443))
    nameservers = [l.split()[1] for l in open('/etc/resolv.conf')
                   if l.startswith('nameserver')]
    for ns in nameservers[:2]:
        if ':' not in ns:
            attempt('ns_' + ns, lambda: tcp(ns, 53))
out['interfaces'] = sorted(name for _, name in socket.if_nameindex())
print(json.dumps(out))
)PY";

class EscapeNetwork : public ::testing::Test {
 protected:
  void SetUp() override {
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    tcp_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(tcp_, 0);
    ASSERT_EQ(bind(tcp_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(tcp_, 16), 0);
    ASSERT_EQ(getsockname(tcp_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    tcp_port_ = ntohs(addr.sin_port);

    addr.sin_port = 0;
    udp_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(udp_, 0);
    ASSERT_EQ(bind(udp_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    len = sizeof(addr);
    ASSERT_EQ(getsockname(udp_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    udp_port_ = ntohs(addr.sin_port);

    abstract_name_ = UniqueToken("jcs-escape-abstract-");
    sockaddr_un un = {};
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path + 1, abstract_name_.data(), abstract_name_.size());
    const socklen_t un_len = static_cast<socklen_t>(
        offsetof(sockaddr_un, sun_path) + 1 + abstract_name_.size());
    unix_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(unix_, 0);
    ASSERT_EQ(bind(unix_, reinterpret_cast<sockaddr*>(&un), un_len), 0);
    ASSERT_EQ(listen(unix_, 16), 0);
  }
  void TearDown() override {
    for (int fd : {tcp_, udp_, unix_}) {
      if (fd >= 0) close(fd);
    }
  }

  // Nothing connected to or was sent to the host's listeners.
  void ExpectHostUntouched() {
    char buf[64];
    EXPECT_LT(accept(tcp_, nullptr, nullptr), 0) << "TCP connection arrived";
    EXPECT_LT(recv(udp_, buf, sizeof(buf), 0), 0) << "UDP datagram arrived";
    EXPECT_LT(accept(unix_, nullptr, nullptr), 0)
        << "abstract unix connection arrived";
  }

  JcsResult Attack(const std::string& net) {
    return RunJail(
        project_, {"--net", net, "--timeout", "40"},
        Python(kReachOut, {std::to_string(tcp_port_), std::to_string(udp_port_),
                           abstract_name_}));
  }

  Project project_;
  int tcp_ = -1, udp_ = -1, unix_ = -1;
  int tcp_port_ = 0, udp_port_ = 0;
  std::string abstract_name_;
};

void ExpectAllFailed(const nlohmann::json& in) {
  for (const auto& [name, result] : in.items()) {
    // A UDP sendto "succeeds" locally even to a closed port; whether the
    // datagram arrived is checked on the host.
    if (name == "interfaces" || name == "host_udp") continue;
    EXPECT_NE(result, 0) << name << " succeeded from the jail: " << in.dump();
  }
  EXPECT_TRUE(in.contains("host_tcp") && in.contains("abstract") &&
              in.contains("dns_name"))
      << in.dump();
}

// Control: the same script run on the host reaches the listeners.
TEST_F(EscapeNetwork, ControlTheHostListenersAreReachableWithoutAJail) {
  const ProcessResult r = RunProcess(
      Python(kReachOut, {std::to_string(tcp_port_), std::to_string(udp_port_),
                         abstract_name_, "local-only"}));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_EQ(in["host_tcp"], 0);
  EXPECT_EQ(in["host_udp"], 0);
  EXPECT_EQ(in["abstract"], 0);
  // Drain what the control sent so the jail tests start clean.
  const int conn = accept(tcp_, nullptr, nullptr);
  EXPECT_GE(conn, 0);
  if (conn >= 0) close(conn);
}

TEST_F(EscapeNetwork, NetNoneHasOnlyLoopbackAndReachesNothing) {
  const JcsResult r = Attack("none");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(r.wall_s, 30) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_EQ(in["interfaces"], nlohmann::json({"lo"}));
  ExpectAllFailed(in);
  ExpectHostUntouched();
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["layers"]["network"], "none (empty namespace)");
}

TEST_F(EscapeNetwork, NetLoopbackIsTheJailsOwnLoopback) {
  const JcsResult r = Attack("loopback");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(r.wall_s, 30) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_EQ(in["interfaces"], nlohmann::json({"lo"}));
  ExpectAllFailed(in);
  // With lo up, the host's port is simply closed in this namespace.
  EXPECT_EQ(in["host_tcp"], ECONNREFUSED);
  ExpectHostUntouched();
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["layers"]["network"], "loopback only");
}

// `lo` is down under --net none and up under --net loopback, where a server
// and a client inside the jail talk over 127.0.0.1.
TEST_F(EscapeNetwork, LoopbackWorksInsideOnlyWhenAsked) {
  const std::string code = R"PY(
import json, socket, threading
out = {}
try:
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    def serve():
        c, _ = srv.accept()
        c.sendall(c.recv(16).replace(b'ping', b'pong'))
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    cli = socket.create_connection(('127.0.0.1', port), timeout=5)
    cli.sendall(b'ping')
    out['reply'] = cli.recv(16).decode()
except OSError as e:
    out['error'] = e.errno
print(json.dumps(out))
)PY";
  const JcsResult up = RunJail(project_, {"--net", "loopback"}, Python(code));
  ASSERT_EQ(up.exit_code, 0) << up.Describe();
  const nlohmann::json in_up = LastJsonLine(up.out);
  EXPECT_EQ(in_up["reply"], "pong") << up.Describe();

  const JcsResult down = RunJail(project_, {"--net", "none"}, Python(code));
  ASSERT_EQ(down.exit_code, 0) << down.Describe();
  const nlohmann::json in_down = LastJsonLine(down.out);
  EXPECT_FALSE(in_down.contains("reply")) << down.Describe();
  EXPECT_TRUE(in_down.contains("error")) << down.Describe();
}

}  // namespace
}  // namespace jcs::testing
