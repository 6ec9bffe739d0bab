// Tool-call benchmark: end-to-end latency of a synchronous `exec` tool call
// through a running `jcs serve` (one persistent control connection, request to
// response) versus a plain posix_spawn of the same argv with stdout/stderr on
// pipes read to EOF and a waitpid -- the work a caller does without jcs. Both
// run in the same process, interleaved (alternating which goes first), so
// machine noise hits them alike. Every response is checked (status ok,
// exit_code 0); every plain run must exit 0. Nothing is cached.
//
//   ./bazelw build -c opt //tools:jcs //tools:tool_bench
//   d=$(mktemp -d)
//   printf 'socket_path: "%s/jcs.sock"\nstate_dir: "%s/state"\n' $d $d >$d/cfg
//   mkdir $d/root && sudo chown 1000:1000 $d/root
//   ./bazel-bin/tools/jcs serve --config $d/cfg & serve=$!
//   ./bazel-bin/tools/tool_bench --socket $d/jcs.sock --root $d/root
//   kill -TERM $serve; wait $serve; rm -rf $d
//
// Flags: --socket PATH (required), --root DIR (project root; default: a
// temporary directory chowned to uid 1000 and removed afterwards),
// --iterations N (default 200), --warmup N (default 10), --pause-ms N
// (default 0: back to back; an agent's think time between calls lets the
// daemon rebuild its warm jails off the call's path), --argv ARG
// (repeatable, one argv element each; default /bin/true).
//
// Scale mode (issue 10): --scale 0,100000,1000000 [--scale-dir DIR] builds a
// tree of each size (100-file directories, a few secrets) and reports, per
// size, the sensitive-path index's build time, control-API ping latency
// while it builds, the daemon's VmRSS (/proc/<pid>/status, pid from the
// socket's peer credentials) and exec vs plain p50/p99, 20 ms between calls.
//
// Prints median/p90/p99/min (ms) of both, the ratio of the medians against
// the target "p50 <= 1.5x plain", and the median of every field of the
// response's timing_us (the jail's setup/teardown steps, µs).
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/json_fields.h"
#include "proto/control.pb.h"
#include "tools/control_client.h"

extern char** environ;

