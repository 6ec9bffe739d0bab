#include "jail/cgroup_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace jcs::jail::cgroup_fs {
namespace {

// Builds a status for a failed system call on `path`, with the errno mapped to
// a status code.
absl::Status ErrnoStatus(int err, absl::string_view what,
                         absl::string_view path) {
  std::string message = absl::StrCat(what, " ", path, ": ", strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case EBUSY:
    case ENOTEMPTY:
      return absl::FailedPreconditionError(message);
    case EINVAL:
    case ERANGE:
      return absl::InvalidArgumentError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOSPC:
    case EAGAIN:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

bool IsPathPrefix(absl::string_view prefix, absl::string_view path) {
  if (prefix == "/" || prefix.empty()) return true;
  if (absl::EndsWith(prefix, "/")) prefix.remove_suffix(1);
  if (!absl::StartsWith(path, prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

int OctalDigit(char c) { return (c >= '0' && c <= '7') ? c - '0' : -1; }

std::atomic<uint64_t> g_leaf_counter{0};

}  // namespace

std::string UnescapeMountField(absl::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int a = OctalDigit(field[i + 1]);
      int b = OctalDigit(field[i + 2]);
      int c = OctalDigit(field[i + 3]);
      if (a >= 0 && a <= 3 && b >= 0 && c >= 0) {
        out.push_back(static_cast<char>(a * 64 + b * 8 + c));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

std::vector<MountInfoEntry> ParseMountInfo(absl::string_view text) {
  std::vector<MountInfoEntry> result;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    // id parent major:minor root mount_point options [optional...] - fstype
    // source super_options
    if (fields.size() < 9) continue;
    size_t sep = 0;
    for (size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        sep = i;
        break;
      }
    }
    // The fstype and source must follow the separator; super options may be
    // missing.
    if (sep == 0 || sep + 2 >= fields.size()) continue;
    MountInfoEntry entry;
    entry.root = UnescapeMountField(fields[3]);
    entry.mount_point = UnescapeMountField(fields[4]);
    entry.fstype = std::string(fields[sep + 1]);
    if (sep + 3 < fields.size()) {
      for (absl::string_view opt :
           absl::StrSplit(fields[sep + 3], ',', absl::SkipEmpty())) {
        entry.super_options.emplace_back(opt);
      }
    }
    result.push_back(std::move(entry));
  }
  return result;
}

std::vector<ProcCgroupEntry> ParseProcCgroup(absl::string_view text) {
  std::vector<ProcCgroupEntry> result;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    // The path may itself contain ':', so only the first two colons separate
    // fields.
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    ProcCgroupEntry entry;
    if (!absl::SimpleAtoi(parts[0], &entry.hierarchy_id) ||
        entry.hierarchy_id < 0)
      continue;
    for (absl::string_view c :
         absl::StrSplit(parts[1], ',', absl::SkipEmpty())) {
      entry.controllers.emplace_back(c);
    }
    absl::string_view path = parts[2];
    absl::ConsumeSuffix(&path, " (deleted)");
    if (!absl::StartsWith(path, "/")) continue;
    entry.path = std::string(path);
    result.push_back(std::move(entry));
  }
  return result;
}

std::optional<MountInfoEntry> FindV2Mount(
    const std::vector<MountInfoEntry>& mounts) {
  for (const MountInfoEntry& m : mounts) {
    if (m.fstype == "cgroup2") return m;
  }
  return std::nullopt;
}

std::vector<MountInfoEntry> FindV1Mounts(
    const std::vector<MountInfoEntry>& mounts, absl::string_view controller) {
  std::vector<MountInfoEntry> result;
  for (const MountInfoEntry& m : mounts) {
    if (m.fstype != "cgroup") continue;
    if (std::find(m.super_options.begin(), m.super_options.end(), controller) !=
        m.super_options.end()) {
      result.push_back(m);
    }
  }
  return result;
}

absl::StatusOr<std::string> OwnV2Path(
    const std::vector<ProcCgroupEntry>& entries) {
  for (const ProcCgroupEntry& e : entries) {
    if (e.hierarchy_id == 0 && e.controllers.empty()) return e.path;
  }
  return absl::NotFoundError(
      "no cgroup v2 line (\"0::/path\") in /proc/self/cgroup");
}

absl::StatusOr<std::string> OwnV1Path(
    const std::vector<ProcCgroupEntry>& entries, absl::string_view controller) {
  for (const ProcCgroupEntry& e : entries) {
    if (e.hierarchy_id == 0) continue;
    if (std::find(e.controllers.begin(), e.controllers.end(), controller) !=
        e.controllers.end()) {
      return e.path;
    }
  }
  return absl::NotFoundError(absl::StrCat("no cgroup v1 line for the ",
                                          controller,
                                          " controller in /proc/self/cgroup"));
}

absl::StatusOr<std::string> ResolveCgroupDir(
    const std::vector<MountInfoEntry>& mounts, absl::string_view own_path) {
  const MountInfoEntry* best = nullptr;
  for (const MountInfoEntry& m : mounts) {
    if (!IsPathPrefix(m.root, own_path)) continue;
    if (best == nullptr || m.root.size() > best->root.size()) best = &m;
  }
  if (best == nullptr) {
    std::string roots;
    for (const MountInfoEntry& m : mounts) {
      absl::StrAppend(&roots, roots.empty() ? "" : ", ", m.mount_point,
                      " (root ", m.root, ")");
    }
    return absl::NotFoundError(
        absl::StrCat("own cgroup ", own_path,
                     " is not visible below any mount of its hierarchy: ",
                     roots.empty() ? "none" : roots));
  }
  absl::string_view rest = own_path;
  if (best->root != "/")
    rest.remove_prefix(std::min(rest.size(), best->root.size()));
  return JoinPath(best->mount_point, rest);
}

absl::StatusOr<std::string> LocateV2OwnDir(absl::string_view mountinfo_text,
                                           absl::string_view proc_cgroup_text) {
  std::vector<MountInfoEntry> mounts = ParseMountInfo(mountinfo_text);
  std::vector<MountInfoEntry> v2;
  for (const MountInfoEntry& m : mounts) {
    if (m.fstype == "cgroup2") v2.push_back(m);
  }
  if (v2.empty()) {
    return absl::FailedPreconditionError(
        "no cgroup v2 hierarchy is mounted (no cgroup2 entry in "
        "/proc/self/mountinfo): mount one "
        "(mount -t cgroup2 none /sys/fs/cgroup/unified)");
  }
  absl::StatusOr<std::string> own =
      OwnV2Path(ParseProcCgroup(proc_cgroup_text));
  if (!own.ok()) return absl::FailedPreconditionError(own.status().message());
  absl::StatusOr<std::string> dir = ResolveCgroupDir(v2, *own);
  if (!dir.ok()) return absl::FailedPreconditionError(dir.status().message());
  return dir;
}

absl::StatusOr<std::string> LocateV1OwnDir(absl::string_view mountinfo_text,
                                           absl::string_view proc_cgroup_text,
                                           absl::string_view controller) {
  std::vector<MountInfoEntry> mounts =
      FindV1Mounts(ParseMountInfo(mountinfo_text), controller);
  if (mounts.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no cgroup v1 hierarchy with the ", controller,
                     " controller in /proc/self/mountinfo"));
  }
  absl::StatusOr<std::string> own =
      OwnV1Path(ParseProcCgroup(proc_cgroup_text), controller);
  if (!own.ok()) return own.status();
  return ResolveCgroupDir(mounts, *own);
}

bool V1HasController(absl::string_view mountinfo_text,
                     absl::string_view controller) {
  return !FindV1Mounts(ParseMountInfo(mountinfo_text), controller).empty();
}

std::string JoinPath(absl::string_view a, absl::string_view b) {
  while (absl::EndsWith(a, "/") && a.size() > 1) a.remove_suffix(1);
  while (absl::StartsWith(b, "/")) b.remove_prefix(1);
  while (absl::EndsWith(b, "/")) b.remove_suffix(1);
  if (b.empty()) return std::string(a);
  if (a.empty()) return std::string(b);
  if (a == "/") return absl::StrCat("/", b);
  return absl::StrCat(a, "/", b);
}

absl::Status ValidateRelativeName(absl::string_view what,
                                  absl::string_view name, bool allow_slash) {
  if (name.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (absl::StartsWith(name, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " \"", name, "\" must be relative, not an absolute path"));
  }
  if (!allow_slash && absl::StrContains(name, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", name, "\" must be a single path component"));
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " \"", name, "\" has an empty, \".\" or \"..\" component"));
    }
    for (char c : part) {
      if (c == '\n' || c == '\0') {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " contains a newline or NUL character"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open for reading", path);
  std::string content;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "cannot read", path);
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > (16u << 20)) {
      close(fd);
      return absl::OutOfRangeError(
          absl::StrCat("cannot read ", path, ": larger than 16 MiB"));
    }
  }
  close(fd);
  return content;
}

