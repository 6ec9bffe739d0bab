#include "jail/spec.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "jail/env.h"
#include "jail/spec_limits.h"
#include "proto/text_format.h"

namespace jcs::jail {
namespace {

using proto::JailSpec;

// How a flag's value is parsed; each flag sets exactly one JailSpec field.
enum class FlagKind {
  kPath,      // string field
  kPathList,  // repeated string field
  kEnv,       // repeated EnvVar
  kEnvFile,   // repeated EnvVar, from a file
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
  // Not JailSpec fields: how `jcs run` itself reports (RunInvocation).
  kQuiet,
  kReportFd,
  kTty,
};

struct Flag {
  const char* name;
  FlagKind kind;
  bool unlimited_ok;
  const char* value_hint;
  const char* help;
  // What applies without the flag, for --help; nullptr: the value Finalize
  // sets, from spec_limits.h (FlagDefault).
  const char* default_text;
};

constexpr Flag kFlags[] = {
    {"root", FlagKind::kPath, false, "DIR",
     "project root, bound read-write at its own path; the working directory",
     "the current directory"},
    {"ro", FlagKind::kPathList, false, "PATH",
     "extra read-only bind at the same path (repeatable)", "none"},
    {"rw", FlagKind::kPathList, false, "PATH",
     "extra read-write bind at the same path (repeatable)", "none"},
    {"cwd", FlagKind::kPath, false, "DIR",
     "working directory: the root or a directory below it, relative paths "
     "against the root",
     "the root"},
    {"mask", FlagKind::kPathList, false, "PATH",
     "file or directory below the root (relative: against the root) that the "
     "program cannot open (repeatable)",
     "none"},
    {"net", FlagKind::kNet, false, "none|loopback|egress",
     "network: none (an empty namespace), loopback (lo up), or egress (only "
     "through the supervisor's proxy to --allow-host destinations)",
     "none"},
    {"allow-host", FlagKind::kPathList, false, "HOST[:PORT]",
     "--net egress: a destination the proxy may reach, with its subdomains "
     "(repeatable)",
     "none"},
    {"allow-private-host", FlagKind::kPathList, false, "HOST[:PORT]",
     "--net egress: a host the proxy may reach (exactly, no subdomains) even "
     "when it is or resolves to a loopback, private, link-local or metadata "
     "address; no --allow-host needed for it (repeatable)",
     "none"},
    {"allow-scheme", FlagKind::kPathList, false, "SCHEME",
     "--net egress: a scheme the proxy lets through (repeatable)",
     "http and https"},
    {"env", FlagKind::kEnv, false, "KEY[=VALUE]",
     "variable for the program, on top of PATH, HOME=/tmp, LANG=C.UTF-8; "
     "KEY alone passes the host's value (nothing when unset; repeatable)",
     "none"},
    {"env-file", FlagKind::kEnvFile, false, "FILE",
     "variables from FILE: KEY=VALUE or KEY lines as for --env, # comments "
     "and blank lines skipped (repeatable)",
     "none"},
    {"runfiles", FlagKind::kPathList, false, "DIR",
     "a Bazel runfiles tree: bound read-only with the directories its "
     "symlinks point to; --cwd may lie in it (repeatable)",
     "none"},
    {"timeout", FlagKind::kSeconds, false, "SECONDS",
     "wall-clock limit, decimal seconds with ms precision", nullptr},
    {"memory", FlagKind::kSize, true, "SIZE", "memory limit", nullptr},
    {"pids", FlagKind::kCount, true, "N",
     "process limit, the jail's init included", nullptr},
    {"cpus", FlagKind::kDouble, false, "FLOAT", "CPU quota in CPUs, e.g. 0.5",
     "none"},
    {"hostname", FlagKind::kString, false, "NAME", "hostname inside the jail",
     nullptr},
    {"uid", FlagKind::kUint32, false, "UID",
     "host uid of the jail user; run by a user other than root: only that "
     "user's own uid",
     "the owner of --root, 65534 if that is 0; not root: the caller's uid"},
    {"gid", FlagKind::kUint32, false, "GID",
     "host gid of the jail user; not root: only the caller's own gid",
     "as --uid; not root: the caller's gid"},
    {"allow-host-root", FlagKind::kBool, false, "",
     "allow mapping the jail user to host uid/gid 0 (risky)", "off"},
    {"tmp-size", FlagKind::kSize, true, "SIZE",
     "size cap of the private /tmp and /dev/shm (unlimited: only the memory "
     "limit caps them)",
     nullptr},
    {"cgroup", FlagKind::kCgroup, false, "auto|v2|v1", "cgroup backend",
     "auto"},
    {"cgroup-parent", FlagKind::kString, false, "NAME",
     "cgroup directory for per-run cgroups", nullptr},
    {"landlock", FlagKind::kLandlock, false, "best-effort|required|off",
     "Landlock second layer", "best-effort"},
    {"nofile", FlagKind::kCount, false, "N", "RLIMIT_NOFILE inside the jail",
     nullptr},
    {"fsize", FlagKind::kSize, true, "SIZE",
     "largest file the program may write", nullptr},
    {"quiet", FlagKind::kQuiet, false, "",
     "-q: no jcs: lines about what happened (errors that stop the run are "
     "still printed)",
     "off"},
    {"report-fd", FlagKind::kReportFd, false, "N",
     "write the JSON report to inherited descriptor N (checked before the "
     "run, never passed into the jail)",
     "none"},
    {"tty", FlagKind::kTty, false, "",
     "-t: a new pseudo-terminal for the program (its stdin, stdout, stderr "
     "and controlling terminal), relayed to this one; TERM passed",
     "off"},
};

// The default --help shows for `flag`: the table's, or the value Finalize
// gives the field.
std::string FlagDefault(const Flag& flag) {
  if (flag.default_text != nullptr) return flag.default_text;
  const absl::string_view name = flag.name;
  static_assert(kDefaultTimeoutMs % 1000 == 0, "shown in whole seconds");
  if (name == "timeout") return absl::StrCat(kDefaultTimeoutMs / 1000);
  if (name == "memory") return FormatSize(kDefaultMemory);
  if (name == "pids") return absl::StrCat(kDefaultPids);
  if (name == "hostname") return kDefaultHostname;
  if (name == "tmp-size") return FormatSize(kDefaultTmpSize);
  if (name == "cgroup-parent") return kDefaultCgroupParent;
  if (name == "nofile") return absl::StrCat(kDefaultNofile);
  if (name == "fsize") return FormatSize(kDefaultFsize);
  return "none";
}

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

// KEY=VALUE, or KEY alone for the host's value (docker's -e KEY: nothing
// when the host has no such variable).
// ValidateEnvVar's message under `what` (it names --env itself).
absl::Status EnvError(const absl::Status& status, absl::string_view what) {
  absl::string_view message = status.message();
  absl::ConsumePrefix(&message, "--env: ");
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", message));
}

absl::Status AddEnvVar(absl::string_view entry, absl::string_view what,
                       JailSpec* spec) {
  const size_t eq = entry.find('=');
  const std::string key(entry.substr(0, eq));
  std::string value;
  if (eq != absl::string_view::npos) {
    value = std::string(entry.substr(eq + 1));
  } else {
    if (absl::Status status = ValidateEnvVar(key, ""); !status.ok()) {
      return EnvError(status, what);
    }
    const char* host = getenv(key.c_str());
    if (host == nullptr) return absl::OkStatus();
    value = host;
  }
  if (absl::Status status = ValidateEnvVar(key, value); !status.ok()) {
    return EnvError(status, what);
  }
  proto::EnvVar* var = spec->add_env();
  var->set_key(key);
  var->set_value(std::move(value));
  return absl::OkStatus();
}

constexpr size_t kMaxEnvFileBytes = 1 << 20;

absl::Status AddEnvFile(absl::string_view path, absl::string_view what,
                        JailSpec* spec) {
  std::ifstream in{std::string(path)};
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot read ", path, ": ", strerror(errno)));
  }
  std::string text(kMaxEnvFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxEnvFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", path, " is larger than ", kMaxEnvFileBytes, " bytes"));
  }
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    absl::Status status =
        AddEnvVar(trimmed.find('=') == absl::string_view::npos
                      ? trimmed
                      : absl::StripLeadingAsciiWhitespace(line),
                  absl::StrCat(what, " ", path, ":", number), spec);
    if (!status.ok()) return status;
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
      } else if (flag.name == absl::string_view("runfiles")) {
        spec->add_runfiles(std::string(value));
      } else {
        spec->add_rw(std::string(value));
      }
      return absl::OkStatus();
    case FlagKind::kEnv:
      return AddEnvVar(value, what, spec);
    case FlagKind::kEnvFile:
      return AddEnvFile(value, what, spec);
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
    case FlagKind::kQuiet:
    case FlagKind::kReportFd:
    case FlagKind::kTty:
      return absl::InternalError(what + ": not a JailSpec field");
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

}  // namespace

