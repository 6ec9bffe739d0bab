#include "jail/pty.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

// Reads from `fd` until `want` has been seen (or 10 s pass); returns all read.
std::string ReadUntil(int fd, const std::string& want) {
  std::string got;
  for (int waited = 0; waited < 10000 && !absl::StrContains(got, want);) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      waited += 100;
      continue;
    }
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST(PtyTest, OpensAPairThatIsNobodysControllingTerminal) {
  absl::StatusOr<Pty> pty = OpenPty();
  ASSERT_TRUE(pty.ok()) << pty.status();
  EXPECT_TRUE(absl::StartsWith(pty->slave_path, "/dev/pts/"));
  EXPECT_TRUE(isatty(pty->slave));
  EXPECT_NE(fcntl(pty->master, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(fcntl(pty->slave, F_GETFD) & FD_CLOEXEC, 0);
  pid_t sid = 0;
  EXPECT_NE(ioctl(pty->slave, TIOCGSID, &sid), 0);  // no session yet
  close(pty->master);
  close(pty->slave);
}

TEST(PtyTest, RelaysBothWaysPassesEofAndDrainsAtTheEnd) {
  absl::StatusOr<Pty> pty = OpenPty();
  ASSERT_TRUE(pty.ok()) << pty.status();
  int in[2], out[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  absl::StatusOr<std::unique_ptr<PtyRelay>> relay =
      PtyRelay::Start(pty->master, in[0], out[1], /*forward_winch=*/false);
  ASSERT_TRUE(relay.ok()) << relay.status();
  // Input typed on the supervisor's side reaches the program's terminal
  // (canonical mode: one line), echoed back through the relay.
  ASSERT_EQ(write(in[1], "hello\n", 6), 6);
  EXPECT_EQ(ReadUntil(pty->slave, "\n"), "hello\n");
  EXPECT_TRUE(absl::StrContains(ReadUntil(out[0], "hello\r\n"), "hello\r\n"));
  // The end of the input is the terminal's end of file.
  close(in[1]);
  char c;
  EXPECT_EQ(read(pty->slave, &c, 1), 0);
  // What the program wrote last arrives even though the slave is closed.
  ASSERT_EQ(write(pty->slave, "bye", 3), 3);
  close(pty->slave);
  (*relay)->Finish(5000);
  EXPECT_EQ(ReadUntil(out[0], "bye"), "bye");
  relay->reset();
  close(in[0]);
  close(out[0]);
  close(out[1]);
}

TEST(PtyTest, RawModeIsUndoneAtTheEnd) {
  absl::StatusOr<Pty> pty = OpenPty();
  ASSERT_TRUE(pty.ok()) << pty.status();
  struct termios before;
  ASSERT_EQ(tcgetattr(pty->slave, &before), 0);
  ASSERT_NE(before.c_lflag & ICANON, 0u);
  {
    absl::StatusOr<std::unique_ptr<RawTerminal>> raw =
        RawTerminal::Enter(pty->slave);
    ASSERT_TRUE(raw.ok()) << raw.status();
    struct termios during;
    ASSERT_EQ(tcgetattr(pty->slave, &during), 0);
    EXPECT_EQ(during.c_lflag & (ICANON | ECHO | ISIG), 0u);
  }
  struct termios after;
  ASSERT_EQ(tcgetattr(pty->slave, &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  EXPECT_EQ(after.c_oflag, before.c_oflag);
  EXPECT_EQ(after.c_cflag, before.c_cflag);
  close(pty->master);
  close(pty->slave);
}

TEST(PtyTest, RawModeIsUndoneWhenTheProcessCrashes) {
  absl::StatusOr<Pty> pty = OpenPty();
  ASSERT_TRUE(pty.ok()) << pty.status();
  struct termios before;
  ASSERT_EQ(tcgetattr(pty->slave, &before), 0);
  const pid_t child = fork();
  if (child == 0) {
    absl::StatusOr<std::unique_ptr<RawTerminal>> raw =
        RawTerminal::Enter(pty->slave);
    if (!raw.ok()) _exit(1);
    abort();  // no destructor runs: only the signal handler can restore
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGABRT);
  struct termios after;
  ASSERT_EQ(tcgetattr(pty->slave, &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  EXPECT_EQ(after.c_oflag, before.c_oflag);
  close(pty->master);
  close(pty->slave);
}

TEST(PtyTest, CopiesTheWindowSize) {
  absl::StatusOr<Pty> a = OpenPty();
  absl::StatusOr<Pty> b = OpenPty();
  ASSERT_TRUE(a.ok() && b.ok());
  struct winsize size = {};
  size.ws_row = 33;
  size.ws_col = 101;
  ASSERT_EQ(ioctl(a->master, TIOCSWINSZ, &size), 0);
  EXPECT_TRUE(CopyWindowSize(a->slave, b->master));
  struct winsize got = {};
  ASSERT_EQ(ioctl(b->slave, TIOCGWINSZ, &got), 0);
  EXPECT_EQ(got.ws_row, 33);
  EXPECT_EQ(got.ws_col, 101);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_FALSE(CopyWindowSize(fds[0], b->master));  // not a terminal
  for (int fd : {a->master, a->slave, b->master, b->slave, fds[0], fds[1]}) {
    close(fd);
  }
}

}  // namespace
}  // namespace jcs::jail