absl::StatusOr<std::string> ReadFromStart(int fd) {
  std::string content;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", absl::StrCat("fd ", fd));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    offset += n;
    if (content.size() > (16u << 20)) {
      return absl::OutOfRangeError(
          absl::StrCat("cannot read fd ", fd, ": larger than 16 MiB"));
    }
  }
  return content;
}

absl::Status WriteFile(const std::string& path, absl::string_view value,
                       bool create) {
  int flags = O_WRONLY | O_CLOEXEC;
  if (create) flags |= O_CREAT | O_TRUNC;
  int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) {
    return ErrnoStatus(
        errno,
        absl::StrCat("cannot open for writing (to write \"", value, "\")"),
        path);
  }
  ssize_t n;
  do {
    n = write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0)
    return ErrnoStatus(err, absl::StrCat("cannot write \"", value, "\" to"),
                       path);
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InternalError(absl::StrCat("short write of \"", value,
                                            "\" to ", path, ": ", n, " of ",
                                            value.size(), " bytes"));
  }
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  return access(path.c_str(), F_OK) == 0;
}

absl::Status MakeDirs(const std::string& base, absl::string_view relative) {
  std::string current = base;
  for (absl::string_view part :
       absl::StrSplit(relative, '/', absl::SkipEmpty())) {
    current = JoinPath(current, part);
    if (mkdir(current.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "cannot create cgroup directory", current);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListSubdirs(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "cannot list directory", dir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir =
          lstat(JoinPath(dir, name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) names.emplace_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status RemoveCgroupDir(const std::string& dir, bool remove_files,
                             int retry_ms) {
  absl::StatusOr<std::vector<std::string>> children = ListSubdirs(dir);
  if (!children.ok()) {
    if (absl::IsNotFound(children.status())) return absl::OkStatus();
    return children.status();
  }
  for (const std::string& child : *children) {
    absl::Status s =
        RemoveCgroupDir(JoinPath(dir, child), remove_files, retry_ms);
    if (!s.ok()) return s;
  }
  if (remove_files) {
    if (DIR* d = opendir(dir.c_str())) {
      std::vector<std::string> files;
      while (struct dirent* e = readdir(d)) {
        absl::string_view name = e->d_name;
        if (name != "." && name != ".." && e->d_type != DT_DIR)
          files.emplace_back(name);
      }
      closedir(d);
      for (const std::string& f : files) unlink(JoinPath(dir, f).c_str());
    }
  }
  int64_t deadline = NowMs() + std::max(retry_ms, 0);
  int sleep_ms = 1;
  for (;;) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
    int err = errno;
    if (err != EBUSY || NowMs() >= deadline) {
      return ErrnoStatus(err, "cannot remove cgroup directory", dir);
    }
    SleepMs(sleep_ms);
    sleep_ms = std::min(sleep_ms * 2, 20);
  }
}

std::vector<pid_t> ParsePidList(absl::string_view text) {
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid) && pid > 0)
      pids.push_back(pid);
  }
  return pids;
}

absl::StatusOr<std::vector<pid_t>> ReadPidList(const std::string& path,
                                               bool missing_ok) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (missing_ok && absl::IsNotFound(text.status()))
      return std::vector<pid_t>();
    return text.status();
  }
  return ParsePidList(*text);
}

