#include "jail/zygote.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jail/child.h"
#include "jail/child_context.h"
#include "jail/clone_args.h"
#include "jail/fd_passing.h"

namespace jcs::jail {
namespace {

constexpr size_t kMaxRequest = 192 * 1024;
Zygote* g_zygote = nullptr;

struct Reply {
  int32_t err = 0;  // 0, or the errno of the failed step
  int32_t pid = -1;
  char message[240] = {};
};

void Fail(int sock, int err, const std::string& message) {
  Reply reply;
  reply.err = err == 0 ? EINVAL : err;
  strncpy(reply.message, message.c_str(), sizeof(reply.message) - 1);
  SendWithFds(sock, &reply, sizeof(reply), nullptr, 0, 0);
}

// One request: [1 byte warm][1 byte kRequest* flags][serialized JailSpec],
// with, as SCM_RIGHTS, a cold jail's stdin, stdout and stderr (kRequestStdio)
// and then a cgroup directory (kRequestCgroup).
constexpr uint8_t kRequestCgroup = 1;
constexpr uint8_t kRequestStdio = 2;
constexpr size_t kRequestHeader = 2;
constexpr int kMaxRequestFds = 4;
static_assert(kMaxRequestFds <= kMaxPassedFds, "one message carries them all");

void CloseAll(const int* fds, int n) {
  for (int i = 0; i < n; ++i) {
    if (fds[i] >= 0) close(fds[i]);
  }
}

void Serve(int sock, std::vector<char>& buffer) {
  int request_fds[kMaxRequestFds] = {-1, -1, -1, -1};
  int received = 0;
  bool truncated = false;
  const ssize_t n = RecvWithFds(sock, buffer.data(), buffer.size(), request_fds,
                                kMaxRequestFds, &received, &truncated, 0);
  if (n == 0) _exit(0);  // the supervisor is gone
  if (n < 0) {
    if (errno == EAGAIN) return;
    _exit(1);
  }
  const uint8_t flags =
      n >= static_cast<ssize_t>(kRequestHeader) ? buffer[1] : 0xff;
  const int expected = ((flags & kRequestStdio) != 0 ? 3 : 0) +
                       ((flags & kRequestCgroup) != 0 ? 1 : 0);
  proto::JailSpec spec;
  if (truncated || n < static_cast<ssize_t>(kRequestHeader) ||
      (flags & ~(kRequestCgroup | kRequestStdio)) != 0 ||
      received != expected ||
      !spec.ParseFromArray(buffer.data() + kRequestHeader,
                           static_cast<int>(n - kRequestHeader))) {
    CloseAll(request_fds, received);
    Fail(sock, EINVAL, "zygote: malformed request");
    return;
  }
  const bool warm = buffer[0] != 0;
  const int* stdio = (flags & kRequestStdio) != 0 ? request_fds : nullptr;
  const int cgroup_fd =
      (flags & kRequestCgroup) != 0 ? request_fds[expected - 1] : -1;
  ChildContext ctx;
  std::vector<std::string> warnings;
  std::map<std::string, std::string> layers;
  absl::Status filled = FillChildContext(spec, warm, &ctx, &warnings, &layers);
  if (!filled.ok() || (warm && stdio != nullptr)) {
    CloseAll(request_fds, received);
    Fail(sock, EINVAL,
         filled.ok() ? "zygote: a warm jail takes its stdio with its command"
                     : std::string(filled.message()));
    return;
  }
  if (stdio != nullptr) {
    for (int i = 0; i < 3; ++i) ctx.stdio[i] = stdio[i];
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    const int err = errno;
    CloseAll(request_fds, received);
    Fail(sock, err, "sync socket: socketpair");
    return;
  }
  ctx.sync_fd = pair[1];
  int pidfd = -1;
  const long pid = CloneJailChild(ctx, cgroup_fd, &pidfd, SIGCHLD);
  const int clone_errno = errno;
  close(pair[1]);
  // The child holds its own copies: the supervisor's reads of the program's
  // output end when the program's processes are gone.
  CloseAll(request_fds, received);
  if (pid < 0) {
    close(pair[0]);
    Fail(sock, clone_errno, "clone3");
    return;
  }
  Reply reply;
  reply.pid = static_cast<int32_t>(pid);
  const int fds[2] = {pidfd, pair[0]};
  SendWithFds(sock, &reply, sizeof(reply), fds, 2, 0);
  close(pidfd);
  close(pair[0]);
}

[[noreturn]] void ZygoteMain(int sock, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != parent) _exit(0);
  prctl(PR_SET_NAME, "jcs-zygote", 0, 0, 0);
  // Root's supplementary groups must not reach the jails (their child
  // refuses to start with any).
  if (setgroups(0, nullptr) != 0) _exit(1);
  // Only the request socket stays open; stdio is /dev/null (the daemon's log
  // must not reach the jails' inits).
  if (dup2(sock, 3) < 0) _exit(1);
  syscall(SYS_close_range, 4, ~0U, 0);
  sock = 3;
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) _exit(1);
  for (int fd = 0; fd < 3; ++fd) {
    if (dup2(null_fd, fd) < 0) _exit(1);
  }
  close(null_fd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::vector<char> buffer(kMaxRequest);
  while (true) {
    // Reap the inits of finished jails (their supervisor only polls their
    // pidfds).
    while (waitpid(-1, nullptr, WNOHANG | __WALL) > 0) {
    }
    struct pollfd p = {sock, POLLIN, 0};
    const int ready = poll(&p, 1, 200);
    if (ready > 0) Serve(sock, buffer);
  }
}

}  // namespace

