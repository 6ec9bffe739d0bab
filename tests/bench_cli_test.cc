// `jcs bench` end to end (issue 13's load harness): the built binary drives
// a real daemon, a private one or the one on --socket, and its report's
// counts match what was asked; an event limit too short to finish fails the
// run with exit 1; bad options fail with invalid_benchmark_opt naming the
// key. The latency and RSS figures are only checked for consistency here:
// the targets belong to opt builds on a quiet machine (README "Load
// harness").
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

RunResult Bench(std::vector<std::string> args) {
  args.insert(args.begin(), "bench");
  // Project roots under /tmp, like the daemon tests': reachable by the uid
  // the tools run as.
  RunOptions options = TimeoutAfter(240);
  options.extra_env = {"TMPDIR=/tmp"};
  return RunJcs(args, options);
}

// The report line starting with `prefix`, "" when missing.
std::string Line(const std::string& out, const std::string& prefix) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, prefix)) return std::string(line);
  }
  return "";
}

// "k=v" pairs of a report line as numbers.
std::map<std::string, double> Fields(const std::string& line) {
  std::map<std::string, double> out;
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    const size_t eq = word.find('=');
    if (eq == absl::string_view::npos) continue;
    double v = 0;
    if (absl::SimpleAtod(word.substr(eq + 1), &v)) {
      out[std::string(word.substr(0, eq))] = v;
    }
  }
  return out;
}

// The number after "PREFIX" on its line.
double After(const std::string& out, const std::string& prefix) {
  const std::string line = Line(out, prefix);
  std::vector<std::string> words =
      absl::StrSplit(line.substr(std::min(line.size(), prefix.size())), ' ',
                     absl::SkipEmpty());
  double v = -1;
  if (!words.empty()) (void)absl::SimpleAtod(words[0], &v);
  return v;
}

void ExpectConsistentFigures(const std::string& out) {
  const std::map<std::string, double> latency =
      Fields(Line(out, "Latency (ms):"));
  ASSERT_EQ(latency.size(), 6u) << out;
  EXPECT_GT(latency.at("min"), 0) << out;
  EXPECT_LE(latency.at("min"), latency.at("p50")) << out;
  EXPECT_LE(latency.at("p50"), latency.at("p95")) << out;
  EXPECT_LE(latency.at("p95"), latency.at("p99")) << out;
  EXPECT_LE(latency.at("p99"), latency.at("max")) << out;
  EXPECT_GT(After(out, "Throughput (events/s):"), 0) << out;
  EXPECT_GT(After(out, "Jailed /bin/true p50 (ms):"), 0) << out;
  // The daemon's VmHWM was read: a daemon is never under 1 MiB.
  EXPECT_GT(After(out, "Daemon peak RSS (MiB):"), 1) << out;
}

TEST(BenchCliTest, SmallProfilePassesWithTheRightCounts) {
  const RunResult r = Bench({"--projects", "2", "--conversations", "2",
                             "--events", "2", "--concurrency", "4"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(Line(r.out, "Benchmark Report"), "Benchmark Report") << r.out;
  EXPECT_EQ(Line(r.out, "Projects:"),
            "Projects: requested=2 started=2 failed=0");
  EXPECT_EQ(Line(r.out, "Conversations:"),
            "Conversations: requested=4 started=4 failed=0");
  EXPECT_EQ(Line(r.out, "Events:"), "Events: requested=8 sent=8 failed=0");
  EXPECT_EQ(Line(r.out, "Projection checks:"),
            "Projection checks: checked=4 failed=0");
  EXPECT_EQ(Fields(Line(r.out, "Latency (ms):")).size(), 6u);
  int diag = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StartsWith(line, "Project diag: project_id=bench-p")) {
      ++diag;
      EXPECT_TRUE(absl::StrContains(line, " health=ok ")) << line;
    }
  }
  EXPECT_EQ(diag, 2) << r.out;
  EXPECT_EQ(Line(r.out, "Failures:"), "Failures: none");
  EXPECT_EQ(Line(r.out, "Benchmark harness"), "Benchmark harness passed.");
  ExpectConsistentFigures(r.out);
  EXPECT_EQ(Line(r.out, "Check:"), "") << "no targets without --check";
}

// Every event needs a jailed exec: one millisecond is never enough, and
// each event is reported as unsettled; the run fails.
TEST(BenchCliTest, TimeoutTooSmallToFinishFails) {
  const RunResult r = Bench({"--projects", "1", "--conversations", "1",
                             "--events", "2", "--timeout-ms", "1"});
  ASSERT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_EQ(Line(r.out, "Events:"), "Events: requested=2 sent=2 failed=2")
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "not settled within --timeout-ms 1"))
      << r.out;
  EXPECT_EQ(Line(r.out, "Benchmark harness"),
            "Benchmark harness reported failures.");
}

TEST(BenchCliTest, InvalidOptionsNameTheKey) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--events", "0"},
       "invalid_benchmark_opt: --events: expected a positive integer, got 0"},
      {{"--concurrency", "257"},
       "invalid_benchmark_opt: --concurrency: 257 is out of range 1..256"},
      {{"--speed", "9"}, "invalid_benchmark_opt: --speed: unknown option"}};
  for (const auto& [args, error] : cases) {
    const RunResult r = Bench(args);
    EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
    EXPECT_TRUE(absl::StrContains(r.err, error)) << r.Describe();
    EXPECT_EQ(r.out, "");
  }
}

// --socket drives a running daemon (its pid found from the socket's peer
// credentials) and leaves it running; --check adds the target lines, and
// the exit status follows them.
TEST(BenchCliTest, DrivesARunningDaemonAndChecksTargets) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const RunResult r =
      Bench({"--socket", daemon.socket_path(), "--projects", "1",
             "--conversations", "2", "--events", "2", "--check"});
  ASSERT_TRUE(r.exited) << r.Describe();
  EXPECT_EQ(Line(r.out, "Events:"), "Events: requested=4 sent=4 failed=0")
      << r.out;
  EXPECT_TRUE(
      absl::StrContains(Line(r.out, "Daemon peak RSS (MiB):"),
                        absl::StrCat("(VmHWM of pid ", daemon.pid(), ")")))
      << r.out;
  ExpectConsistentFigures(r.out);
  const std::string latency = Line(r.out, "Check: p95");
  const std::string rss = Line(r.out, "Check: daemon peak RSS");
  ASSERT_NE(latency, "") << r.out;
  ASSERT_NE(rss, "") << r.out;
  const bool met =
      absl::EndsWith(latency, ": met") && absl::EndsWith(rss, ": met");
  EXPECT_EQ(r.exit_code, met ? 0 : 1) << r.out;
  EXPECT_TRUE(daemon.running());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
