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
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
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

}  // namespace

int main(int argc, char** argv) {
  std::string jcs;
  std::string root = "/tmp";
  std::string socket;
  int iterations = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--jcs") {
      jcs = argv[i + 1];
    } else if (flag == "--iterations") {
      iterations = std::atoi(argv[i + 1]);
    } else if (flag == "--root") {
      root = argv[i + 1];
    } else if (flag == "--socket") {
      socket = argv[i + 1];
    } else {
      fprintf(stderr, "launch_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (jcs.empty() || iterations < 10) {
    fprintf(stderr,
            "usage: launch_bench --jcs PATH [--iterations N>=10] [--root DIR] "
            "[--socket S]\n");
    return 2;
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
  printf(
      "launch benchmark: /bin/true, %d iterations per variant, interleaved\n",
      iterations);
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
