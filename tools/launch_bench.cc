// Launch benchmark: wall time from fork to exit of `/bin/true` run (a)
// directly, (b) through `jcs run` with full isolation, (c) through `bwrap
// --unshare-all` when bwrap is installed, (d) with --socket, through `jcs run
// --daemon` (the same flags, a running `jcs serve` with daemon_run: true),
// all in one run, interleaved so that machine noise hits every variant
// alike. Prints median and p99 per variant, the ratios, and the median of
// each step of jcs's setup breakdown (from --report). Figures only: what
// they should be is for the reader to judge (issue 17).
//
// usage: launch_bench --jcs PATH [--iterations N] [--root DIR] [--socket S]
//                     [--settle-ms N]
// (the jail's root: DIR, or a new empty directory under /tmp, removed after)
//
// After every run the bench waits --settle-ms (default 50) before the next:
// a variant's work that outlives its process (the daemon's teardown of the
// used jail and build of the next one; the kernel's deferred cleanup of a
// network namespace that bwrap or a cold jcs run leaves) would otherwise
// land on the next variant's run and be charged to it. Each run then starts
// on a quiet machine, as each would on its own.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Runs argv with stdio on /dev/null; returns the wall time in ns, or -1 if it
// did not exit 0.
int64_t TimeRun(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int64_t start = NowNs();
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const int64_t elapsed = NowNs() - start;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? elapsed : -1;
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[index];
}

constexpr char kUsage[] =
    "usage: launch_bench --jcs PATH [--iterations N>=10] [--root DIR] "
    "[--socket S] [--settle-ms N]\n";

