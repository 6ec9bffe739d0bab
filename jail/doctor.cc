// Host probes for `jcs doctor`. Each probe tries the real operation (in a
// short-lived child when it needs new namespaces) instead of guessing from
// kernel versions, and says how to fix what is missing. Children are created
// with raw clone/clone3, run only async-signal-safe code, report {step, errno}
// through a pipe and are always reaped within a bounded wait.
#include "jail/doctor.h"

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
#include "jail/clone_args.h"
#include "jail/doctor_probe.h"
#include "jail/landlock.h"
#include "jail/procfs.h"
#include "jail/project_quota.h"
#include "nlohmann/json.hpp"

namespace jcs::jail {
namespace {

using doctor_probe::AppendCgroupLayers;
using doctor_probe::ErrnoText;
using doctor_probe::kAppArmorContainerHint;
using doctor_probe::kProcMountContainerHint;
using doctor_probe::kSeccompContainerHint;
using doctor_probe::ProbeCapabilities;
using doctor_probe::ReadSmallFile;
using doctor_probe::ReadTrimmed;
using doctor_probe::Row;

// Syscall numbers and flags newer than Debian 12's headers may know (x86_64
// numbering is shared by every architecture for these).
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

constexpr uint64_t kClonePidfd = 0x00001000;
constexpr unsigned kCloseRangeCloexec = 1U << 2;
constexpr unsigned kFsopenCloexec = 0x1;
constexpr unsigned kFsconfigCmdCreate = 6;
constexpr unsigned kFsmountCloexec = 0x1;
constexpr unsigned kMoveMountFEmptyPath = 0x4;
constexpr unsigned kOpenTreeClone = 1;

constexpr int kChildTimeoutMs = 3000;

// "name=value" for a sysctl file that exists, "" otherwise.
std::string SysctlText(absl::string_view name) {
  std::string path = absl::StrCat("/proc/sys/", name);
  for (size_t i = 10; i < path.size(); ++i) {
    if (path[i] == '.') path[i] = '/';
  }
  std::optional<std::string> value = ReadTrimmed(path);
  return value ? absl::StrCat(name, "=", *value) : "";
}

std::optional<long> SysctlValue(absl::string_view name) {
  std::string text = SysctlText(name);
  long value = 0;
  const size_t eq = text.find('=');
  if (eq == std::string::npos ||
      !absl::SimpleAtoi(text.substr(eq + 1), &value)) {
    return std::nullopt;
  }
  return value;
}

bool IsRoot() { return geteuid() == 0; }

// ----- children -----

struct ChildOutcome {
  int clone_errno = 0;  // clone itself failed
  bool timed_out = false;
  bool reaped = true;
  int status = 0;
  int step = 0;  // last step the child reached (its own numbering)
  int err = 0;   // errno of that step, 0 on success
  bool reported = false;
  bool ok() const {
    return clone_errno == 0 && !timed_out && reaped && reported && err == 0 &&
           WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
};

using ChildFn =
    int (*)(int* step);  // Returns 0 or an errno; async-signal-safe.

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits for `pid` up to `timeout_ms`, then SIGKILLs it and waits a bounded time
// again.
void WaitBounded(pid_t pid, int timeout_ms, ChildOutcome* out) {
  int64_t deadline = NowMs() + timeout_ms;
  bool killed = false;
  for (;;) {
    const pid_t r = waitpid(pid, &out->status, WNOHANG);
    if (r == pid) return;
    if (r < 0 && errno != EINTR) {
      out->reaped = false;  // ECHILD: SIGCHLD ignored by the embedding process,
                            // or reaped elsewhere
      return;
    }
    if (NowMs() >= deadline) {
      if (killed) {
        out->reaped = false;
        return;
      }
      out->timed_out = true;
      kill(pid, SIGKILL);
      killed = true;
      deadline = NowMs() + 2000;
    }
    const timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
}

// Runs `fn` in a child made by clone(flags | SIGCHLD) without a new stack (fork
// semantics).
ChildOutcome RunInChild(unsigned long flags, ChildFn fn) {
  ChildOutcome out;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    out.clone_errno = errno;
    return out;
  }
  const long pid =
      syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    int step = 0;
    const int err = fn(&step);
    const int msg[2] = {step, err};
    (void)!write(fds[1], msg, sizeof(msg));
    _exit(err == 0 ? 0 : 1);
  }
  const int clone_errno = errno;
  close(fds[1]);
  if (pid < 0) {
    out.clone_errno = clone_errno;
    close(fds[0]);
    return out;
  }
  WaitBounded(static_cast<pid_t>(pid), kChildTimeoutMs, &out);
  int msg[2];
  if (read(fds[0], msg, sizeof(msg)) == static_cast<ssize_t>(sizeof(msg))) {
    out.reported = true;
    out.step = msg[0];
    out.err = msg[1];
  }
  close(fds[0]);
  return out;
}

// Why a child probe failed, for the detail column.
std::string OutcomeText(const ChildOutcome& out,
                        const char* const* step_names) {
  if (out.clone_errno != 0)
    return absl::StrCat("clone failed: ", ErrnoText(out.clone_errno));
  if (out.timed_out)
    return absl::StrCat("probe child timed out after ", kChildTimeoutMs, " ms");
  if (!out.reaped) return "probe child could not be reaped (SIGCHLD ignored?)";
  if (!out.reported) {
    if (WIFSIGNALED(out.status)) {
      return absl::StrCat("probe child killed by signal ",
                          WTERMSIG(out.status));
    }
    return "probe child exited without a report";
  }
  if (out.err != 0) {
    return absl::StrCat(step_names != nullptr ? step_names[out.step] : "child",
                        " failed: ", ErrnoText(out.err));
  }
  return "ok";
}

int ChildNothing(int* step) { return 0; }

int MakeRootPrivate() {
  return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0
             ? 0
             : errno;
}

const char* const kMountApiSteps[] = {
    "mount(/, MS_REC|MS_PRIVATE)",
    "fsopen(\"tmpfs\")",
    "fsconfig(FSCONFIG_CMD_CREATE)",
    "fsmount",
    "move_mount",
    "open_tree(OPEN_TREE_CLONE)",
};

int ChildMountApi(int* step) {
  *step = 0;
  if (int err = MakeRootPrivate(); err != 0) return err;
  *step = 1;
  const int fs = static_cast<int>(syscall(SYS_fsopen, "tmpfs", kFsopenCloexec));
  if (fs < 0) return errno;
  *step = 2;
  if (syscall(SYS_fsconfig, fs, kFsconfigCmdCreate, nullptr, nullptr, 0) != 0)
    return errno;
  *step = 3;
  const int mnt =
      static_cast<int>(syscall(SYS_fsmount, fs, kFsmountCloexec, 0));
  if (mnt < 0) return errno;
  // Attach it in this child's private mount namespace only.
  const char* target = access("/tmp", F_OK) == 0 ? "/tmp" : "/";
  *step = 4;
  if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, target,
              kMoveMountFEmptyPath) != 0) {
    return errno;
  }
  *step = 5;
  const int tree = static_cast<int>(
      syscall(SYS_open_tree, AT_FDCWD, target, kOpenTreeClone | O_CLOEXEC));
  if (tree < 0) return errno;
  return 0;
}

