#include "jail/procfs.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

using ::testing::HasSubstr;

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// Runs `body` as PID 1 of a new pid namespace (this process's /proc is
// then another namespace's) and returns what it wrote to the pipe.
template <typename Body>
std::string InNewPidNamespace(Body body) {
  int out[2];
  if (pipe(out) != 0) return "pipe failed";
  const pid_t child = fork();
  if (child == 0) {
    close(out[0]);
    if (unshare(CLONE_NEWPID) != 0) _exit(2);
    const pid_t init = fork();
    if (init == 0) {
      const std::string text = body();
      (void)!write(out[1], text.data(), text.size());
      _exit(0);
    }
    int status = 0;
    waitpid(init, &status, 0);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 3);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  return text;
}

std::string Describe(const absl::Status& status) {
  return status.ok() ? "OK" : std::string(status.message());
}

TEST(ProcfsTest, OwnProcIsAccepted) {
  EXPECT_TRUE(CheckOwnProcfs().ok()) << CheckOwnProcfs();
}

TEST(ProcfsTest, NotAProcfs) {
  const absl::Status s = CheckOwnProcfs("/tmp");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/tmp is not a procfs"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(kProcfsFix));
  EXPECT_THAT(Describe(CheckOwnProcfs("/nonexistent-proc")),
              HasSubstr("no procfs at /nonexistent-proc"));
}

// `unshare --pid --fork` without --mount-proc: the host's /proc, where
// /proc/self is the host pid and /proc/<own pid> another process.
TEST(ProcfsTest, ProcOfAnotherPidNamespaceIsRefused) {
  const std::string text = InNewPidNamespace([] {
    return absl::StrCat("pid=", getpid(), " ", Describe(CheckOwnProcfs()));
  });
  EXPECT_THAT(text, HasSubstr("pid=1 "));
  EXPECT_THAT(text, HasSubstr("/proc belongs to another pid namespace"));
  EXPECT_THAT(text, HasSubstr("this process is pid 1"));
  EXPECT_THAT(text, HasSubstr("unshare --pid --fork --mount-proc"));
}

// With a procfs of its own (what --mount-proc does) the check passes.
TEST(ProcfsTest, MountedProcOfTheNamespaceIsAccepted) {
  const std::string text = InNewPidNamespace([] {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0) {
      return std::string("setup failed");
    }
    return Describe(CheckOwnProcfs());
  });
  EXPECT_EQ(text, "OK");
}

TEST(ProcfsTest, ProcPidOfFollowsThePidfd) {
  const int self = PidfdOpen(getpid());
  ASSERT_GE(self, 0);
  absl::StatusOr<pid_t> pid = ProcPidOf(self);
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(*pid, getpid());
  close(self);

  const pid_t child = fork();
  if (child == 0) _exit(0);
  const int pidfd = PidfdOpen(child);
  ASSERT_GE(pidfd, 0);
  waitpid(child, nullptr, 0);
  pid = ProcPidOf(pidfd);
  EXPECT_FALSE(pid.ok());
  EXPECT_THAT(Describe(pid.status()), HasSubstr("has exited"));
  close(pidfd);
  EXPECT_THAT(Describe(ProcPidOf(0).status()), HasSubstr("no Pid line"));

  // The directory of a live process is its own.
  const int me = PidfdOpen(getpid());
  absl::StatusOr<int> dir = OpenProcDirOf(me);
  ASSERT_TRUE(dir.ok()) << dir.status();
  char link[64] = {};
  ASSERT_GT(readlinkat(*dir, "ns/pid", link, sizeof(link) - 1), 0);
  char own[64] = {};
  ASSERT_GT(readlink("/proc/self/ns/pid", own, sizeof(own) - 1), 0);
  EXPECT_STREQ(link, own);
  struct stat a, b;
  ASSERT_EQ(fstatat(*dir, "exe", &a, 0), 0);
  ASSERT_EQ(stat("/proc/self/exe", &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  close(*dir);
  close(me);

  // Through the host's /proc the number is the one that /proc knows.
  const std::string text = InNewPidNamespace([] {
    const int fd = PidfdOpen(getpid());
    absl::StatusOr<pid_t> seen = ProcPidOf(fd);
    return seen.ok() ? absl::StrCat(getpid(), " ", *seen) : "error";
  });
  EXPECT_THAT(text, HasSubstr("1 ")) << text;
  EXPECT_NE(text, "1 1") << "the host's /proc must show the host pid";
}

// A pid namespace of two processes (an init and its child), made without
// privilege (a user namespace owns it): exactly those two are its members,
// and this process, outside it, is not.
TEST(PidNamespaceMembersTest, ListsExactlyTheNamespacesProcesses) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t parent = fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    close(out[0]);
    if (unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0) _exit(2);
    const pid_t init = fork();
    if (init == 0) {
      if (fork() == 0) {
        pause();
        _exit(0);
      }
      pause();
      _exit(0);
    }
    const std::string text = absl::StrCat(init, "\n");
    (void)!write(out[1], text.data(), text.size());
    pause();
    _exit(0);
  }
  close(out[1]);
  char buf[32] = {};
  const ssize_t n = read(out[0], buf, sizeof(buf) - 1);
  close(out[0]);
  ASSERT_GT(n, 0) << "the child could not make the namespaces";
  const pid_t init = static_cast<pid_t>(atoi(buf));
  const int init_fd = PidfdOpen(init);
  ASSERT_GE(init_fd, 0);
  // The init's child may not have forked yet.
  std::vector<pid_t> members;
  for (int i = 0; i < 200 && members.size() < 2; ++i) {
    absl::StatusOr<std::vector<pid_t>> found = PidNamespaceMembers(init_fd);
    ASSERT_TRUE(found.ok()) << found.status();
    members = *found;
    if (members.size() < 2) usleep(10'000);
  }
  EXPECT_EQ(members.size(), 2u);
  EXPECT_THAT(members, ::testing::Contains(init));
  EXPECT_THAT(members, ::testing::Not(::testing::Contains(getpid())));
  EXPECT_THAT(members, ::testing::Not(::testing::Contains(parent)));
  // Killing the init ends the namespace: its other member goes with it.
  kill(init, SIGKILL);
  kill(parent, SIGKILL);
  waitpid(parent, nullptr, 0);
  close(init_fd);
}

}  // namespace
}  // namespace jcs::jail
