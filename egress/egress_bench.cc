// Throughput and added latency of the egress proxy's CONNECT tunnel (issue 5
// figures), against direct connections to the same local server, in one run:
//
//   ./bazelw run -c opt //egress:egress_bench -- --mb=100 --conns=200
//   --rounds=3
//
// A local origin (threads with blocking sockets on 127.0.0.1) answers
// "GET /big" with --mb MiB and "GET /small" with 2 bytes, then closes. The
// proxy runs on its own io_uring loop thread; "bench.test" resolves to
// 127.0.0.1 through an injected resolver (allowlisted and in allow_private).
//   throughput: bytes of the body / time from connect to EOF, direct vs
//               through "CONNECT bench.test:PORT" (plain HTTP in the tunnel);
//   latency:    connect -> request -> EOF of /small, --conns times each way;
//               p50/p99 of both and the difference.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "egress/egress_proxy.h"
#include "loop/event_loop.h"

namespace jcs::egress {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "egress_bench: %s\n", what.c_str());
  exit(1);
}

int ListenLocal(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(fd, 512) != 0) {
    Die(std::string("listen: ") + strerror(errno));
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
    Die(std::string("connect: ") + strerror(errno));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

void SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    data += w;
    n -= static_cast<size_t>(w);
  }
}

std::string ReadHead(int fd) {
  std::string head;
  char c;
  while (!absl::EndsWith(head, "\r\n\r\n") && recv(fd, &c, 1, 0) == 1) {
    head += c;
  }
  return head;
}

uint64_t ReadToEof(int fd) {
  static thread_local std::vector<char> buf(1 << 18);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) return total;
    total += static_cast<uint64_t>(n);
  }
}

// The origin: one thread per connection.
void ServeOrigin(int listen_fd, uint64_t big_bytes) {
  std::vector<char> chunk(1 << 20, 'x');
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    std::thread([fd, big_bytes, &chunk] {
      const std::string req = ReadHead(fd);
      if (absl::StartsWith(req, "GET /big")) {
        uint64_t left = big_bytes;
        while (left > 0) {
          const size_t n =
              static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
          SendAll(fd, chunk.data(), n);
          left -= n;
        }
      } else {
        SendAll(fd, "ok", 2);
      }
      close(fd);
    }).detach();
  }
}

// Returns the body bytes; `proxy_port` 0 means direct.
uint64_t Fetch(uint16_t origin_port, uint16_t proxy_port, const char* path) {
  int fd;
  if (proxy_port == 0) {
    fd = ConnectLocal(origin_port);
  } else {
    fd = ConnectLocal(proxy_port);
    const std::string connect =
        "CONNECT bench.test:" + std::to_string(origin_port) +
        " HTTP/1.1\r\n\r\n";
    SendAll(fd, connect.data(), connect.size());
    const std::string head = ReadHead(fd);
    if (head.find(" 200 ") == std::string::npos) {
      Die("CONNECT refused: " + head);
    }
  }
  // A tunnel carries only complete requests naming the CONNECT target.
  const std::string get =
      std::string("GET ") + path +
      " HTTP/1.1\r\nHost: bench.test:" + std::to_string(origin_port) +
      "\r\n\r\n";
  SendAll(fd, get.data(), get.size());
  const uint64_t n = ReadToEof(fd);
  close(fd);
  return n;
}

// CPU time of the whole process (every thread), for "cores busy" figures.
double CpuSeconds(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// Context switches of the whole process (voluntary: a thread slept).
long ContextSwitches() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()));
  return v[i];
}

