// Messages with file descriptors (SCM_RIGHTS) over the jail's Unix sockets:
// the sync socket between supervisor, init and program, and the zygote's
// request socket. Async-signal-safe (no allocation): the jail's child uses
// them between clone and exec.
#ifndef JCS_JAIL_FD_PASSING_H_
#define JCS_JAIL_FD_PASSING_H_

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jcs::jail {

// The most fds one message carries: a cold jail's request to the zygote
// (stdin, stdout, stderr and a cgroup directory).
inline constexpr int kMaxPassedFds = 4;

// One sendmsg of `len` bytes with `nfds` (0..kMaxPassedFds) fds attached,
// retried on EINTR. Returns what sendmsg returned (-1 with errno set).
inline ssize_t SendWithFds(int sock, const void* data, size_t len,
                           const int* fds, int nfds, int flags) {
  struct iovec iov = {const_cast<void*>(data), len};
  struct msghdr hdr = {};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
  if (nfds > 0) {
    memset(control, 0, sizeof(control));
    hdr.msg_control = control;
    hdr.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&hdr);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
  }
  ssize_t sent;
  do {
    sent = sendmsg(sock, &hdr, flags | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  return sent;
}

// One recvmsg (close-on-exec fds, retried on EINTR) into `buf`; up to
// `max_fds` received fds go to `fds` (the rest of the slots stay -1; extra
// fds are closed) and their count to *nfds. *truncated is set when the
// message or its fds did not fit. Returns what recvmsg returned.
inline ssize_t RecvWithFds(int sock, void* buf, size_t len, int* fds,
                           int max_fds, int* nfds, bool* truncated, int flags) {
  struct iovec iov = {buf, len};
  struct msghdr hdr = {};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &hdr, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < max_fds; ++i) fds[i] = -1;
  *nfds = 0;
  *truncated = n >= 0 && (hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  if (n < 0) return n;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr;
       c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (*nfds < max_fds) {
        fds[(*nfds)++] = fd;
      } else {
        close(fd);
      }
    }
  }
  return n;
}

}  // namespace jcs::jail

#endif  // JCS_JAIL_FD_PASSING_H_
