#include "runtime/sensitive_mask.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/path_policy.h"

namespace jcs::runtime {
namespace {

int OpenDirBeneath(int root_fd, const std::string& rel) {
  struct open_how how = {};
  how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long rc;
  do {
    rc = syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how));
  } while (rc < 0 && (errno == EINTR || errno == EAGAIN));
  return static_cast<int>(rc);
}

absl::Status ErrnoStatus(int err, const std::string& what) {
  return absl::InternalError(
      absl::StrCat("sensitive_mask: ", what, ": ", strerror(err)));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> FindSensitivePaths(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist, std::size_t max_entries) {
  if (root.empty() || root.front() != '/' ||
      root.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        "sensitive_mask: root must be an absolute path");
  }
  const int root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sensitive_mask: cannot open root ", root, ": ", strerror(errno)));
  }
  absl::Cleanup close_root = [root_fd] { close(root_fd); };

  std::vector<std::string> found;
  std::deque<std::string> pending = {""};
  std::size_t visited = 0;
  while (!pending.empty()) {
    const std::string dir_rel = std::move(pending.front());
    pending.pop_front();
    const int fd = OpenDirBeneath(root_fd, dir_rel.empty() ? "." : dir_rel);
    if (fd < 0) {
      const int err = errno;
      // Vanished, or replaced by a symlink / non-directory meanwhile.
      if (!dir_rel.empty() &&
          (err == ENOENT || err == ENOTDIR || err == ELOOP || err == EXDEV)) {
        continue;
      }
      return ErrnoStatus(err, absl::StrCat("cannot open ", root, "/", dir_rel));
    }
    DIR* dir = fdopendir(fd);
    if (dir == nullptr) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, "fdopendir");
    }
    absl::Cleanup close_dir = [dir] { closedir(dir); };
    while (true) {
      errno = 0;
      const struct dirent* entry = readdir(dir);
      if (entry == nullptr) {
        if (errno != 0) {
          return ErrnoStatus(errno,
                             absl::StrCat("cannot read ", root, "/", dir_rel));
        }
        break;
      }
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      if (++visited > max_entries) {
        return absl::FailedPreconditionError(absl::StrCat(
            "sensitive_mask: more than ", max_entries, " entries under ", root,
            "; raise max_entries or narrow the root"));
      }
      unsigned char type = entry->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st;
        if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          continue;  // vanished
        }
        type = S_ISDIR(st.st_mode)   ? DT_DIR
               : S_ISREG(st.st_mode) ? DT_REG
                                     : DT_UNKNOWN;
      }
      if (type != DT_DIR && type != DT_REG) continue;  // symlinks included
      std::string rel =
          dir_rel.empty() ? name : absl::StrCat(dir_rel, "/", name);
      if (IsSensitivePath(rel, denylist, allowlist)) {
        found.push_back(std::move(rel));
      } else if (type == DT_DIR) {
        pending.push_back(std::move(rel));
      }
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace jcs::runtime
