// Escape suite: lifetime and resource limits. Jailed processes carry a unique
// marker in their argv (`sleep 1000.<digits>`), so the test can see from the
// host whether any of them outlives the run.
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Three escape attempts: a new session, a double fork (reparented to the
// jail's init), and nohup.
std::string Escapees(const std::string& m) {
  return "setsid sleep " + m + " & (sh -c 'sleep " + m +
         " &' &); nohup sleep " + m + " >/dev/null 2>&1 & ";
}

void ExpectNoLeftovers(const JcsResult& r, const std::string& marker) {
  EXPECT_TRUE(ProcessesWithMarker(marker).empty())
      << "jailed processes outlived jcs: "
      << ProcessesWithMarker(marker).size();
  const std::vector<std::string> cgroups = RunCgroupDirs(r.pid);
  EXPECT_TRUE(cgroups.empty())
      << "leftover cgroup: " << (cgroups.empty() ? "" : cgroups[0]);
  // Clean up for the next tests whatever happened.
  for (pid_t pid : ProcessesWithMarker(marker)) kill(pid, SIGKILL);
}

TEST(EscapeLifetime, TimeoutKillsPromptly) {
  Project project;
  const std::string m = SleepMarker();
  const JcsResult r = RunJail(project, {"--timeout", "0.5"}, {"sleep", m});
  EXPECT_EQ(r.exit_code, 124) << r.Describe();
  EXPECT_LT(r.wall_s, 1.5) << "jcs returned late: " << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "timeout");
  EXPECT_EQ(r.report["exit_code"], 124);
  EXPECT_GE(r.report["wall_time_ms"].get<double>(), 450);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  ExpectNoLeftovers(r, m);
}

TEST(EscapeLifetime, DescendantsDieWhenTheProgramExits) {
  Project project;
  const std::string m = SleepMarker();
  BackgroundJail jail(
      project, {"--timeout", "30"},
      Bash(Escapees(m) + "while [ ! -e go ]; do sleep 0.02; done; exit 0"));
  const bool started = WaitForMarkerCount(m, 3, 15, "sleep");
  project.WriteFile("go", "");
  const JcsResult r = jail.Wait();
  ASSERT_TRUE(started) << "the escapees never started: " << r.Describe();
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "exited");
  EXPECT_GE(r.report["descendants_killed"].get<int>(), 3) << r.Describe();
  EXPECT_LT(r.wall_s, 10) << r.Describe();
  ExpectNoLeftovers(r, m);
}

TEST(EscapeLifetime, DescendantsDieOnTimeout) {
  Project project;
  const std::string m = SleepMarker();
  BackgroundJail jail(project, {"--timeout", "3"},
                      Bash(Escapees(m) + "sleep " + m));
  const bool started = WaitForMarkerCount(m, 4, 2.8, "sleep");
  const JcsResult r = jail.Wait();
  ASSERT_TRUE(started) << "the escapees never started: " << r.Describe();
  EXPECT_EQ(r.exit_code, 124) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "timeout");
  EXPECT_GE(r.report["descendants_killed"].get<int>(), 3) << r.Describe();
  EXPECT_LT(r.wall_s, 4.5) << r.Describe();
  ExpectNoLeftovers(r, m);
}

TEST(EscapeLifetime, KillDashNineOfJcsKillsEverything) {
  Project project;
  const std::string m = SleepMarker();
  BackgroundJail jail(project, {"--timeout", "60"},
                      Bash(Escapees(m) + "sleep " + m));
  ASSERT_TRUE(WaitForMarkerCount(m, 4, 15, "sleep"));
  jail.Signal(SIGKILL);
  const JcsResult r = jail.Wait();
  EXPECT_EQ(r.term_signal, SIGKILL) << r.Describe();
  EXPECT_TRUE(WaitForNoMarker(m, 2.0))
      << ProcessesWithMarker(m).size()
      << " jailed processes survived kill -9 of jcs";
  for (pid_t pid : ProcessesWithMarker(m)) kill(pid, SIGKILL);
  // Nobody is left to remove the run's (now empty) cgroups; not part of the
  // contract, but do not let them pile up on the machine.
  RemoveRunCgroups(r.pid);
}

// The first SIGTERM goes to the program; a second one ends the run even when
// the program ignores it, and everything dies.
TEST(EscapeLifetime, SupervisorSignalsEndTheRun) {
  Project project;
  const std::string m = SleepMarker();
  BackgroundJail jail(project, {"--timeout", "60"},
                      Bash("trap '' TERM; " + Escapees(m) + "sleep " + m));
  ASSERT_TRUE(WaitForMarkerCount(m, 4, 15, "sleep"));
  jail.Signal(SIGTERM);
  // The second SIGTERM must be a signal of its own, not merged with a first
  // one jcs has not read yet.
  ASSERT_TRUE(WaitForSignalTaken(jail.pid(), SIGTERM, 15));
  jail.Signal(SIGTERM);
  const double t0 = NowSeconds();
  const JcsResult r = jail.Wait();
  EXPECT_LT(NowSeconds() - t0, 5) << r.Describe();
  EXPECT_TRUE(r.exited) << r.Describe();
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.Describe();
  ExpectNoLeftovers(r, m);
}

