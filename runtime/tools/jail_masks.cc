#include "runtime/tools/jail_masks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"

namespace jcs::runtime {
namespace {

int64_t MonotonicUs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

absl::Status Unavailable(const std::string& detail) {
  return absl::FailedPreconditionError(
      absl::StrCat("data_dir_unavailable: ", detail));
}

}  // namespace

absl::StatusOr<PathId> LocateDirFd(const std::string& root, int dir_fd) {
  struct stat st;
  if (fstat(dir_fd, &st) != 0) {
    return Unavailable(absl::StrCat("fstat: ", strerror(errno)));
  }
  char buffer[PATH_MAX + 1];
  const std::string link = absl::StrCat("/proc/self/fd/", dir_fd);
  const ssize_t n = readlink(link.c_str(), buffer, PATH_MAX);
  if (n <= 0) return Unavailable(absl::StrCat("readlink: ", strerror(errno)));
  const std::string path(buffer, static_cast<size_t>(n));
  if (st.st_nlink == 0 || absl::EndsWith(path, " (deleted)")) {
    return Unavailable(
        absl::StrCat("the project's data dir was removed (it was at ", path,
                     "); stop and start the project again"));
  }
  const bool below =
      path == root || (absl::StartsWith(path, root) &&
                       (root == "/" || path[root.size()] == '/'));
  if (!below) {
    return Unavailable(absl::StrCat("the project's data dir is now at ", path,
                                    ", outside the root ", root));
  }
  // The name must lead to this very directory (not a look-alike made since).
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) {
    return Unavailable(absl::StrCat("open root: ", strerror(errno)));
  }
  const std::string rel = path == root
                              ? std::string()
                              : path.substr(root == "/" ? 1 : root.size() + 1);
  UniqueFd again(OpenDirBeneathLong(root_fd.get(), rel));
  struct stat st2;
  if (!again.valid() || fstat(again.get(), &st2) != 0 ||
      st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
    return Unavailable(
        absl::StrCat("the data dir moved while it was located (", path, ")"));
  }
  return PathId{path, static_cast<uint64_t>(st.st_dev),
                static_cast<uint64_t>(st.st_ino), true};
}

absl::StatusOr<SensitiveScan> SensitiveSet(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist, SensitiveIndex* index,
    std::string* mode, std::string* reason, uint64_t* events) {
  *mode = "full_scan";
  *reason = "no index";
  *events = 0;
  if (index != nullptr) {
    SensitiveIndex::Snapshot snapshot = index->Take();
    *events = snapshot.events;
    if (snapshot.scan.has_value()) {
      *mode = "index";
      reason->clear();
      return *std::move(snapshot.scan);
    }
    *reason = std::move(snapshot.reason);
  }
  // Never unmasked: an index that cannot be trusted means the full walk.
  return ScanSensitivePaths(root, denylist, allowlist);
}

namespace {

// The data dir (bound read-only) and its state/ (masked), when there is one.
absl::Status LocateDataDir(const std::string& root, int data_dir_fd,
                           JailMasks* masks) {
  if (data_dir_fd < 0) return absl::OkStatus();
  absl::StatusOr<PathId> data = LocateDirFd(root, data_dir_fd);
  if (!data.ok()) return data.status();
  if (data->path == root) {
    return Unavailable("the data dir is the root itself");
  }
  masks->data_dir = *data;
  struct stat st;
  if (fstatat(data_dir_fd, "state", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode)) {
    masks->state =
        PathId{data->path + "/state", static_cast<uint64_t>(st.st_dev),
               static_cast<uint64_t>(st.st_ino), true};
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JailMasks> JailMasksFromQuietSet(const std::string& root,
                                                int data_dir_fd,
                                                const SensitiveScan& set) {
  const int64_t start = MonotonicUs();
  JailMasks masks;
  if (absl::Status located = LocateDataDir(root, data_dir_fd, &masks);
      !located.ok()) {
    return located;
  }
  masks.scan = set;
  masks.scan_mode = "index";
  masks.scan_reason.clear();
  masks.on_loop = true;
  masks.scan_us = MonotonicUs() - start;
  return masks;
}

absl::StatusOr<JailMasks> PrepareJailMasks(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist, int data_dir_fd,
    SensitiveIndex* index) {
  const int64_t start = MonotonicUs();
  JailMasks masks;
  if (absl::Status located = LocateDataDir(root, data_dir_fd, &masks);
      !located.ok()) {
    return located;
  }
  absl::StatusOr<SensitiveScan> scan =
      SensitiveSet(root, denylist, allowlist, index, &masks.scan_mode,
                   &masks.scan_reason, &masks.scan_events);
  if (!scan.ok()) return scan.status();
  masks.scan = *std::move(scan);
  masks.scan_us = MonotonicUs() - start;
  return masks;
}

}  // namespace jcs::runtime
