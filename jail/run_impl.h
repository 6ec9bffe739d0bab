// Internal to the jail supervisor (runner.cc, warm_jail.cc): the state of
// one JailRun and the helpers its parts share.
#ifndef JCS_JAIL_RUN_IMPL_H_
#define JCS_JAIL_RUN_IMPL_H_

#include <seccomp.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "egress/egress_proxy.h"
#include "jail/background_thread.h"
#include "jail/cgroup.h"
#include "jail/child.h"
#include "jail/runner.h"
#include "jail/seccomp_policy.h"
#include "loop/event_loop.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

inline int64_t RunNowUs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

inline std::string ErrnoText(int err) { return strerror(err); }

// Raw syscall: glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.
inline int PidfdSignal(int pidfd, int sig) {
  return static_cast<int>(
      syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// The threads that do the jail supervisor's blocking work, so that the loop
// never waits: one builds warm jails, one kills and removes finished ones.
BackgroundThread& JailLauncher();
BackgroundThread& JailReaper();

class JailRun::Impl : public std::enable_shared_from_this<JailRun::Impl> {
 public:
  Impl(runtime::EventLoop* loop, const proto::JailSpec& spec,
       std::vector<std::string> warnings, JailStdio stdio, JailRun::Done done,
       JailRun::OnEgressDenied on_denied, std::string tty = "")
      : loop_(loop),
        spec_(spec),
        done_(std::move(done)),
        on_egress_denied_(std::move(on_denied)) {
    r_.warnings = std::move(warnings);
    r_.uid = spec_.uid();
    r_.gid = spec_.gid();
    ctx_.stdio[0] = stdio.in;
    ctx_.stdio[1] = stdio.out;
    ctx_.stdio[2] = stdio.err;
    tty_ = std::move(tty);
  }
  ~Impl() { CloseFds(); }

  void Start();
  // Builds the jail on the launcher thread; the program starts at Launch().
  void StartWarm(std::function<void()> on_ready);
  absl::Status Launch(const proto::JailSpec& call, JailStdio stdio,
                      JailRun::Done done, JailRun::OnEgressDenied on_denied);
  bool idle() const { return ready_ && !launched_ && !finished_; }
  void set_async_teardown(bool on) { async_teardown_ = on; }
  void Signal(int sig) {
    if (!finished_ && pidfd_ >= 0) PidfdSignal(pidfd_, sig);
  }
  void Kill() {
    if (finished_) return;
    killed_ = true;
    // While the launcher thread builds a warm jail, OnWarmedUp tears it down.
    if (!warming_) Finish();
  }
  void DropDone() {
    done_ = nullptr;
    on_ready_ = nullptr;
    std::lock_guard<std::mutex> lock(deliver_mu_);
    deliver_wanted_ = false;
  }
  bool finished() const { return finished_; }

 private:
  void SetupError(std::string message) {
    if (r_.error.empty()) r_.error = std::move(message);
    setup_failed_ = true;
  }
  bool Prepare();
  bool RunWithoutCgroup(absl::string_view v2_error);
  bool PrepareEgress();
  // --tty: the pty slave and /dev/tty in the jail's /dev.
  bool PrepareTty();
  void StopEgress();
  bool Clone();
  // False with *zygote_gone set when the zygote cannot be reached.
  bool CloneInZygote(bool* zygote_gone);
  bool MapIdsAndGo();
  bool JoinCgroup();
  bool Arm();
  void OnWarmedUp(bool built);
  void MaybeReady();
  // Reads one message; false when nothing was waiting (or the socket is gone).
  bool HandleSyncMessage();
  void DrainSyncMessages();
  void DrainNotifications();
  void ArmNotify();
  void FinishIfDone();
  void HandleNotification();
  // Tears the jail down, computes the result and calls done_ (once).
  void Finish();
  // The part of the teardown that never waits; false when what is left must
  // wait for the kernel (TeardownAndWait).
  bool TeardownWithoutWaiting();
  void TeardownAndWait();
  bool TeardownOffLoop();
  // FinishTeardown's second half: SIGKILL to the init, then the reap.
  void KillInitAndReap();
  void Deliver();
  void ReadCgroupStats();
  void FinishTeardown();
  void ComputeResult();
  void CloseFds();
  void AddStep(const char* name, int64_t us) {
    r_.setup_us.emplace_back(name, us);
  }

  runtime::EventLoop* const loop_;
  const proto::JailSpec spec_;
  JailRun::Done done_;
  JailRun::OnEgressDenied on_egress_denied_;
  std::unique_ptr<egress::EgressProxy> proxy_;
  RunResult r_;
  bool setup_failed_ = false;
  bool finished_ = false;
  bool warm_ = false;       // built ahead; the command comes with Launch()
  bool warming_ = false;    // the launcher thread is building it
  bool in_zygote_ = false;  // cloned by the zygote: dies with it (PDEATHSIG)
  bool ready_ = false;      // warm and armed, waiting for Launch()
  bool launched_ = false;
  bool async_teardown_ = false;  // see JailRun::set_async_teardown
  bool armed_ = false;           // warm: polls armed on the loop
  bool built_ = false;           // warm: the init reported kWarmReady
  bool deferred_reap_ = false;
  bool only_init_ = false;  // at teardown, nothing but the init was left
  int64_t teardown_t0_us_ = 0;
  // Whether a teardown on the reaper thread may still post the result to the
  // loop; cleared by DropDone() (see TeardownOffLoop).
  std::mutex deliver_mu_;
  bool deliver_wanted_ = true;
  std::function<void()> on_ready_;
  bool killed_ = false;
  std::unique_ptr<Cgroup> cgroup_;
  // Not root: the user namespace maps the caller's own ids only.
  bool rootless_ = false;
  // Rootless without a delegated cgroup v2 subtree, all limits unlimited.
  bool no_cgroup_ = false;
  std::string v2_error_;  // why cgroup v2 was not used (auto mode)
  const SeccompPolicy* policy_ = nullptr;
  ChildContext ctx_;
  std::string tty_;    // JailStdio::tty
  int sync_fd_ = -1;   // supervisor end
  int child_fd_ = -1;  // jail end (closed after clone)
  int pidfd_ = -1;
  int notify_fd_ = -1;
  pid_t init_pid_ = -1;
  pid_t program_pid_ = -1;
  bool program_exited_ = false;
  int program_status_ = 0;
  bool init_dead_ = false;
  bool timed_out_ = false;
  int64_t t0_us_ = 0;
  int64_t start_us_ = 0;
  int64_t clone_us_ = 0;
  int64_t ready_at_us_ = 0;
  std::map<int, uint64_t> violations_;
  std::vector<runtime::OpId> ops_;  // armed on loop_, cancelled by Finish()
  struct seccomp_notif* notif_ = nullptr;
  struct seccomp_notif_resp* notif_resp_ = nullptr;
};

}  // namespace jcs::jail

#endif  // JCS_JAIL_RUN_IMPL_H_