const char* const kProcSteps[] = {"mount(/, MS_REC|MS_PRIVATE)",
                                  "mount(proc, /proc)",
                                  "getpid() == 1 in the new pid namespace"};

int ChildProcMount(int* step) {
  *step = 0;
  if (int err = MakeRootPrivate(); err != 0) return err;
  *step = 1;
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            nullptr) != 0) {
    return errno;
  }
  *step = 2;
  if (syscall(SYS_getpid) != 1) return ESRCH;
  return 0;
}

// ----- namespaces -----

LayerStatus ProbeUserNamespace() {
  LayerStatus s = Row("user_namespace");
  const ChildOutcome out = RunInChild(CLONE_NEWUSER, ChildNothing);
  s.available = out.ok();
  std::vector<std::string> parts = {
      absl::StrCat("clone(CLONE_NEWUSER): ", OutcomeText(out, nullptr))};
  for (const char* sysctl :
       {"user.max_user_namespaces", "kernel.unprivileged_userns_clone",
        "kernel.apparmor_restrict_unprivileged_userns"}) {
    std::string text = SysctlText(sysctl);
    if (!text.empty()) parts.push_back(text);
  }
  s.detail = absl::StrJoin(parts, "; ");
  if (s.available) return s;
  std::vector<std::string> fixes;
  if (SysctlValue("user.max_user_namespaces").value_or(1) == 0) {
    fixes.push_back("sysctl -w user.max_user_namespaces=65536");
  }
  if (!IsRoot() &&
      SysctlValue("kernel.unprivileged_userns_clone").value_or(1) == 0) {
    fixes.push_back(
        "sysctl -w kernel.unprivileged_userns_clone=1 (or run jcs as root)");
  }
  if (!IsRoot() &&
      SysctlValue("kernel.apparmor_restrict_unprivileged_userns").value_or(0) !=
          0) {
    fixes.push_back(
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an "
        "AppArmor profile "
        "granting 'userns,' to the jcs binary (or run jcs as root)");
  }
  if (out.clone_errno == EINVAL || out.clone_errno == ENOSYS) {
    fixes.push_back("build the kernel with CONFIG_USER_NS=y");
  }
  if (out.clone_errno == EPERM && fixes.empty()) {
    fixes.push_back(absl::StrCat(
        "user namespaces are blocked for this process (chroot, or a container "
        "seccomp profile): run jcs on the host as root; ",
        kSeccompContainerHint));
  }
  if (out.clone_errno == ENOSPC && fixes.empty()) {
    fixes.push_back(
        "raise user.max_user_namespaces (sysctl -w "
        "user.max_user_namespaces=65536)");
  }
  if (fixes.empty())
    fixes.push_back(
        "enable user namespaces (CONFIG_USER_NS=y) and run as root");
  s.fix = absl::StrJoin(fixes, "; ");
  return s;
}

