// Ending one jail run (JailRun::Impl, run_impl.h): kill and reap the init,
// read and remove its cgroup, close the fds (on the reaper thread when the run
// tears down asynchronously: the loop never waits for the kernel), and turn
// what happened into the RunResult.
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "jail/cgroup.h"
#include "jail/procfs.h"
#include "jail/run_impl.h"
#include "jail/runner.h"
#include "jail/seccomp_policy.h"

namespace jcs::jail {

namespace {

constexpr int kKillWaitMs = 3000;
constexpr absl::Duration kDeferredKillDelay = absl::Milliseconds(5);

}  // namespace

void JailRun::Impl::ReadCgroupStats() {
  if (cgroup_ == nullptr) return;
  absl::StatusOr<CgroupStats> stats = cgroup_->Stats();
  if (stats.ok()) {
    r_.memory_peak_bytes = stats->memory_peak_bytes;
    r_.oom_kills = stats->oom_kills;
    r_.pids_limit_hits = stats->pids_max_events;
  }
}

// The second half of a deferred teardown: reap the (killed) init, remove the
// cgroup, close the fds. Holds the run alive until done. The loop only sees
// the init's exit: removing a cgroup can wait for the kernel (EBUSY retries),
// so it runs on the reaper thread.
void JailRun::Impl::FinishTeardown() {
  std::shared_ptr<Impl> self = shared_from_this();
  // The init is killed only now, after `done`, and kDeferredKillDelay later:
  // the caller's answer is delivered, and its client woken, before the kernel
  // tears the namespaces down (milliseconds of CPU on a 2-core host). Nothing
  // of the program is left to run meanwhile (TeardownWithoutWaiting saw only
  // the init in the cgroup), and the init never forks again.
  if (loop_
          ->Timeout(kDeferredKillDelay,
                    [self](int) { self->KillInitAndReap(); })
          .ok()) {
    return;
  }
  KillInitAndReap();
}

void JailRun::Impl::KillInitAndReap() {
  std::shared_ptr<Impl> self = shared_from_this();
  PidfdSignal(pidfd_, SIGKILL);
  auto reap = [self] {
    siginfo_t info = {};
    waitid(static_cast<idtype_t>(P_PIDFD), self->pidfd_, &info,
           WEXITED | __WALL);
    if (self->cgroup_ != nullptr) (void)self->cgroup_->Destroy();
    self->CloseFds();
  };
  absl::StatusOr<runtime::OpId> op = loop_->WaitPid(pidfd_, [reap](int res) {
    if (!JailReaper().Submit(reap)) reap();
  });
  if (!op.ok()) reap();
}

bool JailRun::Impl::TeardownWithoutWaiting() {
  teardown_t0_us_ = RunNowUs();
  const int64_t t = teardown_t0_us_;
  // Common case: the program is gone and nothing else runs beside the jail's
  // init, which never forks again, so killing the init (and with it the pid
  // namespace) is all that is left to do.
  absl::StatusOr<std::vector<pid_t>> left =
      cgroup_ != nullptr ? cgroup_->Processes()
                         : absl::StatusOr<std::vector<pid_t>>();
  only_init_ =
      left.ok() && std::all_of(left->begin(), left->end(),
                               [&](pid_t pid) { return pid == init_pid_; });
  if (only_init_ && pidfd_ >= 0 && async_teardown_ && !init_dead_) {
    // Nothing of the program is left: the result is complete once the
    // cgroup's counters are read. The init's kill and death (the pid
    // namespace's teardown takes milliseconds) and the cgroup's removal
    // come after `done` (FinishTeardown).
    ReadCgroupStats();
    r_.teardown_us.emplace_back("kill", RunNowUs() - t);
    deferred_reap_ = true;
    return true;
  }
  if (cgroup_ == nullptr && pidfd_ < 0) {
    TeardownAndWait();  // nothing was started: nothing to wait for
    return true;
  }
  return false;
}

// Kills what is left and waits for it, reaps the init, reads the cgroup's
// counters and removes it. Waits for the kernel: off the loop when the run
// tears down asynchronously.
void JailRun::Impl::TeardownAndWait() {
  int64_t t = teardown_t0_us_;
  if (only_init_ && pidfd_ >= 0) {
    PidfdSignal(pidfd_, SIGKILL);
  } else if (cgroup_ != nullptr && init_pid_ > 0) {
    absl::StatusOr<std::vector<pid_t>> killed = cgroup_->KillAll(kKillWaitMs);
    if (killed.ok()) {
      for (pid_t pid : *killed) {
        if (pid != init_pid_ && pid != program_pid_) ++r_.descendants_killed;
      }
    } else {
      r_.warnings.push_back(
          absl::StrCat("cgroup kill: ", killed.status().message()));
      PidfdSignal(pidfd_, SIGKILL);
    }
  } else if (pidfd_ >= 0) {
    if (no_cgroup_) {
      // No cgroup to count from: the init's pid namespace has every
      // descendant (none can leave it), and they die with the init.
      absl::StatusOr<std::vector<pid_t>> members = PidNamespaceMembers(pidfd_);
      if (members.ok()) {
        for (pid_t pid : *members) {
          if (pid != init_pid_ && pid != program_pid_) ++r_.descendants_killed;
        }
      }
    }
    PidfdSignal(pidfd_, SIGKILL);
  }
  if (pidfd_ >= 0) {
    siginfo_t info = {};
    // __WALL: the init is cloned with no exit signal (a daemon's orphan
    // reaper, waitpid(-1), must not collect it).
    if (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_, &info,
               WEXITED | __WALL) != 0 &&
        errno == ECHILD) {
      // Cloned by the zygote (its parent reaps it): wait for the exit.
      struct pollfd p = {pidfd_, POLLIN, 0};
      poll(&p, 1, kKillWaitMs);
    }
    if (!program_exited_ && !timed_out_ && init_dead_ && !setup_failed_) {
      // The init died before reporting the program's exit (e.g. killed from
      // outside).
      program_exited_ = true;
      program_status_ = info.si_code == CLD_EXITED
                            ? (info.si_status & 0xff) << 8
                            : info.si_status;
    }
  }
  r_.teardown_us.emplace_back("kill_and_reap", RunNowUs() - t);
  t = RunNowUs();
  if (cgroup_ != nullptr) {
    ReadCgroupStats();
    r_.teardown_us.emplace_back("cgroup_stats", RunNowUs() - t);
    t = RunNowUs();
    if (absl::Status status = cgroup_->Destroy(); !status.ok()) {
      r_.warnings.push_back(absl::StrCat("cgroup cleanup: ", status.message()));
    }
    r_.teardown_us.emplace_back("cgroup_destroy", RunNowUs() - t);
  }
  CloseFds();
}

