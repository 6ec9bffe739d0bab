// Landlock is per process (and inherited), so every attack runs in a forked
// child that applies the plan to itself and reports each failed expectation as
// text through a pipe.
#include "jail/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kExecute = 1ULL << 0;
constexpr uint64_t kWriteFile = 1ULL << 1;
constexpr uint64_t kReadFile = 1ULL << 2;
constexpr uint64_t kReadDir = 1ULL << 3;
constexpr uint64_t kRefer = 1ULL << 13;
constexpr uint64_t kTruncate = 1ULL << 14;
constexpr uint64_t kIoctlDev = 1ULL << 15;

// Collects failures inside the forked child; Fail() output goes back to the
// parent.
class ChildChecker {
 public:
  void Fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list ap;
    va_start(ap, fmt);
    const size_t room = sizeof(buf_) - len_;
    if (room > 1) {
      const int n = vsnprintf(buf_ + len_, room, fmt, ap);
      if (n > 0) len_ += static_cast<size_t>(n) < room ? n : room - 1;
    }
    va_end(ap);
    if (len_ + 1 < sizeof(buf_)) buf_[len_++] = '\n';
    failed_ = true;
  }
  // `rc` must be >= 0.
  void Ok(long rc, const char* what) {
    if (rc < 0) Fail("%s: expected success, got %s", what, strerror(errno));
  }
  // `rc` must be -1 with errno in `errs`.
  void Denied(long rc, std::initializer_list<int> errs, const char* what) {
    const int err = errno;
    if (rc >= 0) {
      Fail("%s: expected denial, but it succeeded", what);
      return;
    }
    for (int e : errs) {
      if (e == err) return;
    }
    Fail("%s: denied with unexpected errno %s", what, strerror(err));
  }
  bool failed() const { return failed_; }
  const char* text() const { return buf_; }
  size_t size() const { return len_; }

 private:
  char buf_[8192] = {};
  size_t len_ = 0;
  bool failed_ = false;
};

// Forks; the child runs `body(checker)` and exits. Returns the child's failure
// text, or a description of an abnormal exit; empty means every expectation
// held.
template <typename Body>
std::string RunInChild(Body body) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return std::string("pipe2: ") + strerror(errno);
  const pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + strerror(errno);
  if (pid == 0) {
    close(fds[0]);
    static ChildChecker checker;
    body(checker);
    size_t off = 0;
    while (off < checker.size()) {
      const ssize_t n =
          write(fds[1], checker.text() + off, checker.size() - off);
      if (n <= 0) break;
      off += n;
    }
    _exit(checker.failed() ? 1 : 0);
  }
  close(fds[1]);
  std::string text;
  char buf[1024];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid)
    return std::string("waitpid: ") + strerror(errno);
  if (WIFSIGNALED(status))
    text += "child killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && text.empty()) {
    text = "child exited " + std::to_string(WEXITSTATUS(status));
  }
  return text;
}

void ApplyOrFail(const LandlockPlan& plan, ChildChecker& c) {
  const char* failed_path = nullptr;
  const int rc = ApplyLandlock(plan, &failed_path);
  if (rc != 0) {
    c.Fail("ApplyLandlock: %s (path %s)", strerror(-rc),
           failed_path ? failed_path : "-");
    _exit(1);  // Nothing below would mean anything.
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

class LandlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    abi_ = LandlockAbi();
    if (abi_ == 0)
      GTEST_SKIP() << "Landlock unavailable (LandlockAbiTest covers this host)";
    const char* tmp = getenv("TEST_TMPDIR");
    std::string templ =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/landlock_test.XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr) << strerror(errno);
    root_ = templ;
    a_ = root_ + "/A";
    b_ = root_ + "/B";
    ASSERT_EQ(mkdir(a_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(b_.c_str(), 0755), 0);
    WriteFile(a_ + "/file", "in A\n");
    WriteFile(b_ + "/secret", "in B\n");
    // An executable outside the allowed hierarchies.
    std::filesystem::copy_file("/usr/bin/true", b_ + "/true");
    ASSERT_EQ(chmod((b_ + "/true").c_str(), 0755), 0);
    // /usr read+exec, A read-write, and a rule for a path that does not exist
    // (skipped).
    std::string error;
    ASSERT_TRUE(BuildLandlockPlan(abi_, {"/usr", "/lib64"},
                                  {root_ + "/missing"}, {a_}, {}, &plan_,
                                  &error))
        << error;
  }
  void TearDown() override {
    if (!root_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(root_, ec);
    }
  }
  static void WriteFile(const std::string& path, const std::string& content) {
    std::ofstream out(path);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }
  int abi_ = 0;
  LandlockPlan plan_;
  std::string root_, a_, b_;
};

