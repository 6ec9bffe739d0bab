#include "jail/spec.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "egress/egress_policy.h"
#include "google/protobuf/text_format.h"
#include "jail/env.h"
#include "proto/text_format.h"

namespace jcs::jail {
namespace {

using proto::JailSpec;

constexpr uint64_t kDefaultTimeoutMs = 60'000;
constexpr uint64_t kMaxTimeoutMs = 7ull * 24 * 3600 * 1000;
constexpr uint64_t kDefaultMemory = 512ull << 20;
constexpr uint64_t kMinMemory = 8ull << 20;
constexpr uint64_t kDefaultPids = 256;
constexpr uint64_t kDefaultTmpSize = 64ull << 20;
constexpr uint64_t kDefaultNofile = 1024;
constexpr uint64_t kMaxNofile = 1 << 20;
constexpr uint64_t kDefaultFsize = 1ull << 30;
constexpr uint32_t kNobody = 65534;
// Each mask is one mount in the jail (the child handles 1024 binds in all).
constexpr int kMaxMasks = 768;
constexpr const char* kDefaultSystemRo[] = {
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"};

// How a flag's value is parsed; each flag sets exactly one JailSpec field.
enum class FlagKind {
  kPath,      // string field
  kPathList,  // repeated string field
  kEnv,       // repeated EnvVar
  kSeconds,   // uint64 milliseconds
  kSize,      // uint64 bytes, "unlimited" allowed when the flag says so
  kCount,     // uint64, "unlimited" allowed when the flag says so
  kDouble,
  kUint32,
  kString,
  kBool,
  kNet,
  kCgroup,
  kLandlock,
};

struct Flag {
  const char* name;
  FlagKind kind;
  bool unlimited_ok;
  const char* value_hint;
  const char* help;
};

constexpr Flag kFlags[] = {
    {"root", FlagKind::kPath, false, "DIR",
     "project root, bound read-write at its own path; the working directory "
     "(default: cwd)"},
    {"ro", FlagKind::kPathList, false, "PATH",
     "extra read-only bind at the same path (repeatable)"},
    {"rw", FlagKind::kPathList, false, "PATH",
     "extra read-write bind at the same path (repeatable)"},
    {"cwd", FlagKind::kPath, false, "DIR",
     "working directory: the root or a directory below it, relative paths "
     "against the root (default: the root)"},
    {"mask", FlagKind::kPathList, false, "PATH",
     "file or directory below the root (relative: against the root) that the "
     "program cannot open (repeatable)"},
    {"net", FlagKind::kNet, false, "none|loopback|egress",
     "network: none (default: empty namespace), loopback (lo up), or egress "
     "(only through the supervisor's proxy to --allow-host destinations)"},
    {"allow-host", FlagKind::kPathList, false, "HOST[:PORT]",
     "--net egress: a destination the proxy may reach, with its subdomains "
     "(repeatable)"},
    {"allow-private-host", FlagKind::kPathList, false, "HOST[:PORT]",
     "--net egress: an allowed host that may be or resolve to a loopback, "
     "private, link-local or metadata address (repeatable)"},
    {"allow-scheme", FlagKind::kPathList, false, "SCHEME",
     "--net egress: a scheme the proxy lets through (default http and "
     "https; repeatable)"},
    {"env", FlagKind::kEnv, false, "KEY=VALUE",
     "variable for the program, on top of PATH, HOME=/tmp, LANG=C.UTF-8 "
     "(repeatable)"},
    {"timeout", FlagKind::kSeconds, false, "SECONDS",
     "wall-clock limit, decimal seconds with ms precision (default 60)"},
    {"memory", FlagKind::kSize, true, "SIZE",
     "memory limit, K/M/G suffixes (default 512M)"},
    {"pids", FlagKind::kCount, true, "N",
     "process limit, the jail's init included (default 256)"},
    {"cpus", FlagKind::kDouble, false, "FLOAT",
     "CPU quota in CPUs, e.g. 0.5 (default: none)"},
    {"hostname", FlagKind::kString, false, "NAME",
     "hostname inside the jail (default jcs)"},
    {"uid", FlagKind::kUint32, false, "UID",
     "host uid of the jail user (default: owner of --root, 65534 if that is "
     "0)"},
    {"gid", FlagKind::kUint32, false, "GID",
     "host gid of the jail user (default: as --uid)"},
    {"allow-host-root", FlagKind::kBool, false, "",
     "allow mapping the jail user to host uid/gid 0 (risky)"},
    {"tmp-size", FlagKind::kSize, false, "SIZE",
     "size cap of the private /tmp (default 64M)"},
    {"cgroup", FlagKind::kCgroup, false, "auto|v2|v1",
     "cgroup backend (default auto)"},
    {"cgroup-parent", FlagKind::kString, false, "NAME",
     "cgroup directory for per-run cgroups (default jcs)"},
    {"landlock", FlagKind::kLandlock, false, "best-effort|required|off",
     "Landlock second layer (default best-effort)"},
    {"nofile", FlagKind::kCount, false, "N",
     "RLIMIT_NOFILE inside the jail (default 1024)"},
    {"fsize", FlagKind::kSize, false, "SIZE",
     "largest file the program may write (default 1G)"},
};

const Flag* FindFlag(absl::string_view name) {
  for (const Flag& flag : kFlags) {
    if (name == flag.name) return &flag;
  }
  return nullptr;
}

absl::Status ParseUnlimited(absl::string_view value, const Flag& flag,
                            uint64_t* out, bool* handled) {
  *handled = false;
  if (flag.unlimited_ok && value == "unlimited") {
    *out = 0;
    *handled = true;
  }
  return absl::OkStatus();
}

absl::Status ApplyFlag(const Flag& flag, absl::string_view value,
                       JailSpec* spec) {
  const std::string what = absl::StrCat("--", flag.name);
  switch (flag.kind) {
    case FlagKind::kPath:
      if (value.empty())
        return absl::InvalidArgumentError(what + ": empty path");
      if (flag.name == absl::string_view("cwd")) {
        spec->set_cwd(std::string(value));
      } else {
        spec->set_root(std::string(value));
      }
      return absl::OkStatus();
    case FlagKind::kPathList:
      if (value.empty())
        return absl::InvalidArgumentError(what + ": empty path");
      if (flag.name == absl::string_view("ro")) {
        spec->add_ro(std::string(value));
      } else if (flag.name == absl::string_view("mask")) {
        spec->add_mask(std::string(value));
      } else if (flag.name == absl::string_view("allow-host")) {
        spec->add_allow_host(std::string(value));
      } else if (flag.name == absl::string_view("allow-private-host")) {
        spec->add_allow_private_host(std::string(value));
      } else if (flag.name == absl::string_view("allow-scheme")) {
        spec->add_allow_scheme(std::string(value));
      } else {
        spec->add_rw(std::string(value));
      }
      return absl::OkStatus();
    case FlagKind::kEnv: {
      const size_t eq = value.find('=');
      if (eq == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": expected KEY=VALUE, got ",
                         absl::CHexEscape(value), " (no '=')"));
      }
      proto::EnvVar* var = spec->add_env();
      var->set_key(std::string(value.substr(0, eq)));
      var->set_value(std::string(value.substr(eq + 1)));
      return ValidateEnvVar(var->key(), var->value());
    }
    case FlagKind::kSeconds: {
      absl::StatusOr<uint64_t> ms = ParseSecondsToMs(value, what);
      if (!ms.ok()) return ms.status();
      spec->set_timeout_ms(*ms);
      return absl::OkStatus();
    }
    case FlagKind::kSize:
    case FlagKind::kCount: {
      uint64_t parsed = 0;
      bool handled = false;
      absl::Status status = ParseUnlimited(value, flag, &parsed, &handled);
      if (!status.ok()) return status;
      if (!handled) {
        if (flag.kind == FlagKind::kSize) {
          absl::StatusOr<uint64_t> size = ParseSize(value, what);
          if (!size.ok()) return size.status();
          parsed = *size;
        } else if (!absl::SimpleAtoi(value, &parsed) ||
                   !absl::ascii_isdigit(value[0])) {
          return absl::InvalidArgumentError(
              absl::StrCat(what, ": expected a whole number",
                           flag.unlimited_ok ? " or 'unlimited'" : "",
                           ", got '", absl::CHexEscape(value), "'"));
        }
        if (parsed == 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": must be greater than 0",
              flag.unlimited_ok ? " (use 'unlimited' for no limit)" : ""));
        }
      }
      const std::string name = flag.name;
      if (name == "memory") spec->set_memory_bytes(parsed);
      if (name == "pids") spec->set_pids(parsed);
      if (name == "tmp-size") spec->set_tmp_size_bytes(parsed);
      if (name == "nofile") spec->set_nofile(parsed);
      if (name == "fsize") spec->set_fsize_bytes(parsed);
      return absl::OkStatus();
    }
    case FlagKind::kDouble: {
      double parsed = 0;
      if (!absl::SimpleAtod(value, &parsed) || !std::isfinite(parsed) ||
          parsed <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": expected a positive number like 0.5 or 2, got '",
            absl::CHexEscape(value), "'"));
      }
      spec->set_cpus(parsed);
      return absl::OkStatus();
    }
    case FlagKind::kUint32: {
      uint32_t parsed = 0;
      if (value.empty() || !absl::ascii_isdigit(value[0]) ||
          !absl::SimpleAtoi(value, &parsed) || parsed == UINT32_MAX) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": expected a numeric id, got '",
                         absl::CHexEscape(value), "'"));
      }
      if (flag.name == absl::string_view("uid")) {
        spec->set_uid(parsed);
      } else {
        spec->set_gid(parsed);
      }
      return absl::OkStatus();
    }
    case FlagKind::kString:
      if (flag.name == absl::string_view("hostname")) {
        spec->set_hostname(std::string(value));
      } else {
        spec->set_cgroup_parent(std::string(value));
      }
      return absl::OkStatus();
    case FlagKind::kBool:
      spec->set_allow_host_root(true);
      return absl::OkStatus();
    case FlagKind::kNet:
      if (value == "none") {
        spec->set_net(proto::NET_NONE);
      } else if (value == "loopback") {
        spec->set_net(proto::NET_LOOPBACK);
      } else if (value == "egress") {
        spec->set_net(proto::NET_EGRESS);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": expected none, loopback or egress, got '",
                         absl::CHexEscape(value), "'"));
      }
      return absl::OkStatus();
    case FlagKind::kCgroup:
      if (value == "auto") {
        spec->set_cgroup(proto::CGROUP_AUTO);
      } else if (value == "v2") {
        spec->set_cgroup(proto::CGROUP_V2);
      } else if (value == "v1") {
        spec->set_cgroup(proto::CGROUP_V1);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": expected auto, v2 or v1, got '",
                         absl::CHexEscape(value), "'"));
      }
      return absl::OkStatus();
    case FlagKind::kLandlock:
      if (value == "best-effort") {
        spec->set_landlock(proto::LANDLOCK_BEST_EFFORT);
      } else if (value == "required") {
        spec->set_landlock(proto::LANDLOCK_REQUIRED);
      } else if (value == "off") {
        spec->set_landlock(proto::LANDLOCK_OFF);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": expected best-effort, required or off, got '",
                         absl::CHexEscape(value), "'"));
      }
      return absl::OkStatus();
  }
  return absl::InternalError("unhandled flag kind");
}

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
        what, ": ", path, ": cannot bind over the jail's own ", path));
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

}  // namespace

