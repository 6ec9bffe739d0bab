#include "jail/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jail/cgroup_fs.h"
#include "jail/cgroup_instance.h"

namespace jcs::jail {
namespace {

namespace fs = cgroup_fs;
namespace instance = cgroup_instance;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

#define ASSERT_OK(expr)                     \
  do {                                      \
    const auto& status_ = (expr);           \
    ASSERT_TRUE(status_.ok()) << (status_); \
  } while (0)
#define ASSERT_OK_STATUSOR(expr) ASSERT_TRUE((expr).ok()) << (expr).status()

constexpr int kWaitMs = 5000;

// ---------------------------------------------------------------------------------------------
// Helpers.

std::string ReadText(const std::string& path) {
  absl::StatusOr<std::string> text = fs::ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text))
                   : "<unreadable>";
}

void WriteText(const std::string& path, const std::string& text) {
  ASSERT_OK(fs::WriteFile(path, text, /*create=*/true));
}

std::string MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr ? base : "/tmp", "/cgroup_test.XXXXXX");
  char* dir = mkdtemp(tmpl.data());
  return dir != nullptr ? std::string(dir) : std::string();
}

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The test's parent cgroup directory name, unique per test process so that
// parallel runs
// (--runs_per_test) do not see each other's cgroups.
std::string TestParent() { return absl::StrCat("jcs-test-", getpid()); }

std::string SelfFile(const char* path) {
  absl::StatusOr<std::string> text = fs::ReadFile(path);
  return text.ok() ? *text : std::string();
}

std::optional<std::string> RealV2OwnDir() {
  absl::StatusOr<std::string> dir = fs::LocateV2OwnDir(
      SelfFile("/proc/self/mountinfo"), SelfFile("/proc/self/cgroup"));
  if (!dir.ok()) return std::nullopt;
  return *dir;
}

std::optional<std::string> RealV1OwnDir(const char* controller) {
  absl::StatusOr<std::string> dir =
      fs::LocateV1OwnDir(SelfFile("/proc/self/mountinfo"),
                         SelfFile("/proc/self/cgroup"), controller);
  if (!dir.ok() || !IsDir(*dir)) return std::nullopt;
  return *dir;
}

// Whether `pid` is gone or a zombie (not running anything any more).
bool DeadOrZombie(pid_t pid) {
  absl::StatusOr<std::string> stat =
      fs::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return true;
  size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size()) return false;
  char state = (*stat)[paren + 2];
  return state == 'Z' || state == 'X';
}

// Reaps `pid` (a child, or an orphan re-parented to this subreaper) and checks
// that it is gone.
void ReapAndExpectGone(pid_t pid) {
  const int64_t deadline = fs::NowMs() + kWaitMs;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) break;
    if (fs::NowMs() > deadline) {
      ADD_FAILURE() << "pid " << pid << " was not reaped in time";
      break;
    }
    fs::SleepMs(5);
  }
  errno = 0;
  EXPECT_EQ(kill(pid, 0), -1) << "pid " << pid << " still exists";
  EXPECT_EQ(errno, ESRCH);
}

// Waits up to `timeout_ms` for the child `pid` to exit and returns its wait
// status. On timeout the child is killed and nullopt returned, so a broken kill
// fails the test instead of hanging it.
std::optional<int> WaitExit(pid_t pid, int timeout_ms = kWaitMs) {
  const int64_t deadline = fs::NowMs() + timeout_ms;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return std::nullopt;
    if (fs::NowMs() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return std::nullopt;
    }
    fs::SleepMs(2);
  }
}

bool KilledBySigkill(std::optional<int> status) {
  return status.has_value() && WIFSIGNALED(*status) &&
         WTERMSIG(*status) == SIGKILL;
}

// This process's instance directory name (jail/cgroup_instance.h).
std::string Inst() {
  absl::StatusOr<instance::InstanceId> self = instance::OwnInstance();
  return self.ok() ? instance::InstanceName(*self) : "<no instance>";
}

// The instance name of a process that existed and is gone: a reaped child,
// with its real start time and this process's namespaces.
std::string DeadInstance();

// Creates a dead pid: fork a child that exits and reap it.
pid_t DeadPid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

std::string DeadInstance() {
  instance::InstanceId id = *instance::OwnInstance();
  id.pid = DeadPid();
  return instance::InstanceName(id);
}

[[noreturn]] void SleepForever() {
  for (;;) pause();
}

// Async-signal-safe body of the escapee child (runs after fork or a raw
// clone3): forks a setsid'd grandchild and a double-forked great-grandchild,
// reports both pids on `fd` and sleeps. Uses raw fork syscalls because glibc's
// cached thread state is stale after a raw clone3.
[[noreturn]] void EscapeeChild(int fd) {
  pid_t grandchild = static_cast<pid_t>(syscall(SYS_fork));
  if (grandchild == 0) {
    setsid();
    SleepForever();
  }
  pid_t middle = static_cast<pid_t>(syscall(SYS_fork));
  if (middle == 0) {
    pid_t great = static_cast<pid_t>(syscall(SYS_fork));
    if (great == 0) {
      setsid();
      SleepForever();
    }
    (void)!write(fd, &great, sizeof(great));
    _exit(0);
  }
  int status;
  waitpid(middle, &status, 0);
  (void)!write(fd, &grandchild, sizeof(grandchild));
  SleepForever();
}

