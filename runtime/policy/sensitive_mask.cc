#include "runtime/policy/sensitive_mask.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "runtime/policy/path_policy.h"

namespace jcs::runtime {
namespace {

constexpr uint64_t kResolveBeneath =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
constexpr size_t kDirentBufferBytes = 64 * 1024;
constexpr int kDirFlags =
    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

struct Listed {
  std::string name;
  unsigned char type;
  uint64_t ino;
};

struct linux_dirent64_view {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

absl::Status ErrnoStatus(int err, const std::string& what) {
  return absl::InternalError(
      absl::StrCat("sensitive_mask: ", what, ": ", strerror(err)));
}

// The tree changed under the walk: the caller starts over.
absl::Status Changed(const std::string& where) {
  return absl::AbortedError(absl::StrCat("changed at ", where));
}

// Every entry of the directory `fd` but "." and "..", read with getdents64
// straight from the fd (no DIR*: the fd stays the walk's own).
absl::Status ListDir(int fd, const std::string& shown,
                     std::vector<Listed>* out) {
  auto buffer = std::make_unique<char[]>(kDirentBufferBytes);
  while (true) {
    const long n =
        syscall(SYS_getdents64, fd, buffer.get(), kDirentBufferBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The directory was removed while it was being read.
      if (errno == ENOENT) return Changed(shown);
      return ErrnoStatus(errno, absl::StrCat("cannot read ", shown));
    }
    if (n == 0) return absl::OkStatus();
    for (long off = 0; off < n;) {
      const auto* d =
          reinterpret_cast<const linux_dirent64_view*>(buffer.get() + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] == '.' &&
          (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
        continue;
      }
      out->push_back({name, d->d_type, d->d_ino});
    }
  }
}

// One depth-first walk over directory fds (see the header). `on_entry` is
// called for every regular file and directory with its root-relative path,
// the listed type and inode, and the parent's fd; it returns true to descend
// into a directory.
class Walker {
 public:
  using OnEntry = std::function<absl::StatusOr<bool>(
      int parent_fd, uint64_t parent_dev, const std::string& rel,
      const Listed& entry)>;

  Walker(int root_fd, std::string root, OnEntry on_entry)
      : root_fd_(root_fd),
        root_(std::move(root)),
        on_entry_(std::move(on_entry)) {}

  absl::Status Run() {
    UniqueFd cur(openat(root_fd_, ".", kDirFlags));
    if (cur.get() < 0) {
      return ErrnoStatus(errno, absl::StrCat("cannot open ", root_));
    }
    struct stat st;
    if (fstat(cur.get(), &st) != 0) return ErrnoStatus(errno, "fstat root");
    std::vector<Frame> stack;
    stack.push_back({st.st_dev, st.st_ino, std::string(), {}, 0});
    absl::Status listed = ListAndVisit(cur.get(), stack.back());
    if (!listed.ok()) return listed;
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next < top.subdirs.size()) {
        const Listed& sub = top.subdirs[top.next++];
        const std::string rel =
            top.rel.empty() ? sub.name : absl::StrCat(top.rel, "/", sub.name);
        UniqueFd child(openat(cur.get(), sub.name.c_str(), kDirFlags));
        if (child.get() < 0) {
          const int err = errno;
          // Listed a moment ago, gone or no longer a directory now.
          if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
            return Changed(rel);
          }
          return ErrnoStatus(err, absl::StrCat("cannot open ", root_, "/",
                                               rel.substr(0, 256)));
        }
        if (fstat(child.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
        // Another directory under the same name (a mount point shows the
        // mounted root's inode, on another device).
        if (st.st_dev == top.dev && st.st_ino != sub.ino) return Changed(rel);
        cur = std::move(child);
        ++directories_;
        stack.push_back({st.st_dev, st.st_ino, rel, {}, 0});
        listed = ListAndVisit(cur.get(), stack.back());
        if (!listed.ok()) return listed;
        continue;
      }
      stack.pop_back();
      if (stack.empty()) break;
      // Back to the parent through "..": it must be the directory we left.
      UniqueFd parent(openat(cur.get(), "..", kDirFlags & ~O_NOFOLLOW));
      if (parent.get() < 0) return Changed(stack.back().rel);
      if (fstat(parent.get(), &st) != 0) return ErrnoStatus(errno, "fstat");
      if (st.st_dev != stack.back().dev || st.st_ino != stack.back().ino) {
        return Changed(stack.back().rel);
      }
      cur = std::move(parent);
    }
    return absl::OkStatus();
  }

