// The jail's /proc: its PID 1 (a clone of jcs, not an exec) must show a
// jailed program nothing of the supervisor (command line, environment,
// name, executable, memory map), and jcs must refuse to run under a /proc
// of another pid namespace, where /proc/<pid> names other processes.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

// Prints what /proc shows of PID 1; NULs in cmdline/environ become '|'.
constexpr char kShowInit[] =
    "printf 'cmdline=['; tr '\\0' '|' </proc/1/cmdline; printf ']\\n'; "
    "printf 'environ=['; tr '\\0' '|' </proc/1/environ; printf ']\\n'; "
    "echo \"comm=$(cat /proc/1/comm)\"; ls -l /proc/1/exe; "
    "cat /proc/1/maps /proc/1/status /proc/1/stat; "
    "readlink /proc/1/cwd /proc/1/root; ls /proc/1/fd";

void ExpectNothingOf(const std::string& out, const std::string& err,
                     const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    EXPECT_EQ(out.find(secret), std::string::npos)
        << "'" << secret << "' in stdout:\n"
        << out;
    EXPECT_EQ(err.find(secret), std::string::npos)
        << "'" << secret << "' in stderr:\n"
        << err;
  }
}

TEST(EscapeProc, JailInitShowsNothingOfJcsRun) {
  Project project;
  const std::string marker = UniqueToken("procmarker");
  ProcessOptions options;
  options.extra_env = {"JCS_TEST_SECRET=" + marker};
  // The marker is in jcs's own argv (the report path) and environment.
  const JcsResult r = RunJcs({"run", "--root", project.root(), "--report",
                              project.base() + "/" + marker + ".json", "--",
                              "/bin/sh", "-c", kShowInit},
                             options);
  ASSERT_TRUE(r.exited) << r.Describe();
  EXPECT_NE(r.out.find("cmdline=[init|]\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("environ=[]\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("comm=init\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Name:\tinit\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 (init) "), std::string::npos) << r.out;
  // Non-dumpable: environ, exe, maps, cwd, root and fd need ptrace access.
  EXPECT_NE(r.err.find("/proc/1/environ: Permission denied"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("/proc/1/exe': Permission denied"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("/proc/1/maps: Permission denied"), std::string::npos)
      << r.err;
  ExpectNothingOf(r.out, r.err, {marker, "jcs", "--root", "JCS_TEST_SECRET"});
}

// `unshare --pid --fork` without --mount-proc: the host's /proc. jcs run
// and jcs doctor name the problem and the fix instead of failing inside
// the jail set-up (the host's /proc/2/setgroups).
TEST(EscapeProc, ProcOfAnotherPidNamespaceIsRefused) {
  Project project;
  const ProcessResult run =
      RunProcess({"/usr/bin/unshare", "--pid", "--fork", JcsPath(), "run",
                  "--root", project.root(), "--", "true"});
  EXPECT_TRUE(run.exited && run.exit_code == 125) << run.Describe();
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1)
      << run.Describe();
  EXPECT_NE(run.err.find("jcs run: procfs: /proc belongs to another pid "
                         "namespace"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("unshare --pid --fork --mount-proc"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("setgroups"), std::string::npos) << run.err;

  const ProcessResult doctor = RunProcess(
      {"/usr/bin/unshare", "--pid", "--fork", JcsPath(), "doctor", "--json"});
  EXPECT_TRUE(doctor.exited && doctor.exit_code == 1) << doctor.Describe();
  const nlohmann::json layers =
      nlohmann::json::parse(doctor.out, nullptr, false);
  ASSERT_TRUE(layers.is_array()) << doctor.out;
  bool found = false;
  for (const nlohmann::json& layer : layers) {
    if (layer.value("name", "") != "procfs") continue;
    found = true;
    EXPECT_FALSE(layer.value("available", true)) << layer;
    EXPECT_NE(layer.value("detail", "").find("another pid namespace"),
              std::string::npos)
        << layer;
    EXPECT_NE(layer.value("fix", "").find("--mount-proc"), std::string::npos)
        << layer;
  }
  EXPECT_TRUE(found) << doctor.out;
}

TEST(EscapeProc, OwnProcOfANewPidNamespaceWorks) {
  Project project;
  const ProcessResult run = RunProcess(
      {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", JcsPath(), "run",
       "--root", project.root(), "--", "/bin/sh", "-c", "echo ok"});
  EXPECT_TRUE(run.exited && run.exit_code == 0) << run.Describe();
  EXPECT_EQ(run.out, "ok\n");
  const ProcessResult doctor =
      RunProcess({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc",
                  JcsPath(), "doctor", "--json"});
  const nlohmann::json layers =
      nlohmann::json::parse(doctor.out, nullptr, false);
  ASSERT_TRUE(layers.is_array()) << doctor.Describe();
  for (const nlohmann::json& layer : layers) {
    if (layer.value("name", "") == "procfs") {
      EXPECT_TRUE(layer.value("available", false)) << layer;
    }
  }
}

}  // namespace
}  // namespace jcs::testing
