// `jcs doctor`'s cgroup probes: which hierarchies are mounted, which
// controllers the daemon can use and whether it can create a child cgroup.
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "jail/doctor_probe.h"

namespace jcs::jail::doctor_probe {
namespace {

// ----- cgroups -----

struct MountEntry {
  std::string root;
  std::string mount_point;
  std::string fstype;
  std::vector<std::string> super_options;
};

// Undoes mountinfo's octal escapes (\040 for space, ...).
std::string Unescape(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] >= '0' &&
        in[i + 1] <= '3' && in[i + 2] >= '0' && in[i + 2] <= '7' &&
        in[i + 3] >= '0' && in[i + 3] <= '7') {
      out.push_back(static_cast<char>(
          (in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::vector<MountEntry> ReadMounts() {
  std::vector<MountEntry> mounts;
  std::optional<std::string> text = ReadSmallFile("/proc/self/mountinfo");
  if (!text) return mounts;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    size_t sep = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        sep = i;
        break;
      }
    }
    if (sep == 0 || f.size() < sep + 4) continue;
    MountEntry m;
    m.root = Unescape(f[3]);
    m.mount_point = Unescape(f[4]);
    m.fstype = std::string(f[sep + 1]);
    m.super_options = absl::StrSplit(f[sep + 3], ',');
    mounts.push_back(std::move(m));
  }
  return mounts;
}

bool HasOption(const MountEntry& m, absl::string_view option) {
  for (const std::string& o : m.super_options) {
    if (o == option) return true;
  }
  return false;
}

// The cgroup path of this process in the v2 hierarchy ("0::/path") or for a v1
// controller.
std::string OwnCgroupPath(absl::string_view controller) {
  std::optional<std::string> text = ReadSmallFile("/proc/self/cgroup");
  if (!text) return "/";
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (controller.empty()) {
      if (f[0] == "0" && f[1].empty()) return std::string(f[2]);
      continue;
    }
    for (absl::string_view c : absl::StrSplit(f[1], ',')) {
      if (c == controller) return std::string(f[2]);
    }
  }
  return "/";
}

// Directory of `cgroup_path` under a mount of the hierarchy whose root is
// `mount_root`.
std::string CgroupDir(const MountEntry& m, const std::string& cgroup_path) {
  absl::string_view rel = cgroup_path;
  if (m.root != "/" && absl::StartsWith(rel, m.root))
    rel.remove_prefix(m.root.size());
  if (rel == "/" || rel.empty()) return m.mount_point;
  return absl::StrCat(m.mount_point, rel);
}

std::atomic<int> probe_counter{0};

// mkdir + rmdir of a uniquely named child cgroup; returns 0 or errno.
// `check_file`, when set, is looked for inside the new cgroup and `*has_file`
// reports whether it existed.
int TryCreateCgroup(const std::string& parent, const char* check_file,
                    bool* has_file) {
  const std::string dir = absl::StrCat(parent, "/jcs-doctor-", getpid(), "-",
                                       probe_counter.fetch_add(1));
  if (mkdir(dir.c_str(), 0755) != 0) return errno;
  if (check_file != nullptr) {
    *has_file = access(absl::StrCat(dir, "/", check_file).c_str(), F_OK) == 0;
  }
  int err = 0;
  for (int attempt = 0; rmdir(dir.c_str()) != 0; ++attempt) {
    err = errno;
    if (err != EBUSY || attempt >= 50)
      break;  // A just-created cgroup may be briefly busy.
    const timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, nullptr);
    err = 0;
  }
  return err;
}

// /proc/cgroups: controller -> (v1 hierarchy id, enabled).
struct ControllerInfo {
  bool known = false;
  int hierarchy = 0;
  bool enabled = false;
};

ControllerInfo ProcCgroups(absl::string_view controller) {
  ControllerInfo info;
  std::optional<std::string> text = ReadSmallFile("/proc/cgroups");
  if (!text) return info;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 4 || f[0] != controller) continue;
    info.known = true;
    (void)absl::SimpleAtoi(f[1], &info.hierarchy);
    info.enabled = f[3] == "1";
  }
  return info;
}

const char* ControllerConfig(absl::string_view controller) {
  if (controller == "memory") return "CONFIG_MEMCG";
  if (controller == "pids") return "CONFIG_CGROUP_PIDS";
  if (controller == "cpu")
    return "CONFIG_CGROUP_SCHED and CONFIG_CFS_BANDWIDTH";
  if (controller == "freezer") return "CONFIG_CGROUP_FREEZER";
  return "the controller's kernel option";
}