namespace {

namespace json_fields = jcs::json_fields;

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: tool_bench --socket PATH [--root DIR] [--iterations N=200]\n"
    "                  [--warmup N=10] [--pause-ms N=0] [--argv ARG]...\n"
    "\n"
    "Compares a synchronous `exec` tool call through `jcs serve` with a plain\n"
    "posix_spawn of the same argv (default: /bin/true). The daemon must\n"
    "already be running on PATH, e.g.:\n"
    "  printf 'socket_path: \"/tmp/tb/jcs.sock\"\\nstate_dir: "
    "\"/tmp/tb/state\"\\n' >/tmp/tb/cfg\n"
    "  jcs serve --config /tmp/tb/cfg &\n"
    "--root is the project root (owned by uid 1000); without it a temporary\n"
    "directory is created, chowned to 1000:1000 and removed afterwards.\n"
    "--argv is repeatable: --argv /bin/echo --argv hi runs `/bin/echo hi`.\n"
    "--scale 0,100000,1000000 [--scale-dir DIR=/tmp]: for each size, a fresh\n"
    "tree of that many files (100 per directory) in DIR, a project on it, the\n"
    "sensitive-path index's build time with ping latency while it builds, the\n"
    "daemon's VmRSS, then exec vs plain p50/p99 (300 iterations, 20 ms apart\n"
    "unless --iterations/--pause-ms say otherwise).\n"
    "--check: also print the targets (p50 <= 1.5x plain; scale mode: pings\n"
    "within 5 ms, VmRSS < 64 MiB) and exit 1 when one is missed.\n";

// --check: also print the project's targets beside the figures, and exit 1
// when one is missed (for CI and the closing figures; a user comparing
// runs wants the figures only).
bool check_targets = false;

int Usage(const std::string& error) {
  fprintf(stderr, "tool_bench: %s\n%s", error.c_str(), kUsage);
  return 2;
}

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

// posix_spawnp of argv with stdin on /dev/null and stdout/stderr on pipes that
// are read to EOF, then waitpid. Returns the wall time in ms, or -1 with
// `error` set when the spawn failed or the program did not exit 0.
double TimePlain(const std::vector<std::string>& argv, std::string* error) {
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const Clock::time_point start = Clock::now();
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    return -1;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    close(out[0]);
    close(out[1]);
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = -1;
  const int rc =
      posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  std::string text[2];
  if (rc == 0) {
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    char buffer[65536];
    while (open_fds > 0) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n > 0) {
          text[i].append(buffer, static_cast<size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  close(out[0]);
  close(err[0]);
  if (rc != 0) {
    *error = std::string("posix_spawnp: ") + strerror(rc);
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const double ms = MsSince(start);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *error = "plain run did not exit 0 (wait status " + std::to_string(status) +
             "), stderr: " + text[1];
    return -1;
  }
  return ms;
}

// One synchronous exec call; the wall time in ms, or -1 with `error` set.
// `timing` gets the numeric fields of the response's timing_us.
double TimeJcs(jcs::tools::ControlClient& client, const std::string& project,
               const std::string& args_json,
               std::map<std::string, double>* timing, std::string* scan_mode,
               std::string* error) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<std::string> doc =
      client.RunTool(project, "exec", args_json, "{}");
  const double ms = MsSince(start);
  if (!doc.ok()) {
    *error = doc.status().ToString();
    return -1;
  }
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() ||
      json_fields::String(parsed, "status") != "ok" ||
      !parsed.contains("result") || !parsed["result"].is_object()) {
    *error = "unexpected response: " + *doc;
    return -1;
  }
  const nlohmann::json& result = parsed["result"];
  if (!result.contains("exit_code") || !result["exit_code"].is_number() ||
      result["exit_code"].get<int64_t>() != 0 ||
      json_fields::String(result, "status") != "exited") {
    *error = "the program did not exit 0: " + *doc;
    return -1;
  }
  timing->clear();
  scan_mode->clear();
  if (parsed.contains("timing_us") && parsed["timing_us"].is_object()) {
    for (const auto& [step, us] : parsed["timing_us"].items()) {
      if (us.is_number()) (*timing)[step] = us.get<double>();
    }
    const nlohmann::json& scan =
        json_fields::Object(parsed["timing_us"], "scan");
    if (scan.is_object()) {
      *scan_mode = json_fields::String(scan, "mode");
      // The index's set taken on the loop (no worker hop) or after a drain.
      if (json_fields::Bool(scan, "on_loop", false))
        *scan_mode += " on the loop";
      if (scan.contains("reason")) {
        *scan_mode += " (" + scan["reason"].get<std::string>() + ")";
      }
    }
  }
  return ms;
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(
      std::max(1.0, std::ceil(p * static_cast<double>(sorted.size()))));
  return sorted[std::min(sorted.size(), rank) - 1];
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return Percentile(values, 0.5);
}

struct Samples {
  std::vector<double> plain_ms;
  std::vector<double> jcs_ms;
  std::map<std::string, std::vector<double>> timing_us;
  std::map<std::string, int> scan_modes;  // timing_us.scan.mode (reason)
};

// `warmup + iterations` rounds of one plain run and one jcs call, in
// alternating order, `pause_ms` apart; 0, or 1 after printing the failure.
int RunInterleaved(jcs::tools::ControlClient& client,
                   const std::string& project,
                   const std::vector<std::string>& command, int iterations,
                   int warmup, int pause_ms, Samples* samples) {
  const std::string args_json = nlohmann::json{{"argv", command}}.dump();
  std::map<std::string, double> timing;
  std::string scan_mode;
  for (int i = 0; i < warmup + iterations; ++i) {
    const bool measured = i >= warmup;
    if (pause_ms > 0) usleep(static_cast<useconds_t>(pause_ms) * 1000);
    // Alternate which variant goes first so neither always runs on a cache
    // the other just warmed.
    for (int turn = 0; turn < 2; ++turn) {
      const bool plain_turn = (turn == 0) == (i % 2 == 0);
      std::string error;
      if (plain_turn) {
        const double ms = TimePlain(command, &error);
        if (ms < 0) {
          fprintf(stderr, "tool_bench: iteration %d plain: %s\n", i,
                  error.c_str());
          return 1;
        }
        if (measured) samples->plain_ms.push_back(ms);
      } else {
        const double ms =
            TimeJcs(client, project, args_json, &timing, &scan_mode, &error);
        if (ms < 0) {
          fprintf(stderr, "tool_bench: iteration %d jcs: %s\n", i,
                  error.c_str());
          return 1;
        }
        if (measured) {
          samples->jcs_ms.push_back(ms);
          ++samples->scan_modes[scan_mode];
          for (const auto& [step, us] : timing) {
            samples->timing_us[step].push_back(us);
          }
        }
      }
    }
  }
  return 0;
}

// The daemon's pid, from the peer credentials of a connection to `socket`.
pid_t DaemonPid(const std::string& socket_path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  ucred cred = {};
  socklen_t len = sizeof(cred);
  pid_t pid = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    pid = cred.pid;
  }
  close(fd);
  return pid;
}