bool ReadPid(int fd, pid_t* pid) {
  size_t got = 0;
  char* p = reinterpret_cast<char*>(pid);
  while (got < sizeof(*pid)) {
    ssize_t n = read(fd, p + got, sizeof(*pid) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

// Runs the escapee scenario for `cgroup`: `start` launches the first child
// inside the cgroup.
void ExpectKillAllKillsEscapees(Cgroup& cgroup, pid_t child, int read_fd) {
  pid_t a = 0;
  pid_t b = 0;
  ASSERT_TRUE(ReadPid(read_fd, &a));
  ASSERT_TRUE(ReadPid(read_fd, &b));
  std::set<pid_t> expected = {child, a, b};

  absl::StatusOr<std::vector<pid_t>> before = cgroup.Processes();
  ASSERT_OK_STATUSOR(before);
  for (pid_t pid : expected) EXPECT_THAT(*before, Contains(pid));

  absl::StatusOr<std::vector<pid_t>> killed = cgroup.KillAll(kWaitMs);
  ASSERT_OK_STATUSOR(killed);
  for (pid_t pid : expected) EXPECT_THAT(*killed, Contains(pid));
  for (pid_t pid : expected) EXPECT_TRUE(DeadOrZombie(pid)) << pid;

  absl::StatusOr<std::vector<pid_t>> after = cgroup.Processes();
  ASSERT_OK_STATUSOR(after);
  EXPECT_THAT(*after, IsEmpty());

  std::optional<int> status = WaitExit(child);
  ASSERT_TRUE(status.has_value()) << "pid " << child << " did not exit";
  EXPECT_TRUE(KilledBySigkill(status));
  for (pid_t pid : expected) ReapAndExpectGone(pid);
}

// ---------------------------------------------------------------------------------------------
// Parsing.

constexpr char kHostMountInfo[] =
    "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup "
    "rw,cpuacct\n"
    "33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup "
    "rw,freezer\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
    "rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

constexpr char kHostProcCgroup[] =
    "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/process_api/"
    "d7be\n1:cpu:/\n0::/\n";

TEST(CgroupParseTest, HostMountInfo) {
  std::vector<fs::MountInfoEntry> mounts = fs::ParseMountInfo(kHostMountInfo);
  ASSERT_EQ(mounts.size(), 10u);
  EXPECT_EQ(mounts[2].mount_point, "/sys/fs/cgroup/cpu");
  EXPECT_EQ(mounts[2].fstype, "cgroup");
  EXPECT_EQ(mounts[2].root, "/");
  std::optional<fs::MountInfoEntry> v2 = fs::FindV2Mount(mounts);
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->mount_point, "/sys/fs/cgroup/unified");
  // "cpu" must not match cpuacct or cpuset.
  std::vector<fs::MountInfoEntry> cpu = fs::FindV1Mounts(mounts, "cpu");
  ASSERT_EQ(cpu.size(), 1u);
  EXPECT_EQ(cpu[0].mount_point, "/sys/fs/cgroup/cpu");
  EXPECT_THAT(fs::FindV1Mounts(mounts, "blkio"), IsEmpty());
  // name=systemd is not a controller called "systemd".
  EXPECT_THAT(fs::FindV1Mounts(mounts, "systemd"), IsEmpty());

  absl::StatusOr<std::string> memory =
      fs::LocateV1OwnDir(kHostMountInfo, kHostProcCgroup, "memory");
  ASSERT_OK_STATUSOR(memory);
  EXPECT_EQ(*memory, "/sys/fs/cgroup/memory/process_api/d7be");
  absl::StatusOr<std::string> pids =
      fs::LocateV1OwnDir(kHostMountInfo, kHostProcCgroup, "pids");
  ASSERT_OK_STATUSOR(pids);
  EXPECT_EQ(*pids, "/sys/fs/cgroup/pids");
  absl::StatusOr<std::string> v2dir =
      fs::LocateV2OwnDir(kHostMountInfo, kHostProcCgroup);
  ASSERT_OK_STATUSOR(v2dir);
  EXPECT_EQ(*v2dir, "/sys/fs/cgroup/unified");
  EXPECT_TRUE(fs::V1HasController(kHostMountInfo, "memory"));
  EXPECT_FALSE(fs::V1HasController(kHostMountInfo, "hugetlb"));
}

TEST(CgroupParseTest, CoMountedEscapedAndOptionalFields) {
  const char* mountinfo =
      "25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup "
      "cgroup "
      "rw,cpu,cpuacct\n"
      "26 20 0:23 / /sys/fs/cgroup/my\\040memory rw shared:10 master:3 - "
      "cgroup none rw,memory\n"
      "27 20 0:24 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
      "garbage line\n"
      "28 20 0:25 / /x rw no-separator here at all really\n"
      "\n";
  const char* proc_cgroup =
      "5:cpuacct,cpu:/user.slice\n"
      "4:memory:/a b:c\n"
      "3:pids:/docker/abc/inner\n"
      "bad\n"
      "x:y:/z\n";
  std::vector<fs::MountInfoEntry> mounts = fs::ParseMountInfo(mountinfo);
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[1].mount_point, "/sys/fs/cgroup/my memory");
  EXPECT_THAT(mounts[0].super_options, Contains("cpuacct"));
  EXPECT_FALSE(fs::FindV2Mount(mounts).has_value());

  absl::StatusOr<std::string> cpu =
      fs::LocateV1OwnDir(mountinfo, proc_cgroup, "cpu");
  ASSERT_OK_STATUSOR(cpu);
  EXPECT_EQ(*cpu, "/sys/fs/cgroup/cpu,cpuacct/user.slice");
  absl::StatusOr<std::string> memory =
      fs::LocateV1OwnDir(mountinfo, proc_cgroup, "memory");
  ASSERT_OK_STATUSOR(memory);
  EXPECT_EQ(*memory, "/sys/fs/cgroup/my memory/a b:c");
  // A bind mount of a sub-cgroup: the mount root is stripped from the own path.
  absl::StatusOr<std::string> pids =
      fs::LocateV1OwnDir(mountinfo, proc_cgroup, "pids");
  ASSERT_OK_STATUSOR(pids);
  EXPECT_EQ(*pids, "/sys/fs/cgroup/pids/inner");

  // Missing v2 mount: a clear FailedPrecondition that says how to mount one.
  // (Whether --cgroup v1 is a way out is the runner's to say: it takes root.)
  absl::StatusOr<std::string> v2 = fs::LocateV2OwnDir(mountinfo, "0::/\n");
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(v2.status().message()),
              HasSubstr("mount -t cgroup2 none /sys/fs/cgroup/unified"));
  EXPECT_THAT(std::string(v2.status().message()),
              Not(HasSubstr("--cgroup v1")));
  // Own cgroup outside the mounted subtree.
  EXPECT_FALSE(
      fs::LocateV1OwnDir(mountinfo, "3:pids:/elsewhere\n", "pids").ok());
  // No line for the controller.
  EXPECT_FALSE(fs::LocateV1OwnDir(mountinfo, "0::/\n", "memory").ok());
  EXPECT_FALSE(fs::LocateV1OwnDir(mountinfo, proc_cgroup, "freezer").ok());
}

