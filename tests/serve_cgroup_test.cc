// Several jcs instances (daemons, `jcs run`s) share the cgroup parent "jcs".
// Each creates its cgroups below its own instance directory and only removes
// instance directories whose owner it can prove dead: a daemon or run in
// another pid namespace (where the others' pids mean nothing) must neither
// kill, freeze nor spin on rmdir of the others' live cgroups (that made every
// exec call take 16-25 s), and what a killed run left is cleaned by the next.
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/jcs_runner.h"
#include "tests/serve_harness.h"

namespace jcs {
namespace {

namespace st = serve_test;
namespace jt = testing;

// Every exec call / run must finish well within this (seconds).
constexpr double kBoundS = 2.0;

// Directories below the cgroup mounts whose name starts with `prefix`
// (and contains `contains`).
void FindDirs(const std::string& dir, const std::string& prefix,
              const std::string& contains, int depth,
              std::set<std::string>* out) {
  if (depth > 8) return;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (e->d_type != DT_DIR || name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    if (name.rfind(prefix, 0) == 0 &&
        name.find(contains) != std::string::npos) {
      out->insert(path);
    }
    FindDirs(path, prefix, contains, depth + 1, out);
  }
  closedir(d);
}

// The instance directories of the process `pid` (as seen in its own pid
// namespace) whose pid namespace has inode `pid_ns`.
std::set<std::string> InstanceDirs(pid_t pid, unsigned long pid_ns) {
  std::set<std::string> out;
  FindDirs("/sys/fs/cgroup", absl::StrCat("inst-", pid, "-"),
           absl::StrCat("-p", pid_ns, "-"), 0, &out);
  return out;
}

// The run cgroups (leaves, "run-<pid>-<n>") of the process `pid` as seen in
// its own pid namespace, wherever they are below the cgroup mounts.
std::set<std::string> RunLeaves(pid_t pid) {
  std::set<std::string> out;
  FindDirs("/sys/fs/cgroup", absl::StrCat("run-", pid, "-"), "", 0, &out);
  return out;
}

bool AllExist(const std::set<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) return false;
  }
  return true;
}

// A daemon as PID 1 of a new pid namespace with its own /proc (what
// `unshare --pid --fork --mount-proc jcs serve` does).
st::DaemonOptions InPidNamespace() {
  st::DaemonOptions options;
  options.clone_flags = CLONE_NEWPID | CLONE_NEWNS;
  options.child_setup = [] {
    return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 nullptr) == 0;
  };
  return options;
}