absl::StatusOr<uint64_t> ParseSize(absl::string_view text,
                                   absl::string_view what) {
  auto bad = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": expected a size like 512M, 1G, 1GB or 1GiB, got '",
        absl::CHexEscape(text), "'"));
  };
  // Digits, then an optional unit: K, M, G or T, alone or followed by B or
  // iB, in any case. Every unit is a power of 1024 (as docker and the kernel's
  // own memory.max read them): "1GB" and "1GiB" are both 1073741824.
  size_t digits_end = 0;
  while (digits_end < text.size() && absl::ascii_isdigit(text[digits_end])) {
    ++digits_end;
  }
  const absl::string_view digits = text.substr(0, digits_end);
  const std::string unit = absl::AsciiStrToUpper(text.substr(digits_end));
  if (digits.empty()) return bad();
  uint64_t multiplier = 1;
  if (!unit.empty()) {
    int shift = 0;
    switch (unit[0]) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        return bad();
    }
    const absl::string_view rest = absl::string_view(unit).substr(1);
    if (!rest.empty() && rest != "B" && rest != "IB") return bad();
    multiplier = 1ull << shift;
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value > UINT64_MAX / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": size '", absl::CHexEscape(text), "' is too large"));
  }
  return value * multiplier;
}

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "unlimited";
  static constexpr std::pair<int, char> kUnits[] = {
      {40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  for (const auto& unit : kUnits) {
    const uint64_t size = 1ull << unit.first;
    if (bytes % size == 0)
      return absl::StrCat(bytes / size, std::string(1, unit.second));
  }
  return absl::StrCat(bytes, " bytes");
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
    if (arg == "-q" || arg == "-t") {
      (arg == "-q" ? inv.quiet : inv.tty) = true;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-' && arg[1] != '-') {
      // A mistyped flag must not become the program (it would run in the
      // jail with the user's intended flag silently dropped).
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag '", absl::CHexEscape(arg),
          "' (see jcs run --help; a program whose name starts with - goes "
          "after --)"));
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
    if (name == "daemon") {
      if (has_value && value.empty()) {
        return absl::InvalidArgumentError(
            "--daemon=: empty socket path (write --daemon alone for "
            "$JCS_SOCKET or the default socket)");
      }
      inv.daemon = true;
      inv.daemon_socket = value;
      continue;
    }
    if (name == "daemon-fallback") {
      if (has_value) {
        return absl::InvalidArgumentError("--daemon-fallback takes no value");
      }
      inv.daemon_fallback = true;
      continue;
    }
    if (name == "print-config" || name == "quiet" || name == "tty") {
      if (has_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
      (name == "quiet" ? inv.quiet
       : name == "tty" ? inv.tty
                       : inv.print_config) = true;
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
      if (inv.report_fd >= 0) {
        return absl::InvalidArgumentError(
            "--report and --report-fd: give one of them");
      }
      if (value.empty())
        return absl::InvalidArgumentError(
            "--report: empty path (use - for stderr)");
      inv.report_path = value;
      continue;
    }
    if (name == "report-fd") {
      int fd = -1;
      if (value.empty() || !absl::ascii_isdigit(value[0]) ||
          !absl::SimpleAtoi(value, &fd)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--report-fd: expected a descriptor number, got '",
                         absl::CHexEscape(value), "'"));
      }
      if (!inv.report_path.empty()) {
        return absl::InvalidArgumentError(
            "--report and --report-fd: give one of them");
      }
      inv.report_fd = fd;
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
  if (!flags.runfiles().empty()) inv.spec.clear_runfiles();
  if (!flags.argv().empty()) inv.spec.clear_argv();
  inv.spec.MergeFrom(flags);
  return inv;
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
      "Runs PROGRAM in a jail: new user, pid, mount, net, ipc, uts and "
      "cgroup\n"
      "namespaces, a tmpfs root with read-only system directories, seccomp, "
      "Landlock,\n"
      "cgroup limits. Run by a user other than root, the jail user is that "
      "user and\n"
      "the limits need a delegated cgroup v2 subtree (or --memory unlimited "
      "--pids\n"
      "unlimited).\n"
      "Every flag sets one field of jcs.proto.JailSpec "
      "(proto/jail.proto).\n\nflags:\n";
  // "[default: X]" as in every other command's --help; FlagsFromUsageText
  // (tools/reference.cc) reads it back for the man page and completion.
  auto line = [&](absl::string_view name, absl::string_view hint,
                  absl::string_view help, absl::string_view default_text) {
    std::string left =
        absl::StrCat("  --", name, hint.empty() ? "" : " ", hint);
    absl::StrAppend(&out, absl::StrFormat("%-34s %s [default: %s]\n", left,
                                          help, default_text));
  };
  for (const Flag& flag : kFlags) {
    line(flag.name, flag.value_hint, flag.help, FlagDefault(flag));
  }
  line("config", "FILE", "JailSpec in protobuf text format; flags override it",
       "none");
  line("print-config", "",
       "print the effective JailSpec and exit (no program needed)", "off");
  line("report", "FILE", "write a JSON report of the run (- for stderr)",
       "none");
  line("daemon", "[=SOCKET]",
       "run through the jcs serve daemon listening on SOCKET ($JCS_SOCKET, "
       "else /run/jcs/jcs.sock): its warm jails, the same flags and "
       "guarantees, stdio, signals and exit status passed through",
       "off");
  line("daemon-fallback", "",
       "with --daemon: run cold when no daemon run can start (no daemon, "
       "daemon_run off); never when the daemon refuses the run",
       "off");
  // Lines under 80 columns: WrapUsageLines leaves them as they are.
  absl::StrAppend(
      &out,
      "\nSIZE: digits with an optional unit K, M, G or T, alone or followed "
      "by B or iB,\n"
      "in any case (all powers of 1024: 1G, 1GB and 1GiB are the same), or "
      "'unlimited'.\n"
      "\nWhat a user must know (the root not writable for the jail user, an "
      "OOM kill,\n"
      "the file-size limit, seccomp denials, refused forks, refused egress) "
      "is one\n"
      "'jcs: ' line on stderr each; --quiet silences them. --report - shares "
      "stderr\n"
      "with the program; --report-fd keeps them apart. With --tty, stdin is "
      "relayed to\n"
      "the program's terminal (raw mode when stdin is a terminal, restored at "
      "the end),\n"
      "and jcs's own notes and --report - follow the program's last output.\n"
      "\nexit status: the program's; 128+N if killed by signal N; 124 "
      "timeout;\n"
      "125 jail setup failed or invalid flags; 126 not executable; 127 not "
      "found.\n");
  return out;
}

}  // namespace jcs::jail
