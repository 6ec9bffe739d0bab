#include "jail/init_identity.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Bytes(ByteRange range) {
  return range.size() > 0 ? std::string(range.begin, range.size())
                          : std::string();
}

// The recorded ranges are exactly what the kernel serves as this process's
// /proc/PID/cmdline and /proc/PID/environ.
TEST(InitIdentityTest, RecordsWhatProcShows) {
  const std::string cmdline = ReadAll("/proc/self/cmdline");
  ASSERT_FALSE(cmdline.empty());
  EXPECT_EQ(Bytes(RecordedArguments()), cmdline);
  EXPECT_EQ(Bytes(RecordedEnvironment()), ReadAll("/proc/self/environ"));
}

// A forked copy that hides the identity shows "init" and no environment in
// /proc; the original keeps its own.
TEST(InitIdentityTest, CopyShowsOnlyInit) {
  const std::string cmdline = ReadAll("/proc/self/cmdline");
  const std::string environ = ReadAll("/proc/self/environ");
  ASSERT_FALSE(environ.empty()) << "the test needs an environment";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    HideSupervisorIdentity();
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  const std::string proc = "/proc/" + std::to_string(child);
  const std::string child_cmdline = ReadAll(proc + "/cmdline");
  const std::string child_environ = ReadAll(proc + "/environ");
  const std::string child_comm = ReadAll(proc + "/comm");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);

  EXPECT_EQ(child_cmdline, std::string("init", 5));
  EXPECT_EQ(child_comm, "init\n");
  EXPECT_EQ(child_environ.size(), environ.size());
  EXPECT_EQ(child_environ.find_first_not_of('\0'), std::string::npos)
      << "environment bytes left in the copy";
  EXPECT_EQ(ReadAll("/proc/self/cmdline"), cmdline);
  EXPECT_EQ(ReadAll("/proc/self/environ"), environ);
}

}  // namespace
}  // namespace jcs::jail
