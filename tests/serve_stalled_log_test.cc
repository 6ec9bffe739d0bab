// A daemon whose stderr nobody reads keeps serving. Its stderr is usually a
// pipe (a container runtime's log driver, journald, `jcs serve 2>&1 | ...`);
// when the reader stalls the pipe fills, and a daemon that wrote its log
// lines with a plain write(2) on the event loop would stop there: no ping,
// no tool call, for every project. Here the pipe is full before the daemon
// writes its first line.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

// Fills the pipe behind `write_fd` until a write would block.
void FillPipe(int write_fd) {
  const int flags = fcntl(write_fd, F_GETFL);
  ASSERT_EQ(fcntl(write_fd, F_SETFL, flags | O_NONBLOCK), 0);
  const std::string junk(4096, '.');
  for (;;) {
    const ssize_t n = write(write_fd, junk.data(), junk.size());
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      break;
    }
  }
  ASSERT_EQ(fcntl(write_fd, F_SETFL, flags), 0);  // the daemon's: blocking
}

TEST(ServeStalledLogTest, AFullStderrPipeDoesNotStopTheDaemon) {
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  FillPipe(pipe_fds[1]);
  DaemonOptions options;
  options.extra_config = "log_level: \"debug\"\n";
  options.stderr_fd = pipe_fds[1];
  options.wait_ready = false;  // "listening on" is stuck in the pipe
  Daemon daemon(options);
  ASSERT_TRUE(daemon.Start());
  close(pipe_fds[1]);

  const std::string socket = daemon.socket_path();
  ASSERT_TRUE(WaitFor(
      [&] {
        RunResult ping = RunJcs({"ping", "--socket", socket}, TimeoutAfter(5));
        return ping.exited && ping.exit_code == 0;
      },
      20))
      << "the daemon never answered a ping with its stderr pipe full";

  TempDir roots;
  const std::string root = roots.MakeOwnedDir("project");
  RunResult start =
      RunJcs({"project", "start", root, "--socket", socket}, TimeoutAfter(30));
  ASSERT_TRUE(start.exited && start.exit_code == 0) << start.Describe();
  const std::string id(absl::StripTrailingAsciiWhitespace(start.out));
  // Every call logs (tool.call, and at debug level its events): far more
  // than the pipe could take, were it being read.
  for (int i = 0; i < 12; ++i) {
    RunResult call =
        RunJcs({"tool", "run", id, "exec", "--args",
                ExecArgs({"/bin/echo", absl::StrCat("call ", i)}).dump(),
                "--json", "--socket", socket},
               TimeoutAfter(30));
    ASSERT_TRUE(call.exited && call.exit_code == 0)
        << "call " << i << ": " << call.Describe();
    EXPECT_NE(call.out.find(absl::StrCat("call ", i)), std::string::npos);
  }
  RunResult metrics = RunJcs({"metrics", "--socket", socket}, TimeoutAfter(10));
  ASSERT_TRUE(metrics.exited && metrics.exit_code == 0) << metrics.Describe();

  // The reader comes back: the held lines follow the junk, whole.
  std::string seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        char buf[65536];
        for (;;) {
          struct pollfd p = {pipe_fds[0], POLLIN, 0};
          if (poll(&p, 1, 0) <= 0) break;
          const ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
          if (n <= 0) break;
          seen.append(buf, static_cast<size_t>(n));
        }
        return seen.find("jcs serve: listening on") != std::string::npos &&
               seen.find("\"msg\":\"tool.call\"") != std::string::npos;
      },
      20))
      << seen.substr(seen.find_first_not_of('.') == std::string::npos
                         ? seen.size()
                         : seen.find_first_not_of('.'));
  daemon.StopCleanly();
  close(pipe_fds[0]);
}

}  // namespace
}  // namespace jcs::serve_test