TEST(CgroupParseTest, ProcCgroup) {
  std::vector<fs::ProcCgroupEntry> entries = fs::ParseProcCgroup(
      "12:cpu,cpuacct:/a\n1:name=systemd:/\n0::/user.slice/x:y "
      "(deleted)\n::\n");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].hierarchy_id, 12);
  EXPECT_THAT(entries[0].controllers, Contains("cpuacct"));
  absl::StatusOr<std::string> v2 = fs::OwnV2Path(entries);
  ASSERT_OK_STATUSOR(v2);
  EXPECT_EQ(*v2, "/user.slice/x:y");
  absl::StatusOr<std::string> cpu = fs::OwnV1Path(entries, "cpu");
  ASSERT_OK_STATUSOR(cpu);
  EXPECT_EQ(*cpu, "/a");
  EXPECT_FALSE(fs::OwnV1Path(entries, "memory").ok());
  EXPECT_FALSE(fs::OwnV2Path(fs::ParseProcCgroup("4:memory:/\n")).ok());
  EXPECT_THAT(fs::ParseProcCgroup(""), IsEmpty());
}

TEST(CgroupParseTest, Unescape) {
  EXPECT_EQ(fs::UnescapeMountField("a\\040b\\011c\\134d"), "a b\tc\\d");
  EXPECT_EQ(fs::UnescapeMountField("trailing\\04"), "trailing\\04");
  EXPECT_EQ(fs::UnescapeMountField("bad\\999"), "bad\\999");
  EXPECT_EQ(fs::UnescapeMountField("\\"), "\\");
  EXPECT_EQ(fs::UnescapeMountField(""), "");
}

TEST(CgroupParseTest, FileContents) {
  EXPECT_EQ(fs::FindKeyedValue("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n",
                               "oom_kill"),
            1u);
  EXPECT_EQ(fs::FindKeyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n",
                               "oom_kill"),
            7u);
  EXPECT_EQ(fs::FindKeyedValue("max 12", "max"), 12u);
  EXPECT_FALSE(fs::FindKeyedValue("max\nmax x\n", "max").has_value());
  EXPECT_FALSE(fs::FindKeyedValue("", "max").has_value());
  EXPECT_EQ(fs::FindKeyedValue("populated 0\nfrozen 0\n", "populated"), 0u);
  EXPECT_EQ(fs::ParseSingleValue("4096\n"), 4096u);
  EXPECT_FALSE(fs::ParseSingleValue("max\n").has_value());
  EXPECT_FALSE(fs::ParseSingleValue("").has_value());
  EXPECT_EQ(fs::ParsePidList("1\n 22\nx\n-3\n\n0\n333"),
            (std::vector<pid_t>{1, 22, 333}));
  EXPECT_EQ(fs::SplitTokens("cpu  memory\tpids\n"),
            (std::vector<std::string>{"cpu", "memory", "pids"}));
}

TEST(CgroupParseTest, NamesAndPaths) {
  std::string name = fs::DefaultLeafName();
  EXPECT_EQ(name.rfind(absl::StrCat("run-", getpid(), "-"), 0), 0u) << name;
  EXPECT_NE(fs::DefaultLeafName(), name);
  EXPECT_EQ(fs::JoinPath("/a/", "/b/c/"), "/a/b/c");
  EXPECT_EQ(fs::JoinPath("/", "x"), "/x");
  EXPECT_EQ(fs::JoinPath("/a", ""), "/a");
  EXPECT_TRUE(fs::ValidateRelativeName("p", "jcs/sub", true).ok());
  EXPECT_FALSE(fs::ValidateRelativeName("p", "../x", true).ok());
  EXPECT_FALSE(fs::ValidateRelativeName("p", "/abs", true).ok());
  EXPECT_FALSE(fs::ValidateRelativeName("p", "a//b", true).ok());
  EXPECT_FALSE(fs::ValidateRelativeName("n", "a/b", false).ok());
  EXPECT_FALSE(fs::ValidateRelativeName("n", "", false).ok());
}

TEST(CgroupParseTest, CpuQuota) {
  EXPECT_EQ(fs::CpuQuotaUs(1.0).value_or(0), 100000u);
  EXPECT_EQ(fs::CpuQuotaUs(0.333).value_or(0), 33300u);
  EXPECT_EQ(fs::CpuQuotaUs(0.0001).value_or(0), 1000u);  // kernel minimum
  EXPECT_FALSE(fs::CpuQuotaUs(0).ok());
  EXPECT_FALSE(fs::CpuQuotaUs(-1).ok());
  EXPECT_FALSE(fs::CpuQuotaUs(1e30).ok());
  EXPECT_FALSE(fs::CpuQuotaUs(std::nan("")).ok());
  CgroupOptions options;
  options.fake_root = "/nonexistent";
  options.limits.cpus = -2;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kInvalidArgument);
  cgroup = CreateCgroupV1(options);
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CgroupParseTest, FileErrorsNameTheFile) {
  absl::StatusOr<std::string> text = fs::ReadFile("/nonexistent/cgroup.procs");
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(absl::IsNotFound(text.status()));
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("/nonexistent/cgroup.procs"));
  absl::Status s = fs::WriteFile("/nonexistent/memory.max", "1");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/memory.max"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"1\""));
}

// ---------------------------------------------------------------------------------------------
// Fake roots.