struct NamespaceKind {
  const char* layer;
  unsigned long flag;
  const char* flag_name;
  const char* sysctl;  // user.max_*_namespaces
  const char* config;  // kernel option
};

LayerStatus ProbeNamespace(const NamespaceKind& kind, bool userns_ok) {
  LayerStatus s = Row(kind.layer);
  const ChildOutcome out = RunInChild(CLONE_NEWUSER | kind.flag, ChildNothing);
  s.available = out.ok();
  s.detail = absl::StrCat("clone(CLONE_NEWUSER|", kind.flag_name,
                          "): ", OutcomeText(out, nullptr));
  std::string sysctl = SysctlText(kind.sysctl);
  if (!sysctl.empty()) absl::StrAppend(&s.detail, "; ", sysctl);
  if (s.available) return s;
  if (!userns_ok) {
    s.fix = "needs user namespaces first: see the user_namespace fix";
  } else if (out.clone_errno == ENOSPC ||
             SysctlValue(kind.sysctl).value_or(1) == 0) {
    s.fix = absl::StrCat("raise the limit: sysctl -w ", kind.sysctl, "=65536");
  } else if (out.clone_errno == EINVAL) {
    s.fix = absl::StrCat("build the kernel with ", kind.config, "=y");
  } else if (out.clone_errno == EPERM) {
    s.fix = absl::StrCat("creating ", kind.flag_name,
                         " is blocked (container seccomp profile or LSM "
                         "policy): run jcs as root on the host; ",
                         kSeccompContainerHint, "; kernel needs ", kind.config,
                         "=y");
  } else {
    s.fix = absl::StrCat("kernel needs ", kind.config, "=y; run jcs as root");
  }
  return s;
}

// ----- seccomp -----