std::optional<uint64_t> FindKeyedValue(absl::string_view text,
                                       absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> tokens =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (tokens.size() < 2 || tokens[0] != key) continue;
    uint64_t value = 0;
    if (absl::SimpleAtoi(tokens[1], &value)) return value;
  }
  return std::nullopt;
}

std::optional<uint64_t> ParseSingleValue(absl::string_view text) {
  uint64_t value = 0;
  if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) return value;
  return std::nullopt;
}

std::vector<std::string> SplitTokens(absl::string_view text) {
  std::vector<std::string> tokens;
  for (absl::string_view t :
       absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    tokens.emplace_back(t);
  }
  return tokens;
}

absl::StatusOr<uint64_t> CpuQuotaUs(double cpus) {
  if (!(cpus > 0) || cpus > 1e6) {
    return absl::InvalidArgumentError(
        absl::StrCat("CPU limit ", cpus, " is not a positive number of CPUs"));
  }
  const double quota = std::round(cpus * static_cast<double>(kCpuPeriodUs));
  return std::max<uint64_t>(1000, static_cast<uint64_t>(quota));
}

std::string DefaultLeafName() {
  return absl::StrCat("run-", getpid(), "-", g_leaf_counter.fetch_add(1) + 1);
}

bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

void SleepMs(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = static_cast<long>(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace jcs::jail::cgroup_fs
