#include "jail/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace jcs::jail {
namespace {

absl::Status ProcfsError(absl::string_view problem) {
  return absl::FailedPreconditionError(
      absl::StrCat("procfs: ", problem, " (fix: ", kProcfsFix, ")"));
}

}  // namespace

absl::Status CheckOwnProcfs(const std::string& proc) {
  struct statfs fs;
  if (statfs(proc.c_str(), &fs) != 0) {
    return ProcfsError(absl::StrCat("no procfs at ", proc,
                                    " (statfs: ", strerror(errno), ")"));
  }
  if (fs.f_type != PROC_SUPER_MAGIC) {
    return ProcfsError(absl::StrCat(proc, " is not a procfs"));
  }
  const std::string self = proc + "/self";
  char target[64];
  const ssize_t n = readlink(self.c_str(), target, sizeof(target) - 1);
  if (n < 0) {
    // A procfs of a pid namespace this process is not part of has no self.
    return ProcfsError(absl::StrCat(
        proc, " does not show this process (readlink ", self, ": ",
        strerror(errno), "): it belongs to another pid namespace"));
  }
  target[n] = '\0';
  int pid = 0;
  if (!absl::SimpleAtoi(target, &pid) || pid != getpid()) {
    return ProcfsError(absl::StrCat(
        proc, " belongs to another pid namespace: ", self, " is ", target,
        " there, but this process is pid ", getpid(), " in its own; ", proc,
        "/<pid> would name other processes than this one's children"));
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> ProcPidOf(int pidfd) {
  const std::string path = absl::StrCat("/proc/self/fdinfo/", pidfd);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ProcfsError(
        absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  char buf[1024];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf) - 1);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  close(fd);
  if (n < 0) {
    return ProcfsError(absl::StrCat("cannot read ", path, ": ", strerror(err)));
  }
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(buf, n), '\n')) {
    if (!absl::ConsumePrefix(&line, "Pid:")) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid)) break;
    if (pid <= 0) {
      // -1: the process is gone; 0: this procfs's pid namespace cannot see
      // it.
      return ProcfsError(
          absl::StrCat("the process of pidfd ", pidfd,
                       pid < 0 ? " has exited" : " is not visible in /proc"));
    }
    return pid;
  }
  return ProcfsError(absl::StrCat(path, " has no Pid line (not a pidfd?)"));
}

absl::StatusOr<int> OpenProcDirOf(int pidfd) {
  absl::StatusOr<pid_t> pid = ProcPidOf(pidfd);
  if (!pid.ok()) return pid.status();
  const std::string path = absl::StrCat("/proc/", *pid);
  const int dir = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    return ProcfsError(
        absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  // Signal 0 through the pidfd: fails once the process is gone (its pid
  // free for reuse); a zombie still holds its pid.
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0) {
    const int err = errno;
    close(dir);
    return ProcfsError(absl::StrCat("the process of pidfd ", pidfd,
                                    " exited while ", path,
                                    " was opened: ", strerror(err)));
  }
  return dir;
}

absl::StatusOr<std::vector<pid_t>> PidNamespaceMembers(
    int pidfd, const std::string& proc) {
  absl::StatusOr<pid_t> init = ProcPidOf(pidfd);
  if (!init.ok()) return init.status();
  DIR* all = opendir(proc.c_str());
  if (all == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("procfs: open ", proc, ": ", strerror(errno)));
  }
  std::map<pid_t, std::vector<pid_t>> children;
  while (struct dirent* entry = readdir(all)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0) continue;
    const int fd =
        openat(dirfd(all), absl::StrCat(entry->d_name, "/status").c_str(),
               O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // gone meanwhile
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) continue;
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(buf, static_cast<size_t>(n)), '\n')) {
      pid_t parent = 0;
      if (absl::ConsumePrefix(&line, "PPid:") &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &parent)) {
        children[parent].push_back(pid);
        break;
      }
    }
  }
  closedir(all);
  std::vector<pid_t> members = {*init};
  for (size_t i = 0; i < members.size(); ++i) {
    auto it = children.find(members[i]);
    if (it == children.end()) continue;
    members.insert(members.end(), it->second.begin(), it->second.end());
  }
  return members;
}

}  // namespace jcs::jail