LayerStatus ProbeSeccomp() {
  LayerStatus s = Row("seccomp");
  const int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
  const int mode_errno = errno;
  uint32_t action = SECCOMP_RET_KILL_PROCESS;
  const long avail = syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
  const int avail_errno = errno;
  std::vector<std::string> parts;
  if (mode < 0) {
    parts.push_back(
        absl::StrCat("prctl(PR_GET_SECCOMP) failed: ", ErrnoText(mode_errno)));
  } else {
    parts.push_back(absl::StrCat(
        "prctl(PR_GET_SECCOMP)=", mode,
        mode == 0 ? " (this process is unfiltered)"
                  : " (this process is already filtered; filters stack)"));
  }
  parts.push_back(avail == 0
                      ? "SECCOMP_RET_KILL_PROCESS available"
                      : absl::StrCat("SECCOMP_RET_KILL_PROCESS unavailable: ",
                                     ErrnoText(avail_errno)));
  if (std::optional<std::string> actions =
          ReadTrimmed("/proc/sys/kernel/seccomp/actions_avail")) {
    parts.push_back(absl::StrCat("actions_avail: ", *actions));
  }
  s.detail = absl::StrJoin(parts, "; ");
  s.available = mode >= 0 && avail == 0;
  if (!s.available) {
    s.fix = (mode < 0 || avail_errno == EINVAL)
                ? "build the kernel with CONFIG_SECCOMP=y and "
                  "CONFIG_SECCOMP_FILTER=y (Linux >= "
                  "4.14 for SECCOMP_RET_KILL_PROCESS)"
                : absl::StrCat(
                      "the seccomp(2) syscall is blocked (container seccomp "
                      "profile): allow seccomp in the profile; ",
                      kSeccompContainerHint);
  }
  return s;
}

LayerStatus ProbeSeccompUserNotification() {
  LayerStatus s = Row("seccomp_user_notification");
  seccomp_notif_sizes sizes = {};
  const long rc_sizes =
      syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes);
  const int sizes_errno = errno;
  uint32_t action = SECCOMP_RET_USER_NOTIF;
  const long rc_avail =
      syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
  const int avail_errno = errno;
  std::vector<std::string> parts;
  parts.push_back(
      rc_sizes == 0
          ? absl::StrCat("SECCOMP_GET_NOTIF_SIZES: notif=", sizes.seccomp_notif,
                         " resp=", sizes.seccomp_notif_resp,
                         " data=", sizes.seccomp_data, " bytes")
          : absl::StrCat("SECCOMP_GET_NOTIF_SIZES failed: ",
                         ErrnoText(sizes_errno)));
  parts.push_back(rc_avail == 0
                      ? "SECCOMP_RET_USER_NOTIF available"
                      : absl::StrCat("SECCOMP_RET_USER_NOTIF unavailable: ",
                                     ErrnoText(avail_errno)));
  s.detail = absl::StrJoin(parts, "; ");
  s.available = rc_sizes == 0 && rc_avail == 0;
  if (!s.available) {
    s.fix =
        "needs Linux >= 5.0 with CONFIG_SECCOMP_FILTER=y (5.9+ for "
        "SECCOMP_IOCTL_NOTIF_ADDFD); "
        "if seccomp(2) is blocked by a container profile, allow it";
  }
  return s;
}

// ----- landlock -----