long CloneJailChild(const ChildContext& ctx, int cgroup_fd, int* pidfd,
                    int exit_signal) {
  CloneArgs args = {};
  args.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
               CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = static_cast<uint64_t>(exit_signal);
  if (cgroup_fd >= 0) {
    args.flags |= kCloneIntoCgroup;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  const long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) JailChildMain(ctx);
  return pid;
}

absl::StatusOr<std::unique_ptr<Zygote>> Zygote::Start() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return absl::InternalError(
        absl::StrCat("zygote: socketpair: ", strerror(errno)));
  }
  int size = static_cast<int>(kMaxRequest) + 4096;
  setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pair[0]);
    close(pair[1]);
    return absl::InternalError(absl::StrCat("zygote: fork: ", strerror(err)));
  }
  if (pid == 0) {
    close(pair[0]);
    ZygoteMain(pair[1], parent);
  }
  close(pair[1]);
  return std::unique_ptr<Zygote>(new Zygote(pid, pair[0]));
}

Zygote::~Zygote() {
  if (g_zygote == this) g_zygote = nullptr;
  close(sock_);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

absl::StatusOr<Zygote::Cloned> Zygote::Clone(const proto::JailSpec& spec,
                                             bool warm, int cgroup_fd,
                                             std::array<int, 3> stdio) {
  const bool with_stdio = stdio[0] >= 0;
  if (with_stdio != (stdio[1] >= 0) || with_stdio != (stdio[2] >= 0) ||
      (warm && with_stdio)) {
    return absl::InvalidArgumentError(
        "zygote: a cold jail takes all three stdio descriptors, a warm one "
        "none");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string request(kRequestHeader, '\0');
  request[0] = warm ? '\1' : '\0';
  request[1] = static_cast<char>((with_stdio ? kRequestStdio : 0) |
                                 (cgroup_fd >= 0 ? kRequestCgroup : 0));
  if (!spec.AppendToString(&request) || request.size() > kMaxRequest) {
    return absl::ResourceExhaustedError(
        "zygote: the jail spec is too large for one request");
  }
  int request_fds[kMaxRequestFds];
  int nfds = 0;
  if (with_stdio) {
    for (int fd : stdio) request_fds[nfds++] = fd;
  }
  if (cgroup_fd >= 0) request_fds[nfds++] = cgroup_fd;
  const ssize_t sent =
      SendWithFds(sock_, request.data(), request.size(), request_fds, nfds, 0);
  if (sent != static_cast<ssize_t>(request.size())) {
    return absl::UnavailableError(
        absl::StrCat("zygote: send: ", strerror(errno)));
  }
  Reply reply;
  int fds[2] = {-1, -1};
  int received = 0;
  bool truncated = false;
  const ssize_t n = RecvWithFds(sock_, &reply, sizeof(reply), fds, 2, &received,
                                &truncated, 0);
  if (n != sizeof(reply) || truncated || reply.err != 0 || received != 2) {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
    if (n != sizeof(reply)) {
      return absl::UnavailableError("zygote: no answer (is it still alive?)");
    }
    reply.message[sizeof(reply.message) - 1] = '\0';
    return absl::FailedPreconditionError(
        absl::StrCat(reply.message, ": ", strerror(reply.err)));
  }
  return Cloned{reply.pid, fds[0], fds[1]};
}

bool Zygote::Alive() const {
  struct pollfd p = {sock_, 0, 0};
  return poll(&p, 1, 0) >= 0 && (p.revents & (POLLHUP | POLLERR)) == 0;
}

void SetProcessZygote(Zygote* zygote) { g_zygote = zygote; }
Zygote* ProcessZygote() { return g_zygote; }

}  // namespace jcs::jail