std::string ListOrNone(const std::string& space_separated) {
  return space_separated.empty() ? "(none)" : space_separated;
}

struct CgroupV2View {
  const MountEntry* mount = nullptr;
  std::string own_dir;
  std::string root_controllers;
  std::string own_controllers;
};

LayerStatus ProbeCgroupV2(const CgroupV2View& v2) {
  LayerStatus s = Row("cgroup_v2");
  if (v2.mount == nullptr) {
    s.detail = "no cgroup2 mount in /proc/self/mountinfo";
    s.fix =
        "mount the unified hierarchy: mount -t cgroup2 none /sys/fs/cgroup (or "
        "/sys/fs/cgroup/unified on a hybrid host), or boot with "
        "systemd.unified_cgroup_hierarchy=1";
    return s;
  }
  std::vector<std::string> parts;
  parts.push_back(absl::StrCat("mounted at ", v2.mount->mount_point));
  parts.push_back(absl::StrCat("own cgroup ", v2.own_dir));
  parts.push_back(
      absl::StrCat("controllers: ", ListOrNone(v2.root_controllers)));
  if (v2.own_dir != v2.mount->mount_point) {
    parts.push_back(absl::StrCat("own cgroup controllers: ",
                                 ListOrNone(v2.own_controllers)));
  }
  // cgroup.kill exists in every non-root cgroup on Linux >= 5.14.
  bool has_kill =
      access(absl::StrCat(v2.own_dir, "/cgroup.kill").c_str(), F_OK) == 0;
  bool probe_has_kill = false;
  const int mkdir_err =
      TryCreateCgroup(v2.own_dir, "cgroup.kill", &probe_has_kill);
  has_kill = has_kill || probe_has_kill;
  parts.push_back(mkdir_err == 0 ? "child cgroups: can create"
                                 : absl::StrCat("child cgroups: mkdir failed: ",
                                                ErrnoText(mkdir_err)));
  parts.push_back(absl::StrCat("cgroup.kill: ", has_kill         ? "present"
                                                : mkdir_err == 0 ? "absent"
                                                                 : "unknown"));
  s.detail = absl::StrJoin(parts, "; ");
  s.available = mkdir_err == 0;
  if (!s.available) {
    s.fix = mkdir_err == EROFS
                ? absl::StrCat(
                      "the cgroup2 mount is read-only: mount -o remount,rw ",
                      v2.mount->mount_point,
                      " (Bazel's sandbox does this: run jail tests with "
                      "tags=[\"local\"])")
                : "run jcs as root, or delegate a cgroup subtree to its user "
                  "(systemd "
                  "Delegate=yes / chown the cgroup directory)";
  } else if (!has_kill) {
    absl::StrAppend(&s.detail, " (no atomic cgroup.kill: needs Linux >= 5.14)");
  }
  return s;
}

LayerStatus ProbeCgroupV2Controller(const CgroupV2View& v2,
                                    const MountEntry* v1_mount,
                                    absl::string_view controller) {
  LayerStatus s = Row(absl::StrCat("cgroup_v2.", controller));
  const ControllerInfo info = ProcCgroups(controller);
  if (v2.mount == nullptr) {
    s.detail = "no cgroup2 mount";
    s.fix = absl::StrCat(
        "mount cgroup2 with the ", controller,
        " controller enabled (mount -t cgroup2 none /sys/fs/cgroup; echo +",
        controller, " > /sys/fs/cgroup/cgroup.subtree_control)");
    return s;
  }
  auto has = [&](const std::string& list) {
    for (absl::string_view c : absl::StrSplit(list, ' ', absl::SkipEmpty())) {
      if (c == controller) return true;
    }
    return false;
  };
  const bool in_root = has(v2.root_controllers);
  const bool in_own = has(v2.own_controllers);
  s.available = in_root || in_own;
  if (s.available) {
    s.detail = absl::StrCat(controller, " in cgroup.controllers of ",
                            in_own ? v2.own_dir : v2.mount->mount_point);
    if (!in_own)
      absl::StrAppend(&s.detail, " (not delegated to own cgroup ", v2.own_dir,
                      ")");
    return s;
  }
  s.detail = absl::StrCat(controller, " not in cgroup.controllers of ",
                          v2.mount->mount_point, " (",
                          ListOrNone(v2.root_controllers), ")");
  if (!info.known) {
    absl::StrAppend(&s.detail, "; not listed in /proc/cgroups");
    s.fix = absl::StrCat("build the kernel with ", ControllerConfig(controller),
                         "=y");
  } else if (!info.enabled) {
    absl::StrAppend(&s.detail, "; disabled in /proc/cgroups");
    s.fix = absl::StrCat("remove cgroup_disable=", controller,
                         " from the kernel command line (or add cgroup_enable=",
                         controller, ")");
  } else if (info.hierarchy != 0) {
    absl::StrAppend(
        &s.detail, "; bound to cgroup v1 hierarchy ", info.hierarchy,
        v1_mount != nullptr ? absl::StrCat(" at ", v1_mount->mount_point) : "");
    s.fix = absl::StrCat(
        "the ", controller,
        " controller is attached to cgroup v1: boot with "
        "systemd.unified_cgroup_hierarchy=1 "
        "(or cgroup_no_v1=",
        controller,
        ") so it moves to cgroup2, then mount cgroup2 with it enabled (echo +",
        controller,
        " > <cgroup2 root>/cgroup.subtree_control); until then jcs uses "
        "cgroup_v1.",
        controller);
  } else {
    s.fix = absl::StrCat(
        "enable it: echo +", controller, " > ", v2.mount->mount_point,
        "/cgroup.subtree_control (and in every ancestor of the jcs cgroup)");
  }
  return s;
}

