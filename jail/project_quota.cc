#include "jail/project_quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/quota.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

// quotactl_fd(2) (Linux 5.14) takes any descriptor on the filesystem, so the
// daemon never needs the block device path (which a mount namespace, a loop
// device or a device-mapper name would make guesswork).
#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif

namespace jcs::jail {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : absl::StrCat("errno ", err);
}

long QuotaCtl(int fd, int cmd, uint32_t id, void* addr) {
  return syscall(SYS_quotactl_fd, fd, QCMD(cmd, PRJQUOTA), id, addr);
}

// The quota format's block unit (QIF_DQBLKSIZE in the kernel).
constexpr uint64_t kQuotaBlock = 1024;

std::optional<std::string> ReadFile(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return std::nullopt;
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string DecodeMountField(absl::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int value = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        const char c = field[i + j];
        if (c < '0' || c > '7') octal = false;
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

// Who an inode is, for "is this still the directory I came from".
struct Identity {
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t ino = 0;
  uint64_t mnt_id = 0;
  uint16_t mode = 0;
  bool SameInode(const Identity& o) const {
    return dev_major == o.dev_major && dev_minor == o.dev_minor &&
           ino == o.ino && mnt_id == o.mnt_id;
  }
};

absl::StatusOr<Identity> Identify(int fd) {
  struct statx stx = {};
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
            STATX_TYPE | STATX_INO | STATX_MNT_ID, &stx) != 0) {
    return absl::InternalError(
        absl::StrCat("disk_quota_failed: statx: ", ErrnoName(errno)));
  }
  if ((stx.stx_mask & STATX_MNT_ID) == 0) {
    return absl::FailedPreconditionError(
        "disk_quota_unavailable: the kernel does not report mount ids "
        "(statx STATX_MNT_ID, Linux 5.8 or later), so the tree walk cannot "
        "stay on the project's own mount");
  }
  return Identity{stx.stx_dev_major, stx.stx_dev_minor, stx.stx_ino,
                  stx.stx_mnt_id, stx.stx_mode};
}

// Every name in the directory except "." and "..", read up front so the
// directory's descriptor can be closed while its children are walked.
absl::StatusOr<std::vector<std::string>> ListNames(int dir_fd,
                                                   const std::string& rel) {
  const int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    return absl::InternalError(absl::StrCat("disk_quota_failed: cannot list ",
                                            rel, ": ", ErrnoName(errno)));
  }
  DIR* dir = fdopendir(dup_fd);
  if (dir == nullptr) {
    const int err = errno;
    close(dup_fd);
    return absl::InternalError(absl::StrCat("disk_quota_failed: cannot list ",
                                            rel, ": ", ErrnoName(err)));
  }
  rewinddir(dir);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const struct dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    const absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  const int err = errno;
  closedir(dir);
  if (err != 0) {
    return absl::InternalError(absl::StrCat("disk_quota_failed: cannot list ",
                                            rel, ": ", ErrnoName(err)));
  }
  return names;
}

// A readable descriptor for exactly the inode `path_fd` (an O_PATH
// descriptor) names: reopening through the /proc magic link cannot be raced
// into another file the way a second openat by name could.
absl::StatusOr<Fd> Reopen(int path_fd, bool directory, const std::string& rel) {
  const std::string link = absl::StrCat("/proc/self/fd/", path_fd);
  const int flags = directory ? O_RDONLY | O_DIRECTORY | O_CLOEXEC
                              : O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  Fd fd(open(link.c_str(), flags));
  if (fd.get() < 0) {
    return absl::InternalError(absl::StrCat("disk_quota_failed: cannot open ",
                                            rel, ": ", ErrnoName(errno)));
  }
  return fd;
}

struct Enforcement {
  bool enforced = false;
  MountInfo mount;
  std::string detail;
  std::string fix;
};