int UsageError(const std::string& why) {
  fprintf(stderr, "launch_bench: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string jcs;
  std::string root;
  std::string socket;
  int iterations = 200;
  int settle_ms = 50;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag != "--jcs" && flag != "--iterations" && flag != "--root" &&
        flag != "--socket" && flag != "--settle-ms") {
      return UsageError("unknown flag " + flag);
    }
    if (i + 1 >= argc) return UsageError(flag + " needs a value");
    const std::string value = argv[i + 1];
    if (flag == "--jcs") {
      jcs = value;
    } else if (flag == "--iterations") {
      const auto [end, ec] = std::from_chars(
          value.data(), value.data() + value.size(), iterations);
      if (ec != std::errc() || end != value.data() + value.size() ||
          iterations < 10 || iterations > 100000) {
        return UsageError("--iterations: expected a whole number from 10 to " +
                          std::string("100000, got '") + value + "'");
      }
    } else if (flag == "--settle-ms") {
      const auto [end, ec] =
          std::from_chars(value.data(), value.data() + value.size(), settle_ms);
      if (ec != std::errc() || end != value.data() + value.size() ||
          settle_ms < 0 || settle_ms > 10000) {
        return UsageError(
            "--settle-ms: expected a whole number from 0 to 10000, got '" +
            value + "'");
      }
    } else if (flag == "--root") {
      root = value;
    } else {
      socket = value;
    }
  }
  if (jcs.empty()) return UsageError("--jcs PATH is required");
  if (access(jcs.c_str(), X_OK) != 0) {
    return UsageError("--jcs: " + jcs + " is not an executable file");
  }
  // The jail's root: jcs refuses /tmp itself (the jail mounts its own /tmp
  // there), so by default a fresh directory below it.
  bool own_root = false;
  if (root.empty()) {
    char made[] = "/tmp/launch_bench.XXXXXX";
    if (mkdtemp(made) == nullptr) {
      perror("launch_bench: mkdtemp /tmp/launch_bench.XXXXXX");
      return 1;
    }
    root = made;
    own_root = true;
    // Owned by the jail's default user (nobody), as a project root would be.
    if (chown(made, 65534, 65534) != 0) {
      perror("launch_bench: chown to 65534");
      rmdir(made);
      return 1;
    }
  } else {
    struct stat st;
    if (stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return UsageError("--root: " + root + " is not a directory");
    }
  }
  const std::string report = root + "/launch_bench_report.json";
  std::map<std::string, std::vector<std::string>> variants = {
      {"1 direct", {"/bin/true"}},
      {"2 jcs run",
       {jcs, "run", "--root", root, "--report", report, "--memory", "256M",
        "--pids", "64", "--cpus", "1", "--", "/bin/true"}},
  };
  if (!socket.empty()) {
    variants["4 jcs run --daemon"] = {
        jcs,        "run",    "--daemon=" + socket,
        "--root",   root,     "--memory",
        "256M",     "--pids", "64",
        "--cpus",   "1",      "--",
        "/bin/true"};
  }
  const bool have_bwrap = access("/usr/bin/bwrap", X_OK) == 0;
  if (have_bwrap) {
    variants["3 bwrap"] = {"/usr/bin/bwrap",
                           "--unshare-all",
                           "--die-with-parent",
                           "--ro-bind",
                           "/usr",
                           "/usr",
                           "--symlink",
                           "usr/bin",
                           "/bin",
                           "--symlink",
                           "usr/lib",
                           "/lib",
                           "--symlink",
                           "usr/lib64",
                           "/lib64",
                           "--proc",
                           "/proc",
                           "--dev",
                           "/dev",
                           "--tmpfs",
                           "/tmp",
                           "--",
                           "/bin/true"};
  }
  std::map<std::string, std::vector<double>> times_ms;
  std::map<std::string, std::vector<double>> steps_us;
  int failures = 0;
  for (int i = 0; i < iterations + 5; ++i) {
    for (const auto& [name, command] : variants) {
      const int64_t ns = TimeRun(command);
      if (settle_ms > 0) usleep(static_cast<useconds_t>(settle_ms) * 1000);
      if (ns < 0 && i == 0) {
        // A variant that cannot run at all (its own message is on stderr
        // above): no figures, rather than a table without it.
        std::string line;
        for (const std::string& arg : command) line += " " + arg;
        fprintf(stderr,
                "launch_bench: the %s variant did not exit 0 on its first "
                "run:%s\n",
                name.c_str() + 2, line.c_str());
        unlink(report.c_str());
        if (own_root) rmdir(root.c_str());
        return 1;
      }
      if (ns < 0) {
        ++failures;
        continue;
      }
      if (i < 5) continue;  // warm-up
      times_ms[name].push_back(static_cast<double>(ns) / 1e6);
      if (name == "2 jcs run") {
        std::ifstream in(report);
        nlohmann::json parsed = nlohmann::json::parse(in, nullptr, false);
        for (const char* phase : {"setup_us", "teardown_us"}) {
          if (parsed.is_discarded() || !parsed.contains(phase)) continue;
          for (const auto& [step, us] : parsed[phase].items()) {
            const std::string prefix = phase[0] == 't' ? "teardown." : "";
            steps_us[prefix + step].push_back(us.get<double>());
          }
        }
      }
    }
  }
  unlink(report.c_str());
  if (own_root) rmdir(root.c_str());
  printf(
      "launch benchmark: /bin/true, %d iterations per variant, interleaved, "
      "%d ms between runs\n",
      iterations, settle_ms);
  printf("%-18s %10s %10s %10s\n", "variant", "median_ms", "p99_ms", "runs");
  std::map<std::string, double> medians;
  for (const auto& [name, values] : times_ms) {
    if (values.empty()) continue;
    medians[name] = Percentile(values, 0.5);
    printf("%-18s %10.2f %10.2f %10zu\n", name.c_str() + 2, medians[name],
           Percentile(values, 0.99), values.size());
  }
  if (medians.count("2 jcs run") && medians.count("1 direct")) {
    printf("jcs run / direct: %.2fx\n",
           medians["2 jcs run"] / medians["1 direct"]);
  }
  if (medians.count("2 jcs run") && medians.count("3 bwrap")) {
    printf("jcs run / bwrap:  %.2fx\n",
           medians["2 jcs run"] / medians["3 bwrap"]);
  }
  if (medians.count("4 jcs run --daemon") && medians.count("3 bwrap")) {
    printf("jcs run --daemon / bwrap: %.2fx\n",
           medians["4 jcs run --daemon"] / medians["3 bwrap"]);
  }
  if (medians.count("4 jcs run --daemon") && medians.count("2 jcs run")) {
    printf("jcs run --daemon / jcs run: %.2fx\n",
           medians["4 jcs run --daemon"] / medians["2 jcs run"]);
  }
  if (!have_bwrap)
    printf("bwrap: not installed (apt-get install bubblewrap to compare)\n");
  printf(
      "\njcs setup and teardown breakdown (median us per step, from "
      "--report):\n");
  for (const auto& [step, values] : steps_us) {
    printf("  %-26s %8.0f\n", step.c_str(), Percentile(values, 0.5));
  }
  if (failures > 0) printf("\n%d runs did not exit 0\n", failures);
  return failures > 0 ? 1 : 0;
}