void JailRun::Impl::Finish() {
  if (finished_) return;
  finished_ = true;
  for (runtime::OpId op : ops_) (void)loop_->Cancel(op);
  ops_.clear();
  if (!setup_failed_) {
    // Answer what is already queued so no caller is left waiting while the
    // jail is torn down, and take the jail's last messages.
    DrainNotifications();
    DrainSyncMessages();
  }
  if (killed_ && !program_exited_) r_.program_killed = true;
  StopEgress();
  if (timed_out_ && !program_exited_) r_.program_killed = true;
  if (!TeardownWithoutWaiting()) {
    if (async_teardown_ && TeardownOffLoop()) return;
    TeardownAndWait();
  }
  Deliver();
}

// Kills, waits and cleans up on the reaper thread, then delivers the result
// on the loop. False when the reaper takes no more work (shutting down).
bool JailRun::Impl::TeardownOffLoop() {
  std::shared_ptr<Impl> self = shared_from_this();
  return JailReaper().Submit([self] {
    self->TeardownAndWait();
    // Posted under deliver_mu_: once DropDone() has returned, this run no
    // longer touches the loop, which its owner may then destroy.
    std::lock_guard<std::mutex> lock(self->deliver_mu_);
    for (int attempt = 0; self->deliver_wanted_ && attempt < 1000; ++attempt) {
      if (self->loop_->Post([self] { self->Deliver(); }).ok()) return;
      usleep(1000);  // the loop's task queue is full
    }
  });
}