// VmRSS of `pid` in KiB (-1 when unreadable).
int64_t RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = -1;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                               absl::StripPrefix(line, "VmRSS:"), "kB")),
                           &kib)) {
        return kib;
      }
    }
  }
  return -1;
}

// A root of `files` empty files in directories of 100 (d000000/f00.c ...),
// plus two secrets (.env, keys/server.key), the root owned by uid 1000. The
// root's path, or "" after printing the error.
std::string MakeTree(const std::string& parent, int64_t files) {
  std::string root = parent + "/tool_bench_scale.XXXXXX";
  if (mkdtemp(root.data()) == nullptr) {
    fprintf(stderr, "tool_bench: mkdtemp in %s: %s\n", parent.c_str(),
            strerror(errno));
    return "";
  }
  chmod(root.c_str(), 0755);
  if (chown(root.c_str(), 1000, 1000) != 0) {
    fprintf(stderr, "tool_bench: chown 1000:1000 %s: %s\n", root.c_str(),
            strerror(errno));
    return "";
  }
  const auto touch = [](const std::string& path) {
    const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    close(fd);
    return true;
  };
  // The same two secrets at every size: the masks' own cost (mounts in the
  // jail) is then the same, and what changes is the tree.
  if (!touch(root + "/.env") || mkdir((root + "/keys").c_str(), 0755) != 0 ||
      !touch(root + "/keys/server.key")) {
    fprintf(stderr, "tool_bench: secrets in %s: %s\n", root.c_str(),
            strerror(errno));
    return "";
  }
  char name[64];
  for (int64_t dir = 0; dir * 100 < files; ++dir) {
    snprintf(name, sizeof(name), "/d%06lld", static_cast<long long>(dir));
    const std::string path = root + name;
    if (mkdir(path.c_str(), 0755) != 0) {
      fprintf(stderr, "tool_bench: mkdir %s: %s\n", path.c_str(),
              strerror(errno));
      return "";
    }
    for (int64_t f = 0; f < 100 && dir * 100 + f < files; ++f) {
      snprintf(name, sizeof(name), "/f%02lld.c", static_cast<long long>(f));
      if (!touch(path + name)) {
        fprintf(stderr, "tool_bench: create in %s: %s\n", path.c_str(),
                strerror(errno));
        return "";
      }
    }
  }
  return root;
}

// The upper bound of the highest log2 bucket (PingResponse.loop) that gained
// rounds between two snapshots: no round in between took longer.
uint64_t LongestRoundBoundUs(
    const google::protobuf::RepeatedField<uint64_t>& before,
    const google::protobuf::RepeatedField<uint64_t>& after) {
  for (int i = after.size() - 1; i >= 0; --i) {
    if (after[i] > (i < before.size() ? before[i] : 0)) return uint64_t{2} << i;
  }
  return 0;
}