absl::StatusOr<uint64_t> ParseSize(absl::string_view text,
                                   absl::string_view what) {
  auto bad = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     ": expected a size like 512M (digits with an optional K, "
                     "M, G or T suffix), got '",
                     absl::CHexEscape(text), "'"));
  };
  if (text.empty()) return bad();
  uint64_t multiplier = 1;
  absl::string_view digits = text;
  switch (absl::ascii_toupper(text.back())) {
    case 'K':
      multiplier = 1ull << 10;
      break;
    case 'M':
      multiplier = 1ull << 20;
      break;
    case 'G':
      multiplier = 1ull << 30;
      break;
    case 'T':
      multiplier = 1ull << 40;
      break;
    default:
      break;
  }
  if (multiplier != 1) digits.remove_suffix(1);
  if (digits.empty()) return bad();
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return bad();
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value > UINT64_MAX / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": size '", absl::CHexEscape(text), "' is too large"));
  }
  return value * multiplier;
}

absl::StatusOr<uint64_t> ParseSecondsToMs(absl::string_view text,
                                          absl::string_view what) {
  auto bad = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": expected seconds as a decimal number like 60 or 0.25, got '",
        absl::CHexEscape(text), "'"));
  };
  const size_t dot = text.find('.');
  absl::string_view whole = text.substr(0, dot);
  absl::string_view fraction = dot == absl::string_view::npos
                                   ? absl::string_view()
                                   : text.substr(dot + 1);
  if (whole.empty() && fraction.empty()) return bad();
  for (char c : whole) {
    if (!absl::ascii_isdigit(c)) return bad();
  }
  for (char c : fraction) {
    if (!absl::ascii_isdigit(c)) return bad();
  }
  if (whole.size() > 12) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", text, "' is too long"));
  }
  uint64_t seconds = 0;
  if (!whole.empty() && !absl::SimpleAtoi(whole, &seconds)) return bad();
  uint64_t ms = seconds * 1000;
  // Millisecond precision: the first three fraction digits count, the fourth
  // rounds.
  static constexpr uint64_t kScale[] = {100, 10, 1};
  for (size_t i = 0; i < fraction.size() && i < 3; ++i)
    ms += (fraction[i] - '0') * kScale[i];
  if (fraction.size() > 3 && fraction[3] >= '5') ++ms;
  if (ms == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": must be at least 0.001 seconds, got '", text, "'"));
  }
  if (ms > kMaxTimeoutMs) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": at most 7 days, got '", text, "'"));
  }
  return ms;
}