TEST(LandlockAbiTest, AvailableOnThisHost) {
  // This kernel (6.x, Landlock in the LSM list) reports ABI 7; any host that
  // runs the jail tests is expected to have Landlock enabled.
  EXPECT_GT(LandlockAbi(), 0);
}

TEST(LandlockPlanTest, RightsPerAbi) {
  LandlockPlan plan;
  std::string error;
  ASSERT_TRUE(BuildLandlockPlan(7, {"/usr"}, {"/proc"}, {"/work"}, {"/dev"},
                                &plan, &error))
      << error;
  EXPECT_EQ(plan.abi, 7);
  EXPECT_EQ(plan.handled_access,
            (1ULL << 16) - 1);  // Every FS right through IOCTL_DEV.
  EXPECT_EQ(plan.scoped, 3u);   // Abstract unix sockets + signals.
  ASSERT_EQ(plan.rule_count, 4);
  EXPECT_STREQ(plan.rules[0].path, "/usr");
  EXPECT_EQ(plan.rules[0].access, kExecute | kReadFile | kReadDir);
  EXPECT_EQ(plan.rules[1].access, kReadFile | kReadDir);
  EXPECT_EQ(plan.rules[2].access, plan.handled_access);
  EXPECT_EQ(plan.rules[3].access,
            kReadFile | kWriteFile | kIoctlDev | kReadDir);

  ASSERT_TRUE(
      BuildLandlockPlan(1, {"/usr"}, {}, {"/work"}, {"/dev"}, &plan, &error));
  EXPECT_EQ(plan.handled_access, (1ULL << 13) - 1);
  EXPECT_EQ(plan.scoped, 0u);
  EXPECT_EQ(plan.rules[1].access & (kRefer | kTruncate | kIoctlDev), 0u);
  EXPECT_EQ(plan.rules[2].access, kReadFile | kWriteFile | kReadDir);

  ASSERT_TRUE(BuildLandlockPlan(3, {}, {}, {"/work"}, {}, &plan, &error));
  EXPECT_NE(plan.rules[0].access & kTruncate, 0u);
  EXPECT_NE(plan.rules[0].access & kRefer, 0u);
  EXPECT_EQ(plan.rules[0].access & kIoctlDev, 0u);
  EXPECT_EQ(plan.scoped, 0u);

  // A repeated path is one rule with the union of rights.
  ASSERT_TRUE(BuildLandlockPlan(7, {"/usr"}, {}, {}, {"/usr"}, &plan, &error));
  ASSERT_EQ(plan.rule_count, 1);
  EXPECT_EQ(plan.rules[0].access,
            kExecute | kReadFile | kReadDir | kWriteFile | kIoctlDev);

  // No Landlock: an empty plan that ApplyLandlock treats as a no-op.
  ASSERT_TRUE(BuildLandlockPlan(0, {"/usr"}, {}, {}, {}, &plan, &error));
  EXPECT_EQ(plan.abi, 0);
  EXPECT_EQ(plan.rule_count, 0);
  EXPECT_EQ(ApplyLandlock(plan, nullptr), 0);
}

TEST(LandlockPlanTest, RejectsTooManyRules) {
  std::vector<std::string> paths;
  for (int i = 0; i <= LandlockPlan::kMaxRules; ++i)
    paths.push_back("/p" + std::to_string(i));
  LandlockPlan plan;
  std::string error;
  EXPECT_FALSE(BuildLandlockPlan(7, paths, {}, {}, {}, &plan, &error));
  EXPECT_THAT(error, HasSubstr("too many rules"));
  EXPECT_THAT(error, HasSubstr("64"));
  EXPECT_EQ(plan.rule_count, 0);
  paths.pop_back();
  EXPECT_TRUE(BuildLandlockPlan(7, paths, {}, {}, {}, &plan, &error)) << error;
  EXPECT_EQ(plan.rule_count, LandlockPlan::kMaxRules);
}