std::string FixFor(absl::string_view fs_type) {
  constexpr absl::string_view kExt4 =
      "mount with prjquota (ext4 needs the 'project' feature: tune2fs -O "
      "project -Q prjquota)";
  if (fs_type == "ext4") return std::string(kExt4);
  if (fs_type == "xfs") return "mount with pquota (XFS project quotas)";
  return absl::StrCat("move the project to ext4 or XFS and ", kExt4);
}

absl::StatusOr<Enforcement> ProbeEnforcement(int fd) {
  Enforcement out;
  absl::StatusOr<MountInfo> mount = MountOfFd(fd);
  if (!mount.ok()) return mount.status();
  out.mount = *std::move(mount);
  out.fix = FixFor(out.mount.fs_type);
  // A bad descriptor tells "no such syscall" (ENOSYS) from "this filesystem
  // has no quota support" (ENOSYS on a real descriptor).
  if (QuotaCtl(-1, Q_GETINFO, 0, nullptr) != 0 && errno == ENOSYS) {
    out.detail = "the kernel has no quotactl_fd";
    out.fix = "a kernel with quotactl_fd (Linux 5.14 or later)";
    return out;
  }
  struct fs_quota_statv statv = {};
  statv.qs_version = FS_QSTATV_VERSION1;
  if (QuotaCtl(fd, Q_XGETQSTATV, 0, &statv) != 0) {
    const int err = errno;
    out.detail = err == ENOSYS
                     ? "no quota support for this filesystem in this kernel"
                     : absl::StrCat("quotactl Q_XGETQSTATV: ", ErrnoName(err));
    return out;
  }
  const bool accounting = (statv.qs_flags & FS_QUOTA_PDQ_ACCT) != 0;
  const bool enforcing = (statv.qs_flags & FS_QUOTA_PDQ_ENFD) != 0;
  out.enforced = accounting && enforcing;
  out.detail = !accounting  ? "project quota accounting is off"
               : !enforcing ? "project quota accounted but limits not enforced"
                            : "project quota limits enforced";
  return out;
}

std::string DropHint(const ProjectQuotaLimits& limits) {
  if (limits.bytes.has_value() && limits.inodes.has_value()) {
    return "or drop disk_quota_bytes and disk_quota_inodes";
  }
  return limits.bytes.has_value() ? "or drop disk_quota_bytes"
                                  : "or drop disk_quota_inodes";
}

absl::Status Unavailable(const Enforcement& e, absl::string_view drop_hint) {
  return absl::FailedPreconditionError(
      absl::StrCat("disk_quota_unavailable: ", e.mount.fs_type, " at ",
                   e.mount.mount_point, " has no project quotas; ", e.fix,
                   drop_hint.empty() ? "" : " ", drop_hint));
}

// Usage and limits of `id`; all zero for an id the filesystem never saw.
absl::StatusOr<if_dqblk> GetQuota(int fd, uint32_t id) {
  if_dqblk q = {};
  if (QuotaCtl(fd, Q_GETQUOTA, id, &q) != 0) {
    // XFS answers ENOENT for an id without a quota record.
    if (errno == ENOENT) return if_dqblk{};
    return absl::InternalError(absl::StrCat("disk_quota_failed: Q_GETQUOTA ",
                                            id, ": ", ErrnoName(errno)));
  }
  return q;
}

absl::StatusOr<uint32_t> ChooseProjectId(int root_fd,
                                         const std::string& root_path) {
  absl::StatusOr<uint32_t> current = ProjectIdOf(root_fd);
  if (!current.ok()) return current.status();
  return ChooseProjectIdWith(
      root_path, *current, [root_fd](uint32_t id) -> absl::StatusOr<bool> {
        absl::StatusOr<if_dqblk> q = GetQuota(root_fd, id);
        if (!q.ok()) return q.status();
        return q->dqb_curspace != 0 || q->dqb_curinodes != 0 ||
               q->dqb_bhardlimit != 0 || q->dqb_bsoftlimit != 0 ||
               q->dqb_ihardlimit != 0 || q->dqb_isoftlimit != 0;
      });
}

