// Building one jail run (JailRun::Impl, run_impl.h): its cgroup, the clone
// of the init (directly, or by the zygote for a warm jail) and the init's
// uid/gid maps, up to the point where the child may go on.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "jail/cgroup.h"
#include "jail/child.h"
#include "jail/child_context.h"
#include "jail/procfs.h"
#include "jail/run_impl.h"
#include "jail/runner.h"
#include "jail/seccomp_policy.h"
#include "jail/seccomp_precompiled.h"
#include "jail/sync_protocol.h"
#include "jail/zygote.h"

namespace jcs::jail {

namespace {

std::string NamespaceFix(int err) {
  switch (err) {
    case EPERM:
      return "fix: run jcs as root; if it is root, user namespaces are "
             "restricted (check "
             "sysctl kernel.apparmor_restrict_unprivileged_userns, the "
             "container's seccomp "
             "profile, or SELinux)";
    case ENOSPC:
    case EUSERS:
      return "fix: raise sysctl user.max_user_namespaces (and "
             "max_pid/net/mnt_namespaces)";
    case EINVAL:
      return "fix: the kernel lacks a namespace kind (CONFIG_USER_NS, "
             "CONFIG_PID_NS, CONFIG_NET_NS, "
             "...) or clone3 (Linux 5.3+); see jcs doctor";
    default:
      return "fix: see jcs doctor";
  }
}

// Writes one file of the process whose /proc directory is `proc_dir`.
absl::Status WriteProcFile(int proc_dir, const char* name,
                           const std::string& content) {
  const int fd = openat(proc_dir, name, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open /proc/<init>/", name, ": ", ErrnoText(errno)));
  }
  const ssize_t n = write(fd, content.data(), content.size());
  const int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(content.size())) {
    return absl::InternalError(
        absl::StrCat("write /proc/<init>/", name, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

CgroupOptions CgroupOptionsFor(const proto::JailSpec& spec) {
  CgroupOptions options;
  options.parent = spec.cgroup_parent();
  options.limits.memory_bytes = spec.memory_bytes();
  options.limits.pids = spec.pids();
  options.limits.cpus = spec.has_cpus() ? spec.cpus() : 0;
  return options;
}

}  // namespace

bool JailRun::Impl::PrepareTty() {
  if (warm_) {
    SetupError("tty: a warm jail cannot take a terminal");
    return false;
  }
  // Only this one slave node: never the host's /dev/pts or /dev/ptmx, which
  // would reach every other terminal of the host.
  for (const std::string& path : {tty_, std::string("/dev/tty")}) {
    struct stat st;
    if (!absl::StartsWith(path, "/dev/") || stat(path.c_str(), &st) != 0 ||
        !S_ISCHR(st.st_mode)) {
      SetupError(
          absl::StrCat("tty: ", path, " is missing or not a character device"));
      return false;
    }
    ChildBind bind;
    bind.source = path;
    bind.target = path.substr(1);
    bind.read_only = false;
    bind.is_dir = false;
    bind.device = true;
    bind.check_identity = true;
    bind.dev = st.st_dev;
    bind.ino = st.st_ino;
    ctx_.binds.push_back(std::move(bind));
  }
  ctx_.tty = true;
  return true;
}

bool JailRun::Impl::Prepare() {
  rootless_ = geteuid() != 0;
  if (rootless_) {
    // The user namespace of an unprivileged caller can map only the caller's
    // own ids (one line, no newuidmap helper).
    if (spec_.uid() != geteuid() || spec_.gid() != getegid()) {
      SetupError(absl::StrCat(
          "user namespace: jcs run is not running as root (uid ", geteuid(),
          ", gid ", getegid(), ") and can map only its own ids, not uid ",
          spec_.uid(), " gid ", spec_.gid(),
          " (fix: drop --uid/--gid, or run jcs as root)"));
      return false;
    }
  } else if (getgroups(0, nullptr) != 0 && setgroups(0, nullptr) != 0) {
    // Root's supplementary groups would otherwise follow the program into
    // the jail, and the jail's user namespace (setgroups deny) could not drop
    // them. An unprivileged caller's stay (it cannot drop them): the program
    // keeps access the caller already has, nothing more.
    SetupError(absl::StrCat("credentials: setgroups(0): ", ErrnoText(errno)));
    return false;
  }
  int64_t t = RunNowUs();
  policy_ = &PrecompiledDefaultPolicy();
  AddStep("seccomp_load_policy", RunNowUs() - t);

  t = RunNowUs();
  absl::Status filled =
      FillChildContext(spec_, warm_, &ctx_, &r_.warnings, &r_.layers);
  if (!filled.ok()) {
    SetupError(std::string(filled.message()));
    return false;
  }
  if (ctx_.egress && !PrepareEgress()) return false;
  if (!tty_.empty() && !PrepareTty()) return false;
  AddStep("plan", RunNowUs() - t);

  // cgroup v2 must exist before clone (CLONE_INTO_CGROUP). The v1 fallback is
  // created after clone, while the jail builds its filesystem.
  t = RunNowUs();
  if (spec_.cgroup() != proto::CGROUP_V1) {
    absl::StatusOr<std::unique_ptr<Cgroup>> v2 =
        CreateCgroupV2(CgroupOptionsFor(spec_));
    if (v2.ok()) {
      cgroup_ = *std::move(v2);
      r_.cgroup_backend = cgroup_->backend();
    } else if (spec_.cgroup() == proto::CGROUP_V2) {
      // The v1 fallback is named only where it can work: creating v1
      // cgroups takes root.
      SetupError(absl::StrCat(v2.status().message(),
                              rootless_ ? "" : "; or use --cgroup v1"));
      return false;
    } else if (rootless_) {
      AddStep("cgroup_v2", RunNowUs() - t);
      return RunWithoutCgroup(v2.status().message());
    } else {
      v2_error_ = std::string(v2.status().message());
    }
  }
  AddStep("cgroup_v2", RunNowUs() - t);
  return true;
}

// Rootless with no cgroup v2 subtree delegated to the caller: the limits
// cannot be enforced, so the run refuses unless the user asked for none
// (rlimits still apply, and the pid namespace still takes every descendant
// down with the jail's init).
bool JailRun::Impl::RunWithoutCgroup(absl::string_view v2_error) {
  if (spec_.memory_bytes() != 0 || spec_.pids() != 0 || spec_.has_cpus()) {
    SetupError(absl::StrCat(
        "cgroup: jcs run is not running as root (uid ", geteuid(),
        ") and has no delegated cgroup v2 subtree that can enforce the "
        "memory, pids and cpu limits (v2: ",
        v2_error,
        ") (fix: run it in a delegated cgroup, e.g. systemd-run --user "
        "--scope -p Delegate=yes jcs run ...; or pass --memory unlimited "
        "--pids unlimited without --cpus to run without cgroup limits; or run "
        "jcs as root)"));
    return false;
  }
  no_cgroup_ = true;
  r_.cgroup_backend = "none";
  return true;
}

bool JailRun::Impl::JoinCgroup() {
  const int64_t t = RunNowUs();
  if (cgroup_ == nullptr && !no_cgroup_) {
    absl::StatusOr<std::unique_ptr<Cgroup>> v1 =
        CreateCgroupV1(CgroupOptionsFor(spec_));
    if (!v1.ok()) {
      SetupError(
          v2_error_.empty()
              ? std::string(v1.status().message())
              : absl::StrCat("cgroup: neither backend can enforce the limits. "
                             "v2: ",
                             v2_error_, "; v1: ", v1.status().message()));
      return false;
    }
    cgroup_ = *std::move(v1);
    r_.cgroup_backend = cgroup_->backend();
    if (absl::Status status = cgroup_->AddProcess(init_pid_); !status.ok()) {
      SetupError(absl::StrCat("cgroup v1: ", status.message()));
      return false;
    }
  }
  AddStep("cgroup_v1_create_and_join", RunNowUs() - t);
  SyncMessage ready = {};
  ready.type = SyncType::kCgroupReady;
  if (send(sync_fd_, &ready, sizeof(ready), MSG_NOSIGNAL) != sizeof(ready)) {
    SetupError(
        absl::StrCat("sync socket: send cgroup ready: ", ErrnoText(errno)));
    return false;
  }
  return true;
}

bool JailRun::Impl::Clone() {
  // The zygote builds its child from the spec alone: a terminal's binds
  // (PrepareTty) and stdio the program would inherit from this process stay
  // with a clone here.
  const bool has_stdio =
      ctx_.stdio[0] >= 0 && ctx_.stdio[1] >= 0 && ctx_.stdio[2] >= 0;
  if (ProcessZygote() != nullptr && !ctx_.tty && (warm_ || has_stdio)) {
    bool zygote_gone = false;
    const bool cloned = CloneInZygote(&zygote_gone);
    // A zygote that died (killed from outside) costs the jails their small
    // parent, not the jails themselves: clone here instead.
    if (cloned || !zygote_gone) return cloned;
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    SetupError(absl::StrCat("sync socket: socketpair: ", ErrnoText(errno)));
    return false;
  }
  sync_fd_ = fds[0];
  child_fd_ = fds[1];
  const int on = 1;
  // The program's pid as this supervisor sees it arrives with its kReady
  // message.
  setsockopt(sync_fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
  ctx_.sync_fd = child_fd_;

  int64_t t = RunNowUs();
  const bool into_cgroup = cgroup_ != nullptr && cgroup_->clone_into_fd() >= 0;
  start_us_ = RunNowUs();
  // No exit signal: only this run (through its pidfd) collects the init, not
  // a daemon's waitpid(-1) orphan reaper.
  const long pid =
      CloneJailChild(ctx_, into_cgroup ? cgroup_->clone_into_fd() : -1, &pidfd_,
                     /*exit_signal=*/0);
  const int clone_errno = errno;
  close(child_fd_);
  child_fd_ = -1;
  if (pid < 0) {
    SetupError(absl::StrCat(
        "namespaces: clone3(user, pid, mount, net, ipc, uts",
        into_cgroup ? ", into cgroup" : "", "): ", ErrnoText(clone_errno), " (",
        NamespaceFix(clone_errno), ")"));
    return false;
  }
  init_pid_ = static_cast<pid_t>(pid);
  clone_us_ = RunNowUs() - t;
  AddStep("clone", clone_us_);
  return MapIdsAndGo();
}

// A jail cloned by the zygote: the supervisor's pages are not shared with
// the jail (see jail/zygote.h). The zygote is the init's parent and reaps
// it; this run watches it through its pidfd.
bool JailRun::Impl::CloneInZygote(bool* zygote_gone) {
  const int64_t t = RunNowUs();
  const bool into_cgroup = cgroup_ != nullptr && cgroup_->clone_into_fd() >= 0;
  start_us_ = RunNowUs();
  const std::array<int, 3> stdio =
      warm_ ? std::array<int, 3>{-1, -1, -1}
            : std::array<int, 3>{ctx_.stdio[0], ctx_.stdio[1], ctx_.stdio[2]};
  absl::StatusOr<Zygote::Cloned> cloned = ProcessZygote()->Clone(
      spec_, warm_, into_cgroup ? cgroup_->clone_into_fd() : -1, stdio);
  if (!cloned.ok()) {
    if (absl::IsUnavailable(cloned.status())) {
      *zygote_gone = true;
      return false;
    }
    SetupError(absl::StrCat("namespaces (zygote): ", cloned.status().message(),
                            " (fix: see jcs doctor)"));
    return false;
  }
  init_pid_ = cloned->pid;
  pidfd_ = cloned->pidfd;
  sync_fd_ = cloned->sync_fd;
  in_zygote_ = true;
  const int on = 1;
  setsockopt(sync_fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
  clone_us_ = RunNowUs() - t;
  AddStep("clone", clone_us_);
  return MapIdsAndGo();
}

bool JailRun::Impl::MapIdsAndGo() {
  int64_t t = RunNowUs();
  // The init's /proc directory is found through its pidfd, never as
  // /proc/<init_pid_>: that number means another process in a /proc that
  // is not this pid namespace's.
  absl::StatusOr<int> proc_dir = OpenProcDirOf(pidfd_);
  absl::Status status = proc_dir.status();
  if (status.ok()) {
    status = WriteProcFile(*proc_dir, "setgroups", "deny");
    if (status.ok()) {
      status = WriteProcFile(*proc_dir, "uid_map",
                             absl::StrCat(ctx_.uid, " ", ctx_.uid, " 1\n"));
    }
    if (status.ok()) {
      status = WriteProcFile(*proc_dir, "gid_map",
                             absl::StrCat(ctx_.gid, " ", ctx_.gid, " 1\n"));
    }
    close(*proc_dir);
  }
  if (!status.ok()) {
    SetupError(absl::StrCat("user namespace id map: ", status.message(),
                            " (fix: see jcs doctor)"));
    return false;
  }
  AddStep("id_maps", RunNowUs() - t);
  SyncMessage go = {};
  go.type = SyncType::kGo;
  if (send(sync_fd_, &go, sizeof(go), MSG_NOSIGNAL) != sizeof(go)) {
    SetupError(absl::StrCat("sync socket: send go: ", ErrnoText(errno)));
    return false;
  }
  return true;
}

}  // namespace jcs::jail