int Main(int argc, char** argv) {
  // --proxied_only=1 skips the direct downloads (for profiling the proxy).
  int mb = 100, conns = 200, rounds = 3, pipe_kb = 0, proxied_only = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name, int* out) {
      const std::string prefix = std::string("--") + name + "=";
      if (!absl::StartsWith(a, prefix)) return false;
      if (!absl::SimpleAtoi(a.substr(prefix.size()), out) || *out < 1) {
        Die("bad " + a);
      }
      return true;
    };
    if (!value("mb", &mb) && !value("conns", &conns) &&
        !value("rounds", &rounds) && !value("pipe_kb", &pipe_kb) &&
        !value("proxied_only", &proxied_only)) {
      Die("unknown flag " + a +
          " (--mb=N --conns=N --rounds=N [--pipe_kb=N] [--proxied_only=1])");
    }
  }
  signal(SIGPIPE, SIG_IGN);
  const uint64_t big = static_cast<uint64_t>(mb) << 20;

  uint16_t origin_port = 0;
  const int origin_fd = ListenLocal(&origin_port);
  std::thread(ServeOrigin, origin_fd, big).detach();

  // The proxy on its loop thread.
  std::promise<uint16_t> ready;
  runtime::EventLoop* loop_ptr = nullptr;
  EgressProxy* proxy_ptr = nullptr;
  std::thread loop_thread([&] {
    auto loop = runtime::EventLoop::Create();
    if (!loop.ok()) Die(std::string(loop.status().message()));
    EgressPolicy policy;
    policy.allow = {{"bench.test", std::nullopt}};
    policy.allow_private = {{"bench.test", std::nullopt}};
    EgressLimits limits;
    limits.max_connections = 1024;
    limits.max_bytes_in = ~uint64_t{0};
    limits.max_bytes_out = ~uint64_t{0};
    EgressOptions options;
    if (pipe_kb > 0) options.pipe_bytes = pipe_kb << 10;
    options.resolve =
        [](const std::string&) -> absl::StatusOr<std::vector<IpAddress>> {
      return std::vector<IpAddress>{*IpAddress::Parse("127.0.0.1")};
    };
    auto proxy = EgressProxy::Create(
        loop->get(), policy, limits,
        [](const EgressDenial& d) {
          Die("denied: " + d.reason + " " + d.detail);
        },
        options);
    if (!proxy.ok()) Die(std::string(proxy.status().message()));
    uint16_t port = 0;
    const int fd = ListenLocal(&port);
    if (absl::Status s = (*proxy)->Serve(fd); !s.ok()) {
      Die(std::string(s.message()));
    }
    loop_ptr = loop->get();
    proxy_ptr = proxy->get();
    ready.set_value(port);
    (void)(*loop)->Run();
    (*proxy)->Shutdown();
  });
  const uint16_t proxy_port = ready.get_future().get();
  clockid_t loop_clock;
  if (pthread_getcpuclockid(loop_thread.native_handle(), &loop_clock) != 0) {
    Die("pthread_getcpuclockid failed");
  }

  printf("egress_bench: %d MiB download x %d rounds, %d connections\n", mb,
         rounds, conns);
  double best_direct = 0, best_proxy = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int proxied = proxied_only ? 1 : 0; proxied < 2; ++proxied) {
      const auto t0 = Clock::now();
      const double cpu0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
      const double loop0 = CpuSeconds(loop_clock);
      const long switches0 = ContextSwitches();
      const uint64_t n = Fetch(origin_port, proxied ? proxy_port : 0, "/big");
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      const double cpu = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
      const double loop_cpu = CpuSeconds(loop_clock) - loop0;
      const long switches = ContextSwitches() - switches0;
      if (n != big) Die("short download: " + std::to_string(n));
      const double mbps = static_cast<double>(n) / (1 << 20) / s;
      // Cores busy: CPU time over wall time, of the whole process (origin,
      // client and proxy threads) and of the proxy's loop thread.
      printf(
          "  round %d %-7s %8.1f MiB/s  cpu %.2f cores (proxy loop %.2f)  "
          "%.1f context switches/MiB\n",
          r + 1, proxied ? "proxied" : "direct", mbps, cpu / s, loop_cpu / s,
          static_cast<double>(switches) / static_cast<double>(n >> 20));
      (proxied ? best_proxy : best_direct) =
          std::max(proxied ? best_proxy : best_direct, mbps);
    }
  }
  printf(
      "throughput (best of %d): direct %.1f MiB/s, proxied %.1f MiB/s, "
      "ratio %.2fx\n",
      rounds, best_direct, best_proxy, best_proxy / best_direct);

  std::vector<double> direct_ms, proxy_ms;
  for (int i = 0; i < conns; ++i) {
    for (int proxied = 0; proxied < 2; ++proxied) {
      const auto t0 = Clock::now();
      if (Fetch(origin_port, proxied ? proxy_port : 0, "/small") != 2) {
        Die("bad small response");
      }
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      (proxied ? proxy_ms : direct_ms).push_back(ms);
    }
  }
  const double d50 = Percentile(direct_ms, 50), d99 = Percentile(direct_ms, 99);
  const double p50 = Percentile(proxy_ms, 50), p99 = Percentile(proxy_ms, 99);
  printf("latency over %d connections (connect -> response EOF):\n", conns);
  printf("  direct  p50 %.3f ms  p99 %.3f ms\n", d50, d99);
  printf("  proxied p50 %.3f ms  p99 %.3f ms\n", p50, p99);
  printf("  added   p50 %.3f ms  p99 %.3f ms\n", p50 - d50, p99 - d99);
  const EgressStats st = proxy_ptr->stats();
  printf(
      "proxy stats: connections %llu allowed %llu denied %llu bytes_in %llu "
      "bytes_out %llu\n",
      static_cast<unsigned long long>(st.connections),
      static_cast<unsigned long long>(st.allowed),
      static_cast<unsigned long long>(st.denied),
      static_cast<unsigned long long>(st.bytes_in),
      static_cast<unsigned long long>(st.bytes_out));

  loop_ptr->Stop();
  loop_thread.join();
  fflush(stdout);
  _exit(0);  // detached origin threads
}

}  // namespace
}  // namespace jcs::egress

int main(int argc, char** argv) { return jcs::egress::Main(argc, argv); }
