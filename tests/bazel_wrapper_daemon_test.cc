// The Bazel wrapper (tools/bazel/jcs_run_under.sh) with JCS_SOCKET set: the
// test runs through that daemon's warm jails; with nothing listening there
// it runs cold (a test suite must not fail for a missing daemon); a daemon
// that refuses the run fails the test instead of running it cold.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "telemetry/metrics/exposition_check.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

std::string Wrapper() {
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    const char* dir = getenv(var);
    if (dir == nullptr || dir[0] == '\0') continue;
    const std::string path =
        std::string(dir) + "/jcs/tools/bazel/jcs_run_under.sh";
    if (access(path.c_str(), R_OK) == 0) return path;
  }
  return "tools/bazel/jcs_run_under.sh";
}

std::map<std::string, double> Scrape(const Daemon& daemon) {
  const RunResult r =
      RunJcs({"metrics", "--socket", daemon.socket_path()}, TimeoutAfter(60));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  absl::StatusOr<std::map<std::string, double>> parsed =
      telemetry::metrics::CheckExposition(r.out);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << r.out;
  return parsed.ok() ? *parsed : std::map<std::string, double>();
}

double Started(const Daemon& daemon) {
  std::map<std::string, double> s = Scrape(daemon);
  return s["jcs_daemon_runs_started_total{jail=\"warm\"}"] +
         s["jcs_daemon_runs_started_total{jail=\"cold\"}"];
}

class BazelWrapperDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the daemon needs root";
    ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
  }
  void TearDown() override {
    if (geteuid() == 0) {
      EXPECT_EQ(daemon_.StopCleanly(), "");
    }
  }

  // The wrapper running `script` as a test would be run, with JCS_SOCKET.
  RunResult Wrapped(const std::string& socket, const std::string& script) {
    RunOptions options = TimeoutAfter(60);
    options.extra_env = {"JCS_BINARY=" + JcsBinary(), "JCS_SOCKET=" + socket,
                         "TEST_TMPDIR=" + test_tmp_.path()};
    return RunProgram({"/bin/bash", Wrapper(), "/bin/sh", "-c", script},
                      options);
  }

  Daemon daemon_{std::string("daemon_run: true\n")};
  TempDir test_tmp_;
};

TEST_F(BazelWrapperDaemonTest, WithJcsSocketTheTestRunsThroughTheDaemon) {
  const double before = Started(daemon_);
  const RunResult r = Wrapped(daemon_.socket_path(),
                              "echo \"uid=$(id -u) tmp=$TEST_TMPDIR\"; exit 3");
  EXPECT_TRUE(r.exited && r.exit_code == 3) << r.Describe();
  // The jail user, and TEST_TMPDIR redirected into the jail's own root.
  EXPECT_EQ(r.out.rfind("uid=65534 tmp=", 0), 0u) << r.Describe();
  EXPECT_TRUE(absl::EndsWith(r.out, "/root/tmp\n")) << r.Describe();
  EXPECT_EQ(Started(daemon_), before + 1) << "the daemon did not run the test";
}

TEST_F(BazelWrapperDaemonTest, WithNothingListeningTheTestRunsCold) {
  const double before = Started(daemon_);
  const RunResult r = Wrapped(test_tmp_.Sub("nobody-listens.sock"),
                              "echo \"uid=$(id -u)\"; exit 4");
  EXPECT_TRUE(r.exited && r.exit_code == 4) << r.Describe();
  EXPECT_EQ(r.out, "uid=65534\n") << r.Describe();
  EXPECT_EQ(Started(daemon_), before);
}

TEST_F(BazelWrapperDaemonTest, ARefusedRunFailsTheTestAndIsNeverRunCold) {
  Daemon bounded(
      std::string("daemon_run: true\ndaemon_run_max_concurrent: 1\n"));
  ASSERT_TRUE(bounded.Start()) << bounded.Log();
  // One run holds the only slot (in a root the jail user, nobody, owns).
  const std::string holder_root = test_tmp_.Sub("holder");
  ASSERT_EQ(mkdir(holder_root.c_str(), 0755), 0);
  ASSERT_EQ(chown(holder_root.c_str(), 65534, 65534), 0);
  const std::string marker = holder_root + "/holder-ready";
  const RunResult held = RunProgram(
      {"/bin/sh", "-c",
       absl::StrCat(JcsBinary(), " run --daemon=", bounded.socket_path(),
                    " --root ", holder_root,
                    " -- /bin/sh -c 'touch \"$PWD/holder-ready\"; exec sleep "
                    "30' </dev/null >/dev/null 2>&1 & pid=$!; "
                    "for i in $(seq 200); do [ -e ",
                    marker, " ] && break; sleep 0.05; done; echo $pid")},
      TimeoutAfter(30));
  ASSERT_TRUE(held.exited && held.exit_code == 0) << held.Describe();
  ASSERT_EQ(access(marker.c_str(), F_OK), 0) << "the holder did not start";
  const pid_t holder = atoi(held.out.c_str());
  ASSERT_GT(holder, 0) << held.Describe();

  const RunResult r = Wrapped(bounded.socket_path(), "echo ran; exit 0");
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_EQ(r.out, "") << "the refused test ran";
  EXPECT_NE(r.err.find("daemon_run_busy"), std::string::npos) << r.Describe();

  // The holder is not our child (the shell above started it): wait for it to
  // be gone.
  kill(holder, SIGTERM);
  int waited_ms = 0;
  for (; waited_ms < 10'000 && kill(holder, 0) == 0; waited_ms += 50) {
    usleep(50'000);
  }
  EXPECT_EQ(bounded.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