// The scale mode (issue 10): for each size, a fresh tree, a project on it,
// the index build watched (diagnostics every 50 ms on one connection, pings
// every ms on another), then interleaved exec/plain calls.
int RunScale(const std::string& socket_path, const std::string& parent,
             const std::vector<int64_t>& sizes,
             const std::vector<std::string>& command, int iterations,
             int warmup, int pause_ms) {
  bool missed = false;  // a target missed, under --check
  const pid_t daemon = DaemonPid(socket_path);
  if (daemon <= 0) {
    fprintf(stderr, "tool_bench: no daemon on %s\n", socket_path.c_str());
    return 1;
  }
  printf(
      "scale benchmark: exec /bin/true vs plain, %d iterations (+%d "
      "warm-up), %d ms between calls, daemon pid %d, VmRSS %.1f MiB "
      "before\n",
      iterations, warmup, pause_ms, static_cast<int>(daemon),
      static_cast<double>(RssKib(daemon)) / 1024);
  fflush(stdout);
  int exit_code = 0;
  for (int64_t files : sizes) {
    Clock::time_point t0 = Clock::now();
    const std::string root = MakeTree(parent, files);
    if (root.empty()) return 1;
    const double make_s = MsSince(t0) / 1000;
    // Cold caches are not what is measured: the tree was just written.
    auto client =
        jcs::tools::ControlClient::Connect(socket_path, absl::Minutes(10));
    auto pinger =
        jcs::tools::ControlClient::Connect(socket_path, absl::Minutes(1));
    if (!client.ok() || !pinger.ok()) {
      fprintf(
          stderr, "tool_bench: connect: %s\n",
          (client.ok() ? pinger.status() : client.status()).ToString().c_str());
      return 1;
    }
    // The same pings for a second before the project starts: the machine's
    // own noise, to compare with the pings while the index builds.
    std::vector<double> idle_ms;
    for (t0 = Clock::now(); MsSince(t0) < 1000;) {
      jcs::proto::Request ping;
      ping.mutable_ping();
      const Clock::time_point p0 = Clock::now();
      absl::StatusOr<jcs::proto::Response> pong = (*pinger)->Call(ping);
      if (!pong.ok() || !pong->has_ping()) {
        fprintf(stderr, "tool_bench: ping failed\n");
        return 1;
      }
      idle_ms.push_back(MsSince(p0));
      usleep(1000);
    }
    std::sort(idle_ms.begin(), idle_ms.end());
    t0 = Clock::now();
    absl::StatusOr<std::string> project = (*client)->StartProject(root, {});
    if (!project.ok()) {
      fprintf(stderr, "tool_bench: start_project: %s\n",
              project.status().ToString().c_str());
      return 1;
    }
    const double start_ms = MsSince(t0);
    std::vector<double> ping_ms;
    jcs::proto::LoopStats loop_first, loop_last;
    nlohmann::json index;
    Clock::time_point last_check = Clock::now() - std::chrono::seconds(1);
    while (MsSince(t0) < 120000) {
      if (MsSince(last_check) >= 50) {
        last_check = Clock::now();
        absl::StatusOr<std::string> doc = (*client)->Diagnostics(*project);
        if (doc.ok()) {
          const nlohmann::json d = nlohmann::json::parse(*doc, nullptr, false);
          if (d.is_object() && d.contains("tools")) {
            index = json_fields::Member(d["tools"], "sensitive_index");
          }
        }
        if (index.is_object() &&
            json_fields::String(index, "state") != "building") {
          break;
        }
      }
      jcs::proto::Request ping;
      ping.mutable_ping();
      const Clock::time_point p0 = Clock::now();
      absl::StatusOr<jcs::proto::Response> pong = (*pinger)->Call(ping);
      if (!pong.ok() || !pong->has_ping()) {
        fprintf(stderr, "tool_bench: ping failed\n");
        return 1;
      }
      ping_ms.push_back(MsSince(p0));
      if (ping_ms.size() == 1) loop_first = pong->ping().loop();
      loop_last = pong->ping().loop();
      usleep(1000);
    }
    const double ready_ms = MsSince(t0);
    const int64_t rss_kib = RssKib(daemon);
    Samples samples;
    exit_code = RunInterleaved(**client, *project, command, iterations, warmup,
                               pause_ms, &samples);
    (void)(*client)->StopProject(*project);
    t0 = Clock::now();
    std::error_code ignored;
    std::filesystem::remove_all(root, ignored);
    if (exit_code != 0) return exit_code;
    std::sort(ping_ms.begin(), ping_ms.end());
    std::sort(samples.plain_ms.begin(), samples.plain_ms.end());
    std::sort(samples.jcs_ms.begin(), samples.jcs_ms.end());
    const double plain_p50 = Percentile(samples.plain_ms, 0.5);
    const double jcs_p50 = Percentile(samples.jcs_ms, 0.5);
    printf("\n== %lld files (%lld directories; tree written in %.1f s)\n",
           static_cast<long long>(files),
           static_cast<long long>((files + 99) / 100), make_s);
    printf(
        "  index: state %s%s%s, build_ms %lld (start_project %.1f ms, "
        "ready seen after %.0f ms), %lld directories, %lld sensitive, "
        "%lld bytes/directory (~%.2f MiB)\n",
        json_fields::String(index, "state", "?").c_str(),
        json_fields::String(index, "reason").empty() ? "" : " ",
        json_fields::String(index, "reason").c_str(),
        static_cast<long long>(json_fields::Int(index, "build_ms", -1)),
        start_ms, ready_ms,
        static_cast<long long>(json_fields::Int(index, "directories", 0)),
        static_cast<long long>(json_fields::Int(index, "sensitive", 0)),
        static_cast<long long>(
            json_fields::Int(index, "bytes_per_directory", 0)),
        static_cast<double>(json_fields::Int(index, "bytes", 0)) /
            (1024.0 * 1024.0));
    const double ping_max = ping_ms.empty() ? 0.0 : ping_ms.back();
    printf(
        "  pings while it built: %zu, p50 %.3f ms, p99 %.3f ms, max %.3f "
        "ms%s\n",
        ping_ms.size(), Percentile(ping_ms, 0.5), Percentile(ping_ms, 0.99),
        ping_max,
        !check_targets    ? ""
        : ping_max <= 5.0 ? " (target: within 5 ms: met)"
                          : " (target: within 5 ms: MISSED)");
    missed = missed || (check_targets && ping_max > 5.0);
    printf(
        "  event loop while it built: %llu rounds, longest under %llu us of "
        "CPU and %llu us of wall time\n",
        static_cast<unsigned long long>(loop_last.rounds() -
                                        loop_first.rounds()),
        static_cast<unsigned long long>(LongestRoundBoundUs(
            loop_first.cpu_us_log2(), loop_last.cpu_us_log2())),
        static_cast<unsigned long long>(LongestRoundBoundUs(
            loop_first.wall_us_log2(), loop_last.wall_us_log2())));
    printf(
        "  pings before the project started (1 s): %zu, p50 %.3f ms, p99 "
        "%.3f ms, max %.3f ms\n",
        idle_ms.size(), Percentile(idle_ms, 0.5), Percentile(idle_ms, 0.99),
        idle_ms.back());
    const double rss_mib = static_cast<double>(rss_kib) / 1024;
    printf("  daemon VmRSS with the project open: %.1f MiB%s\n", rss_mib,
           !check_targets ? ""
           : rss_mib < 64 ? " (target < 64: met)"
                          : " (target < 64: MISSED)");
    missed = missed || (check_targets && rss_mib >= 64);
    printf("  plain  p50 %.3f ms  p99 %.3f ms\n", plain_p50,
           Percentile(samples.plain_ms, 0.99));
    const bool ratio_met = plain_p50 > 0 && jcs_p50 / plain_p50 <= 1.5;
    printf("  jcs    p50 %.3f ms  p99 %.3f ms  ratio of p50 %.2fx%s\n", jcs_p50,
           Percentile(samples.jcs_ms, 0.99),
           plain_p50 > 0 ? jcs_p50 / plain_p50 : 0.0,
           !check_targets ? ""
           : ratio_met    ? " (target <= 1.5x: met)"
                          : " (target <= 1.5x: MISSED)");
    missed = missed || (check_targets && !ratio_met);
    for (const auto& [mode, count] : samples.scan_modes) {
      printf("  scan mode %s: %d calls\n", mode.c_str(), count);
    }
    printf("  timing_us medians (µs):");
    for (const auto& [step, values] : samples.timing_us) {
      printf(" %s=%.0f", step.c_str(), Median(values));
    }
    printf("\n");
    fflush(stdout);
  }
  return missed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  std::string root;
  int iterations = 200;
  int warmup = 10;
  int pause_ms = 0;
  std::vector<std::string> command;
  std::vector<int64_t> scale_sizes;
  std::string scale_dir = "/tmp";
  bool pause_set = false;
  bool iterations_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (flag == "--check") {
      check_targets = true;
      continue;
    }
    if (i + 1 >= argc) return Usage("missing value for " + flag);
    const std::string value = argv[++i];
    if (flag == "--socket") {
      socket = value;
    } else if (flag == "--root") {
      root = value;
    } else if (flag == "--iterations") {
      if (!absl::SimpleAtoi(value, &iterations) || iterations < 1) {
        return Usage("--iterations: expected a positive integer");
      }
      iterations_set = true;
    } else if (flag == "--pause-ms") {
      if (!absl::SimpleAtoi(value, &pause_ms) || pause_ms < 0) {
        return Usage("--pause-ms: expected a non-negative integer");
      }
      pause_set = true;
    } else if (flag == "--warmup") {
      if (!absl::SimpleAtoi(value, &warmup) || warmup < 0) {
        return Usage("--warmup: expected a non-negative integer");
      }
    } else if (flag == "--argv") {
      command.push_back(value);
    } else if (flag == "--scale") {
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int64_t files = 0;
        if (!absl::SimpleAtoi(part, &files) || files < 0) {
          return Usage("--scale: expected file counts like 0,100000,1000000");
        }
        scale_sizes.push_back(files);
      }
    } else if (flag == "--scale-dir") {
      scale_dir = value;
    } else {
      return Usage("unknown flag " + flag);
    }
  }
  if (socket.empty()) return Usage("--socket is required");
  if (command.empty()) command = {"/bin/true"};
  if (!scale_sizes.empty()) {
    return RunScale(socket, scale_dir, scale_sizes, command,
                    iterations_set ? iterations : 300, warmup,
                    pause_set ? pause_ms : 20);
  }

  std::string created_root;
  if (root.empty()) {
    char tmpl[] = "/tmp/tool_bench_root.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      fprintf(stderr, "tool_bench: mkdtemp: %s\n", strerror(errno));
      return 1;
    }
    created_root = root = tmpl;
    chmod(root.c_str(), 0755);
    if (chown(root.c_str(), 1000, 1000) != 0) {
      fprintf(stderr,
              "tool_bench: warning: chown 1000:1000 %s: %s (pass --root)\n",
              root.c_str(), strerror(errno));
    }
  }
  auto cleanup = [&created_root] {
    if (created_root.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(created_root, ignored);
  };

  // A synchronous call waits as long as the tool runs.
  absl::StatusOr<std::unique_ptr<jcs::tools::ControlClient>> client =
      jcs::tools::ControlClient::Connect(socket, absl::Minutes(10));
  if (!client.ok()) {
    fprintf(stderr, "tool_bench: connect %s: %s\n", socket.c_str(),
            client.status().ToString().c_str());
    cleanup();
    return 1;
  }
  absl::StatusOr<std::string> project = (*client)->StartProject(root, {});
  if (!project.ok()) {
    fprintf(stderr, "tool_bench: start_project %s: %s\n", root.c_str(),
            project.status().ToString().c_str());
    cleanup();
    return 1;
  }

  Samples samples;
  int exit_code = RunInterleaved(**client, *project, command, iterations,
                                 warmup, pause_ms, &samples);
  std::vector<double>& plain_ms = samples.plain_ms;
  std::vector<double>& jcs_ms = samples.jcs_ms;
  std::map<std::string, std::vector<double>>& timing_us = samples.timing_us;
  absl::Status stopped = (*client)->StopProject(*project);
  if (!stopped.ok()) {
    fprintf(stderr, "tool_bench: stop_project %s: %s\n", project->c_str(),
            stopped.ToString().c_str());
  }
  cleanup();
  if (exit_code != 0) return exit_code;

  std::string shown;
  for (const std::string& arg : command) {
    if (!shown.empty()) shown += ' ';
    shown += arg;
  }
  printf(
      "tool benchmark: exec [%s], %d iterations (+%d warm-up), interleaved, "
      "%d ms pause between iterations, project %s\n",
      shown.c_str(), iterations, warmup, pause_ms, project->c_str());
  printf("%-8s %10s %10s %10s %10s\n", "variant", "median_ms", "p90_ms",
         "p99_ms", "min_ms");
  for (auto* row : {&plain_ms, &jcs_ms}) {
    std::sort(row->begin(), row->end());
    printf("%-8s %10.3f %10.3f %10.3f %10.3f\n",
           row == &plain_ms ? "plain" : "jcs", Percentile(*row, 0.5),
           Percentile(*row, 0.9), Percentile(*row, 0.99), row->front());
  }
  const double plain_median = Percentile(plain_ms, 0.5);
  const double jcs_median = Percentile(jcs_ms, 0.5);
  const double ratio = plain_median > 0 ? jcs_median / plain_median : 0;
  printf("ratio of medians (jcs/plain): %.2fx\n", ratio);
  const bool missed = check_targets && !(ratio > 0 && ratio <= 1.5);
  if (check_targets) {
    printf("target: p50 <= 1.5x plain: %s\n", missed ? "MISSED" : "met");
  }
  if (timing_us.empty()) {
    printf("timing_us: absent from the responses\n");
  } else {
    printf("timing_us medians (µs, over %zu calls):\n", jcs_ms.size());
    for (const auto& [step, values] : timing_us) {
      printf("  %-32s %10.0f  (%zu samples)\n", step.c_str(), Median(values),
             values.size());
    }
  }
  return missed ? 1 : 0;
}