TEST(LandlockPlanTest, RejectsTooLongAndRelativePaths) {
  LandlockPlan plan;
  std::string error;
  const std::string longest =
      "/" + std::string(LandlockPlan::kMaxPath - 2, 'x');
  EXPECT_TRUE(BuildLandlockPlan(7, {}, {longest}, {}, {}, &plan, &error))
      << error;
  EXPECT_FALSE(
      BuildLandlockPlan(7, {}, {longest + "y"}, {}, {}, &plan, &error));
  EXPECT_THAT(error, HasSubstr("path too long"));
  EXPECT_THAT(error, HasSubstr("read_only"));
  EXPECT_FALSE(
      BuildLandlockPlan(7, {}, {}, {"relative/dir"}, {}, &plan, &error));
  EXPECT_THAT(error, HasSubstr("must be absolute"));
  EXPECT_FALSE(BuildLandlockPlan(7, {}, {}, {""}, {}, &plan, &error));
}

TEST_F(LandlockTest, AllowedAccessStillWorks) {
  const std::string a = a_;
  const std::string text = RunInChild([&](ChildChecker& c) {
    ApplyOrFail(plan_, c);
    // Read and execute under /usr.
    int fd = open("/usr/bin/true", O_RDONLY | O_CLOEXEC);
    c.Ok(fd, "open /usr/bin/true");
    char magic[4] = {};
    if (fd >= 0 && (read(fd, magic, 4) != 4 || memcmp(magic,
                                                      "\x7f"
                                                      "ELF",
                                                      4) != 0)) {
      c.Fail("read /usr/bin/true: no ELF header");
    }
    close(fd);
    c.Ok(open("/usr/bin", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "list /usr/bin");
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/usr/bin/true", "true", nullptr);
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      c.Fail("exec /usr/bin/true failed");
    // Full read-write inside A.
    const std::string f = a + "/new";
    fd = open(f.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    c.Ok(fd, "create A/new");
    c.Ok(write(fd, "hello", 5), "write A/new");
    close(fd);
    c.Ok(open((a + "/file").c_str(), O_RDONLY | O_CLOEXEC), "read A/file");
    c.Ok(truncate(f.c_str(), 1), "truncate A/new");
    c.Ok(mkdir((a + "/sub").c_str(), 0755), "mkdir A/sub");
    c.Ok(rename(f.c_str(), (a + "/sub/moved").c_str()), "rename within A");
    c.Ok(link((a + "/sub/moved").c_str(), (a + "/hardlink").c_str()),
         "link within A");
    c.Ok(symlink("moved", (a + "/sub/sym").c_str()), "symlink in A");
    c.Ok(mkfifo((a + "/fifo").c_str(), 0600), "mkfifo in A");
    c.Ok(chmod((a + "/hardlink").c_str(), 0600), "chmod in A");
    c.Ok(unlink((a + "/hardlink").c_str()), "unlink in A");
  });
  EXPECT_EQ(text, "");
  struct stat st;
  EXPECT_EQ(stat((a_ + "/sub/moved").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1);
}

TEST_F(LandlockTest, SiblingDirectoryIsUnreachable) {
  const std::string a = a_, b = b_;
  const std::string text = RunInChild([&](ChildChecker& c) {
    ApplyOrFail(plan_, c);
    const std::string secret = b + "/secret";
    c.Denied(open(secret.c_str(), O_RDONLY | O_CLOEXEC), {EACCES},
             "read B/secret");
    c.Denied(open(secret.c_str(), O_WRONLY | O_CLOEXEC), {EACCES},
             "write B/secret");
    c.Denied(open(secret.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC), {EACCES},
             "O_TRUNC B/secret");
    c.Denied(truncate(secret.c_str(), 0), {EACCES}, "truncate B/secret");
    c.Denied(open(b.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), {EACCES},
             "list B");
    c.Denied(open((b + "/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644),
             {EACCES}, "create B/new");
    c.Denied(mkdir((b + "/dir").c_str(), 0755), {EACCES}, "mkdir in B");
    c.Denied(symlink("/etc/passwd", (b + "/sym").c_str()), {EACCES},
             "symlink in B");
    c.Denied(mkfifo((b + "/fifo").c_str(), 0600), {EACCES}, "mkfifo in B");
    c.Denied(unlink(secret.c_str()), {EACCES}, "unlink B/secret");
    // Moving or linking a file from A into B (or B's file into A).
    c.Denied(rename((a + "/file").c_str(), (b + "/file").c_str()),
             {EXDEV, EACCES}, "rename A/file -> B/file");
    c.Denied(link((a + "/file").c_str(), (b + "/file").c_str()),
             {EXDEV, EACCES}, "link A/file -> B/file");
    c.Denied(rename(secret.c_str(), (a + "/stolen").c_str()), {EXDEV, EACCES},
             "rename B/secret -> A/stolen");
    c.Denied(link(secret.c_str(), (a + "/stolen").c_str()), {EXDEV, EACCES},
             "link B/secret -> A/stolen");
    // Execution outside the read_exec hierarchies.
    const pid_t pid = fork();
    if (pid == 0) {
      execl((b + "/true").c_str(), "true", nullptr);
      _exit(errno == EACCES ? 42 : 43);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 42)
      c.Fail("exec B/true was not EACCES");
    // Outside every rule.
    c.Denied(open("/etc/hostname", O_RDONLY | O_CLOEXEC), {EACCES},
             "read /etc/hostname");
    c.Denied(open("/etc/passwd", O_RDONLY | O_CLOEXEC), {EACCES},
             "read /etc/passwd");
    c.Denied(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), {EACCES}, "list /");
    c.Denied(open("/usr/bin/true", O_WRONLY | O_CLOEXEC), {EACCES, ETXTBSY},
             "write /usr/bin/true");
  });
  EXPECT_EQ(text, "");
  // Nothing moved: B is as the parent left it.
  EXPECT_EQ(ReadFile(b_ + "/secret"), "in B\n");
  EXPECT_EQ(ReadFile(a_ + "/file"), "in A\n");
  EXPECT_FALSE(std::filesystem::exists(b_ + "/file"));
  EXPECT_FALSE(std::filesystem::exists(a_ + "/stolen"));
  EXPECT_FALSE(std::filesystem::exists(b_ + "/new"));
}

// Landlock (through ABI 7) governs file content and directory entries, not
// inode metadata: chmod, chown, utimes and xattrs are out of its scope. The
// jail relies on read-only bind mounts and dropped capabilities for those; this
// test pins the behaviour so a change shows up.
TEST_F(LandlockTest, MetadataChangesAreOutOfScope) {
  const std::string b = b_;
  const std::string text = RunInChild([&](ChildChecker& c) {
    ApplyOrFail(plan_, c);
    c.Ok(chmod((b + "/secret").c_str(), 0600),
         "chmod B/secret (Landlock does not cover it)");
  });
  EXPECT_EQ(text, "");
}

TEST_F(LandlockTest, FileRulesAreMaskedToFileRights) {
  // /etc/hostname is a regular file: read_write carries directory-only rights
  // that the kernel would refuse with EINVAL on a file rule; ApplyLandlock
  // masks them.
  ASSERT_EQ(access("/etc/hostname", R_OK), 0);
  ASSERT_EQ(access("/etc/passwd", R_OK), 0);
  const std::string a = a_;
  const std::string text = RunInChild([&](ChildChecker& c) {
    LandlockPlan plan;
    std::string error;
    if (!BuildLandlockPlan(abi_, {"/usr/bin/true"}, {},
                           {"/etc/hostname", a + "/file"}, {"/dev/null"}, &plan,
                           &error)) {
      c.Fail("BuildLandlockPlan: %s", error.c_str());
      return;
    }
    ApplyOrFail(plan, c);
    c.Ok(open("/etc/hostname", O_RDONLY | O_CLOEXEC), "read /etc/hostname");
    c.Ok(open("/dev/null", O_WRONLY | O_CLOEXEC), "write /dev/null");
    c.Ok(open((a + "/file").c_str(), O_RDWR | O_TRUNC | O_CLOEXEC),
         "truncate A/file");
    c.Denied(open("/etc/passwd", O_RDONLY | O_CLOEXEC), {EACCES},
             "read /etc/passwd");
    c.Denied(open((a + "/other").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644),
             {EACCES}, "create next to A/file");
  });
  EXPECT_EQ(text, "");
}

TEST_F(LandlockTest, SignalsOutsideTheDomainAreScoped) {
  if (abi_ < 6)
    GTEST_SKIP() << "signal scoping needs Landlock ABI 6, have " << abi_;
  const pid_t sibling = fork();
  ASSERT_GE(sibling, 0);
  if (sibling == 0) {
    for (;;) pause();
  }
  const std::string text = RunInChild([&](ChildChecker& c) {
    ApplyOrFail(plan_, c);
    c.Denied(kill(sibling, SIGTERM), {EPERM}, "kill(sibling, SIGTERM)");
    c.Denied(kill(sibling, 0), {EPERM}, "kill(sibling, 0)");
    c.Denied(kill(getppid(), SIGCONT), {EPERM}, "kill(parent, SIGCONT)");
    // Inside the domain signals still work: own child.
    const pid_t own = fork();
    if (own == 0) {
      for (;;) pause();
    }
    c.Ok(kill(own, SIGKILL), "kill(own child)");
    waitpid(own, nullptr, 0);
  });
  EXPECT_EQ(text, "");
  // The sibling survived the attempt.
  EXPECT_EQ(waitpid(sibling, nullptr, WNOHANG), 0);
  ASSERT_EQ(kill(sibling, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(sibling, &status, 0), sibling);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST_F(LandlockTest, AbstractUnixSocketsOutsideTheDomainAreScoped) {
  if (abi_ < 6)
    GTEST_SKIP() << "abstract socket scoping needs Landlock ABI 6, have "
                 << abi_;
  const int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const std::string name = "jcs-landlock-test-" + std::to_string(getpid());
  memcpy(addr.sun_path + 1, name.data(), name.size());
  const socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), len), 0)
      << strerror(errno);
  ASSERT_EQ(listen(server, 1), 0);
  // Control: without Landlock the connection succeeds.
  const std::string control = RunInChild([&](ChildChecker& c) {
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c.Ok(connect(s, reinterpret_cast<sockaddr*>(&addr), len),
         "connect without Landlock");
  });
  EXPECT_EQ(control, "");
  const std::string text = RunInChild([&](ChildChecker& c) {
    ApplyOrFail(plan_, c);
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c.Denied(connect(s, reinterpret_cast<sockaddr*>(&addr), len), {EPERM},
             "connect to an abstract socket outside the domain");
  });
  EXPECT_EQ(text, "");
  close(server);
}

TEST_F(LandlockTest, ReportsTheFailingRule) {
  // A rule path that cannot be opened for a reason other than ENOENT names
  // itself.
  const std::string text = RunInChild([&](ChildChecker& c) {
    LandlockPlan plan;
    std::string error;
    if (!BuildLandlockPlan(abi_, {"/usr", "/etc/hostname/below"}, {}, {}, {},
                           &plan, &error)) {
      c.Fail("BuildLandlockPlan: %s", error.c_str());
      return;
    }
    const char* failed_path = nullptr;
    const int rc = ApplyLandlock(plan, &failed_path);
    if (rc != -ENOTDIR) c.Fail("ApplyLandlock returned %d, want -ENOTDIR", rc);
    if (failed_path == nullptr ||
        strcmp(failed_path, "/etc/hostname/below") != 0) {
      c.Fail("failed_path = %s", failed_path ? failed_path : "(null)");
    }
    // The process is not restricted after a failure.
    c.Ok(open("/etc/passwd", O_RDONLY | O_CLOEXEC),
         "read /etc/passwd after failed apply");
  });
  EXPECT_EQ(text, "");
}

}  // namespace
}  // namespace jcs::jail