absl::StatusOr<proto::JailSpec> ParseSpecText(absl::string_view text,
                                              absl::string_view path) {
  JailSpec spec;
  if (absl::Status status = proto::ParseTextProto(text, path, &spec);
      !status.ok()) {
    return status;
  }
  for (const proto::EnvVar& var : spec.env()) {
    absl::Status status = ValidateEnvVar(var.key(), var.value());
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": env: ", status.message()));
    }
  }
  return spec;
}

absl::StatusOr<RunInvocation> ParseRunArgs(
    const std::vector<std::string>& args) {
  RunInvocation inv;
  JailSpec flags;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      inv.help = true;
      return inv;
    }
    if (!absl::StartsWith(arg, "--")) {
      // The program starts here (bwrap style); `--` is still recommended.
      break;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "print-config") {
      inv.print_config = true;
      continue;
    }
    const bool takes_value =
        name == "config" || name == "report" ||
        (FindFlag(name) != nullptr && FindFlag(name)->kind != FlagKind::kBool);
    if (takes_value && !has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, ": missing value"));
      }
      value = args[++i];
    }
    if (name == "config") {
      inv.config_path = value;
      continue;
    }
    if (name == "report") {
      if (value.empty())
        return absl::InvalidArgumentError(
            "--report: empty path (use - for stderr)");
      inv.report_path = value;
      continue;
    }
    const Flag* flag = FindFlag(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '--", name, "' (see jcs run --help)"));
    }
    if (flag->kind == FlagKind::kBool && has_value) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " takes no value"));
    }
    absl::Status status = ApplyFlag(*flag, value, &flags);
    if (!status.ok()) return status;
  }
  for (; i < args.size(); ++i) flags.add_argv(args[i]);

  if (!inv.config_path.empty()) {
    std::ifstream in(inv.config_path);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--config: cannot read ", inv.config_path, ": ", strerror(errno)));
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    absl::StatusOr<JailSpec> file =
        ParseSpecText(buffer.str(), inv.config_path);
    if (!file.ok()) return file.status();
    inv.spec = *std::move(file);
  }
  // Flags override the file: repeated fields given as flags replace the file's
  // list.
  if (!flags.ro().empty()) inv.spec.clear_ro();
  if (!flags.rw().empty()) inv.spec.clear_rw();
  if (!flags.env().empty()) inv.spec.clear_env();
  if (!flags.argv().empty()) inv.spec.clear_argv();
  inv.spec.MergeFrom(flags);
  return inv;
}

