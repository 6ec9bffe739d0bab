// File-descriptor helpers shared by the code that opens files on behalf of
// tools and projects: an owning fd, openat2(2) (no glibc wrapper in Debian
// 12), and the errno's symbolic name for error details.
#ifndef JCS_RUNTIME_UNIQUE_FD_H_
#define JCS_RUNTIME_UNIQUE_FD_H_

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace jcs::runtime {

// Closes its fd on destruction; movable, not copyable.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// openat2(2), retried on EINTR/EAGAIN; -1 with errno set on failure.
inline int OpenAt2(int dirfd, const std::string& path, uint64_t flags,
                   uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags;
  how.resolve = resolve;
  long rc;
  do {
    rc = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how));
  } while (rc < 0 && (errno == EINTR || errno == EAGAIN));
  return static_cast<int>(rc);
}

// "ENOENT" for ENOENT; "errno_<n>" for numbers without a name.
inline std::string ErrnoSymbol(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "errno_" + std::to_string(err);
}

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_UNIQUE_FD_H_
