// Escape suite: inherited file descriptors. The test hands jcs non-CLOEXEC
// descriptors (a secret file, a directory fd of the host's /, a pipe, a
// socket) at various numbers; none may reach the program.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

constexpr int kFileFd = 7;
constexpr int kDirFd = 8;
constexpr int kPipeFd = 100;
constexpr int kSocketFd = 1000;

class EscapeFds : public ::testing::Test {
 protected:
  void SetUp() override {
    secret_token_ = UniqueToken("FDSECRET");
    secret_path_ = project_.base() + "/secret.txt";
    WriteHostFile(secret_path_, secret_token_ + "\n", 0600);
    file_fd_ = open(secret_path_.c_str(), O_RDONLY | O_CLOEXEC);
    dir_fd_ = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_EQ(pipe2(pipe_, O_CLOEXEC | O_NONBLOCK), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                         sock_),
              0);
    ASSERT_GE(file_fd_, 0);
    ASSERT_GE(dir_fd_, 0);
    // The harness clears FD_CLOEXEC on the target numbers in jcs's process.
    options_.inherit_fds = {{file_fd_, kFileFd},
                            {dir_fd_, kDirFd},
                            {pipe_[1], kPipeFd},
                            {sock_[1], kSocketFd}};
  }
  void TearDown() override {
    for (int fd : {file_fd_, dir_fd_, pipe_[0], pipe_[1], sock_[0], sock_[1]}) {
      if (fd >= 0) close(fd);
    }
  }

  Project project_;
  std::string secret_token_, secret_path_;
  int file_fd_ = -1, dir_fd_ = -1;
  int pipe_[2] = {-1, -1};
  int sock_[2] = {-1, -1};
  ProcessOptions options_;
};

// Control: the harness really passes the descriptors to what it starts.
TEST_F(EscapeFds, HarnessPassesTheFdsWithoutAJail) {
  const ProcessResult r =
      RunProcess({"/bin/sh", "-c",
                  "ls /proc/self/fd | tr '\\n' ' '; echo; head -c 200 <&7"},
                 options_);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  for (int fd : {kFileFd, kDirFd, kPipeFd, kSocketFd}) {
    EXPECT_NE(r.out.find(" " + std::to_string(fd) + " "), std::string::npos)
        << r.out;
  }
  EXPECT_NE(r.out.find(secret_token_), std::string::npos);
}

TEST_F(EscapeFds, InheritedFdsAreClosedInTheJail) {
  const JcsResult r = RunJail(project_, {"--nofile", "2048"}, Python(R"PY(
import json, os
def attempt(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
fds = sorted(int(x) for x in os.listdir('/proc/self/fd'))
out = {'fds': fds,
       'links': {str(fd): os.readlink('/proc/self/fd/%d' % fd) for fd in (0, 1, 2)}}
for fd in (7, 8, 100, 1000):
    out['fstat%d' % fd] = attempt(lambda: os.fstat(fd))
out['read7'] = attempt(lambda: os.read(7, 100))
out['fchdir8'] = attempt(lambda: os.fchdir(8))
out['openat8'] = attempt(lambda: os.open('etc/hostname', os.O_RDONLY, dir_fd=8))
out['write100'] = attempt(lambda: os.write(100, b'escaped'))
out['send1000'] = attempt(lambda: os.write(1000, b'escaped'))
out['proc_fd_7'] = attempt(lambda: open('/proc/self/fd/7', 'rb').read())
print(json.dumps(out))
)PY"),
                              options_);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find(secret_token_), std::string::npos) << r.out;
  const nlohmann::json in = LastJsonLine(r.out);
  ASSERT_TRUE(in.is_object()) << r.Describe();
  // 0, 1, 2 and the directory fd listdir itself holds.
  for (const auto& fd : in["fds"]) {
    EXPECT_LE(fd.get<int>(), 3) << "inherited fd in the jail: " << in.dump();
  }
  EXPECT_LE(in["fds"].size(), 4u) << in.dump();
  for (const auto& [fd, link] : in["links"].items()) {
    EXPECT_EQ(link.get<std::string>().find(project_.base()), std::string::npos)
        << fd << " -> " << link;
  }
  for (const char* key : {"fstat7", "fstat8", "fstat100", "fstat1000", "read7",
                          "fchdir8", "openat8", "write100", "send1000"}) {
    EXPECT_EQ(in[key], EBADF) << key << ": " << in.dump();
  }
  EXPECT_NE(in["proc_fd_7"], 0);
  // Nothing arrived through the pipe or the socket.
  char buf[64];
  EXPECT_LT(read(pipe_[0], buf, sizeof(buf)), 0);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_LT(read(sock_[0], buf, sizeof(buf)), 0);
  EXPECT_EQ(errno, EAGAIN);
}

// The same descriptors must not reach a process the program starts (e.g. if
// jcs only hid them from the first exec).
TEST_F(EscapeFds, ChildrenOfTheProgramSeeOnlyStdio) {
  const JcsResult r =
      RunJail(project_, {},
              Bash("sh -c 'ls /proc/self/fd | tr \"\\n\" \" \"'; echo; "
                   "cat <&7 2>/dev/null; echo rc=$?"),
              options_);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find(secret_token_), std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind("0 1 2 3 \n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace jcs::testing