namespace {

bool IsSameOrBelow(const std::string& path, const std::string& dir) {
  return path == dir || (absl::StartsWith(path, dir) &&
                         (dir == "/" || path[dir.size()] == '/'));
}

// Masks must lie strictly below the root; the type on the host decides how
// the jail covers them. A mask with a recorded identity (jcs serve's scan) is
// kept as it is: the jail checks it, and a path too long for lstat is fine.
// Any other mask gets its identity here; one that does not exist is skipped
// with a warning (jcs run's --mask), a symlink is refused.
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
        warnings->push_back(
            absl::StrCat("--mask: ", path, " does not exist; skipped"));
        continue;
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
  if (spec.allow_host_size() == 0) {
    warnings->push_back(
        "--net egress without --allow-host: every destination is refused");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FinalSpec> Finalize(const proto::JailSpec& in,
                                   const std::string& cwd) {
  FinalSpec out;
  JailSpec& spec = out.spec;
  spec = in;
  if (spec.argv().empty()) {
    return absl::InvalidArgumentError(
        "no program given: usage: jcs run [flags] -- PROGRAM [ARGS...]");
  }
  if (spec.argv(0).empty())
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
  if (!IsSameOrBelow(spec.cwd(), *root)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cwd: ", spec.cwd(), " is not the root ", *root, " or below it"));
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
  if (!spec.has_hostname()) spec.set_hostname("jcs");
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
  if (spec.tmp_size_bytes() < (1 << 20)) {
    return absl::InvalidArgumentError("--tmp-size: at least 1M");
  }
  if (!spec.has_nofile()) spec.set_nofile(kDefaultNofile);
  if (spec.nofile() < 16 || spec.nofile() > kMaxNofile) {
    return absl::InvalidArgumentError("--nofile: expected 16 to 1048576");
  }
  if (!spec.has_fsize_bytes()) spec.set_fsize_bytes(kDefaultFsize);
  if (!spec.has_cgroup_parent()) spec.set_cgroup_parent("jcs");
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
  if (!spec.has_uid()) {
    if (st.st_uid == 0 && !spec.allow_host_root()) {
      spec.set_uid(kNobody);
      out.warnings.push_back(
          absl::StrCat("--root ", spec.root(),
                       " is owned by host uid 0; the jail user maps to uid "
                       "65534 (nobody), so the root is "
                       "not writable to the program: pass --uid UID, or "
                       "--allow-host-root to map to uid 0"));
    } else {
      spec.set_uid(st.st_uid);
    }
  }
  if (!spec.has_gid()) {
    spec.set_gid(spec.uid() == st.st_uid ? st.st_gid : spec.uid());
    if (spec.gid() == 0 && !spec.allow_host_root()) spec.set_gid(kNobody);
  }
  if ((spec.uid() == 0 || spec.gid() == 0) && !spec.allow_host_root()) {
    return absl::InvalidArgumentError(
        "--uid/--gid: mapping the jail user to host uid or gid 0 needs "
        "--allow-host-root "
        "(uid 0 owns system files even without capabilities)");
  }
  return out;
}

std::vector<std::string> DefaultSystemDirs() {
  return {std::begin(kDefaultSystemRo), std::end(kDefaultSystemRo)};
}

std::string FormatSpec(const proto::JailSpec& spec) {
  google::protobuf::TextFormat::Printer printer;
  std::string text;
  printer.PrintToString(spec, &text);
  return text;
}

std::string RunUsage() {
  std::string out =
      "usage: jcs run [flags] -- PROGRAM [ARGS...]\n\n"
      "Runs PROGRAM in a jail: new user, pid, mount, net, ipc, uts and cgroup "
      "namespaces, a\n"
      "tmpfs root with read-only system directories, seccomp, Landlock, cgroup "
      "limits.\n"
      "Every flag sets one field of jcs.proto.JailSpec "
      "(proto/jail.proto).\n\nflags:\n";
  auto line = [&](absl::string_view name, absl::string_view hint,
                  absl::string_view help) {
    std::string left =
        absl::StrCat("  --", name, hint.empty() ? "" : " ", hint);
    absl::StrAppend(&out, absl::StrFormat("%-34s %s\n", left, help));
  };
  for (const Flag& flag : kFlags) line(flag.name, flag.value_hint, flag.help);
  line("config", "FILE", "JailSpec in protobuf text format; flags override it");
  line("print-config", "", "print the effective JailSpec and exit");
  line("report", "FILE", "write a JSON report of the run (- for stderr)");
  absl::StrAppend(&out,
                  "\nexit status: the program's; 128+N if killed by signal N; "
                  "124 timeout; 125 "
                  "jail setup failed;\n126 not executable; 127 not found.\n");
  return out;
}

}  // namespace jcs::jail