TEST(CgroupV2FakeTest, LimitsLandInFiles) {
  std::string root = MakeTempDir();
  ASSERT_FALSE(root.empty());
  WriteText(root + "/cgroup.controllers", "cpuset cpu io memory pids\n");
  WriteText(root + "/cgroup.subtree_control", "");
  CgroupOptions options;
  options.parent = "jcs/sub";
  options.name = "leaf";
  options.fake_root = root;
  options.limits.memory_bytes = 64ull << 20;
  options.limits.pids = 32;
  options.limits.cpus = 1.5;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_OK_STATUSOR(cgroup);
  EXPECT_EQ((*cgroup)->backend(), "v2");
  EXPECT_GE((*cgroup)->clone_into_fd(), 0);
  const std::string instance_dir = root + "/jcs/sub/" + Inst();
  const std::string leaf = instance_dir + "/leaf";
  EXPECT_EQ(ReadText(leaf + "/memory.max"), "67108864");
  EXPECT_EQ(ReadText(leaf + "/memory.swap.max"), "0");
  EXPECT_EQ(ReadText(leaf + "/pids.max"), "32");
  EXPECT_EQ(ReadText(leaf + "/cpu.max"), "150000 100000");
  for (const std::string& dir :
       {root, root + "/jcs", root + "/jcs/sub", instance_dir}) {
    std::vector<std::string> tokens =
        fs::SplitTokens(ReadText(dir + "/cgroup.subtree_control"));
    EXPECT_THAT(tokens, Contains("+memory")) << dir;
    EXPECT_THAT(tokens, Contains("+pids")) << dir;
    EXPECT_THAT(tokens, Contains("+cpu")) << dir;
  }
  ASSERT_OK((*cgroup)->AddProcess(12345));
  EXPECT_EQ(ReadText(leaf + "/cgroup.procs"), "12345");
  WriteText(leaf + "/memory.peak", "1234\n");
  WriteText(leaf + "/memory.events",
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n");
  WriteText(leaf + "/pids.events", "max 9\n");
  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  EXPECT_EQ(stats->memory_peak_bytes, 1234u);
  EXPECT_EQ(stats->oom_kills, 2u);
  EXPECT_EQ(stats->pids_max_events, 9u);
  WriteText(leaf + "/cgroup.procs", "");
  // The fake subtree_control file keeps the instance directory from being
  // removed by rmdir; on cgroupfs the last run removes it (RealV2Test).
  ASSERT_EQ(unlink((instance_dir + "/cgroup.subtree_control").c_str()), 0);
  ASSERT_OK((*cgroup)->Destroy());
  EXPECT_FALSE(IsDir(leaf));
  EXPECT_FALSE(IsDir(instance_dir));
  EXPECT_TRUE(IsDir(root + "/jcs/sub"));
  ASSERT_OK((*cgroup)->Destroy());  // idempotent
}

TEST(CgroupV2FakeTest, OddFileContentsDoNotBreakStats) {
  std::string root = MakeTempDir();
  WriteText(root + "/cgroup.controllers", "");
  CgroupOptions options;
  options.parent = "jcs";
  options.name = "leaf";
  options.fake_root = root;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_OK_STATUSOR(cgroup);
  const std::string leaf = root + "/jcs/" + Inst() + "/leaf";
  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();  // no files at all
  ASSERT_OK_STATUSOR(stats);
  EXPECT_EQ(stats->memory_peak_bytes, 0u);
  WriteText(leaf + "/memory.peak", "max\n");
  WriteText(leaf + "/memory.current", "\xff\xfe garbage");
  WriteText(leaf + "/memory.events", "oom_kill\noom_kill -1\n\n");
  WriteText(leaf + "/pids.events", "max 99999999999999999999999\n");
  stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  EXPECT_EQ(stats->memory_peak_bytes, 0u);
  EXPECT_EQ(stats->oom_kills, 0u);
  EXPECT_EQ(stats->pids_max_events, 0u);
  // A name that already exists is refused rather than shared.
  absl::StatusOr<std::unique_ptr<Cgroup>> again = CreateCgroupV2(options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(IsDir(leaf));  // and the existing one is left alone
  ASSERT_OK((*cgroup)->Destroy());
  EXPECT_FALSE(IsDir(leaf));
}

TEST(CgroupV2FakeTest, MissingControllerIsNamed) {
  std::string root = MakeTempDir();
  WriteText(root + "/cgroup.controllers", "cpu pids\n");
  WriteText(root + "/cgroup.subtree_control", "");
  CgroupOptions options;
  options.fake_root = root;
  options.limits.memory_bytes = 64ull << 20;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(cgroup.status().message());
  EXPECT_THAT(message, HasSubstr("\"memory\""));
  EXPECT_THAT(message, HasSubstr(root + "/cgroup.controllers"));
  EXPECT_THAT(message, HasSubstr("enable the memory controller for cgroup v2"));
  EXPECT_FALSE(IsDir(root + "/jcs"));  // nothing was created

  options.limits = CgroupLimits();
  options.limits.cpus = 2;
  options.limits.pids = 5;
  cgroup = CreateCgroupV2(options);
  ASSERT_OK_STATUSOR(cgroup);
  ASSERT_OK((*cgroup)->Destroy());
}

// Only instance directories whose owners are provably dead are removed: a
// dead pid, or a live pid with another start time (reused), in this
// process's namespaces. Instances of another pid namespace, live ones,
// and anything that is not an instance directory are left alone.
TEST(CgroupV2FakeTest, OnlyProvablyStaleInstancesAreRemoved) {
  std::string root = MakeTempDir();
  WriteText(root + "/cgroup.controllers", "");
  const std::string parent = root + "/jcs";
  ASSERT_OK(fs::MakeDirs(root, "jcs"));
  const instance::InstanceId self = *instance::OwnInstance();
  const std::string dead = parent + "/" + DeadInstance();
  ASSERT_EQ(mkdir(dead.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dead + "/run-9-1").c_str(), 0755), 0);
  WriteText(dead + "/run-9-1/cgroup.procs", "");
  instance::InstanceId reused_id = self;
  reused_id.start_ticks += 1;
  const std::string reused = parent + "/" + instance::InstanceName(reused_id);
  instance::InstanceId other_ns_id = self;
  other_ns_id.pid = DeadPid();
  other_ns_id.pid_ns += 1;
  const std::string other_ns =
      parent + "/" + instance::InstanceName(other_ns_id);
  instance::InstanceId init_id = self;
  init_id.pid = 1;
  init_id.start_ticks = **instance::ProcStartTime(1);
  const std::string live = parent + "/" + instance::InstanceName(init_id);
  const std::string legacy = absl::StrCat(parent, "/run-", DeadPid(), "-1");
  const std::string other = parent + "/not-a-run";
  for (const std::string& dir : {reused, other_ns, live, legacy, other}) {
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  }
  CgroupOptions options;
  options.fake_root = root;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_OK_STATUSOR(cgroup);
  EXPECT_FALSE(IsDir(dead));
  EXPECT_FALSE(IsDir(reused));
  EXPECT_TRUE(IsDir(other_ns));
  EXPECT_TRUE(IsDir(live));
  EXPECT_TRUE(IsDir(legacy));
  EXPECT_TRUE(IsDir(other));
  EXPECT_TRUE(IsDir(parent + "/" + Inst()));
  ASSERT_OK((*cgroup)->Destroy());
  EXPECT_FALSE(IsDir(parent + "/" + Inst()));
  EXPECT_TRUE(IsDir(other_ns));
  EXPECT_TRUE(IsDir(live));
}

TEST(CgroupV1FakeTest, LimitsLandInFiles) {
  std::string root = MakeTempDir();
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
    ASSERT_EQ(mkdir(absl::StrCat(root, "/", c).c_str(), 0755), 0);
  }
  CgroupOptions options;
  options.parent = "jcs";
  options.name = "leaf";
  options.fake_root = root;
  options.limits.memory_bytes = 1 << 30;
  options.limits.pids = 16;
  options.limits.cpus = 0.25;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  EXPECT_EQ((*cgroup)->backend(), "v1");
  EXPECT_EQ((*cgroup)->clone_into_fd(), -1);
  const std::string leaf = "/jcs/" + Inst() + "/leaf";
  EXPECT_EQ(ReadText(root + "/memory" + leaf + "/memory.limit_in_bytes"),
            "1073741824");
  EXPECT_EQ(ReadText(root + "/memory" + leaf + "/memory.memsw.limit_in_bytes"),
            "1073741824");
  EXPECT_EQ(ReadText(root + "/pids" + leaf + "/pids.max"), "16");
  EXPECT_EQ(ReadText(root + "/cpu" + leaf + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(ReadText(root + "/cpu" + leaf + "/cpu.cfs_quota_us"), "25000");
  EXPECT_TRUE(IsDir(root + "/freezer" + leaf));
  ASSERT_OK((*cgroup)->AddProcess(4242));
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
    EXPECT_EQ(ReadText(absl::StrCat(root, "/", c, leaf, "/cgroup.procs")),
              "4242")
        << c;
  }
  WriteText(root + "/memory" + leaf + "/memory.max_usage_in_bytes", "777\n");
  WriteText(root + "/memory" + leaf + "/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  WriteText(root + "/pids" + leaf + "/pids.events", "max 5\n");
  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  EXPECT_EQ(stats->memory_peak_bytes, 777u);
  EXPECT_EQ(stats->oom_kills, 3u);
  EXPECT_EQ(stats->pids_max_events, 5u);
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
    WriteText(absl::StrCat(root, "/", c, leaf, "/cgroup.procs"), "");
  }
  ASSERT_OK((*cgroup)->Destroy());
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
    EXPECT_FALSE(IsDir(absl::StrCat(root, "/", c, leaf))) << c;
    EXPECT_FALSE(IsDir(absl::StrCat(root, "/", c, "/jcs/", Inst()))) << c;
  }
}