// Rootless without a delegated cgroup v2 subtree (this host): a limit cannot
// hold, so the run is refused before anything runs, naming the layer and
// the fix (fail closed).
void ExpectRefusedForTheCgroupLayer(const JcsResult& r,
                                    const std::string& marker) {
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "setup_error");
  const std::string error = r.report["error"].get<std::string>();
  EXPECT_THAT(error, HasSubstr("cgroup: jcs run is not running as root"));
  EXPECT_THAT(error, HasSubstr("Delegate=yes"));
  EXPECT_THAT(error, HasSubstr("--memory unlimited --pids unlimited"));
  // Creating v1 cgroups takes root: a fix that cannot work is not offered.
  EXPECT_THAT(error, Not(HasSubstr("--cgroup v1")));
  EXPECT_THAT(r.err, HasSubstr("jail setup failed: cgroup:"));
  EXPECT_TRUE(ProcessesWithMarker(marker).empty()) << "the program ran";
}

TEST(EscapeLifetime, ForkBombIsContained) {
  Project project;
  const std::string m = UniqueToken("bomb");
  const double timeout = 4;
  const JcsResult r =
      RunJail(project, {"--pids", "64", "--cpus", "0.5", "--timeout", "4"},
              Bash(":(){ :|:& };: ; sleep 30 # " + m));
  if (Rootless()) {
    ExpectRefusedForTheCgroupLayer(r, m);
    return;
  }
  EXPECT_TRUE(r.exit_code == 124 ||
              (r.has_report && r.report["status"] == "pids_limit"))
      << r.Describe();
  EXPECT_LT(r.wall_s, timeout + 5) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_TRUE(r.report["status"] == "pids_limit" ||
              r.report["status"] == "timeout")
      << r.report["status"];
  EXPECT_GT(r.report["pids_limit_hits"].get<long>(), 0) << r.Describe();
  EXPECT_GT(r.report["descendants_killed"].get<long>(), 0) << r.Describe();
  ExpectNoLeftovers(r, m);
  // The host can still start processes.
  const ProcessResult t = RunProcess({"/bin/true"});
  EXPECT_TRUE(t.exited && t.exit_code == 0);
}

TEST(EscapeLifetime, MemoryLimitOomKills) {
  Project project;
  const JcsResult r =
      RunJail(project, {"--memory", "64M", "--timeout", "30"},
              Python("s = b'\\x01' * (512 << 20)\nprint('survived', len(s))"));
  if (Rootless()) {
    ExpectRefusedForTheCgroupLayer(r, "survived");
    EXPECT_EQ(r.out, "");
    return;
  }
  EXPECT_EQ(r.exit_code, 137) << r.Describe();
  EXPECT_EQ(r.out.find("survived"), std::string::npos) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "oom");
  EXPECT_GE(r.report["oom_kills"].get<long>(), 1);
  EXPECT_EQ(r.report["signal"], SIGKILL);
  const long peak = r.report["memory_peak_bytes"].get<long>();
  EXPECT_LE(peak, (64L << 20) + (4L << 20)) << "the limit did not hold";
  EXPECT_GT(peak, 16L << 20);
  EXPECT_TRUE(RunCgroupDirs(r.pid).empty());
}

struct ExitCase {
  const char* name;
  const char* script;
  int exit_code;
  const char* status;
  int signal;  // 0: null in the report
};

class ExitCodes : public ::testing::TestWithParam<ExitCase> {};

TEST_P(ExitCodes, MapsAsDocumented) {
  const ExitCase& c = GetParam();
  Project project;
  const JcsResult r = RunJail(project, {}, Bash(c.script));
  EXPECT_EQ(r.exit_code, c.exit_code) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], c.status) << r.Describe();
  EXPECT_EQ(r.report["exit_code"], c.exit_code);
  if (c.signal == 0) {
    EXPECT_TRUE(r.report["signal"].is_null()) << r.report["signal"];
  } else {
    EXPECT_EQ(r.report["signal"], c.signal);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Escape, ExitCodes,
    ::testing::Values(
        ExitCase{"exit42", "exit 42", 42, "exited", 0},
        ExitCase{"sigterm", "kill -TERM $$", 143, "signaled", SIGTERM},
        ExitCase{"sigkill", "kill -KILL $$", 137, "signaled", SIGKILL},
        ExitCase{"sigsegv", "kill -SEGV $$", 139, "signaled", SIGSEGV}),
    [](const ::testing::TestParamInfo<ExitCase>& info) {
      return info.param.name;
    });

TEST(EscapeLifetime, NotFoundAndNotExecutable) {
  Project project;
  project.WriteFile("notexec", "#!/bin/sh\necho ran\n", 0644);
  const std::string missing = UniqueToken("/nonexistent-");
  struct Case {
    std::string program;
    int code;
    std::string message;
  };
  for (const Case& c :
       std::vector<Case>{{missing, 127, "not found"},
                         {UniqueToken("nosuchprogram"), 127, "not found"},
                         {"./notexec", 126, "cannot execute"},
                         {"/usr", 126, "cannot execute"}}) {
    SCOPED_TRACE(c.program);
    const JcsResult r = RunJail(project, {}, {c.program});
    EXPECT_EQ(r.exit_code, c.code) << r.Describe();
    EXPECT_EQ(r.StderrLines(), 1) << r.Describe();
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
    ASSERT_TRUE(r.has_report) << r.Describe();
    EXPECT_EQ(r.report["exit_code"], c.code);
    EXPECT_TRUE(RunCgroupDirs(r.pid).empty());
  }
}

}  // namespace
}  // namespace jcs::testing
