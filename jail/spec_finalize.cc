// Finalize: a parsed JailSpec becomes the one the jail runs, with every
// default filled in, every limit and path checked against the host, and the
// masks and egress policy resolved (see spec.h).
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "egress/egress_policy.h"
#include "jail/env.h"
#include "jail/runfiles.h"
#include "jail/spec.h"
#include "jail/spec_limits.h"

namespace jcs::jail {
namespace {

using proto::JailSpec;

constexpr uint64_t kMinMemory = 8ull << 20;
constexpr uint64_t kMaxNofile = 1 << 20;
// Each mask is one mount in the jail (the child handles 1024 binds in all).
constexpr int kMaxMasks = 768;
constexpr const char* kDefaultSystemRo[] = {
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"};

bool IsSameOrUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || absl::StartsWith(path, dir + "/");
}

// Makes `path` absolute (against `cwd`) and removes ".", ".." and repeated
// slashes lexically; with no symlink allowed in the path (checked next), the
// lexical result is the physical one.
std::string LexicallyNormal(const std::string& path, const std::string& cwd) {
  const std::string absolute =
      path[0] == '/' ? path : absl::StrCat(cwd, "/", path);
  std::vector<std::string> parts;
  for (absl::string_view part :
       absl::StrSplit(absolute, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

// A bind path: absolute, existing, and free of symlinks in every component.
// Binds never follow symlinks, so one planted in a directory the program
// controls (the root) cannot redirect a bind to a host path.
absl::StatusOr<std::string> CheckedBindPath(const std::string& path,
                                            const std::string& cwd,
                                            absl::string_view what,
                                            bool must_be_dir) {
  const std::string normal = LexicallyNormal(path, cwd);
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const int fd = static_cast<int>(
      syscall(SYS_openat2, AT_FDCWD, normal.c_str(), &how, sizeof(how)));
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP) {
      char resolved[PATH_MAX];
      const bool known = realpath(normal.c_str(), resolved) != nullptr;
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", path,
          ": the path goes through a symlink and binds never follow symlinks",
          known ? absl::StrCat(" (the real path is ", resolved, ")") : ""));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, ": ",
                     err == ENOENT ? "does not exist" : strerror(err)));
  }
  struct stat st;
  const int rc = fstat(fd, &st);
  const int err = errno;
  close(fd);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, ": ", strerror(err)));
  }
  if (must_be_dir && !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, ": not a directory"));
  }
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", path, ": expected a directory or a regular file"));
  }
  return normal;
}

// Paths the jail builds itself: a bind there would replace or shadow jail
// internals.
absl::Status CheckBindTarget(const std::string& path, absl::string_view what,
                             const JailSpec& spec) {
  for (const char* reserved : {"/proc", "/dev", "/sys"}) {
    if (IsSameOrUnder(path, reserved)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", path, ": binds under ", reserved, " are not allowed"));
    }
  }
  if (path == "/" || path == "/tmp") {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", path, ": cannot bind over the jail's own ", path,
        path == "/" ? ""
                    : "; use a directory below it, e.g. --root /tmp/work"));
  }
  for (const std::string& system : spec.system_ro()) {
    if (IsSameOrUnder(system, path)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", path, ": would cover the system directory ",
                       system, " (bind a subdirectory instead)"));
    }
  }
  return absl::OkStatus();
}

// Whether the jail user can create files in the root: the mode bits for
// that uid and gid (the jail user has no supplementary groups; ACLs aside).
bool RootWritableFor(const struct stat& st, uint32_t uid, uint32_t gid) {
  if (st.st_uid == uid) return (st.st_mode & S_IWUSR) && (st.st_mode & S_IXUSR);
  if (st.st_gid == gid) return (st.st_mode & S_IWGRP) && (st.st_mode & S_IXGRP);
  return (st.st_mode & S_IWOTH) && (st.st_mode & S_IXOTH);
}

struct HostCapacity {
  long cpus = 0;       // online CPUs, <= 0 when unknown
  uint64_t bytes = 0;  // physical memory, 0 when unknown
};

