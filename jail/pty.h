// The supervisor's side of `jcs run --tty`: a new pseudo-terminal whose
// slave becomes the jailed program's terminal (the jail never sees the
// master, /dev/ptmx or any other pts), the caller's own terminal in raw mode
// while the run lasts, and a relay between the two that also forwards the
// window size.
#ifndef JCS_JAIL_PTY_H_
#define JCS_JAIL_PTY_H_

#include <termios.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace jcs::jail {

struct Pty {
  int master = -1;  // O_CLOEXEC
  int slave = -1;   // O_CLOEXEC | O_NOCTTY: nobody's controlling terminal yet
  std::string slave_path;  // "/dev/pts/3"
};
// posix_openpt + grantpt + unlockpt, and the slave opened. Errors name the
// step.
absl::StatusOr<Pty> OpenPty();

// Copies the window size of terminal `from` to `to`; false when `from` is
// not a terminal or has none.
bool CopyWindowSize(int from, int to);

// A terminal in raw mode (cfmakeraw: every byte goes to the program's pty,
// whose own line discipline echoes and turns Ctrl-C into SIGINT) until
// destruction. The saved settings are also put back by handlers for the
// fatal signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) before the
// process dies; the termination signals never kill `jcs run` (RunJail takes
// them from a signalfd), so every other exit path runs the destructor.
class RawTerminal {
 public:
  static absl::StatusOr<std::unique_ptr<RawTerminal>> Enter(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  RawTerminal(int fd, const struct termios& saved) : fd_(fd), saved_(saved) {}
  int fd_;
  struct termios saved_;
};

// Relays `in_fd` -> master and master -> `out_fd` on its own thread (with
// every signal blocked: the caller's thread takes them), and on SIGWINCH
// the window size of `in_fd` to the master when `forward_winch` (the caller
// blocks SIGWINCH in its thread before Start, so that it stays pending for
// the relay's signalfd). End of `in_fd` is passed on as the terminal's EOF
// character (VEOF, when the program's terminal is in canonical mode).
// Takes ownership of `master`.
class PtyRelay {
 public:
  static absl::StatusOr<std::unique_ptr<PtyRelay>> Start(int master, int in_fd,
                                                         int out_fd,
                                                         bool forward_winch);
  // After the run: stops reading `in_fd`, copies what the master still holds
  // to `out_fd` until no process holds the slave any more (or nothing came
  // for `idle_ms`), and joins the thread.
  void Finish(int idle_ms);
  ~PtyRelay();
  PtyRelay(const PtyRelay&) = delete;
  PtyRelay& operator=(const PtyRelay&) = delete;

 private:
  PtyRelay() = default;
  void Loop();
  int master_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int winch_fd_ = -1;  // signalfd for SIGWINCH, -1 when not forwarded
  int stop_fd_ = -1;   // eventfd: Finish() was called
  std::atomic<int> idle_ms_{1000};
  std::thread thread_;
};

}  // namespace jcs::jail

#endif  // JCS_JAIL_PTY_H_