// On the loop, after the teardown: the result, then the caller's `done`.
void JailRun::Impl::Deliver() {
  ComputeResult();
  // Keeps this run alive through `done` (which may drop the last handle).
  std::shared_ptr<Impl> self = shared_from_this();
  if (done_) {
    JailRun::Done done = std::move(done_);
    done_ = nullptr;
    done(std::move(r_));
  }
  if (deferred_reap_) FinishTeardown();
}

void JailRun::Impl::CloseFds() {
  for (int* fd : {&sync_fd_, &child_fd_, &pidfd_, &notify_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (notif_ != nullptr) seccomp_notify_free(notif_, notif_resp_);
  notif_ = nullptr;
  notif_resp_ = nullptr;
}

void JailRun::Impl::ComputeResult() {
  r_.wall_time_us = RunNowUs() - (start_us_ ? start_us_ : t0_us_);
  r_.killed = killed_;
  for (const auto& [nr, count] : violations_) {
    r_.violations.push_back({nr, SeccompPolicy::SyscallName(nr), count});
  }
  if (setup_failed_) {
    r_.status = RunStatus::kSetupError;
    r_.exit_code = 125;
    return;
  }
  r_.layers["namespaces"] = "user, pid, mount, network, ipc, uts, cgroup";
  r_.layers["cgroup"] =
      no_cgroup_
          ? "not enforced: not root and no delegated cgroup v2 subtree "
            "(--memory unlimited --pids unlimited); rlimits apply, the pid "
            "namespace ends every descendant"
          : absl::StrCat(
                r_.cgroup_backend, ": memory ",
                spec_.memory_bytes() ? absl::StrCat(spec_.memory_bytes())
                                     : "unlimited",
                ", pids ",
                spec_.pids() ? absl::StrCat(spec_.pids()) : "unlimited",
                spec_.has_cpus() ? absl::StrCat(", cpus ", spec_.cpus()) : "");
  if (rootless_) {
    r_.layers["user_namespace"] = absl::StrCat(
        "rootless: the caller's uid ", spec_.uid(), " and gid ", spec_.gid(),
        " mapped to themselves (its supplementary groups stay)");
  }
  if (spec_.net() == proto::NET_NONE)
    r_.layers["network"] = "none (empty namespace)";
  if (spec_.net() == proto::NET_EGRESS) {
    r_.layers["network"] =
        absl::StrCat("egress proxy only (127.0.0.1:", ctx_.egress_port, ", ",
                     spec_.allow_host_size(), " allowed hosts)");
  }
  if (timed_out_) {
    r_.status = RunStatus::kTimeout;
    r_.exit_code = 124;
  } else if (!program_exited_) {
    // Kill() (a second termination signal for `jcs run`) ended the run.
    r_.status = RunStatus::kSignaled;
    r_.signal = SIGKILL;
    r_.exit_code = 128 + SIGKILL;
  } else if (WIFSIGNALED(program_status_)) {
    r_.status = RunStatus::kSignaled;
    r_.signal = WTERMSIG(program_status_);
    r_.exit_code = 128 + r_.signal;
  } else {
    r_.status = RunStatus::kExited;
    r_.exit_code = WEXITSTATUS(program_status_);
  }
  if (r_.status != RunStatus::kTimeout) {
    if (r_.oom_kills > 0) {
      r_.status = RunStatus::kOom;
    } else if (r_.pids_limit_hits > 0) {
      r_.status = RunStatus::kPidsLimit;
    } else if (!r_.violations.empty()) {
      r_.status = RunStatus::kViolation;
    }
  }
}

}  // namespace jcs::jail