// The host's CPUs and memory, read at most once a minute: the daemon
// finalizes a spec for every tool call, and these reads (a sysfs file and
// sysinfo) only feed warnings; a host that grows is seen within the minute.
HostCapacity CurrentHostCapacity() {
  static std::mutex mu;
  static HostCapacity cached;
  static std::chrono::steady_clock::time_point read_at;
  static bool valid = false;
  std::lock_guard<std::mutex> lock(mu);
  const auto now = std::chrono::steady_clock::now();
  if (!valid || now - read_at > std::chrono::minutes(1)) {
    cached.cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_size = sysconf(_SC_PAGESIZE);
    cached.bytes =
        pages > 0 && page_size > 0
            ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)
            : 0;
    read_at = now;
    valid = true;
  }
  return cached;
}

// Limits above what the host has are allowed (the host may grow) but almost
// always a unit mistake: say so.
void AddHostCapacityWarnings(const JailSpec& spec,
                             std::vector<std::string>* warnings) {
  const HostCapacity capacity = CurrentHostCapacity();
  const long cpus = capacity.cpus;
  if (spec.has_cpus() && cpus > 0 && spec.cpus() > static_cast<double>(cpus)) {
    warnings->push_back(absl::StrCat("--cpus ", spec.cpus(),
                                     " is more than the host's ", cpus,
                                     " CPUs; the quota cannot be reached"));
  }
  if (capacity.bytes > 0 && spec.memory_bytes() != 0) {
    const uint64_t host = capacity.bytes;
    if (spec.memory_bytes() > host) {
      warnings->push_back(absl::StrCat(
          "--memory ", FormatSize(spec.memory_bytes()),
          " is more than the host's memory (", FormatSize(host >> 20 << 20),
          "); the limit cannot be reached"));
    }
  }
}

bool IsSameOrBelow(const std::string& path, const std::string& dir) {
  return path == dir || (absl::StartsWith(path, dir) &&
                         (dir == "/" || path[dir.size()] == '/'));
}

// Masks must lie strictly below the root; the type on the host decides how
// the jail covers them. A mask with a recorded identity (jcs serve's scan) is
// kept as it is: the jail checks it, and a path too long for lstat is fine.
// Any other mask gets its identity here; one that does not exist or is a
// symlink is refused.
absl::Status FinalizeMasks(const std::string& root, JailSpec& spec,
                           std::vector<std::string>* warnings) {
  if (spec.mask_size() > kMaxMasks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--mask: ", spec.mask_size(), " paths, at most ", kMaxMasks,
        " (mask a parent directory instead, or narrow the root)"));
  }
  std::map<std::string, proto::PathIdentity> recorded;
  for (const proto::PathIdentity& id : spec.identity()) {
    if (id.path().empty() || id.path().find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          "identity: expected a path without NUL bytes");
    }
    recorded[LexicallyNormal(id.path(), root)] = id;
  }
  google::protobuf::RepeatedPtrField<std::string> kept;
  google::protobuf::RepeatedPtrField<proto::PathIdentity> identities;
  std::set<std::string> seen;
  for (const std::string& given : spec.mask()) {
    if (given.empty() || given.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          "--mask: expected a path without NUL bytes");
    }
    const std::string path = LexicallyNormal(given, root);
    if (path == root || !IsSameOrBelow(path, root)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mask: ", path, " is not below the root ", root));
    }
    if (!seen.insert(path).second) continue;
    auto it = recorded.find(path);
    if (it != recorded.end()) {
      *kept.Add() = path;
      proto::PathIdentity* id = identities.Add();
      *id = it->second;
      id->set_path(path);
      recorded.erase(it);
      continue;
    }
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        // Most likely a typo: a silently skipped mask would leave the file
        // the user meant to hide readable once it appears.
        return absl::InvalidArgumentError(absl::StrCat(
            "--mask: ", path, " does not exist (nothing to mask)"));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("--mask: ", path, ": ", strerror(errno)));
    }
    if (S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--mask: ", path, " is a symlink; give the path it points to"));
    }
    *kept.Add() = path;
    proto::PathIdentity* id = identities.Add();
    id->set_path(path);
    id->set_dev(st.st_dev);
    id->set_ino(st.st_ino);
    id->set_is_dir(S_ISDIR(st.st_mode));
  }
  // Identities of ro/rw binds stay (the jail checks the bind's source).
  for (auto& [path, id] : recorded) {
    proto::PathIdentity* kept_id = identities.Add();
    *kept_id = id;
    kept_id->set_path(path);
  }
  spec.mutable_mask()->Swap(&kept);
  spec.mutable_identity()->Swap(&identities);
  return absl::OkStatus();
}