LayerStatus ProbeLandlock() {
  LayerStatus s = Row("landlock");
  const int abi = LandlockAbi();
  s.available = abi > 0;
  if (s.available) {
    s.detail = absl::StrCat("ABI ", abi);
    if (abi >= 6) {
      absl::StrAppend(
          &s.detail,
          " (filesystem rules, truncate, ioctl on devices, scoped signals and "
          "abstract unix sockets)");
    } else if (abi >= 3) {
      absl::StrAppend(&s.detail,
                      " (filesystem rules; no signal/abstract socket scoping "
                      "before ABI 6)");
    } else {
      absl::StrAppend(
          &s.detail,
          " (filesystem rules only; no truncate control before ABI 3)");
    }
    return s;
  }
  errno = 0;
  syscall(SYS_landlock_create_ruleset, nullptr, 0, 1U);
  const int err = errno;
  s.detail =
      absl::StrCat("landlock_create_ruleset(VERSION) failed: ", ErrnoText(err));
  if (std::optional<std::string> lsm =
          ReadTrimmed("/sys/kernel/security/lsm")) {
    absl::StrAppend(&s.detail, "; active LSMs: ", *lsm);
  }
  if (err == EOPNOTSUPP) {
    s.fix =
        "Landlock is built but not enabled: add it to the lsm= kernel "
        "parameter (e.g. "
        "lsm=landlock,lockdown,yama,integrity,apparmor,bpf) and reboot";
  } else if (err == ENOSYS) {
    s.fix =
        "needs Linux >= 5.13 built with CONFIG_SECURITY_LANDLOCK=y (and "
        "landlock in lsm=)";
  } else {
    s.fix = "allow landlock_create_ruleset in the container's seccomp profile";
  }
  return s;
}

// ----- process and mount APIs -----

LayerStatus ProbePidfd() {
  LayerStatus s = Row("pidfd");
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  const int err = errno;
  s.available = fd >= 0;
  if (fd >= 0) close(fd);
  s.detail = s.available
                 ? "pidfd_open(self): ok"
                 : absl::StrCat("pidfd_open(self) failed: ", ErrnoText(err));
  if (!s.available) {
    s.fix = err == ENOSYS
                ? "needs Linux >= 5.3 (or allow pidfd_open in the container's "
                  "seccomp "
                  "profile)"
                : "allow pidfd_open in the seccomp profile / LSM policy";
  }
  return s;
}

LayerStatus ProbeClone3() {
  LayerStatus s = Row("clone3");
  int pidfd = -1;
  CloneArgs args = {};
  args.flags = kClonePidfd;
  args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  // The first layout: the probe asks whether this kernel has clone3 at all.
  const long pid = syscall(SYS_clone3, &args, kCloneArgsSizeVer0);
  if (pid == 0) _exit(0);
  const int err = errno;
  if (pid < 0) {
    s.detail = absl::StrCat("clone3(CLONE_PIDFD) failed: ", ErrnoText(err));
    s.fix =
        err == ENOSYS
            ? absl::StrCat(
                  "needs Linux >= 5.3 (5.7 for CLONE_INTO_CGROUP); "
                  "container runtimes' seccomp profiles often return "
                  "ENOSYS for clone3: allow it; ",
                  kSeccompContainerHint)
            : absl::StrCat("allow clone3 in the seccomp profile / LSM policy; ",
                           kSeccompContainerHint);
    return s;
  }
  ChildOutcome out;
  if (pidfd >= 0) {
    // The pidfd becomes readable when the child exits.
    pollfd pfd = {pidfd, POLLIN, 0};
    (void)poll(&pfd, 1, kChildTimeoutMs);
  }
  WaitBounded(static_cast<pid_t>(pid), kChildTimeoutMs, &out);
  if (pidfd >= 0) close(pidfd);
  s.available =
      pidfd >= 0 && out.reaped && !out.timed_out && WIFEXITED(out.status);
  s.detail = pidfd >= 0
                 ? "clone3(CLONE_PIDFD): ok, child reaped through its pidfd"
                 : "clone3 succeeded but returned no pidfd";
  if (!s.available) {
    s.fix = "needs Linux >= 5.3 with pidfd support";
    if (out.timed_out) s.detail = "clone3 child did not exit in time";
  }
  return s;
}

