// Control-API round-trip benchmark for `jcs serve`, through the C++ client
// library (tools/control_client.h). It starts nothing itself: run a daemon on
// a temporary socket first, then point the benchmark at it.
//
//   bazel build //tools:jcs //tools:control_bench
//   d=$(mktemp -d)
//   printf 'socket_path: "%s/jcs.sock"\nstate_dir: "%s/state"\n' $d $d >$d/c
//   ./bazel-bin/tools/jcs serve --config $d/c & serve=$!
//   ./bazel-bin/tools/control_bench --socket $d/jcs.sock            # Ping
//   ./bazel-bin/tools/control_bench --socket $d/jcs.sock --op start_stop
//   kill -TERM $serve; wait $serve; rm -rf $d
//
// Flags: --socket PATH (required), --op ping|start_stop (default ping),
// --seconds N per client count (default 3), --clients LIST (default 1,8,64),
// --root DIR for start_stop projects (default: a temporary directory that is
// removed afterwards).
//
// For every client count it opens that many connections (one thread each),
// runs the operation back to back for N seconds and prints the p50/p99
// latency of one operation (µs) and the total operations and requests per
// second. A start_stop operation is one start_project plus one stop_project
// (two requests).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "proto/control.pb.h"
#include "tools/control_client.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string socket;
  std::string op = "ping";
  double seconds = 3;
  std::vector<int> clients = {1, 8, 64};
  std::string root;
};

struct ThreadResult {
  std::vector<double> latencies_us;
  uint64_t errors = 0;
  std::string first_error;
};

struct RowResult {
  int clients = 0;
  uint64_t ops = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::string first_error;
};

int Usage(const std::string& error) {
  fprintf(stderr,
          "control_bench: %s\nusage: control_bench --socket PATH [--op "
          "ping|start_stop] [--seconds N] [--clients 1,8,64] [--root DIR]\n",
          error.c_str());
  return 2;
}

// One operation; false (with `error`) when it failed.
bool RunOp(jcs::tools::ControlClient& client, const Flags& flags,
           const std::string& project_id, std::string* error) {
  if (flags.op == "ping") {
    jcs::proto::Request request;
    request.mutable_ping();
    absl::StatusOr<jcs::proto::Response> response = client.Call(request);
    if (!response.ok()) {
      *error = response.status().ToString();
      return false;
    }
    if (!response->has_ping()) {
      *error = response->ShortDebugString();
      return false;
    }
    return true;
  }
  absl::StatusOr<std::string> id =
      client.StartProject(flags.root, {}, project_id);
  if (!id.ok()) {
    *error = id.status().ToString();
    return false;
  }
  absl::Status stopped = client.StopProject(*id);
  if (!stopped.ok()) {
    *error = stopped.ToString();
    return false;
  }
  return true;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index =
      std::min(sorted.size() - 1,
               static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[index];
}

bool RunRow(const Flags& flags, int clients, RowResult* row) {
  row->clients = clients;
  std::vector<std::unique_ptr<jcs::tools::ControlClient>> connections;
  for (int i = 0; i < clients; ++i) {
    absl::StatusOr<std::unique_ptr<jcs::tools::ControlClient>> client =
        jcs::tools::ControlClient::Connect(flags.socket, absl::Seconds(30));
    if (!client.ok()) {
      fprintf(stderr, "control_bench: %s\n",
              std::string(client.status().message()).c_str());
      return false;
    }
    connections.push_back(*std::move(client));
  }
  std::vector<ThreadResult> results(clients);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      jcs::tools::ControlClient& client = *connections[t];
      ThreadResult& result = results[t];
      result.latencies_us.reserve(1 << 16);
      uint64_t n = 0;
      std::string error;
      // Warm-up: a few operations before the clock starts.
      for (int i = 0; i < 20; ++i) {
        RunOp(client, flags, absl::StrCat("bench-w", clients, "-", t, "-", i),
              &error);
      }
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        const std::string id =
            absl::StrCat("bench-", clients, "-", t, "-", n++);
        const Clock::time_point start = Clock::now();
        const bool ok = RunOp(client, flags, id, &error);
        const Clock::time_point end = Clock::now();
        if (!ok) {
          if (result.errors++ == 0) result.first_error = error;
          if (result.errors > 100) break;
          continue;
        }
        result.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(end - start).count());
      }
    });
  }
  while (ready.load() < clients) std::this_thread::yield();
  const Clock::time_point start = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(flags.seconds));
  stop.store(true);
  for (std::thread& t : threads) t.join();
  row->seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (ThreadResult& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    row->errors += r.errors;
    if (row->first_error.empty()) row->first_error = r.first_error;
  }
  std::sort(all.begin(), all.end());
  row->ops = all.size();
  row->p50_us = Percentile(all, 0.50);
  row->p99_us = Percentile(all, 0.99);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "--socket") {
      if (!value(&flags.socket)) return Usage("--socket: missing value");
    } else if (arg == "--op") {
      if (!value(&flags.op) || (flags.op != "ping" && flags.op != "start_stop"))
        return Usage("--op: expected ping or start_stop");
    } else if (arg == "--seconds") {
      if (!value(&v) || !absl::SimpleAtod(v, &flags.seconds) ||
          flags.seconds <= 0)
        return Usage("--seconds: expected a positive number");
    } else if (arg == "--clients") {
      if (!value(&v)) return Usage("--clients: missing value");
      flags.clients.clear();
      for (absl::string_view part : absl::StrSplit(v, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(part, &n) || n <= 0 || n > 4096)
          return Usage("--clients: expected a list like 1,8,64");
        flags.clients.push_back(n);
      }
    } else if (arg == "--root") {
      if (!value(&flags.root)) return Usage("--root: missing value");
    } else {
      return Usage("unknown argument '" + arg + "'");
    }
  }
  if (flags.socket.empty()) return Usage("--socket is required");
  std::string temp_root;
  if (flags.op == "start_stop" && flags.root.empty()) {
    char tmpl[] = "/tmp/jcs-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      perror("control_bench: mkdtemp");
      return 1;
    }
    temp_root = flags.root = tmpl;
  }

  printf("jcs control API benchmark: op=%s, %.1f s per row, socket %s\n",
         flags.op.c_str(), flags.seconds, flags.socket.c_str());
  const int requests_per_op = flags.op == "ping" ? 1 : 2;
  printf("%-11s %7s %10s %11s %12s %10s %10s %7s\n", "op", "clients", "ops",
         "ops/s", "requests/s", "p50_us", "p99_us", "errors");
  int status = 0;
  for (int clients : flags.clients) {
    RowResult row;
    if (!RunRow(flags, clients, &row)) {
      status = 1;
      break;
    }
    const double ops_per_s = static_cast<double>(row.ops) / row.seconds;
    printf("%-11s %7d %10llu %11.0f %12.0f %10.1f %10.1f %7llu\n",
           flags.op.c_str(), clients, static_cast<unsigned long long>(row.ops),
           ops_per_s, ops_per_s * requests_per_op, row.p50_us, row.p99_us,
           static_cast<unsigned long long>(row.errors));
    fflush(stdout);
    if (row.errors > 0) {
      fprintf(stderr, "control_bench: %d clients: first error: %s\n", clients,
              row.first_error.c_str());
      status = 1;
    }
  }
  if (!temp_root.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_root, ec);
  }
  return status;
}