absl::Status FinalizeEgress(JailSpec& spec,
                            std::vector<std::string>* warnings) {
  const bool egress = spec.net() == proto::NET_EGRESS;
  if (!egress &&
      (spec.allow_host_size() > 0 || spec.allow_private_host_size() > 0 ||
       spec.allow_scheme_size() > 0)) {
    return absl::InvalidArgumentError(
        "--allow-host/--allow-private-host/--allow-scheme: only with --net "
        "egress");
  }
  if (!egress) return absl::OkStatus();
  for (const auto& [what, list] :
       {std::pair<const char*,
                  const google::protobuf::RepeatedPtrField<std::string>*>{
            "--allow-host", &spec.allow_host()},
        {"--allow-private-host", &spec.allow_private_host()}}) {
    for (const std::string& entry : *list) {
      absl::StatusOr<egress::AllowEntry> parsed =
          egress::ParseAllowEntry(entry);
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": '", absl::CHexEscape(entry),
                         "': ", parsed.status().message()));
      }
    }
  }
  for (std::string& scheme : *spec.mutable_allow_scheme()) {
    scheme = absl::AsciiStrToLower(scheme);
    if (scheme.empty() || scheme.size() > 20 ||
        !std::all_of(scheme.begin(), scheme.end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
        })) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow-scheme: expected a URI scheme, got '",
                       absl::CHexEscape(scheme), "'"));
    }
  }
  if (spec.allow_host_size() == 0 && spec.allow_private_host_size() == 0) {
    warnings->push_back(
        "--net egress without --allow-host: every destination is refused");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FinalSpec> Finalize(const proto::JailSpec& in,
                                   const std::string& cwd,
                                   bool require_program) {
  FinalSpec out;
  JailSpec& spec = out.spec;
  spec = in;
  if (spec.argv().empty() && require_program) {
    return absl::InvalidArgumentError(
        "no program given: usage: jcs run [flags] -- PROGRAM [ARGS...]");
  }
  if (!spec.argv().empty() && spec.argv(0).empty())
    return absl::InvalidArgumentError("program name is empty");
  for (const std::string& arg : spec.argv()) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          "argv: an argument contains a NUL byte");
    }
  }
  if (spec.system_ro().empty()) {
    for (const char* dir : kDefaultSystemRo) spec.add_system_ro(dir);
  }
  for (const std::string& dir : spec.system_ro()) {
    if (dir.empty() || dir[0] != '/' || absl::StrContains(dir, "..") ||
        dir == "/") {
      return absl::InvalidArgumentError(absl::StrCat(
          "system_ro: expected an absolute path without '..', got '", dir,
          "'"));
    }
  }

  absl::StatusOr<std::string> root =
      CheckedBindPath(spec.root().empty() ? cwd : spec.root(), cwd, "--root",
                      /*must_be_dir=*/true);
  if (!root.ok()) return root.status();
  spec.set_root(*root);
  absl::Status status = CheckBindTarget(*root, "--root", spec);
  if (!status.ok()) return status;
  // Runfiles trees become read-only binds (after the root is known: none of
  // them may cover it).
  for (const std::string& dir : spec.runfiles()) {
    // The tree is Bazel's (its path may go through bazel-out's symlinks):
    // its real path is bound. One the program could have written to is
    // refused: links planted there by an earlier run would pick the binds.
    char real[PATH_MAX];
    if (realpath(LexicallyNormal(dir, cwd).c_str(), real) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--runfiles: ", dir, ": ", strerror(errno)));
    }
    absl::StatusOr<std::string> tree =
        CheckedBindPath(real, cwd, "--runfiles", /*must_be_dir=*/true);
    if (!tree.ok()) return tree.status();
    for (const std::string& writable : spec.rw()) {
      if (IsSameOrUnder(*tree, LexicallyNormal(writable, cwd))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--runfiles: ", *tree, " lies in the writable bind ", writable,
            ": links planted there would choose what gets bound"));
      }
    }
    if (IsSameOrUnder(*tree, *root)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--runfiles: ", *tree, " lies in the writable root ", *root,
          ": links planted there would choose what gets bound"));
    }
    absl::StatusOr<std::vector<std::string>> binds = RunfilesBinds(
        *tree, *root, {spec.system_ro().begin(), spec.system_ro().end()});
    if (!binds.ok()) return binds.status();
    std::set<std::string> given(spec.ro().begin(), spec.ro().end());
    for (const std::string& bind : *binds) {
      if (given.insert(bind).second) spec.add_ro(bind);
    }
  }
  spec.clear_runfiles();
  std::set<std::string> seen = {*root};
  for (auto* list : {spec.mutable_ro(), spec.mutable_rw()}) {
    const char* what = list == spec.mutable_ro() ? "--ro" : "--rw";
    for (std::string& path : *list) {
      absl::StatusOr<std::string> resolved =
          CheckedBindPath(path, cwd, what, false);
      if (!resolved.ok()) return resolved.status();
      status = CheckBindTarget(*resolved, what, spec);
      if (!status.ok()) return status;
      if (!seen.insert(*resolved).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": ", *resolved, " is bound more than once"));
      }
      path = *resolved;
    }
  }

  if (spec.cwd().empty()) spec.set_cwd(*root);
  spec.set_cwd(LexicallyNormal(spec.cwd(), *root));
  bool cwd_visible = IsSameOrBelow(spec.cwd(), *root);
  for (const auto& list : {spec.ro(), spec.rw()}) {
    for (const std::string& bind : list) {
      cwd_visible = cwd_visible || IsSameOrBelow(spec.cwd(), bind);
    }
  }
  if (!cwd_visible) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cwd: ", spec.cwd(), " is not the root ", *root,
                     " or below it, nor in a --ro, --rw or --runfiles bind"));
  }
  // The jail shows these directories at their host paths: one missing here
  // would only fail later, as a setup error inside the jail.
  if (struct stat cwd_st; stat(spec.cwd().c_str(), &cwd_st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cwd: ", spec.cwd(), ": ",
                     errno == ENOENT ? "does not exist" : strerror(errno)));
  } else if (!S_ISDIR(cwd_st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cwd: ", spec.cwd(), ": not a directory"));
  }
  status = FinalizeMasks(*root, spec, &out.warnings);
  if (!status.ok()) return status;

  std::set<std::string> keys;
  for (const proto::EnvVar& var : spec.env()) {
    status = ValidateEnvVar(var.key(), var.value());
    if (!status.ok()) return status;
    if (!keys.insert(var.key()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--env: ", var.key(), " is given twice"));
    }
  }

  // Enums are open in proto3: a --config file (or a daemon client) can name
  // a number no mode has, which every later check would read as some other
  // mode. Refused here, where it is still the caller's input.
  if (!proto::NetMode_IsValid(spec.net())) {
    return absl::InvalidArgumentError(
        absl::StrCat("net: unknown mode ", spec.net(),
                     " (expected NET_NONE, NET_LOOPBACK or NET_EGRESS)"));
  }
  if (!proto::CgroupBackend_IsValid(spec.cgroup())) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup: unknown backend ", spec.cgroup(),
                     " (expected CGROUP_AUTO, CGROUP_V2 or CGROUP_V1)"));
  }
  if (!proto::LandlockMode_IsValid(spec.landlock())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "landlock: unknown mode ", spec.landlock(),
        " (expected LANDLOCK_BEST_EFFORT, LANDLOCK_REQUIRED or LANDLOCK_OFF)"));
  }
  if (spec.net() == proto::NET_MODE_UNSPECIFIED) spec.set_net(proto::NET_NONE);
  status = FinalizeEgress(spec, &out.warnings);
  if (!status.ok()) return status;
  if (spec.cgroup() == proto::CGROUP_BACKEND_UNSPECIFIED)
    spec.set_cgroup(proto::CGROUP_AUTO);
  if (spec.landlock() == proto::LANDLOCK_MODE_UNSPECIFIED) {
    spec.set_landlock(proto::LANDLOCK_BEST_EFFORT);
  }
  if (!spec.has_timeout_ms()) spec.set_timeout_ms(kDefaultTimeoutMs);
  if (spec.timeout_ms() == 0 || spec.timeout_ms() > kMaxTimeoutMs) {
    return absl::InvalidArgumentError("timeout_ms: expected 1 ms to 7 days");
  }
  if (!spec.has_memory_bytes()) spec.set_memory_bytes(kDefaultMemory);
  if (spec.memory_bytes() != 0 && spec.memory_bytes() < kMinMemory) {
    return absl::InvalidArgumentError(
        absl::StrCat("--memory: at least 8M is needed to start a program, got ",
                     spec.memory_bytes(), " bytes"));
  }
  if (!spec.has_pids()) spec.set_pids(kDefaultPids);
  if (spec.pids() == 1) {
    return absl::InvalidArgumentError(
        "--pids: at least 2 (the jail's init and the program), got 1");
  }
  if (spec.has_cpus() && (!(spec.cpus() > 0) || spec.cpus() > 4096)) {
    return absl::InvalidArgumentError(
        "--cpus: expected a number of CPUs above 0, at most 4096");
  }
  AddHostCapacityWarnings(spec, &out.warnings);
  if (!spec.has_hostname()) spec.set_hostname(kDefaultHostname);
  if (spec.hostname().empty() || spec.hostname().size() > 64) {
    return absl::InvalidArgumentError(
        "--hostname: expected 1 to 64 characters");
  }
  for (char c : spec.hostname()) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          "--hostname: expected letters, digits, '-' and '.', got '",
          absl::CHexEscape(spec.hostname()), "'"));
    }
  }
  if (!spec.has_tmp_size_bytes()) spec.set_tmp_size_bytes(kDefaultTmpSize);
  // 0: unlimited (tmpfs's size=0); the memory limit still caps it.
  if (spec.tmp_size_bytes() != 0 && spec.tmp_size_bytes() < (1 << 20)) {
    return absl::InvalidArgumentError("--tmp-size: at least 1M");
  }
  if (!spec.has_nofile()) spec.set_nofile(kDefaultNofile);
  if (spec.nofile() < 16 || spec.nofile() > kMaxNofile) {
    return absl::InvalidArgumentError("--nofile: expected 16 to 1048576");
  }
  if (!spec.has_fsize_bytes()) spec.set_fsize_bytes(kDefaultFsize);
  if (!spec.has_cgroup_parent()) spec.set_cgroup_parent(kDefaultCgroupParent);
  if (spec.cgroup_parent().empty() ||
      absl::StrContains(spec.cgroup_parent(), "..") ||
      spec.cgroup_parent()[0] == '/') {
    return absl::InvalidArgumentError(
        "--cgroup-parent: expected a relative cgroup path without '..'");
  }

  // The jail user: the root's owner by default, never host root unless
  // explicitly allowed.
  struct stat st;
  if (stat(spec.root().c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--root: ", strerror(errno)));
  }
  // Not root (rootless): the jail's user namespace can map only the caller's
  // own ids, so they are the jail user's.
  const bool rootless = geteuid() != 0;
  if (!spec.has_uid()) {
    spec.set_uid(rootless                                    ? geteuid()
                 : st.st_uid == 0 && !spec.allow_host_root() ? kNobody
                                                             : st.st_uid);
  }
  if (!spec.has_gid()) {
    spec.set_gid(rootless                  ? getegid()
                 : spec.uid() == st.st_uid ? st.st_gid
                                           : spec.uid());
    if (spec.gid() == 0 && !spec.allow_host_root()) spec.set_gid(kNobody);
  }
  if (!RootWritableFor(st, spec.uid(), spec.gid())) {
    const std::string user =
        absl::StrCat(spec.uid(), spec.uid() == kNobody ? " (nobody)" : "");
    out.warnings.push_back(
        st.st_uid == spec.uid()
            ? absl::StrFormat(
                  "--root %s is not writable by its owner, the jail user %s "
                  "(mode %04o); chmod u+wx",
                  spec.root(), user, st.st_mode & 07777)
            : absl::StrCat("--root ", spec.root(), " is owned by uid ",
                           st.st_uid, "; the jail user is ", user,
                           rootless ? " (not root: always the caller); chown"
                                    : "; pass --uid or chown"));
  }
  if ((spec.uid() == 0 || spec.gid() == 0) && !spec.allow_host_root()) {
    return absl::InvalidArgumentError(
        "--uid/--gid: mapping the jail user to host uid or gid 0 needs "
        "--allow-host-root "
        "(uid 0 owns system files even without capabilities)");
  }
  if (rootless && (spec.uid() != geteuid() || spec.gid() != getegid())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--uid/--gid: jcs run is not running as root (uid ", geteuid(),
        ", gid ", getegid(),
        "): the jail's user namespace can map only those ids, not uid ",
        spec.uid(), " gid ", spec.gid(),
        " (fix: drop --uid/--gid, or run jcs as root)"));
  }
  return out;
}

std::vector<std::string> DefaultSystemDirs() {
  return {std::begin(kDefaultSystemRo), std::end(kDefaultSystemRo)};
}

}  // namespace jcs::jail