LayerStatus ProbeCloseRange() {
  LayerStatus s = Row("close_range");
  const int fd =
      open("/dev/null", O_RDONLY);  // No O_CLOEXEC: the flag test sets it.
  if (fd < 0) {
    s.detail = absl::StrCat("cannot open /dev/null: ", ErrnoText(errno));
    s.fix = "provide /dev/null";
    return s;
  }
  const long rc_cloexec = syscall(SYS_close_range, fd, fd, kCloseRangeCloexec);
  const int cloexec_errno = errno;
  const bool cloexec_ok =
      rc_cloexec == 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
  const long rc = syscall(SYS_close_range, fd, fd, 0);
  const int err = errno;
  const bool closed = rc == 0 && fcntl(fd, F_GETFD) < 0 && errno == EBADF;
  if (rc != 0) close(fd);
  s.available = closed;
  s.detail = closed ? "close_range: ok"
                    : absl::StrCat("close_range failed: ", ErrnoText(err));
  absl::StrAppend(&s.detail, "; CLOSE_RANGE_CLOEXEC: ",
                  cloexec_ok ? "ok"
                             : (rc_cloexec == 0 ? "flag not set"
                                                : ErrnoText(cloexec_errno)));
  if (!s.available) {
    s.fix =
        "needs Linux >= 5.9 (5.11 for CLOSE_RANGE_CLOEXEC), or allow "
        "close_range in the "
        "container's seccomp profile";
  }
  return s;
}

LayerStatus ProbeMountApi(bool userns_ok) {
  LayerStatus s = Row("new_mount_api");
  const ChildOutcome out =
      RunInChild(CLONE_NEWUSER | CLONE_NEWNS, ChildMountApi);
  s.available = out.ok();
  s.detail = s.available ? "fsopen(tmpfs)/fsconfig/fsmount/move_mount/"
                           "open_tree(OPEN_TREE_CLONE) in a new "
                           "user+mount namespace: ok"
                         : absl::StrCat("in a new user+mount namespace: ",
                                        OutcomeText(out, kMountApiSteps));
  if (!s.available) {
    if (!userns_ok) {
      s.fix = "needs user namespaces first: see the user_namespace fix";
    } else if (out.reported && out.err == ENOSYS) {
      s.fix =
          "needs Linux >= 5.2 (fsopen, fsmount, move_mount, open_tree), or "
          "allow these "
          "syscalls in the container's seccomp profile";
    } else if (out.reported && (out.err == EACCES || out.err == EPERM)) {
      // An LSM (AppArmor's container profile denies mount) or a seccomp
      // profile refused a mount call inside the probe's own namespaces.
      s.fix = absl::StrCat(
          "mounting inside the jail's own namespaces was refused (AppArmor "
          "or seccomp): ",
          kAppArmorContainerHint, "; ", kSeccompContainerHint);
    } else {
      s.fix =
          "allow fsopen/fsconfig/fsmount/move_mount/open_tree (seccomp "
          "profile, LSM policy) "
          "and run on Linux >= 5.2";
    }
  }
  return s;
}

LayerStatus ProbeProcMount(bool userns_ok) {
  LayerStatus s = Row("proc_in_pid_namespace");
  const ChildOutcome out =
      RunInChild(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID, ChildProcMount);
  s.available = out.ok();
  s.detail = s.available ? "mount(proc) in a new user+mount+pid namespace: ok"
                         : absl::StrCat("in a new user+mount+pid namespace: ",
                                        OutcomeText(out, kProcSteps));
  if (!s.available) {
    if (!userns_ok) {
      s.fix = "needs user namespaces first: see the user_namespace fix";
    } else if (out.reported && out.step == 1 && out.err == EPERM) {
      s.fix = absl::StrCat(
          "the kernel refuses a new proc mount while the visible /proc is "
          "partly masked or over-mounted (mount_too_revealing): run jcs where "
          "/proc is fully visible; ",
          kProcMountContainerHint);
    } else if (out.reported && out.err == EACCES) {
      s.fix =
          absl::StrCat("mount was denied by an LSM: ", kAppArmorContainerHint);
    } else {
      s.fix =
          "kernel needs CONFIG_PID_NS=y and CONFIG_PROC_FS=y; run jcs as root";
    }
  }
  return s;
}

