// `jcs run --tty` (issue 17): the real binary with a pseudo-terminal of this
// test as its stdin, stdout, stderr and controlling terminal (as a shell
// would start it), driven through the master: the program gets a terminal
// of its own (a /dev/pts node, the window size, TERM, job control, Ctrl-C
// through the line discipline), its exit status passes through, this
// terminal's settings come back, and TIOCSTI stays denied.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

bool SameTermios(const struct termios& a, const struct termios& b) {
  return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag &&
         a.c_cflag == b.c_cflag && a.c_lflag == b.c_lflag &&
         memcmp(a.c_cc, b.c_cc, sizeof(a.c_cc)) == 0;
}

// `jcs run -t --root ROOT FLAGS -- ARGV` on a new pty of this test, with
// `env` (and PATH) as its environment.
class TtyJcs {
 public:
  TtyJcs(const Project& project, const std::vector<std::string>& argv,
         const std::vector<std::string>& env = {},
         const std::vector<std::string>& flags = {}) {
    master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(master_, 0);
    EXPECT_EQ(grantpt(master_), 0);
    EXPECT_EQ(unlockpt(master_), 0);
    slave_ = open(ptsname(master_), O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(slave_, 0);
    struct winsize size = {};
    size.ws_row = 30;
    size.ws_col = 90;
    EXPECT_EQ(ioctl(master_, TIOCSWINSZ, &size), 0);
    EXPECT_EQ(tcgetattr(slave_, &before_), 0);
    std::vector<std::string> args = {JcsPath(), "run", "-t", "--root",
                                     project.root()};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("--");
    args.insert(args.end(), argv.begin(), argv.end());
    std::vector<char*> c_args;
    for (std::string& arg : args) c_args.push_back(arg.data());
    c_args.push_back(nullptr);
    std::vector<std::string> env_storage = {"PATH=/usr/bin:/bin"};
    env_storage.insert(env_storage.end(), env.begin(), env.end());
    std::vector<char*> c_env;
    for (std::string& var : env_storage) c_env.push_back(var.data());
    c_env.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      // A shell's foreground job: own session, this pty its terminal.
      setsid();
      ioctl(slave_, TIOCSCTTY, 0);
      for (int fd = 0; fd < 3; ++fd) dup2(slave_, fd);
      syscall(SYS_close_range, 3, ~0U, 0);
      execve(c_args[0], c_args.data(), c_env.data());
      _exit(127);
    }
    EXPECT_GT(pid_, 0);
  }
  ~TtyJcs() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(master_);
    close(slave_);
  }

  // Reads the master until `text` has arrived; false on the deadline.
  bool Expect(const std::string& text, double timeout_s = 20) {
    const double deadline = NowSeconds() + timeout_s;
    while (out_.find(text, seen_) == std::string::npos) {
      if (NowSeconds() > deadline) return false;
      Pump(50);
    }
    seen_ = out_.find(text, seen_) + text.size();
    return true;
  }
  void Send(const std::string& text) {
    ASSERT_EQ(write(master_, text.data(), text.size()),
              static_cast<ssize_t>(text.size()));
  }
  // Waits for jcs to exit (reading its output meanwhile); its exit code, or
  // -1 (killed at the deadline or by a signal).
  int Wait(double timeout_s = 60) {
    const double deadline = NowSeconds() + timeout_s;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (NowSeconds() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      Pump(50);
    }
    reaped_ = true;
    while (Pump(0)) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  struct termios Termios() const {
    struct termios now = {};
    EXPECT_EQ(tcgetattr(slave_, &now), 0);
    return now;
  }
  const struct termios& before() const { return before_; }
  int master() const { return master_; }
  int slave() const { return slave_; }
  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }

 private:
  // One read of the master, waiting up to `timeout_ms`; false when nothing
  // came.
  bool Pump(int timeout_ms) {
    struct pollfd p = {master_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = read(master_, buf, sizeof(buf));
    if (n <= 0) return false;
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int master_ = -1;
  int slave_ = -1;
  pid_t pid_ = -1;
  bool reaped_ = false;
  struct termios before_ = {};
  std::string out_;
  size_t seen_ = 0;
};

TEST(RunTty, APtsOfItsOwnWithTheSizeAndOnlyTerm) {
  Project project;
  TtyJcs jcs(project,
             {"/bin/sh", "-c",
              "tty; stty size; env | grep -c JCS_TTY_SECRET; echo "
              "\"term=$TERM\"; echo via-dev-tty >/dev/tty; "
              "[ -e /dev/ptmx ] || echo no-ptmx; ls /dev/pts | wc -l; exit 3"},
             {"TERM=xterm-256color", "JCS_TTY_SECRET=1"});
  EXPECT_EQ(jcs.Wait(), 3) << jcs.out();
  EXPECT_TRUE(std::regex_search(jcs.out(), std::regex("^/dev/pts/[0-9]+\r\n")))
      << jcs.out();
  // The one pts node and /dev/tty (the controlling terminal), nothing more.
  EXPECT_NE(jcs.out().find("\r\n30 90\r\n0\r\nterm=xterm-256color\r\n"
                           "via-dev-tty\r\nno-ptmx\r\n1\r\n"),
            std::string::npos)
      << jcs.out();
  EXPECT_TRUE(SameTermios(jcs.Termios(), jcs.before()));
}

TEST(RunTty, AnExplicitTermWinsAndNoTermMeansXterm) {
  Project project;
  TtyJcs given(project, {"/bin/sh", "-c", "echo \"term=$TERM\""},
               {"TERM=xterm-256color"}, {"--env", "TERM=vt100"});
  EXPECT_EQ(given.Wait(), 0) << given.out();
  EXPECT_NE(given.out().find("term=vt100\r\n"), std::string::npos)
      << given.out();
  TtyJcs none(project, {"/bin/sh", "-c", "echo \"term=$TERM\""});
  EXPECT_EQ(none.Wait(), 0) << none.out();
  EXPECT_NE(none.out().find("term=xterm\r\n"), std::string::npos) << none.out();
}

TEST(RunTty, AResizeReachesTheProgram) {
  Project project;
  TtyJcs jcs(project, {"/bin/bash", "-c",
                       "trap 'stty size; exit 7' WINCH; echo ready; "
                       "while :; do sleep 0.05; done"});
  ASSERT_TRUE(jcs.Expect("ready\r\n")) << jcs.out();
  struct winsize size = {};
  size.ws_row = 50;
  size.ws_col = 120;
  ASSERT_EQ(ioctl(jcs.master(), TIOCSWINSZ, &size), 0);
  // A terminal's resize signals its foreground job; jcs is one here only by
  // name, so send it as the terminal would.
  ASSERT_EQ(kill(jcs.pid(), SIGWINCH), 0);
  EXPECT_TRUE(jcs.Expect("50 120\r\n")) << jcs.out();
  EXPECT_EQ(jcs.Wait(), 7) << jcs.out();
}

TEST(RunTty, RawWhileItRunsAndRestoredAfter) {
  Project project;
  TtyJcs jcs(project,
             {"/bin/sh", "-c", "echo ready; read line; echo \"got <$line>\""});
  ASSERT_TRUE(jcs.Expect("ready\r\n")) << jcs.out();
  // This terminal is raw: the program's own pty does the line editing.
  const struct termios during = jcs.Termios();
  EXPECT_EQ(during.c_lflag & (ICANON | ECHO | ISIG), 0u);
  jcs.Send("hello\r");
  EXPECT_TRUE(jcs.Expect("got <hello>\r\n")) << jcs.out();
  EXPECT_EQ(jcs.Wait(), 0) << jcs.out();
  EXPECT_TRUE(SameTermios(jcs.Termios(), jcs.before()));
}

TEST(RunTty, RestoredWhenJcsIsTerminated) {
  Project project;
  TtyJcs jcs(project, {"/bin/sh", "-c", "echo ready; sleep 60"});
  ASSERT_TRUE(jcs.Expect("ready\r\n")) << jcs.out();
  EXPECT_FALSE(SameTermios(jcs.Termios(), jcs.before()));
  ASSERT_EQ(kill(jcs.pid(), SIGTERM), 0);  // forwarded to the program
  EXPECT_EQ(jcs.Wait(), 128 + SIGTERM) << jcs.out();
  EXPECT_TRUE(SameTermios(jcs.Termios(), jcs.before()));
}

TEST(RunTty, InteractiveBashWithJobControl) {
  Project project;
  TtyJcs jcs(project, {"/bin/bash", "--norc", "-i"});
  jcs.Send("echo $((6*7))\r");
  ASSERT_TRUE(jcs.Expect("42\r\n")) << jcs.out();
  // Ctrl-Z stops the foreground job (the tty sends SIGTSTP to its process
  // group). The job prints its marker once it runs, which is after bash made
  // it the terminal's foreground group.
  jcs.Send("sh -c 'echo job''1; exec sleep 60'\r");
  ASSERT_TRUE(jcs.Expect("job1\r\n")) << jcs.out();
  jcs.Send("\x1a");
  ASSERT_TRUE(jcs.Expect("Stopped")) << jcs.out();
  jcs.Send("kill -9 %1; echo killed$((1+1))\r");
  ASSERT_TRUE(jcs.Expect("killed2\r\n")) << jcs.out();
  // Ctrl-C interrupts the foreground job, not jcs run.
  jcs.Send("sh -c 'echo job''2; exec sleep 60'\r");
  ASSERT_TRUE(jcs.Expect("job2\r\n")) << jcs.out();
  jcs.Send("\x03");
  jcs.Send("echo status=$?\r");
  ASSERT_TRUE(jcs.Expect("status=130\r\n")) << jcs.out();
  jcs.Send("exit 5\r");
  EXPECT_EQ(jcs.Wait(), 5) << jcs.out();
  EXPECT_TRUE(SameTermios(jcs.Termios(), jcs.before()));
}

// Attack: the program types into its terminal with TIOCSTI (on a host with
// dev.tty.legacy_tiocsti=1 the kernel allows it on one's own controlling
// terminal, which the pty is); seccomp denies it, nothing reaches the
// program's input or the supervisor's terminal. TIOCLINUX as well.
TEST(RunTty, TiocstiStaysDenied) {
  Project project;
  const std::string code = R"PY(
import fcntl, json, os, select, termios
def attempt(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
sti = attempt(lambda: fcntl.ioctl(0, termios.TIOCSTI, b'x'))
linux = attempt(lambda: fcntl.ioctl(0, 0x541C, b'\x0b'))
t = termios.tcgetattr(0)
t[3] &= ~termios.ICANON
termios.tcsetattr(0, termios.TCSANOW, t)
pending = bool(select.select([0], [], [], 0.3)[0])
print()  # the JSON on a line of its own even after an injected echo
print(json.dumps({'tiocsti': sti, 'tioclinux': linux, 'pending': pending}))
)PY";
  TtyJcs jcs(project, Python(code));
  EXPECT_EQ(jcs.Wait(), 0) << jcs.out();
  const nlohmann::json in = LastJsonLine(jcs.out());
  ASSERT_TRUE(in.is_object()) << jcs.out();
  EXPECT_EQ(in["tiocsti"], EPERM) << in.dump();
  EXPECT_NE(in["tioclinux"], 0) << in.dump();
  EXPECT_FALSE(in["pending"]) << "a byte was injected into the jail's tty";
  int queued = -1;
  ASSERT_EQ(ioctl(jcs.slave(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 0) << "input injected into the supervisor's terminal";
}

// Like docker -t without -i: stdin need not be a terminal (no raw mode, no
// size); its end is the program's end of file.
TEST(RunTty, StdinNeedNotBeATerminal) {
  Project project;
  const JcsResult r = RunJail(project, {"-t"},
                              {"/bin/sh", "-c", "tty; cat; echo done; exit 4"});
  EXPECT_EQ(r.exit_code, 4) << r.Describe();
  EXPECT_TRUE(std::regex_search(r.out, std::regex("^/dev/pts/[0-9]+\r\n")))
      << r.Describe();
  EXPECT_NE(r.out.find("done\r\n"), std::string::npos) << r.Describe();
  EXPECT_TRUE(r.has_report) << r.Describe();
}

}  // namespace
}  // namespace jcs::testing
