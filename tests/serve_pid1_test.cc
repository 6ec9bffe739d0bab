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

// Live `sleep` processes (comm "sleep": a shell forked for one still has
// the shell's argv, marker included, until its exec) whose argv contains
// `marker`.
std::vector<pid_t> SleepsWithMarker(const std::string& marker) {
  std::vector<pid_t> found;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return found;
  while (struct dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::string cmdline =
        ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(marker) != std::string::npos && CommOf(pid) == "sleep") {
      found.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(dir);
  return found;
}

bool IsZombie(pid_t pid) {
  const std::string text =
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() &&
         text[paren + 2] == 'Z';
}

// The daemon's children other than its zygote (which lives as long as the
// daemon and is not an orphan), zombies included.
std::set<pid_t> OrphansOf(pid_t daemon_pid, pid_t zygote) {
  std::set<pid_t> orphans;
  for (pid_t child : ChildrenOf(daemon_pid)) {
    if (child != zygote) orphans.insert(child);
  }
  return orphans;
}

size_t ZombieCount(const std::set<pid_t>& pids) {
  size_t zombies = 0;
  for (pid_t pid : pids) zombies += IsZombie(pid);
  return zombies;
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
  // Found by pid, once it has renamed itself: right after the fork it is a
  // "jcs" like the daemon.
  const pid_t zygote = ZygoteOf(pid);
  ASSERT_GT(zygote, 0) << "the daemon has no zygote\n" << daemon.Log();
  EXPECT_TRUE(OrphansOf(pid, zygote).empty());

  // `sleep 1000.<unique>` marks the long-lived orphans; the test ends them
  // itself once it has seen them reparented (a short sleep could end before
  // a loaded machine has run the whole script).
  const std::string marker =
      absl::StrCat("1000.", getpid(), time(nullptr) % 1000);
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

  // The long-lived orphans become the daemon's children (the inner `sh -c`
  // runs in the background: its two sleeps are reparented only once it has
  // exited).
  const auto reparented = [&](const std::vector<pid_t>& sleeps) {
    size_t count = 0;
    for (pid_t s : sleeps) count += ParentOf(s) == pid;
    return count;
  };
  double deadline = NowSeconds() + 15;
  std::vector<pid_t> orphans = SleepsWithMarker(marker);
  while (reparented(orphans) < 5 && NowSeconds() < deadline) {
    usleep(5000);
    orphans = SleepsWithMarker(marker);
  }
  EXPECT_EQ(orphans.size(), 5u) << "expected 5 sleeping orphans";
  EXPECT_EQ(reparented(orphans), orphans.size())
      << "not every orphan was reparented to the daemon";
  for (pid_t orphan : orphans) kill(orphan, SIGKILL);

  // Once they exit, nothing is left: no child at all, in particular no
  // zombie.
  deadline = NowSeconds() + 15;
  std::set<pid_t> children = OrphansOf(pid, zygote);
  while (!children.empty() && NowSeconds() < deadline) {
    usleep(10000);
    children = OrphansOf(pid, zygote);
  }
  EXPECT_TRUE(children.empty())
      << children.size()
      << " children still there, zombies: " << ZombieCount(children);

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
  const pid_t zygote = ZygoteOf(daemon.pid());
  ASSERT_GT(zygote, 0) << "the daemon has no zygote\n" << daemon.Log();
  const double deadline = NowSeconds() + 15;
  while (OrphansOf(daemon.pid(), zygote).size() < 3 &&
         NowSeconds() < deadline) {
    usleep(5000);
  }
  ASSERT_EQ(OrphansOf(daemon.pid(), zygote).size(), 3u);
  EXPECT_EQ(daemon.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