// /proc must be the one of this process's pid namespace: jails and cgroup
// owners are addressed as /proc/<pid>.
LayerStatus ProbeProcfs() {
  LayerStatus s = Row("procfs");
  const absl::Status own = CheckOwnProcfs();
  s.available = own.ok();
  if (s.available) {
    s.detail = absl::StrCat("/proc/self is this process (pid ", getpid(),
                            "): /proc belongs to its pid namespace");
    return s;
  }
  absl::string_view detail = own.message();
  absl::ConsumePrefix(&detail, "procfs: ");
  absl::ConsumeSuffix(&detail, absl::StrCat(" (fix: ", kProcfsFix, ")"));
  s.detail = std::string(detail);
  s.fix = kProcfsFix;
  return s;
}

LayerStatus ProbeIoUring() {
  LayerStatus s = Row("io_uring");
  io_uring_params params = {};
  const int fd = static_cast<int>(syscall(SYS_io_uring_setup, 1, &params));
  const int err = errno;
  s.available = fd >= 0;
  if (fd >= 0) close(fd);
  s.detail = s.available
                 ? absl::StrCat("io_uring_setup(1): ok, features 0x",
                                absl::Hex(params.features))
                 : absl::StrCat("io_uring_setup(1) failed: ", ErrnoText(err));
  for (const char* sysctl :
       {"kernel.io_uring_disabled", "kernel.io_uring_group"}) {
    std::string text = SysctlText(sysctl);
    if (!text.empty()) absl::StrAppend(&s.detail, "; ", text);
  }
  if (!s.available) {
    const long disabled = SysctlValue("kernel.io_uring_disabled").value_or(0);
    if (disabled == 2) {
      s.fix = "sysctl -w kernel.io_uring_disabled=0";
    } else if (disabled == 1) {
      s.fix =
          "sysctl -w kernel.io_uring_disabled=0, or add jcs's user to the "
          "group in "
          "kernel.io_uring_group";
    } else if (err == ENOSYS) {
      s.fix =
          "build the kernel with CONFIG_IO_URING=y (Linux >= 5.1; jcs wants >= "
          "5.19)";
    } else {
      s.fix = absl::StrCat(
          "allow io_uring_setup/io_uring_enter/io_uring_register in the "
          "container's seccomp profile (Docker blocks them by default); ",
          kSeccompContainerHint);
    }
  }
  return s;
}

std::string SanitizeForTable(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

}  // namespace

std::vector<LayerStatus> ProbeHostLayers() {
  std::vector<LayerStatus> layers;
  layers.push_back(ProbeCapabilities());
  layers.push_back(ProbeUserNamespace());
  const bool userns_ok = layers.back().available;
  static const NamespaceKind kKinds[] = {
      {"mount_namespace", CLONE_NEWNS, "CLONE_NEWNS", "user.max_mnt_namespaces",
       "CONFIG_NAMESPACES"},
      {"pid_namespace", CLONE_NEWPID, "CLONE_NEWPID", "user.max_pid_namespaces",
       "CONFIG_PID_NS"},
      {"network_namespace", CLONE_NEWNET, "CLONE_NEWNET",
       "user.max_net_namespaces", "CONFIG_NET_NS"},
      {"ipc_namespace", CLONE_NEWIPC, "CLONE_NEWIPC", "user.max_ipc_namespaces",
       "CONFIG_IPC_NS"},
      {"uts_namespace", CLONE_NEWUTS, "CLONE_NEWUTS", "user.max_uts_namespaces",
       "CONFIG_UTS_NS"},
      {"cgroup_namespace", CLONE_NEWCGROUP, "CLONE_NEWCGROUP",
       "user.max_cgroup_namespaces", "CONFIG_CGROUPS"},
  };
  for (const NamespaceKind& kind : kKinds)
    layers.push_back(ProbeNamespace(kind, userns_ok));

  layers.push_back(ProbeSeccomp());
  layers.push_back(ProbeSeccompUserNotification());
  layers.push_back(ProbeLandlock());

  AppendCgroupLayers(&layers);

  layers.push_back(ProbePidfd());
  layers.push_back(ProbeClone3());
  layers.push_back(ProbeCloseRange());
  layers.push_back(ProbeMountApi(userns_ok));
  layers.push_back(ProbeProcfs());
  layers.push_back(ProbeProcMount(userns_ok));
  layers.push_back(ProbeIoUring());
  return layers;
}

