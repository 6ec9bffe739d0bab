// Escape suite: both cgroup backends through `jcs run`. On these machines the
// v1 hierarchies have the controllers and the v2 mount has none, so v1
// enforces limits and v2 is exercised for tracking and cgroup.kill only.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

std::string ReadTrimmed(const std::string& path) {
  std::string s = ReadSmallFile(path);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<pid_t> CgroupProcs(const std::string& dir) {
  std::vector<pid_t> pids;
  std::istringstream in(ReadSmallFile(dir + "/cgroup.procs"));
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

// The cgroup v2 mount, or "" when there is none.
std::string CgroupV2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" - cgroup2 ") == std::string::npos) continue;
    std::istringstream fields(line);
    std::string f, point;
    for (int i = 0; i < 5 && fields >> f; ++i) point = f;
    return point;
  }
  return "";
}

std::string Escapees(const std::string& m) {
  return "setsid sleep " + m + " & (sh -c 'sleep " + m +
         " &' &); nohup sleep " + m + " >/dev/null 2>&1 & ";
}

void ExpectNoLeftovers(const JcsResult& r, const std::string& marker) {
  EXPECT_TRUE(ProcessesWithMarker(marker).empty());
  const std::vector<std::string> cgroups = RunCgroupDirs(r.pid);
  EXPECT_TRUE(cgroups.empty())
      << "leftover cgroup: " << (cgroups.empty() ? "" : cgroups[0]);
  for (pid_t pid : ProcessesWithMarker(marker)) kill(pid, SIGKILL);
}

// While a v1 run is in flight, its cgroups carry the requested limits and
// hold the jailed processes; afterwards they are gone.
TEST(EscapeCgroup, V1LimitsAreAppliedToTheRunsCgroups) {
  Project project;
  const std::string m = SleepMarker();
  BackgroundJail jail(
      project,
      {"--cgroup", "v1", "--memory", "96M", "--pids", "32", "--timeout", "30"},
      Bash(Escapees(m) + "while [ ! -e go ]; do sleep 0.02; done"));
  ASSERT_TRUE(WaitForMarkerCount(m, 3, 15, "sleep"));
  const std::vector<pid_t> sleepers = ProcessesWithMarker(m, "sleep");
  std::string memory_dir, pids_dir;
  for (const std::string& dir : RunCgroupDirs(jail.pid())) {
    if (dir.find("/memory/") != std::string::npos) memory_dir = dir;
    if (dir.find("/pids/") != std::string::npos) pids_dir = dir;
  }
  std::string memory_limit, pids_max;
  std::vector<pid_t> in_memory, in_pids;
  if (!memory_dir.empty()) {
    memory_limit = ReadTrimmed(memory_dir + "/memory.limit_in_bytes");
    in_memory = CgroupProcs(memory_dir);
  }
  if (!pids_dir.empty()) {
    pids_max = ReadTrimmed(pids_dir + "/pids.max");
    in_pids = CgroupProcs(pids_dir);
  }
  project.WriteFile("go", "");
  const JcsResult r = jail.Wait();
  ASSERT_FALSE(memory_dir.empty()) << "no v1 memory cgroup for the run";
  ASSERT_FALSE(pids_dir.empty()) << "no v1 pids cgroup for the run";
  EXPECT_EQ(memory_limit, std::to_string(96 << 20));
  EXPECT_EQ(pids_max, "32");
  for (pid_t pid : sleepers) {
    // Every escapee is still charged to the run's cgroups.
    EXPECT_NE(std::find(in_memory.begin(), in_memory.end(), pid),
              in_memory.end())
        << pid;
    EXPECT_NE(std::find(in_pids.begin(), in_pids.end(), pid), in_pids.end())
        << pid;
  }
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["cgroup_backend"], "v1");
  EXPECT_EQ(r.report["layers"]["cgroup"], "v1: memory 100663296, pids 32");
  EXPECT_GE(r.report["descendants_killed"].get<int>(), 3);
  ExpectNoLeftovers(r, m);
}

TEST(EscapeCgroup, V1PidsLimitRefusesForks) {
  Project project;
  const std::string m = SleepMarker();
  // 20 sleepers under a limit of 8 (the jail's init and python included).
  const JcsResult r =
      RunJail(project, {"--cgroup", "v1", "--pids", "8", "--timeout", "20"},
              Python(R"PY(
import json, os, sys
ok = failed = 0
for _ in range(20):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        os.execv('/bin/sleep', ['sleep', sys.argv[1]])
    ok += 1
procs = len([p for p in os.listdir('/proc') if p.isdigit()])
print(json.dumps({'ok': ok, 'failed': failed, 'procs': procs}))
)PY",
                     {m}));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  EXPECT_GT(in["failed"].get<int>(), 0) << in.dump();
  EXPECT_LE(in["ok"].get<int>(), 6) << in.dump();
  EXPECT_LE(in["procs"].get<int>(), 8) << in.dump();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["cgroup_backend"], "v1");
  EXPECT_EQ(r.report["pids_limit_hits"], in["failed"]) << r.Describe();
  EXPECT_EQ(r.report["status"], "pids_limit");
  ExpectNoLeftovers(r, m);
}

