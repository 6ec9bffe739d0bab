#include "tools/run_daemon_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "jail/fd_passing.h"
#include "proto/control.pb.h"
#include "supervisor/framing.h"
#include "tools/flags.h"

namespace jcs::tools {
namespace {

// The daemon's answers are small; the report is bounded by the run's caps
// (at most kMaxEgressDenials denials): far below this.
constexpr size_t kMaxAnswerBytes = 16 << 20;

absl::StatusOr<runtime::UniqueFd> Connect(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid socket path '", path, "'"));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  runtime::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return absl::UnavailableError(absl::StrCat(
        "no daemon answers on ", path, ": ", strerror(errno),
        " (start one with jcs serve, daemon_run: true in its config)"));
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The next frame from the daemon; nullopt at EOF.
absl::StatusOr<std::optional<proto::Response>> ReadResponse(
    int fd, supervisor::FrameDecoder& decoder) {
  while (true) {
    if (std::optional<std::string> frame = decoder.Next()) {
      proto::Response response;
      if (!response.ParseFromString(*frame)) {
        return absl::InternalError("the daemon sent a malformed answer");
      }
      return std::optional<proto::Response>(std::move(response));
    }
    if (!decoder.status().ok()) return decoder.status();
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(
          absl::StrCat("reading from the daemon: ", strerror(errno)));
    }
    if (n == 0) return std::optional<proto::Response>();
    if (absl::Status s = decoder.Append(absl::string_view(buffer, n));
        !s.ok()) {
      return s;
    }
  }
}

absl::Status FromError(const proto::Error& error) {
  const std::string text = absl::StrCat(
      "the daemon refused the run: ", error.reason(), ": ", error.message());
  // No daemon run can start here at all: what --daemon-fallback is for.
  if (error.reason() == "daemon_run_disabled" ||
      error.reason() == "unknown_request") {
    return absl::UnavailableError(text);
  }
  return absl::PermissionDeniedError(text);
}

// One of this process's stdio descriptors, or /dev/null in place of a closed
// one (the jail's program always gets three).
int StdioFd(int given, int own, runtime::UniqueFd& null_fd) {
  if (given >= 0) return given;
  if (fcntl(own, F_GETFD) >= 0) return own;
  if (!null_fd.valid()) null_fd.Reset(open("/dev/null", O_RDWR | O_CLOEXEC));
  return null_fd.get();
}

// Blocks the forwarded signals for the run and reads them from a signalfd;
// the mask is put back when the run is over.
class ForwardedSignals {
 public:
  explicit ForwardedSignals(bool tty) {
    sigemptyset(&mask_);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&mask_, sig);
    if (!tty) sigaddset(&mask_, SIGWINCH);
    sigprocmask(SIG_BLOCK, &mask_, &old_);
    fd_ = signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~ForwardedSignals() {
    if (fd_ >= 0) close(fd_);
    sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_; }

 private:
  sigset_t mask_;
  sigset_t old_;
  int fd_ = -1;
};

}  // namespace

std::string DaemonRunSocket(const jail::RunInvocation& invocation) {
  if (!invocation.daemon_socket.empty()) return invocation.daemon_socket;
  return DefaultSocket();
}

absl::StatusOr<DaemonRunOutcome> RunThroughDaemon(const std::string& socket,
                                                  const proto::JailSpec& spec,
                                                  bool want_report, bool tty,
                                                  jail::JailStdio stdio) {
  absl::StatusOr<runtime::UniqueFd> conn = Connect(socket);
  if (!conn.ok()) return conn.status();
  const int fd = conn->get();
  proto::Request request;
  request.set_id(1);
  proto::DaemonRunRequest* run = request.mutable_daemon_run();
  *run->mutable_spec() = spec;
  run->set_report(want_report);
  run->set_tty(tty);
  // Signals from here on are the program's: blocked before the stdio goes
  // (with the request: the run may start before the daemon answers), so
  // none is lost between the two.
  ForwardedSignals signals(tty);
  if (signals.fd() < 0) {
    return absl::InternalError(absl::StrCat("signalfd: ", strerror(errno)));
  }
  runtime::UniqueFd null_fd;
  const int stdio_fds[3] = {StdioFd(stdio.in, STDIN_FILENO, null_fd),
                            StdioFd(stdio.out, STDOUT_FILENO, null_fd),
                            StdioFd(stdio.err, STDERR_FILENO, null_fd)};
  // One round trip: the stdio rides on the request's first bytes.
  const std::string frame =
      supervisor::EncodeFrame(request.SerializeAsString());
  const ssize_t first_sent =
      jail::SendWithFds(fd, frame.data(), frame.size(), stdio_fds, 3, 0);
  bool sent = first_sent > 0;
  if (sent && static_cast<size_t>(first_sent) < frame.size()) {
    sent = SendAll(fd, frame.substr(static_cast<size_t>(first_sent)));
  }
  const int send_errno = errno;
  null_fd.Reset();
  // Even when the send failed: a daemon that refuses the peer at once
  // (unauthorized, too many clients) answers and closes before reading.
  supervisor::FrameDecoder decoder(kMaxAnswerBytes);
  absl::StatusOr<std::optional<proto::Response>> first =
      ReadResponse(fd, decoder);
  if (!sent && !(first.ok() && first->has_value())) {
    return absl::UnavailableError(absl::StrCat(
        "sending to the daemon on ", socket, ": ", strerror(send_errno)));
  }
  if (!first.ok()) return first.status();
  if (!first->has_value()) {
    return absl::InternalError(
        "the daemon closed the connection without answering");
  }
  if ((*first)->has_error()) return FromError((*first)->error());
  if (!(*first)->daemon_run().accepted()) {
    return absl::InternalError("the daemon answered out of order");
  }

  while (true) {
    struct pollfd fds_to_poll[2] = {{fd, POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    if (poll(fds_to_poll, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
    }
    if (fds_to_poll[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      while (read(signals.fd(), &info, sizeof(info)) == sizeof(info)) {
        const char sig = static_cast<char>(info.ssi_signo);
        // A daemon that is gone shows at the read below.
        (void)send(fd, &sig, 1, MSG_NOSIGNAL);
      }
    }
    if (fds_to_poll[0].revents == 0) continue;
    absl::StatusOr<std::optional<proto::Response>> next =
        ReadResponse(fd, decoder);
    if (!next.ok()) return next.status();
    if (!next->has_value()) {
      return absl::InternalError(
          "the daemon closed the connection before the run ended");
    }
    if ((*next)->has_error()) return FromError((*next)->error());
    const proto::DaemonRunResponse& end = (*next)->daemon_run();
    if (!end.finished()) continue;
    DaemonRunOutcome outcome;
    outcome.exit_code = end.exit_code();
    outcome.messages.assign(end.messages().begin(), end.messages().end());
    outcome.notes.assign(end.notes().begin(), end.notes().end());
    outcome.report_json = end.report_json();
    outcome.warm = end.warm();
    return outcome;
  }
}

}  // namespace jcs::tools