  uint64_t directories() const { return directories_; }
  uint64_t entries_seen() const { return entries_seen_; }

 private:
  struct Frame {
    uint64_t dev;
    uint64_t ino;
    std::string rel;
    std::vector<Listed> subdirs;
    size_t next;
  };

  absl::Status ListAndVisit(int fd, Frame& frame) {
    std::vector<Listed> listed;
    absl::Status status = ListDir(
        fd, absl::StrCat(root_, "/", frame.rel.substr(0, 256)), &listed);
    if (!status.ok()) return status;
    for (Listed& entry : listed) {
      ++entries_seen_;
      if (entry.type == DT_UNKNOWN) {
        struct stat st;
        if (fstatat(fd, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          return Changed(entry.name);
        }
        entry.type = S_ISDIR(st.st_mode)   ? DT_DIR
                     : S_ISREG(st.st_mode) ? DT_REG
                                           : DT_UNKNOWN;
      }
      if (entry.type != DT_DIR && entry.type != DT_REG) continue;
      const std::string rel = frame.rel.empty()
                                  ? entry.name
                                  : absl::StrCat(frame.rel, "/", entry.name);
      absl::StatusOr<bool> descend = on_entry_(fd, frame.dev, rel, entry);
      if (!descend.ok()) return descend.status();
      if (*descend && entry.type == DT_DIR) {
        frame.subdirs.push_back(std::move(entry));
      }
    }
    return absl::OkStatus();
  }

  const int root_fd_;
  const std::string root_;
  const OnEntry on_entry_;
  uint64_t directories_ = 0;
  uint64_t entries_seen_ = 0;
};

// The identity of `entry` under `parent_fd`, checked against what readdir
// listed.
absl::StatusOr<struct stat> StatListed(int parent_fd, uint64_t parent_dev,
                                       const std::string& rel,
                                       const Listed& entry) {
  struct stat st;
  if (fstatat(parent_fd, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Changed(rel);
    return ErrnoStatus(errno, "fstatat");
  }
  const bool same_type =
      entry.type == DT_DIR ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
  if (!same_type) return Changed(rel);
  if (st.st_dev == parent_dev && st.st_ino != entry.ino) return Changed(rel);
  return st;
}

absl::StatusOr<SensitiveScan> ScanOnce(
    int root_fd, const std::string& root,
    const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist) {
  SensitiveScan scan;
  Walker walker(
      root_fd, root,
      [&](int parent_fd, uint64_t parent_dev, const std::string& rel,
          const Listed& entry) -> absl::StatusOr<bool> {
        if (!IsSensitivePath(rel, denylist, allowlist)) return true;
        absl::StatusOr<struct stat> st =
            StatListed(parent_fd, parent_dev, rel, entry);
        if (!st.ok()) return st.status();
        scan.entries.push_back({rel, entry.type == DT_DIR,
                                static_cast<uint64_t>(st->st_dev),
                                static_cast<uint64_t>(st->st_ino),
                                static_cast<uint64_t>(st->st_nlink), false});
        return false;  // a matched directory is masked whole
      });
  absl::Status status = walker.Run();
  if (!status.ok()) return status;
  scan.directories = walker.directories();
  scan.entries_seen = walker.entries_seen();

  // Other names of a sensitive file: only possible when it has more links.
  std::set<std::pair<uint64_t, uint64_t>> linked;
  for (const SensitiveEntry& e : scan.entries) {
    if (!e.is_dir && e.nlink > 1) linked.insert({e.dev, e.ino});
  }
  if (linked.empty()) return scan;
  scan.hard_link_walk = true;
  std::set<std::string> known;
  for (const SensitiveEntry& e : scan.entries) known.insert(e.rel);
  std::vector<SensitiveEntry> links;
  Walker stat_walker(
      root_fd, root,
      [&](int parent_fd, uint64_t parent_dev, const std::string& rel,
          const Listed& entry) -> absl::StatusOr<bool> {
        if (known.count(rel) != 0) return false;  // masked already
        if (entry.type == DT_DIR) return true;
        absl::StatusOr<struct stat> st =
            StatListed(parent_fd, parent_dev, rel, entry);
        if (!st.ok()) return st.status();
        if (linked.count({static_cast<uint64_t>(st->st_dev),
                          static_cast<uint64_t>(st->st_ino)}) != 0) {
          links.push_back({rel, false, static_cast<uint64_t>(st->st_dev),
                           static_cast<uint64_t>(st->st_ino),
                           static_cast<uint64_t>(st->st_nlink), true});
        }
        return false;
      });
  status = stat_walker.Run();
  if (!status.ok()) return status;
  for (SensitiveEntry& e : links) scan.entries.push_back(std::move(e));
  return scan;
}

}  // namespace

absl::StatusOr<SensitiveScan> ScanSensitivePaths(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist) {
  if (root.empty() || root.front() != '/' ||
      root.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        "sensitive_mask: root must be an absolute path");
  }
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.get() < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sensitive_mask: cannot open root ", root, ": ", strerror(errno)));
  }
  std::string last_change;
  for (int attempt = 1; attempt <= kSensitiveScanAttempts; ++attempt) {
    absl::StatusOr<SensitiveScan> scan =
        ScanOnce(root_fd.get(), root, denylist, allowlist);
    if (scan.ok()) {
      scan->attempts = attempt;
      std::sort(scan->entries.begin(), scan->entries.end(),
                [](const SensitiveEntry& a, const SensitiveEntry& b) {
                  return a.rel < b.rel;
                });
      return scan;
    }
    if (!absl::IsAborted(scan.status())) return scan.status();
    last_change = std::string(scan.status().message());
  }
  return absl::UnavailableError(absl::StrCat(
      "sensitive_mask: the tree under ", root, " changed during ",
      kSensitiveScanAttempts, " scans (last: ", last_change.substr(0, 300),
      "); the call fails closed"));
}

int OpenDirBeneathLong(int root_fd, const std::string& rel) {
  constexpr size_t kChunk = 2048;
  if (rel.empty())
    return OpenAt2(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC,
                   kResolveBeneath);
  UniqueFd cur;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t len = rel.size() - pos;
    if (len > kChunk) {
      len = rel.rfind('/', pos + kChunk);
      if (len == std::string::npos || len <= pos) {
        errno = ENAMETOOLONG;
        return -1;
      }
      len -= pos;
    }
    const int next =
        OpenAt2(cur.valid() ? cur.get() : root_fd, rel.substr(pos, len),
                O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, kResolveBeneath);
    if (next < 0) return -1;
    cur.Reset(next);
    pos += len + 1;
  }
  return cur.release();
}

absl::StatusOr<std::vector<std::string>> FindSensitivePaths(
    const std::string& root, const std::vector<std::string>& denylist,
    const std::vector<std::string>& allowlist) {
  absl::StatusOr<SensitiveScan> scan =
      ScanSensitivePaths(root, denylist, allowlist);
  if (!scan.ok()) return scan.status();
  std::vector<std::string> paths;
  paths.reserve(scan->entries.size());
  for (SensitiveEntry& e : scan->entries) paths.push_back(std::move(e.rel));
  return paths;
}

}  // namespace jcs::runtime