TEST(EscapeCgroup, V1MemoryLimitOomKills) {
  Project project;
  const JcsResult r =
      RunJail(project, {"--cgroup", "v1", "--memory", "32M", "--timeout", "30"},
              Python("s = b'\\x01' * (256 << 20)\nprint('survived')"));
  EXPECT_EQ(r.exit_code, 137) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["cgroup_backend"], "v1");
  EXPECT_EQ(r.report["status"], "oom");
  EXPECT_GE(r.report["oom_kills"].get<long>(), 1);
  EXPECT_TRUE(RunCgroupDirs(r.pid).empty());
}

// v2 without controllers: tracking by CLONE_INTO_CGROUP and cgroup.kill.
TEST(EscapeCgroup, V2TracksEveryDescendantAndKillsThemAll) {
  const std::string v2 = CgroupV2Mount();
  if (v2.empty()) GTEST_SKIP() << "no cgroup v2 mount on this host";
  Project project;
  const std::string m = SleepMarker();
  BackgroundJail jail(
      project,
      {"--cgroup", "v2", "--memory", "unlimited", "--pids", "unlimited",
       "--timeout", "30"},
      Bash(Escapees(m) + "while [ ! -e go ]; do sleep 0.02; done; exit 0"));
  ASSERT_TRUE(WaitForMarkerCount(m, 3, 15, "sleep"));
  const std::vector<pid_t> sleepers = ProcessesWithMarker(m, "sleep");
  std::string run_dir;
  for (const std::string& dir : RunCgroupDirs(jail.pid())) {
    if (dir.rfind(v2 + "/", 0) == 0) run_dir = dir;
  }
  // Each escapee's v2 cgroup (the "0::" line) is the run's or one below it.
  std::vector<pid_t> tracked;
  for (pid_t pid : sleepers) {
    std::istringstream cg(
        ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup"));
    std::string line;
    while (std::getline(cg, line)) {
      if (!run_dir.empty() && line.rfind("0::", 0) == 0 &&
          (v2 + line.substr(3) + "/").rfind(run_dir + "/", 0) == 0) {
        tracked.push_back(pid);
      }
    }
  }
  project.WriteFile("go", "");
  const JcsResult r = jail.Wait();
  ASSERT_FALSE(run_dir.empty()) << "no v2 cgroup for the run under " << v2;
  for (pid_t pid : sleepers) {
    EXPECT_NE(std::find(tracked.begin(), tracked.end(), pid), tracked.end())
        << "escapee " << pid << " is not in the run's v2 cgroup";
  }
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["cgroup_backend"], "v2");
  EXPECT_EQ(r.report["status"], "exited");
  EXPECT_GE(r.report["descendants_killed"].get<int>(), 3) << r.Describe();
  ExpectNoLeftovers(r, m);
}

// Fail closed: v2 cannot enforce a memory (or pids, or CPU) limit here, so
// `--cgroup v2` with the default limits is refused, naming the controller.
TEST(EscapeCgroup, V2WithoutTheControllersIsRefused) {
  const std::string v2 = CgroupV2Mount();
  if (v2.empty()) GTEST_SKIP() << "no cgroup v2 mount on this host";
  const std::string controllers = ReadTrimmed(v2 + "/cgroup.controllers");
  struct Case {
    std::vector<std::string> flags;
    std::string controller;
  };
  const std::vector<Case> cases = {
      {{"--cgroup", "v2"}, "memory"},
      {{"--cgroup", "v2", "--memory", "unlimited"}, "pids"},
      {{"--cgroup", "v2", "--memory", "unlimited", "--pids", "unlimited",
        "--cpus", "0.5"},
       "cpu"},
  };
  for (const Case& c : cases) {
    if (controllers.find(c.controller) != std::string::npos) continue;
    SCOPED_TRACE(c.controller);
    Project project;
    const std::vector<std::string> before = HostMounts();
    const JcsResult r =
        RunJail(project, c.flags, {"/usr/bin/touch", project.Path("ran")});
    EXPECT_EQ(r.exit_code, 125) << r.Describe();
    EXPECT_EQ(r.StderrLines(), 1) << r.Describe();
    EXPECT_NE(r.err.find("\"" + c.controller + "\""), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("controller"), std::string::npos) << r.err;
    // The v1 backend is offered only where it can work: creating v1
    // cgroups takes root.
    EXPECT_EQ(r.err.find("or use --cgroup v1") != std::string::npos,
              !Rootless())
        << r.err;
    EXPECT_FALSE(project.Exists("ran")) << "the program ran anyway";
    if (r.has_report) {
      EXPECT_EQ(r.report["status"], "setup_error");
    }
    EXPECT_TRUE(RunCgroupDirs(r.pid).empty());
    EXPECT_TRUE(NewLines(before, HostMounts()).empty());
  }
}

