// `jcs serve` as PID 1 (the container entrypoint case): it runs as the first
// process of a new pid namespace, orphans are created inside that namespace
// (nsenter, so they are reparented to the daemon), and the daemon must reap
// every one of them (no zombie whose parent is the daemon remains), keep
// serving, and still turn SIGTERM into a clean exit 0.
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t ppid = 0;
};

bool ReadStat(pid_t pid, ProcStat* out) {
  const std::string text =
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 4 >= text.size()) return false;
  std::istringstream rest(text.substr(paren + 2));
  out->pid = pid;
  rest >> out->state >> out->ppid;
  return !rest.fail();
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (struct dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0') pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

// Children of `pid`, zombies included (by /proc/PID/stat's ppid: this
// kernel has no /proc/PID/task/TID/children).
// The daemon's children other than its zygote (jail/zygote.h), which lives
// as long as the daemon and is not an orphan.
bool IsZygote(pid_t pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name == "jcs-zygote";
}

std::set<pid_t> ChildrenOf(pid_t parent) {
  std::set<pid_t> children;
  for (pid_t pid : AllPids()) {
    ProcStat stat;
    if (ReadStat(pid, &stat) && stat.ppid == parent && !IsZygote(pid)) {
      children.insert(pid);
    }
  }
  return children;
}

std::vector<pid_t> ZombiesOf(pid_t parent) {
  std::vector<pid_t> zombies;
  for (pid_t pid : AllPids()) {
    ProcStat stat;
    if (ReadStat(pid, &stat) && stat.ppid == parent && stat.state == 'Z') {
      zombies.push_back(pid);
    }
  }
  return zombies;
}

// Live processes whose argv contains `marker`, with their parents.
std::vector<ProcStat> WithMarker(const std::string& marker) {
  std::vector<ProcStat> found;
  for (pid_t pid : AllPids()) {
    std::string cmdline =
        ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    ProcStat stat;
    if (cmdline.find(marker) != std::string::npos && ReadStat(pid, &stat)) {
      found.push_back(stat);
    }
  }
  return found;
}

std::string NsPidLine(pid_t pid) {
  std::istringstream in(
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/status")));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) == 0) return line;
  }
  return "";
}

DaemonOptions Pid1Options() {
  DaemonOptions options;
  options.clone_flags = CLONE_NEWPID | CLONE_NEWNS;
  options.child_setup = [] {
    // A private mount namespace with a /proc for the new pid namespace.
    return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 nullptr) == 0;
  };
  return options;
}

TEST(ServePid1Test, ReapsEveryOrphanAndDrainsOnSigterm) {
  if (access("/usr/bin/nsenter", X_OK) != 0) {
    GTEST_SKIP() << "nsenter (util-linux) is not installed";
  }
  Daemon daemon(Pid1Options());
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const pid_t pid = daemon.pid();
  std::vector<std::string> nspid =
      absl::StrSplit(NsPidLine(pid), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  ASSERT_EQ(nspid.size(), 3u) << NsPidLine(pid);
  ASSERT_EQ(nspid.back(), "1") << "the daemon is not PID 1 of its namespace";
  EXPECT_TRUE(ChildrenOf(pid).empty());

  // `sleep 1.<unique>` marks the long-lived orphans.
  const std::string marker = absl::StrCat("1.", getpid(), time(nullptr) % 1000);
  const std::string script = absl::StrCat(
      // (The orphans must not hold nsenter's output pipes open.)
      "exec >/dev/null 2>&1; ",
      // Orphans that outlive their parent for a while ...
      "for i in 1 2 3; do (sleep ", marker, " &); done; ",
      // ... an orphan that leaves orphans of its own ...
      "(sh -c 'sleep ", marker, " & sleep ", marker, " & exit 0' &); ",
      // ... and a burst of orphans that exit at once (instant zombies).
      "i=0; while [ $i -lt 50 ]; do (true &); i=$((i+1)); done");
  const RunResult entered =
      RunProgram({"/usr/bin/nsenter", "--target", absl::StrCat(pid), "--pid",
                  "--mount", "--", "/bin/sh", "-c", script},
                 TimeoutAfter(30));
  ASSERT_TRUE(entered.exited && entered.exit_code == 0) << entered.Describe();

  // The long-lived orphans are now the daemon's children.
  double deadline = NowSeconds() + 0.9;
  std::vector<ProcStat> orphans;
  while (NowSeconds() < deadline) {
    orphans = WithMarker("sleep " + marker);
    if (orphans.size() >= 5) break;
    usleep(5000);
  }
  ASSERT_EQ(orphans.size(), 5u) << "expected 5 sleeping orphans";
  for (const ProcStat& o : orphans) {
    EXPECT_EQ(o.ppid, pid) << "orphan " << o.pid << " was not reparented to "
                           << "the daemon";
  }

  // Once they exit, nothing is left: no child at all, in particular no
  // zombie.
  deadline = NowSeconds() + 10;
  std::set<pid_t> children = ChildrenOf(pid);
  while (!children.empty() && NowSeconds() < deadline) {
    usleep(10000);
    children = ChildrenOf(pid);
  }
  EXPECT_TRUE(children.empty())
      << children.size()
      << " children still there, zombies: " << ZombiesOf(pid).size();
  EXPECT_TRUE(ZombiesOf(pid).empty());

  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// SIGTERM reaches a PID-1 daemon (signals without a handler are dropped for
// PID 1; jcs takes them through a signalfd) even while orphans are running,
// and the drain still ends in exit 0.
TEST(ServePid1Test, SigtermWithRunningOrphansExitsZero) {
  if (access("/usr/bin/nsenter", X_OK) != 0) {
    GTEST_SKIP() << "nsenter (util-linux) is not installed";
  }
  Daemon daemon(Pid1Options());
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const RunResult entered = RunProgram(
      {"/usr/bin/nsenter", "--target", absl::StrCat(daemon.pid()), "--pid",
       "--mount", "--", "/bin/sh", "-c",
       "exec >/dev/null 2>&1; for i in 1 2 3; do (sleep 30 &); done"},
      TimeoutAfter(30));
  ASSERT_TRUE(entered.exited && entered.exit_code == 0) << entered.Describe();
  const double deadline = NowSeconds() + 5;
  while (ChildrenOf(daemon.pid()).size() < 3 && NowSeconds() < deadline) {
    usleep(5000);
  }
  ASSERT_EQ(ChildrenOf(daemon.pid()).size(), 3u);
  EXPECT_EQ(daemon.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