LayerStatus ProbeCgroupV1Controller(const MountEntry* mount,
                                    absl::string_view controller) {
  LayerStatus s = Row(absl::StrCat("cgroup_v1.", controller));
  if (mount == nullptr) {
    const ControllerInfo info = ProcCgroups(controller);
    s.detail =
        absl::StrCat("no cgroup v1 hierarchy with ", controller, " is mounted");
    if (info.known && info.hierarchy == 0) {
      absl::StrAppend(&s.detail,
                      " (the controller is on cgroup2, see cgroup_v2.",
                      controller, ")");
    }
    s.fix = absl::StrCat(
        "mount it: mkdir -p /sys/fs/cgroup/", controller,
        " && mount -t cgroup -o ", controller, " cgroup /sys/fs/cgroup/",
        controller, " (only when the controller is not in use by cgroup2)");
    if (!info.known) {
      absl::StrAppend(&s.fix, "; the kernel needs ",
                      ControllerConfig(controller), "=y");
    }
    return s;
  }
  const int err = TryCreateCgroup(mount->mount_point, nullptr, nullptr);
  s.available = err == 0;
  s.detail = absl::StrCat(
      "mounted at ", mount->mount_point, " (",
      absl::StrJoin(mount->super_options, ","), "); own cgroup ",
      OwnCgroupPath(controller),
      "; mkdir+rmdir of a probe cgroup: ", err == 0 ? "ok" : ErrnoText(err));
  if (!s.available) {
    s.fix =
        err == EROFS
            ? absl::StrCat("the hierarchy is read-only: mount -o remount,rw ",
                           mount->mount_point)
            : absl::StrCat("run jcs as root, or chown -R the jcs user ",
                           mount->mount_point, " (delegation)");
  }
  return s;
}

}  // namespace

void AppendCgroupLayers(std::vector<LayerStatus>* layers_out) {
  std::vector<LayerStatus>& layers = *layers_out;
  const std::vector<MountEntry> mounts = ReadMounts();
  CgroupV2View v2;
  for (const MountEntry& m : mounts) {
    if (m.fstype == "cgroup2") {
      v2.mount = &m;
      break;
    }
  }
  if (v2.mount != nullptr) {
    v2.own_dir = CgroupDir(*v2.mount, OwnCgroupPath(""));
    v2.root_controllers =
        ReadTrimmed(absl::StrCat(v2.mount->mount_point, "/cgroup.controllers"))
            .value_or("");
    v2.own_controllers =
        ReadTrimmed(absl::StrCat(v2.own_dir, "/cgroup.controllers"))
            .value_or("");
  }
  auto v1_mount = [&](absl::string_view controller) -> const MountEntry* {
    for (const MountEntry& m : mounts) {
      if (m.fstype == "cgroup" && HasOption(m, controller)) return &m;
    }
    return nullptr;
  };
  layers.push_back(ProbeCgroupV2(v2));
  for (const char* controller : {"memory", "pids", "cpu"}) {
    layers.push_back(
        ProbeCgroupV2Controller(v2, v1_mount(controller), controller));
  }
  for (const char* controller : {"memory", "pids", "cpu", "freezer"}) {
    layers.push_back(ProbeCgroupV1Controller(v1_mount(controller), controller));
  }
}

}  // namespace jcs::jail::doctor_probe