TEST(EscapeCgroup, AutoPicksABackendThatCanEnforceTheLimits) {
  const std::string v2 = CgroupV2Mount();
  const std::string controllers =
      v2.empty() ? "" : ReadTrimmed(v2 + "/cgroup.controllers");
  const bool v2_full = controllers.find("memory") != std::string::npos &&
                       controllers.find("pids") != std::string::npos;
  Project project;
  const JcsResult r = RunJail(project, {}, {"/bin/true"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["cgroup_backend"], v2_full ? "v2" : "v1");
}

// Inside the jail the cgroup namespace hides the host's hierarchy paths.
TEST(EscapeCgroup, CgroupNamespaceHidesHostPaths) {
  Project project;
  const JcsResult r = RunJail(project, {}, {"/bin/cat", "/proc/self/cgroup"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::istringstream in(r.out);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_EQ(line.substr(line.rfind(':')), ":/") << line;
    EXPECT_EQ(line.find("jcs"), std::string::npos) << line;
  }
  EXPECT_GT(lines, 0);
}

// Rootless with a delegated cgroup v2 subtree (simulated as systemd's
// Delegate=yes does it: a directory chowned to the user, who runs in it):
// jcs run as that user tracks and kills the jail through a cgroup of its
// own below it; a limit whose controller the subtree lacks is refused,
// naming the layer (fail closed).
TEST(EscapeCgroup, RootlessUsesADelegatedCgroupV2Subtree) {
  if (geteuid() != 0) GTEST_SKIP() << "delegating a subtree needs root";
  const std::string v2 = CgroupV2Mount();
  if (v2.empty()) GTEST_SKIP() << "no cgroup v2 mount on this host";
  const std::string top = v2 + "/" + UniqueToken("jcs-delegated-");
  const std::string leaf = top + "/user";
  ASSERT_EQ(mkdir(top.c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(mkdir(leaf.c_str(), 0755), 0) << strerror(errno);
  // Delegation: the directory and its cgroup.procs, cgroup.threads and
  // cgroup.subtree_control belong to the user.
  for (const std::string& path :
       {leaf, leaf + "/cgroup.procs", leaf + "/cgroup.threads",
        leaf + "/cgroup.subtree_control"}) {
    ASSERT_EQ(chown(path.c_str(), kJailUid, kJailGid), 0) << path;
  }
  Project project;
  ProcessOptions options;
  options.as_jail_user = true;
  options.join_cgroup = leaf;
  const std::string m = SleepMarker();
  const std::string report = project.Path("report.json");
  const JcsResult r =
      RunJcs({"run", "--root", project.root(), "--report", report, "--memory",
              "unlimited", "--pids", "unlimited", "--timeout", "30", "--",
              "/bin/sh", "-c", Escapees(m) + "cat /proc/self/uid_map"},
             options);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json rep =
      nlohmann::json::parse(ReadSmallFile(report), nullptr, false);
  ASSERT_TRUE(rep.is_object()) << r.Describe();
  EXPECT_EQ(rep["cgroup_backend"], "v2") << rep.dump(2);
  EXPECT_EQ(rep["uid"], kJailUid);
  EXPECT_EQ(rep["layers"]["cgroup"], "v2: memory unlimited, pids unlimited");
  // The three sleeps, and the double fork's subshell and `sh -c` when they
  // had not exited yet as the program did (a race the count reports
  // faithfully): every one was killed, none survives.
  EXPECT_GE(rep["descendants_killed"], 3) << rep.dump(2);
  EXPECT_LE(rep["descendants_killed"], 5) << rep.dump(2);
  EXPECT_TRUE(ProcessesWithMarker(m).empty());
  for (pid_t pid : ProcessesWithMarker(m)) kill(pid, SIGKILL);

  // This host's cgroup v2 has no memory controller to delegate.
  const bool has_memory =
      ReadSmallFile(leaf + "/cgroup.controllers").find("memory") !=
      std::string::npos;
  const JcsResult limited =
      RunJcs({"run", "--root", project.root(), "--memory", "64M", "--pids",
              "unlimited", "--", "/bin/true"},
             options);
  if (!has_memory) {
    EXPECT_EQ(limited.exit_code, 125) << limited.Describe();
    EXPECT_NE(limited.err.find("jail setup failed: cgroup: jcs run is not "
                               "running as root"),
              std::string::npos)
        << limited.Describe();
    EXPECT_NE(limited.err.find("controller \"memory\""), std::string::npos)
        << limited.Describe();
  } else {
    EXPECT_EQ(limited.exit_code, 0) << limited.Describe();
  }
  // Deepest first: the run cgroups' parents jcs left below the leaf.
  std::vector<std::string> dirs;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(top)) {
    if (entry.is_directory()) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  for (const std::string& dir : dirs) rmdir(dir.c_str());
  EXPECT_EQ(rmdir(top.c_str()), 0) << strerror(errno);
}

}  // namespace
}  // namespace jcs::testing