TEST(CgroupV1FakeTest, MissingHierarchyIsNamed) {
  std::string root = MakeTempDir();
  for (const char* c : {"memory", "cpu", "freezer"}) {
    ASSERT_EQ(mkdir(absl::StrCat(root, "/", c).c_str(), 0755), 0);
  }
  CgroupOptions options;
  options.fake_root = root;
  options.limits.pids = 10;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(cgroup.status().message()), HasSubstr("pids"));
  EXPECT_FALSE(IsDir(root + "/memory/jcs"));

  // Without a pids limit the pids hierarchy is not needed; without freezer
  // nothing works.
  options.limits = CgroupLimits();
  cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  absl::StatusOr<std::vector<std::string>> leaves =
      fs::ListSubdirs(root + "/memory/jcs/" + Inst());
  ASSERT_OK_STATUSOR(leaves);
  EXPECT_EQ(leaves->size(), 1u);
  ASSERT_OK((*cgroup)->Destroy());
  ASSERT_EQ(rmdir((root + "/freezer/jcs").c_str()), 0);
  ASSERT_EQ(rmdir((root + "/freezer").c_str()), 0);
  cgroup = CreateCgroupV1(options);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_THAT(std::string(cgroup.status().message()), HasSubstr("freezer"));
}

// ---------------------------------------------------------------------------------------------
// Real cgroups on this host.

// Makes orphaned descendants of the test children re-parent to this process so
// they can be reaped and checked, and removes the per-process parent cgroups at
// the end (failing on leftovers).
class RealCgroupEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    RemoveParentsOfDeadTestRuns();
  }

  // A test process that crashed leaves its jcs-test-<pid> parent behind; the
  // backends' own stale cleanup empties it (its leaves are run-<pid>-*), then
  // it is removed.
  static void RemoveParentsOfDeadTestRuns() {
    std::set<std::string> stale;
    for (const std::string& base : OwnDirs()) {
      absl::StatusOr<std::vector<std::string>> names = fs::ListSubdirs(base);
      if (!names.ok()) continue;
      for (const std::string& name : *names) {
        int pid = 0;
        if (name.rfind("jcs-test-", 0) == 0 &&
            absl::SimpleAtoi(name.substr(9), &pid) && pid > 0 &&
            !fs::ProcessExists(pid)) {
          stale.insert(name);
        }
      }
    }
    for (const std::string& name : stale) {
      CgroupOptions options;
      options.parent = name;
      if (RealV2OwnDir()) {
        absl::StatusOr<std::unique_ptr<Cgroup>> v2 = CreateCgroupV2(options);
        if (v2.ok()) (void)(*v2)->Destroy();
      }
      if (RealV1OwnDir("freezer")) {
        absl::StatusOr<std::unique_ptr<Cgroup>> v1 = CreateCgroupV1(options);
        if (v1.ok()) (void)(*v1)->Destroy();
      }
      for (const std::string& base : OwnDirs()) {
        (void)fs::RemoveCgroupDir(base + "/" + name, false, 1000);
      }
    }
  }

  static std::vector<std::string> OwnDirs() {
    std::vector<std::string> dirs;
    if (std::optional<std::string> v2 = RealV2OwnDir()) dirs.push_back(*v2);
    for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
      if (std::optional<std::string> v1 = RealV1OwnDir(c)) dirs.push_back(*v1);
    }
    return dirs;
  }
  void TearDown() override {
    std::vector<std::string> parents;
    for (const std::string& base : OwnDirs()) {
      parents.push_back(base + "/" + TestParent());
    }
    for (const std::string& parent : parents) {
      if (!IsDir(parent)) continue;
      absl::StatusOr<std::vector<std::string>> left = fs::ListSubdirs(parent);
      if (left.ok() && !left->empty()) {
        ADD_FAILURE() << "leftover cgroups in " << parent << ": "
                      << absl::StrJoin(*left, " ");
      }
      absl::Status s = fs::RemoveCgroupDir(parent, false, 1000);
      if (!s.ok()) ADD_FAILURE() << s;
    }
  }
};

const ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new RealCgroupEnvironment);

class RealV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<std::string> own = RealV2OwnDir();
    if (!own.has_value()) GTEST_SKIP() << "no cgroup v2 hierarchy on this host";
    own_ = *own;
    parent_dir_ = own_ + "/" + TestParent();
  }
  void TearDown() override {
    if (parent_dir_.empty() || !IsDir(parent_dir_)) return;
    absl::StatusOr<std::vector<std::string>> left =
        fs::ListSubdirs(parent_dir_);
    ASSERT_OK_STATUSOR(left);
    EXPECT_THAT(*left, IsEmpty()) << "leftover cgroups in " << parent_dir_;
  }
  CgroupOptions Options() {
    CgroupOptions options;
    options.parent = TestParent();
    options.name = fs::DefaultLeafName();
    return options;
  }
  std::string own_;
  std::string parent_dir_;
};

pid_t Clone3IntoCgroup(int cgroup_fd) {
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

TEST_F(RealV2Test, TrackingOnlyKillAllKillsEscapees) {
  CgroupOptions options = Options();
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_OK_STATUSOR(cgroup);
  const std::string leaf = parent_dir_ + "/" + Inst() + "/" + options.name;
  ASSERT_TRUE(IsDir(leaf));
  ASSERT_GE((*cgroup)->clone_into_fd(), 0);

  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  pid_t child = Clone3IntoCgroup((*cgroup)->clone_into_fd());
  if (child == 0) {
    close(fds[0]);
    EscapeeChild(fds[1]);
  }
  ASSERT_GT(child, 0) << strerror(errno);
  close(fds[1]);
  ExpectKillAllKillsEscapees(**cgroup, child, fds[0]);
  close(fds[0]);

  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  ASSERT_OK((*cgroup)->Destroy());
  EXPECT_FALSE(IsDir(leaf));
  EXPECT_EQ((*cgroup)->clone_into_fd(), -1);
}

TEST_F(RealV2Test, AddProcessAndDestroyKillsWhatIsLeft) {
  CgroupOptions options = Options();
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_OK_STATUSOR(cgroup);
  pid_t child = fork();
  if (child == 0) SleepForever();
  ASSERT_GT(child, 0);
  ASSERT_OK((*cgroup)->AddProcess(child));
  absl::StatusOr<std::vector<pid_t>> procs = (*cgroup)->Processes();
  ASSERT_OK_STATUSOR(procs);
  EXPECT_EQ(*procs, std::vector<pid_t>{child});
  cgroup->reset();  // the destructor kills and removes
  EXPECT_FALSE(IsDir(parent_dir_ + "/" + Inst() + "/" + options.name));
  std::optional<int> status = WaitExit(child);
  ASSERT_TRUE(status.has_value()) << "pid " << child << " did not exit";
  EXPECT_TRUE(KilledBySigkill(status));
}

TEST_F(RealV2Test, MemoryLimitNeedsTheMemoryController) {
  std::vector<std::string> available =
      fs::SplitTokens(ReadText(own_ + "/cgroup.controllers"));
  if (std::find(available.begin(), available.end(), "memory") !=
      available.end()) {
    GTEST_SKIP() << "this host's cgroup v2 has the memory controller";
  }
  CgroupOptions options = Options();
  options.limits.memory_bytes = 64ull << 20;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(options);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(cgroup.status().message());
  EXPECT_THAT(message, HasSubstr("\"memory\""));
  EXPECT_THAT(message, HasSubstr(own_));
  if (fs::V1HasController(SelfFile("/proc/self/mountinfo"), "memory")) {
    EXPECT_THAT(message, HasSubstr("bound to cgroup v1 on this host"));
  }
  EXPECT_FALSE(IsDir(parent_dir_ + "/" + Inst() + "/" + options.name));
}

// A dead instance's run cgroup is killed and removed with its instance
// directory; the live cgroup of another pid namespace's instance (whose
// processes this namespace might not even see) is left alone.
TEST_F(RealV2Test, StaleInstanceIsKilledAndRemovedOthersAreNot) {
  ASSERT_OK(fs::MakeDirs(own_, TestParent()));
  const std::string stale = parent_dir_ + "/" + DeadInstance();
  const std::string stale_leaf = stale + "/run-1-1";
  instance::InstanceId foreign_id = *instance::OwnInstance();
  foreign_id.pid_ns += 1;
  const std::string foreign =
      parent_dir_ + "/" + instance::InstanceName(foreign_id);
  const std::string foreign_leaf = foreign + "/run-1-1";
  for (const std::string& dir : {stale, stale_leaf, foreign, foreign_leaf}) {
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  }
  pid_t sleeper = fork();
  if (sleeper == 0) SleepForever();
  ASSERT_GT(sleeper, 0);
  pid_t bystander = fork();
  if (bystander == 0) SleepForever();
  ASSERT_GT(bystander, 0);
  ASSERT_OK(fs::WriteFile(stale_leaf + "/cgroup.procs", absl::StrCat(sleeper)));
  ASSERT_OK(
      fs::WriteFile(foreign_leaf + "/cgroup.procs", absl::StrCat(bystander)));
  const int64_t start = fs::NowMs();
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV2(Options());
  ASSERT_OK_STATUSOR(cgroup);
  EXPECT_LT(fs::NowMs() - start, 1000) << "create spun on a busy cgroup";
  EXPECT_FALSE(IsDir(stale));
  std::optional<int> status = WaitExit(sleeper);
  ASSERT_TRUE(status.has_value()) << "pid " << sleeper << " did not exit";
  EXPECT_TRUE(KilledBySigkill(status));
  EXPECT_TRUE(IsDir(foreign_leaf));
  EXPECT_EQ(ReadText(foreign_leaf + "/cgroup.procs"), absl::StrCat(bystander));
  EXPECT_FALSE(DeadOrZombie(bystander));
  ASSERT_OK((*cgroup)->Destroy());
  EXPECT_FALSE(IsDir(parent_dir_ + "/" + Inst()));
  // Clean up the stand-in for the foreign instance.
  ASSERT_OK(fs::WriteFile(own_ + "/cgroup.procs", absl::StrCat(bystander)));
  kill(bystander, SIGKILL);
  EXPECT_TRUE(WaitExit(bystander).has_value());
  ASSERT_OK(fs::RemoveCgroupDir(foreign, false, 1000));
}

class RealV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<std::string> freezer = RealV1OwnDir("freezer");
    if (!freezer.has_value())
      GTEST_SKIP() << "no cgroup v1 freezer hierarchy on this host";
    for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
      if (std::optional<std::string> own = RealV1OwnDir(c)) {
        parent_dirs_.emplace_back(c, *own + "/" + TestParent());
      }
    }
  }
  void TearDown() override {
    for (const auto& [controller, dir] : parent_dirs_) {
      if (!IsDir(dir)) continue;
      absl::StatusOr<std::vector<std::string>> left = fs::ListSubdirs(dir);
      ASSERT_OK_STATUSOR(left);
      EXPECT_THAT(*left, IsEmpty()) << "leftover cgroups in " << dir;
    }
  }
  std::string ParentDir(const char* controller) const {
    for (const auto& [c, dir] : parent_dirs_) {
      if (c == controller) return dir;
    }
    return "";
  }
  CgroupOptions Options() {
    CgroupOptions options;
    options.parent = TestParent();
    options.name = fs::DefaultLeafName();
    return options;
  }
  // The run's leaves and this process's instance directories are gone.
  void ExpectLeavesGone(const std::string& name) {
    for (const auto& [controller, dir] : parent_dirs_) {
      EXPECT_FALSE(IsDir(dir + "/" + Inst() + "/" + name)) << controller;
      EXPECT_FALSE(IsDir(dir + "/" + Inst())) << controller;
    }
  }
  // The leaf of `name` in the hierarchy of `controller`.
  std::string Leaf(const char* controller, const std::string& name) const {
    return ParentDir(controller) + "/" + Inst() + "/" + name;
  }
  // Forks a child that waits until it is in the cgroup and then runs `body`.
  template <typename Body>
  pid_t StartInCgroup(Cgroup& cgroup, Body body) {
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) return -1;
    pid_t child = fork();
    if (child == 0) {
      close(go[1]);
      char c;
      if (read(go[0], &c, 1) != 1) _exit(99);
      body();
      _exit(0);
    }
    close(go[0]);
    absl::Status s = child > 0 ? cgroup.AddProcess(child)
                               : absl::InternalError("fork failed");
    EXPECT_TRUE(s.ok()) << s;
    (void)!write(go[1], "x", 1);
    close(go[1]);
    return child;
  }
  std::vector<std::pair<std::string, std::string>> parent_dirs_;
};