// project_quota: the probe lives in jail/project_quota.cc.
LayerStatus ProbeProjectQuotaLayer(const std::string& dir) {
  const ProjectQuotaProbe probe = ProbeProjectQuota(dir);
  LayerStatus s = Row("project_quota");
  s.available = probe.available;
  s.detail = probe.detail;
  s.fix = probe.fix;
  return s;
}

std::string FormatLayerTable(const std::vector<LayerStatus>& layers) {
  size_t name_width = 0;
  for (const LayerStatus& layer : layers)
    name_width = std::max(name_width, layer.name.size());
  std::string out;
  for (const LayerStatus& layer : layers) {
    std::string status = layer.available ? "ok" : "MISSING";
    status.resize(7, ' ');
    std::string name = SanitizeForTable(layer.name);
    name.resize(name_width, ' ');
    absl::StrAppend(&out, status, "  ", name, "  ",
                    SanitizeForTable(layer.detail));
    if (!layer.available && !layer.fix.empty()) {
      absl::StrAppend(&out, "  fix: ", SanitizeForTable(layer.fix));
    }
    out.push_back('\n');
  }
  return out;
}

std::string FormatLayerJson(const std::vector<LayerStatus>& layers) {
  nlohmann::json array = nlohmann::json::array();
  for (const LayerStatus& layer : layers) {
    array.push_back({{"name", layer.name},
                     {"available", layer.available},
                     {"detail", layer.detail},
                     {"fix", layer.fix}});
  }
  // Details quote kernel files: replace invalid UTF-8 instead of throwing.
  return array.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

LayerStatus RootlessRunLayer(const std::vector<LayerStatus>& layers,
                             unsigned uid) {
  const auto available = [&layers](absl::string_view name) {
    for (const LayerStatus& layer : layers) {
      if (layer.name == name) return layer.available;
    }
    return false;
  };
  std::vector<std::string> enforced, missing;
  for (const char* layer :
       {"user_namespace", "pid_namespace", "mount_namespace",
        "network_namespace", "ipc_namespace", "uts_namespace",
        "cgroup_namespace", "new_mount_api", "procfs", "proc_in_pid_namespace",
        "seccomp", "seccomp_user_notification", "landlock"}) {
    (available(layer) ? enforced : missing).push_back(layer);
  }
  const bool limits = available("cgroup_v2") && available("cgroup_v2.memory") &&
                      available("cgroup_v2.pids");
  LayerStatus s;
  s.name = "rootless_run";
  // Landlock is best-effort by default: its absence alone does not stop a
  // run.
  const bool essential_missing =
      missing.size() > 1 || (missing.size() == 1 && missing[0] != "landlock");
  s.available = limits && !essential_missing;
  s.detail = absl::StrCat(
      "not root: jcs run maps only uid ", uid, " (itself); without privilege: ",
      enforced.empty() ? "nothing" : absl::StrJoin(enforced, " "),
      ", the egress proxy, rlimits",
      missing.empty()
          ? ""
          : absl::StrCat("; missing: ", absl::StrJoin(missing, " ")),
      "; cgroup limits: ",
      limits ? "from the delegated cgroup v2 subtree"
             : "none (no delegated cgroup v2 subtree with memory and pids): "
               "the default jail is refused, --memory unlimited --pids "
               "unlimited runs without cgroup limits");
  if (!s.available) {
    s.fix = limits ? "see the missing layers above"
                   : "run jcs in a delegated cgroup (systemd-run --user "
                     "--scope -p Delegate=yes jcs ...), pass --memory "
                     "unlimited --pids unlimited, or run jcs as root";
  }
  return s;
}

}  // namespace jcs::jail