absl::Status SetLimits(int fd, uint32_t id, const ProjectQuotaLimits& limits) {
  if_dqblk q = {};
  // Hard limits only: a soft limit would add a grace period in which the
  // budget is not enforced. Unset kinds are written as 0 (no limit), so a
  // limit from an earlier start with another budget does not linger.
  if (limits.bytes.has_value()) {
    q.dqb_bhardlimit = (*limits.bytes + kQuotaBlock - 1) / kQuotaBlock;
  }
  if (limits.inodes.has_value()) q.dqb_ihardlimit = *limits.inodes;
  q.dqb_valid = QIF_LIMITS;
  if (QuotaCtl(fd, Q_SETQUOTA, id, &q) != 0) {
    const int err = errno;
    if (err == EPERM) {
      return absl::FailedPreconditionError(
          "disk_quota_unavailable: setting project quota limits needs "
          "CAP_SYS_ADMIN; run jcs serve as root");
    }
    return absl::InternalError(absl::StrCat("disk_quota_failed: Q_SETQUOTA ",
                                            id, ": ", ErrnoName(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Fd> OpenRoot(const std::string& root_path) {
  Fd root(
      open(root_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.get() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("disk_quota_failed: cannot open the project root ",
                     root_path, ": ", ErrnoName(errno)));
  }
  return root;
}

}  // namespace

absl::StatusOr<MountInfo> MountOfFd(int fd) {
  absl::StatusOr<Identity> self = Identify(fd);
  if (!self.ok()) return self.status();
  const uint64_t mnt_id = self->mnt_id;
  std::optional<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.has_value()) {
    return absl::FailedPreconditionError(
        "disk_quota_unavailable: /proc/self/mountinfo is not readable; mount "
        "/proc in the daemon's mount namespace");
  }
  // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE
  // SUPER_OPTIONS
  for (absl::string_view line : absl::StrSplit(*mountinfo, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t id = 0;
    if (f.size() < 10 || !absl::SimpleAtoi(f[0], &id) || id != mnt_id) {
      continue;
    }
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 1 >= f.size()) break;
    MountInfo info;
    info.mount_point = DecodeMountField(f[4]);
    info.fs_type = DecodeMountField(f[dash + 1]);
    if (dash + 3 < f.size()) info.super_options = std::string(f[dash + 3]);
    return info;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("disk_quota_unavailable: mount ", mnt_id,
                   " not in /proc/self/mountinfo"));
}

absl::Status CheckProjectQuotaEnforced(int fd, absl::string_view drop_hint) {
  absl::StatusOr<Enforcement> e = ProbeEnforcement(fd);
  if (!e.ok()) return e.status();
  if (!e->enforced) return Unavailable(*e, drop_hint);
  return absl::OkStatus();
}

absl::Status WalkProjectTree(int root_fd, const TreeVisitor& visit) {
  absl::StatusOr<Identity> root = Identify(root_fd);
  if (!root.ok()) return root.status();
  if (!S_ISDIR(root->mode)) {
    return absl::InvalidArgumentError(
        "disk_quota_failed: the project root is not a directory");
  }
  if (absl::Status s = visit(root_fd, true, "."); !s.ok()) return s;

  struct Level {
    Identity id;
    std::vector<std::string> pending;
    std::string rel;
  };
  absl::StatusOr<std::vector<std::string>> names = ListNames(root_fd, ".");
  if (!names.ok()) return names.status();
  std::vector<Level> stack;
  stack.push_back({*root, *std::move(names), "."});
  Fd cur(fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (cur.get() < 0) {
    return absl::InternalError(
        absl::StrCat("disk_quota_failed: dup: ", ErrnoName(errno)));
  }
  while (true) {
    if (stack.back().pending.empty()) {
      if (stack.size() == 1) return absl::OkStatus();
      const std::string done = stack.back().rel;
      stack.pop_back();
      // Back up by "..": only the current directory is held open. If the
      // directory was moved meanwhile, ".." is somewhere else: stop rather
      // than tag a tree that is not the project's.
      Fd parent(openat(cur.get(), "..",
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (parent.get() < 0) {
        return absl::InternalError(
            absl::StrCat("disk_quota_failed: cannot climb from ", done, ": ",
                         ErrnoName(errno)));
      }
      absl::StatusOr<Identity> up = Identify(parent.get());
      if (!up.ok()) return up.status();
      if (!up->SameInode(stack.back().id)) {
        return absl::AbortedError(absl::StrCat(
            "disk_quota_failed: ", done,
            " was moved during the project id walk; start the project again"));
      }
      cur = std::move(parent);
      continue;
    }
    Level& top = stack.back();
    const std::string name = std::move(top.pending.back());
    top.pending.pop_back();
    const std::string rel = top.rel == "." ? name : top.rel + "/" + name;
    Fd path_fd(
        openat(cur.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (path_fd.get() < 0) {
      if (errno == ENOENT) continue;  // removed since the listing
      return absl::InternalError(absl::StrCat("disk_quota_failed: cannot open ",
                                              rel, ": ", ErrnoName(errno)));
    }
    absl::StatusOr<Identity> id = Identify(path_fd.get());
    if (!id.ok()) return id.status();
    // Another mount (a bind or another filesystem) is not the project's tree.
    if (id->mnt_id != root->mnt_id) continue;
    const bool is_dir = S_ISDIR(id->mode);
    // Symlinks (O_PATH|O_NOFOLLOW names the link itself), FIFOs, sockets and
    // devices are never opened.
    if (!is_dir && !S_ISREG(id->mode)) continue;
    absl::StatusOr<Fd> fd = Reopen(path_fd.get(), is_dir, rel);
    if (!fd.ok()) return fd.status();
    if (absl::Status s = visit(fd->get(), is_dir, rel); !s.ok()) return s;
    if (!is_dir) continue;
    absl::StatusOr<std::vector<std::string>> children =
        ListNames(fd->get(), rel);
    if (!children.ok()) return children.status();
    stack.push_back({*id, *std::move(children), rel});
    cur = *std::move(fd);
  }
}

absl::StatusOr<uint32_t> ProjectIdOf(int fd) {
  struct fsxattr attr = {};
  if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "disk_quota_failed: FS_IOC_FSGETXATTR: ", ErrnoName(errno)));
  }
  return attr.fsx_projid;
}

absl::Status TagProjectTree(int root_fd, uint32_t id) {
  return WalkProjectTree(
      root_fd, [id](int fd, bool is_dir, const std::string& rel) {
        struct fsxattr attr = {};
        if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) != 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("disk_quota_failed: FS_IOC_FSGETXATTR on ", rel,
                           ": ", ErrnoName(errno)));
        }
        const uint32_t want_flags =
            is_dir ? attr.fsx_xflags | FS_XFLAG_PROJINHERIT : attr.fsx_xflags;
        if (attr.fsx_projid == id && attr.fsx_xflags == want_flags) {
          return absl::OkStatus();
        }
        attr.fsx_projid = id;
        attr.fsx_xflags = want_flags;
        if (ioctl(fd, FS_IOC_FSSETXATTR, &attr) != 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("disk_quota_failed: cannot set project id ", id,
                           " on ", rel, ": ", ErrnoName(errno)));
        }
        return absl::OkStatus();
      });
}

uint32_t DerivedProjectId(absl::string_view root_path, uint32_t attempt) {
  // FNV-1a: stable across builds and hosts (std::hash is neither).
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : root_path) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  return kProjectIdFirst +
         static_cast<uint32_t>((hash + attempt) % kProjectIdCount);
}