TEST_F(RealV1Test, MemoryLimitOomKills) {
  if (ParentDir("memory").empty()) GTEST_SKIP() << "no v1 memory hierarchy";
  CgroupOptions options = Options();
  options.limits.memory_bytes = 64ull << 20;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  const std::string leaf = Leaf("memory", options.name);
  EXPECT_EQ(ReadText(leaf + "/memory.limit_in_bytes"), "67108864");
  if (fs::PathExists(leaf + "/memory.memsw.limit_in_bytes")) {
    EXPECT_EQ(ReadText(leaf + "/memory.memsw.limit_in_bytes"), "67108864");
  }
  pid_t child = StartInCgroup(**cgroup, [] {
    const size_t size = 512ull << 20;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(98);
    for (size_t i = 0; i < size; i += 4096)
      static_cast<volatile char*>(p)[i] = 1;
    _exit(0);
  });
  ASSERT_GT(child, 0);
  std::optional<int> status = WaitExit(child, 30000);
  ASSERT_TRUE(status.has_value()) << "pid " << child << " did not exit";
  EXPECT_TRUE(KilledBySigkill(status)) << "status " << *status;
  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  EXPECT_GE(stats->oom_kills, 1u);
  EXPECT_GT(stats->memory_peak_bytes, 0u);
  EXPECT_LE(stats->memory_peak_bytes, 64ull << 20);
  ASSERT_OK((*cgroup)->Destroy());
  ExpectLeavesGone(options.name);
}

TEST_F(RealV1Test, PeakMemoryWithoutLimit) {
  if (ParentDir("memory").empty()) GTEST_SKIP() << "no v1 memory hierarchy";
  CgroupOptions options = Options();
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  EXPECT_TRUE(IsDir(Leaf("memory", options.name)));
  EXPECT_TRUE(IsDir(Leaf("freezer", options.name)));
  if (!ParentDir("pids").empty()) {
    EXPECT_FALSE(IsDir(Leaf("pids", options.name)));
  }
  pid_t child = StartInCgroup(**cgroup, [] {
    const size_t size = 16ull << 20;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(98);
    for (size_t i = 0; i < size; i += 4096)
      static_cast<volatile char*>(p)[i] = 1;
    _exit(0);
  });
  ASSERT_GT(child, 0);
  std::optional<int> status = WaitExit(child, 30000);
  ASSERT_TRUE(status.has_value()) << "pid " << child << " did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "status " << *status;
  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  EXPECT_GE(stats->memory_peak_bytes, 16ull << 20);
  EXPECT_EQ(stats->oom_kills, 0u);
  ASSERT_OK((*cgroup)->Destroy());
  ExpectLeavesGone(options.name);
}