std::string StartProject(const st::Daemon& daemon, const std::string& root) {
  const st::RunResult r =
      st::RunJcs({"project", "start", root, "--socket", daemon.socket_path()},
                 st::TimeoutAfter(30));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  std::string id = r.out;
  if (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

// One `exec` call of `echo ok`; returns its wall time (fails the test when
// the call does not succeed).
double TimedExec(const st::Daemon& daemon, const std::string& project) {
  const nlohmann::json args = {{"argv", {"/bin/echo", "ok"}}};
  const double t0 = st::NowSeconds();
  const st::RunResult r =
      st::RunJcs({"tool", "run", project, "exec", "--args", args.dump(),
                  "--json", "--socket", daemon.socket_path()},
                 st::TimeoutAfter(60));
  const double elapsed = st::NowSeconds() - t0;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(doc.is_object() && doc["result"].value("stdout", "") == "ok\n")
      << r.out;
  return elapsed;
}

// RunLeaves(pid) once the set holds at least `count` leaves and has not
// changed for 300 ms (warm jails are built, and used ones torn down, in the
// background); empty on deadline.
std::set<std::string> SettledLeaves(pid_t pid, size_t count) {
  const double deadline = st::NowSeconds() + 15;
  std::set<std::string> last;
  double since = st::NowSeconds();
  while (st::NowSeconds() < deadline) {
    std::set<std::string> now = RunLeaves(pid);
    if (now != last) {
      last = now;
      since = st::NowSeconds();
    } else if (last.size() >= count && st::NowSeconds() - since >= 0.3) {
      return last;
    }
    usleep(20'000);
  }
  return {};
}

TEST(ServeCgroupTest, DaemonsInTwoPidNamespacesLeaveEachOtherAlone) {
  st::TempDir roots;
  const std::string root_a = roots.MakeDir("a");
  const std::string root_b = roots.MakeDir("b");
  for (const std::string& root : {root_a, root_b}) {
    ASSERT_EQ(chown(root.c_str(), 1000, 1000), 0);
  }
  st::Daemon host;
  ASSERT_TRUE(host.Start()) << host.Log();
  st::Daemon nested(InPidNamespace());
  ASSERT_TRUE(nested.Start()) << nested.Log();
  const unsigned long host_ns = jt::NamespaceInode("/proc/self/ns/pid");
  const unsigned long nested_ns =
      jt::NamespaceInode(absl::StrCat("/proc/", nested.pid(), "/ns/pid"));
  ASSERT_NE(host_ns, nested_ns);

  const std::string a = StartProject(host, root_a);
  const std::string b = StartProject(nested, root_b);
  EXPECT_LT(TimedExec(host, a), kBoundS);
  // The host daemon's warm jails: live cgroups of another pid namespace, as
  // the nested daemon sees them.
  const std::set<std::string> host_leaves = SettledLeaves(host.pid(), 2);
  ASSERT_FALSE(host_leaves.empty()) << "no warm jail cgroups of the host";

  for (int i = 0; i < 3; ++i) {
    EXPECT_LT(TimedExec(nested, b), kBoundS) << "call " << i;
  }
  EXPECT_TRUE(AllExist(host_leaves))
      << "the nested daemon removed the host daemon's live cgroups";
  // The nested daemon is PID 1 there; its runs are run-1-*, in its own
  // instance directory.
  const std::set<std::string> nested_leaves = SettledLeaves(1, 2);
  ASSERT_FALSE(nested_leaves.empty()) << "no warm jail cgroups (nested)";
  for (int i = 0; i < 3; ++i) {
    EXPECT_LT(TimedExec(host, a), kBoundS) << "call " << i;
  }
  EXPECT_TRUE(AllExist(nested_leaves))
      << "the host daemon removed the nested daemon's live cgroups";
  EXPECT_FALSE(InstanceDirs(host.pid(), host_ns).empty());
  EXPECT_FALSE(InstanceDirs(1, nested_ns).empty());

  EXPECT_EQ(nested.StopCleanly(), "");
  EXPECT_EQ(host.StopCleanly(), "");
  // Each removed its own instance directories on the way out.
  EXPECT_TRUE(InstanceDirs(host.pid(), host_ns).empty());
  EXPECT_TRUE(InstanceDirs(1, nested_ns).empty());
}

// `jcs run` in another pid namespace next to a live run of the host, on each
// cgroup backend: the nested runs are fast, and the host's run keeps its
// cgroups and finishes normally (not killed by the other's "cleanup").
class RunCgroupTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> Flags() const {
    std::vector<std::string> flags = {"--cgroup", GetParam()};
    if (GetParam() == "v2") {
      // This host's v2 hierarchy has no controllers: tracking-only.
      flags.insert(flags.end(),
                   {"--memory", "unlimited", "--pids", "unlimited"});
    }
    return flags;
  }
};

TEST_P(RunCgroupTest, RunInAnotherPidNamespaceLeavesALiveRunAlone) {
  jt::Project project;
  std::vector<std::string> flags = Flags();
  flags.insert(flags.end(), {"--timeout", "30"});
  jt::BackgroundJail host(project, flags,
                          jt::Bash("while [ ! -e go ]; do sleep 0.02; done"));
  const unsigned long host_ns = jt::NamespaceInode("/proc/self/ns/pid");
  double deadline = jt::NowSeconds() + 15;
  while (RunLeaves(host.pid()).empty() && jt::NowSeconds() < deadline) {
    usleep(10'000);
  }
  const std::set<std::string> host_leaves = RunLeaves(host.pid());
  ASSERT_FALSE(host_leaves.empty()) << "the host run has no cgroup";

  jt::Project other;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> argv = {
        "/usr/bin/unshare", "--pid", "--fork", "--mount-proc",
        jt::JcsPath(),      "run",   "--root", other.root()};
    const std::vector<std::string> backend = Flags();
    argv.insert(argv.end(), backend.begin(), backend.end());
    argv.insert(argv.end(), {"--", "/bin/echo", "ok"});
    const jt::ProcessResult r = jt::RunProcess(argv);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    EXPECT_EQ(r.out, "ok\n");
    EXPECT_LT(r.wall_s, kBoundS) << "run " << i;
  }
  EXPECT_TRUE(AllExist(host_leaves))
      << "a run in another pid namespace removed the host run's cgroups";
  project.WriteFile("go", "");
  const jt::JcsResult r = host.Wait();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.report.value("status", ""), "exited") << r.report_text;
  EXPECT_TRUE(InstanceDirs(r.pid, host_ns).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, RunCgroupTest,
                         ::testing::Values("v1", "v2"));

// A `jcs run` killed with -9 leaves its (empty) instance directory; the next
// run of the same pid namespace proves the owner dead and removes it.
TEST(ServeCgroupTest, StaleInstanceOfAKilledRunIsRemovedByTheNext) {
  jt::Project project;
  const std::string m = jt::SleepMarker();
  jt::BackgroundJail killed(project, {"--timeout", "30"}, {"/bin/sleep", m});
  ASSERT_TRUE(jt::WaitForMarkerCount(m, 1, 15, "sleep"));
  const unsigned long ns = jt::NamespaceInode("/proc/self/ns/pid");
  std::set<std::string> left = InstanceDirs(killed.pid(), ns);
  EXPECT_FALSE(left.empty());
  const std::set<std::string> leaves = RunLeaves(killed.pid());
  left.insert(leaves.begin(), leaves.end());
  ASSERT_FALSE(leaves.empty());
  killed.Signal(SIGKILL);
  const jt::JcsResult dead = killed.Wait();
  ASSERT_EQ(dead.term_signal, SIGKILL) << dead.Describe();
  ASSERT_TRUE(jt::WaitForNoMarker(m, 5));
  EXPECT_TRUE(AllExist(left)) << "nothing should have removed them yet";

  const jt::JcsResult next = jt::RunJail(project, {}, {"/bin/true"});
  EXPECT_TRUE(next.exited && next.exit_code == 0) << next.Describe();
  for (const std::string& dir : left) {
    struct stat st;
    EXPECT_NE(stat(dir.c_str(), &st), 0) << dir << " was not removed";
  }
  EXPECT_TRUE(InstanceDirs(next.pid, ns).empty());
}

}  // namespace
}  // namespace jcs