absl::StatusOr<uint32_t> ChooseProjectIdWith(
    absl::string_view root_path, uint32_t current,
    const std::function<absl::StatusOr<bool>(uint32_t id)>& in_use) {
  for (uint32_t attempt = 0; attempt < kProjectIdProbes; ++attempt) {
    const uint32_t id = DerivedProjectId(root_path, attempt);
    if (id == current) return id;  // ours, recorded by an earlier start
    absl::StatusOr<bool> used = in_use(id);
    if (!used.ok()) return used.status();
    if (!*used) return id;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "disk_quota_unavailable: no free project id among ", kProjectIdProbes,
      " probed in jcs's range ", kProjectIdFirst, "..",
      kProjectIdFirst + kProjectIdCount - 1,
      "; lift the limits of unused ids there (setquota -P ID 0 0 0 0 MOUNT)"));
}

absl::StatusOr<uint32_t> ApplyProjectQuota(const std::string& root_path,
                                           const ProjectQuotaLimits& limits) {
  if (!limits.any()) return 0;
  absl::StatusOr<Fd> root = OpenRoot(root_path);
  if (!root.ok()) return root.status();
  if (absl::Status s = CheckProjectQuotaEnforced(root->get(), DropHint(limits));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<uint32_t> id = ChooseProjectId(root->get(), root_path);
  if (!id.ok()) return id.status();
  // Tag first, limit second: moving existing files into an id that already
  // has a limit could fail half-way through the tree.
  if (absl::Status s = TagProjectTree(root->get(), *id); !s.ok()) return s;
  if (absl::Status s = SetLimits(root->get(), *id, limits); !s.ok()) return s;
  return *id;
}

absl::StatusOr<ProjectQuotaUsage> ReadProjectQuotaUsage(
    const std::string& root_path) {
  absl::StatusOr<Fd> root = OpenRoot(root_path);
  if (!root.ok()) return root.status();
  absl::StatusOr<uint32_t> id = ProjectIdOf(root->get());
  if (!id.ok()) return id.status();
  absl::StatusOr<if_dqblk> q = GetQuota(root->get(), *id);
  if (!q.ok()) return q.status();
  ProjectQuotaUsage usage;
  usage.project_id = *id;
  usage.bytes_used = q->dqb_curspace;
  usage.inodes_used = q->dqb_curinodes;
  usage.bytes_limit = q->dqb_bhardlimit * kQuotaBlock;
  usage.inodes_limit = q->dqb_ihardlimit;
  return usage;
}

nlohmann::json ProjectQuotaDiagnostics(const std::string& root_path,
                                       const ProjectQuotaLimits& limits) {
  const auto optional = [](const std::optional<uint64_t>& v) {
    return v.has_value() ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json out = {{"bytes_budget", optional(limits.bytes)},
                        {"inodes_budget", optional(limits.inodes)}};
  absl::StatusOr<ProjectQuotaUsage> usage = ReadProjectQuotaUsage(root_path);
  if (!usage.ok()) {
    out["error"] = std::string(usage.status().message());
    return out;
  }
  out["project_id"] = usage->project_id;
  out["bytes_used"] = usage->bytes_used;
  out["inodes_used"] = usage->inodes_used;
  out["bytes_limit"] = usage->bytes_limit;
  out["inodes_limit"] = usage->inodes_limit;
  return out;
}

ProjectQuotaProbe ProbeProjectQuota(const std::string& dir) {
  ProjectQuotaProbe probe;
  absl::StatusOr<Fd> fd = OpenRoot(dir);
  if (!fd.ok()) {
    probe.detail = std::string(fd.status().message());
    probe.fix = "pass an existing directory with --path";
    return probe;
  }
  absl::StatusOr<Enforcement> e = ProbeEnforcement(fd->get());
  if (!e.ok()) {
    probe.detail = std::string(e.status().message());
    probe.fix = "mount /proc";
    return probe;
  }
  probe.available = e->enforced;
  probe.detail = absl::StrCat(e->mount.fs_type, " at ", e->mount.mount_point,
                              ": ", e->detail);
  if (!probe.available) {
    probe.fix = e->fix;
    // The kernel side, which no mount option can fix.
    if (e->mount.fs_type == "ext4") {
      probe.fix += "; the kernel needs CONFIG_QUOTA and CONFIG_QFMT_V2";
    } else if (e->mount.fs_type == "xfs") {
      probe.fix += "; the kernel needs CONFIG_XFS_QUOTA";
    }
  }
  return probe;
}

}  // namespace jcs::jail