TEST_F(RealV1Test, PidsLimitRefusesForks) {
  if (ParentDir("pids").empty()) GTEST_SKIP() << "no v1 pids hierarchy";
  CgroupOptions options = Options();
  options.limits.pids = 16;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  EXPECT_EQ(ReadText(Leaf("pids", options.name) + "/pids.max"), "16");
  // Read once before the forks: the counters are read through descriptors
  // opened with the cgroup, and the second read must be current.
  absl::StatusOr<CgroupStats> before = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(before);
  EXPECT_EQ(before->pids_max_events, 0u);
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  pid_t child = StartInCgroup(**cgroup, [&report] {
    int forked = 0;
    int failed = 0;
    for (int i = 0; i < 100; ++i) {
      pid_t pid = fork();
      if (pid == 0) SleepForever();
      if (pid > 0) {
        ++forked;
      } else {
        ++failed;
      }
    }
    int counts[2] = {forked, failed};
    (void)!write(report[1], counts, sizeof(counts));
    SleepForever();
  });
  ASSERT_GT(child, 0);
  close(report[1]);
  int counts[2] = {0, 0};
  ASSERT_EQ(read(report[0], counts, sizeof(counts)),
            static_cast<ssize_t>(sizeof(counts)));
  close(report[0]);
  EXPECT_LE(counts[0], 15);  // the child itself is one of the 16
  EXPECT_GE(counts[1], 85);
  absl::StatusOr<CgroupStats> stats = (*cgroup)->Stats();
  ASSERT_OK_STATUSOR(stats);
  EXPECT_GE(stats->pids_max_events, 1u);

  absl::StatusOr<std::vector<pid_t>> killed = (*cgroup)->KillAll(kWaitMs);
  ASSERT_OK_STATUSOR(killed);
  EXPECT_EQ(killed->size(), static_cast<size_t>(counts[0] + 1));
  EXPECT_THAT(*killed, Contains(child));
  std::optional<int> status = WaitExit(child);
  ASSERT_TRUE(status.has_value()) << "pid " << child << " did not exit";
  for (pid_t pid : *killed) {
    if (pid != child) ReapAndExpectGone(pid);
  }
  ASSERT_OK((*cgroup)->Destroy());
  ExpectLeavesGone(options.name);
}

// Each read shows the cgroup as it is now, not as it was at the first (v1
// caches an open cgroup.procs' pid list: it is opened for every read).
TEST_F(RealV1Test, RepeatedReadsShowTheCurrentMembers) {
  CgroupOptions options = Options();
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  absl::StatusOr<std::vector<pid_t>> before = (*cgroup)->Processes();
  ASSERT_OK_STATUSOR(before);
  EXPECT_TRUE(before->empty());
  pid_t child = StartInCgroup(**cgroup, [] { SleepForever(); });
  ASSERT_GT(child, 0);
  absl::StatusOr<std::vector<pid_t>> during = (*cgroup)->Processes();
  ASSERT_OK_STATUSOR(during);
  EXPECT_THAT(*during, ElementsAre(child));
  kill(child, SIGKILL);
  ASSERT_TRUE(WaitExit(child).has_value());
  absl::StatusOr<std::vector<pid_t>> after = (*cgroup)->Processes();
  ASSERT_OK_STATUSOR(after);
  EXPECT_TRUE(after->empty());
  ASSERT_OK((*cgroup)->Destroy());
  ExpectLeavesGone(options.name);
}

TEST(CgroupParseTest, ReadFromStartRereadsTheWholeFile) {
  char path[] = "/tmp/jcs-cgfs-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "12\n34\n", 6), 6);
  absl::StatusOr<std::string> first = fs::ReadFromStart(fd);
  ASSERT_OK_STATUSOR(first);
  EXPECT_EQ(*first, "12\n34\n");
  ASSERT_EQ(pwrite(fd, "56", 2, 0), 2);
  absl::StatusOr<std::string> second = fs::ReadFromStart(fd);
  ASSERT_OK_STATUSOR(second);
  EXPECT_EQ(*second, "56\n34\n");
  close(fd);
  unlink(path);
  EXPECT_FALSE(fs::ReadFromStart(fd).ok());  // closed: an error
}

TEST_F(RealV1Test, KillAllKillsEscapees) {
  CgroupOptions options = Options();
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  pid_t child = StartInCgroup(**cgroup, [&fds] {
    close(fds[0]);
    EscapeeChild(fds[1]);
  });
  ASSERT_GT(child, 0);
  close(fds[1]);
  ExpectKillAllKillsEscapees(**cgroup, child, fds[0]);
  close(fds[0]);
  ASSERT_OK((*cgroup)->Destroy());
  ExpectLeavesGone(options.name);
}

TEST_F(RealV1Test, CpuQuota) {
  if (ParentDir("cpu").empty()) GTEST_SKIP() << "no v1 cpu hierarchy";
  CgroupOptions options = Options();
  options.limits.cpus = 0.5;
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(options);
  ASSERT_OK_STATUSOR(cgroup);
  const std::string leaf = Leaf("cpu", options.name);
  EXPECT_EQ(ReadText(leaf + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(ReadText(leaf + "/cpu.cfs_quota_us"), "50000");
  ASSERT_OK((*cgroup)->Destroy());
  ExpectLeavesGone(options.name);
}

TEST_F(RealV1Test, StaleInstanceIsKilledAndRemoved) {
  const std::string name = DeadInstance();
  pid_t sleeper = fork();
  if (sleeper == 0) SleepForever();
  ASSERT_GT(sleeper, 0);
  for (const auto& [controller, dir] : parent_dirs_) {
    ASSERT_EQ(mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST, true) << dir;
    const std::string stale = dir + "/" + name;
    ASSERT_EQ(mkdir(stale.c_str(), 0755), 0) << stale;
    ASSERT_EQ(mkdir((stale + "/run-1-1").c_str(), 0755), 0) << stale;
    ASSERT_OK(
        fs::WriteFile(stale + "/run-1-1/cgroup.procs", absl::StrCat(sleeper)));
  }
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = CreateCgroupV1(Options());
  ASSERT_OK_STATUSOR(cgroup);
  for (const auto& [controller, dir] : parent_dirs_) {
    EXPECT_FALSE(IsDir(dir + "/" + name)) << controller;
  }
  std::optional<int> status = WaitExit(sleeper);
  ASSERT_TRUE(status.has_value()) << "pid " << sleeper << " did not exit";
  EXPECT_TRUE(KilledBySigkill(status));
  ASSERT_OK((*cgroup)->Destroy());
}

}  // namespace
}  // namespace jcs::jail
