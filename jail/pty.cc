#include "jail/pty.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace jcs::jail {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The terminal restored by the fatal-signal handlers (one RawTerminal at a
// time: `jcs run` has one stdin).
volatile sig_atomic_t g_raw_fd = -1;
struct termios g_raw_saved;
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

void RestoreAndDie(int sig) {
  if (g_raw_fd >= 0) tcsetattr(g_raw_fd, TCSANOW, &g_raw_saved);
  // SA_RESETHAND put the default action back: die of the same signal.
  raise(sig);
}

}  // namespace

absl::StatusOr<Pty> OpenPty() {
  Pty pty;
  pty.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty.master < 0) return Errno("posix_openpt");
  char name[128];
  if (grantpt(pty.master) != 0 || unlockpt(pty.master) != 0 ||
      ptsname_r(pty.master, name, sizeof(name)) != 0) {
    const absl::Status status = Errno("grantpt/unlockpt/ptsname");
    close(pty.master);
    return status;
  }
  pty.slave_path = name;
  pty.slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty.slave < 0) {
    const absl::Status status = Errno(absl::StrCat("open ", name));
    close(pty.master);
    return status;
  }
  return pty;
}

bool CopyWindowSize(int from, int to) {
  struct winsize size;
  if (ioctl(from, TIOCGWINSZ, &size) != 0) return false;
  if (size.ws_row == 0 && size.ws_col == 0) return false;
  return ioctl(to, TIOCSWINSZ, &size) == 0;
}

absl::StatusOr<std::unique_ptr<RawTerminal>> RawTerminal::Enter(int fd) {
  struct termios saved;
  if (tcgetattr(fd, &saved) != 0) return Errno("tcgetattr on stdin");
  g_raw_saved = saved;
  g_raw_fd = fd;
  struct sigaction restore = {};
  restore.sa_handler = RestoreAndDie;
  restore.sa_flags = SA_RESETHAND;
  sigemptyset(&restore.sa_mask);
  for (int sig : kFatalSignals) sigaction(sig, &restore, nullptr);
  struct termios raw = saved;
  cfmakeraw(&raw);
  if (tcsetattr(fd, TCSADRAIN, &raw) != 0) {
    const absl::Status status = Errno("tcsetattr (raw mode) on stdin");
    tcsetattr(fd, TCSANOW, &saved);
    g_raw_fd = -1;
    return status;
  }
  return std::unique_ptr<RawTerminal>(new RawTerminal(fd, saved));
}

RawTerminal::~RawTerminal() {
  tcsetattr(fd_, TCSADRAIN, &saved_);
  g_raw_fd = -1;
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : kFatalSignals) sigaction(sig, &dfl, nullptr);
}

absl::StatusOr<std::unique_ptr<PtyRelay>> PtyRelay::Start(int master, int in_fd,
                                                          int out_fd,
                                                          bool forward_winch) {
  std::unique_ptr<PtyRelay> relay(new PtyRelay());
  relay->master_ = master;
  relay->in_fd_ = in_fd;
  relay->out_fd_ = out_fd;
  // The master is this process's own: non-blocking, so that a program that
  // reads nothing cannot stall its output (the relay keeps reading it).
  const int flags = fcntl(master, F_GETFL);
  if (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) != 0) {
    return Errno("fcntl(O_NONBLOCK) on the pty master");
  }
  relay->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (relay->stop_fd_ < 0) return Errno("eventfd");
  if (forward_winch) {
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    relay->winch_fd_ = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
    if (relay->winch_fd_ < 0) return Errno("signalfd(SIGWINCH)");
  }
  // The thread starts with every signal blocked: process signals go to the
  // caller's signalfd, never to a thread that would die of them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  PtyRelay* self = relay.get();
  relay->thread_ = std::thread([self] { self->Loop(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return relay;
}

void PtyRelay::Loop() {
  std::string to_master;  // read from in_fd, not yet taken by the master
  bool in_open = true;
  bool finishing = false;
  int64_t last_output_ms = 0;
  char buf[16384];
  while (true) {
    struct pollfd fds[4];
    int n = 0;
    const int master_at = n;
    fds[n++] = {master_,
                static_cast<short>(POLLIN | (to_master.empty() ? 0 : POLLOUT)),
                0};
    const int stop_at = finishing ? -1 : n;
    if (!finishing) fds[n++] = {stop_fd_, POLLIN, 0};
    const int winch_at = winch_fd_ >= 0 ? n : -1;
    if (winch_fd_ >= 0) fds[n++] = {winch_fd_, POLLIN, 0};
    const bool read_in = in_open && !finishing && to_master.empty();
    const int in_at = read_in ? n : -1;
    if (read_in) fds[n++] = {in_fd_, POLLIN, 0};
    int timeout = -1;
    if (finishing) {
      timeout = static_cast<int>(last_output_ms + idle_ms_.load() - NowMs());
      if (timeout <= 0) break;  // a holder of the slave lingers: give up
    }
    const int ready = poll(fds, static_cast<nfds_t>(n), timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0) continue;  // the deadline is checked above
    if (stop_at >= 0 && fds[stop_at].revents != 0) {
      uint64_t value;
      (void)!read(stop_fd_, &value, sizeof(value));
      finishing = true;
      last_output_ms = NowMs();
    }
    if (winch_at >= 0 && fds[winch_at].revents != 0) {
      struct signalfd_siginfo info;
      while (read(winch_fd_, &info, sizeof(info)) == sizeof(info)) {
      }
      CopyWindowSize(in_fd_, master_);
    }
    if (in_at >= 0 && fds[in_at].revents != 0) {
      const ssize_t got = read(in_fd_, buf, sizeof(buf));
      if (got > 0) {
        to_master.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        // End of input: the program sees end of file as a terminal user's
        // Ctrl-D would give it (nothing in raw mode, where it has no meaning).
        in_open = false;
        struct termios t;
        if (tcgetattr(master_, &t) == 0 && (t.c_lflag & ICANON)) {
          to_master.push_back(static_cast<char>(t.c_cc[VEOF]));
        }
      }
    }
    const short master_events = fds[master_at].revents;
    if ((master_events & POLLOUT) && !to_master.empty()) {
      const ssize_t put = write(master_, to_master.data(), to_master.size());
      if (put > 0) to_master.erase(0, static_cast<size_t>(put));
    }
    if (master_events & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t got = read(master_, buf, sizeof(buf));
      if (got > 0) {
        last_output_ms = NowMs();
        if (!WriteAll(out_fd_, buf, static_cast<size_t>(got))) {
          // Nobody reads our output any more: keep draining the master so
          // that the program is never blocked on its terminal.
        }
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        break;  // EIO: no process holds the slave any more; all was read
      }
    }
  }
}

void PtyRelay::Finish(int idle_ms) {
  if (!thread_.joinable()) return;
  idle_ms_ = idle_ms;
  const uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
}

PtyRelay::~PtyRelay() {
  Finish(0);
  for (int fd : {master_, winch_fd_, stop_fd_}) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace jcs::jail
