// Warm jails: built ahead on a launcher thread (through the zygote when the
// process has one), their init and pre-forked, locked-down program process
// waiting for the command that Launch() sends.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "jail/background_thread.h"
#include "jail/child_context.h"
#include "jail/fd_passing.h"
#include "jail/run_impl.h"
#include "jail/sync_protocol.h"
#include "jail/zygote.h"

namespace jcs::jail {

BackgroundThread& JailLauncher() {
  // Never destroyed: see BackgroundThread (the PDEATHSIG of the jails it
  // clones).
  static BackgroundThread* const thread = new BackgroundThread();
  return *thread;
}

void JailRun::Impl::StartWarm(std::function<void()> on_ready) {
  on_ready_ = std::move(on_ready);
  async_teardown_ = true;
  t0_us_ = RunNowUs();
  warm_ = true;
  warming_ = true;
  std::shared_ptr<Impl> self = shared_from_this();
  const bool submitted = JailLauncher().Submit([self] {
    const bool built = self->Prepare() && self->Clone() && self->JoinCgroup();
    // Back to the loop (it outlives this task: StopWarmJailBuilds() waits
    // for it); retried while the loop's task queue is full.
    for (int attempt = 0; attempt < 1000; ++attempt) {
      absl::Status posted =
          self->loop_->Post([self, built] { self->OnWarmedUp(built); });
      if (posted.ok() || JailLauncher().stopping()) return;
      usleep(1000);
    }
    // The loop is wedged: this jail is never used; its init dies with the
    // process (PDEATHSIG).
  });
  if (!submitted) {
    // Shutting down: report the failure on the loop like any other.
    warming_ = false;
    SetupError("warm jail: the supervisor is shutting down");
    (void)loop_->Post([self] { self->Finish(); });
  }
}

void StopWarmJailBuilds() { JailLauncher().Stop(/*drop_queued=*/true); }

void JailRun::Impl::OnWarmedUp(bool built) {
  warming_ = false;
  if (built && !killed_ && Arm() && !setup_failed_ && !init_dead_ &&
      !program_exited_) {
    armed_ = true;
    MaybeReady();
    return;
  }
  Finish();
}

// Idle once armed on the loop and the init reported that the jail is built
// (its filesystem is finished after the cgroup step, in parallel).
void JailRun::Impl::MaybeReady() {
  if (!armed_ || !built_ || ready_ || finished_) return;
  ready_ = true;
  if (on_ready_) {
    std::function<void()> on_ready = std::move(on_ready_);
    on_ready_ = nullptr;
    on_ready();
  }
}

absl::Status JailRun::Impl::Launch(const proto::JailSpec& call, JailStdio stdio,
                                   JailRun::Done done,
                                   JailRun::OnEgressDenied on_denied) {
  if (!idle()) {
    return absl::FailedPreconditionError("the warm jail is not ready");
  }
  // A jail the zygote cloned is killed when the zygote dies (its init's
  // PDEATHSIG), but can still look idle while that SIGKILL is in flight: a
  // command sent now would die mid-run. The caller starts a fresh jail.
  if (in_zygote_ && (ProcessZygote() == nullptr || !ProcessZygote()->Alive())) {
    return absl::UnavailableError(
        "warm jail: the zygote that cloned it is gone");
  }
  if (stdio.in < 0 || stdio.out < 0 || stdio.err < 0) {
    return absl::InvalidArgumentError("a warm jail needs all three stdio fds");
  }
  const std::vector<std::string> env = ProgramEnv(call, ctx_.egress_port);
  const std::string cwd = call.cwd().empty() ? call.root() : call.cwd();
  std::string message(sizeof(RunHeader), '\0');
  RunHeader header = {};
  header.type = SyncType::kRun;
  header.argc = static_cast<uint32_t>(call.argv_size());
  header.envc = static_cast<uint32_t>(env.size());
  const auto append = [&](const std::string& text) {
    message.append(text);
    message.push_back('\0');
  };
  append(cwd);
  for (const std::string& arg : call.argv()) append(arg);
  for (const std::string& var : env) append(var);
  if (message.size() > kMaxRunMessage || header.argc == 0 ||
      header.argc > kMaxRunStrings || header.envc > kMaxRunStrings) {
    return absl::ResourceExhaustedError(
        "the command does not fit a warm jail's message");
  }
  header.strings_bytes =
      static_cast<uint32_t>(message.size() - sizeof(RunHeader));
  memcpy(message.data(), &header, sizeof(header));
  const int fds[3] = {stdio.in, stdio.out, stdio.err};
  const ssize_t sent = SendWithFds(sync_fd_, message.data(), message.size(),
                                   fds, 3, MSG_DONTWAIT);
  if (sent != static_cast<ssize_t>(message.size())) {
    return absl::UnavailableError(
        absl::StrCat("warm jail: send the command: ", ErrnoText(errno)));
  }
  launched_ = true;
  r_.warm_jail = true;
  done_ = std::move(done);
  on_egress_denied_ = std::move(on_denied);
  // The warm-up is off the call's path: its steps keep a "warm_" prefix.
  for (auto& [name, us] : r_.setup_us) name = "warm_" + name;
  start_us_ = RunNowUs();
  clone_us_ = 0;
  std::weak_ptr<Impl> weak = weak_from_this();
  absl::StatusOr<runtime::OpId> op = loop_->Timeout(
      absl::Milliseconds(static_cast<int64_t>(call.timeout_ms())),
      [weak](int res) {
        std::shared_ptr<Impl> self = weak.lock();
        if (self == nullptr || self->finished_ || res != 0) return;
        self->timed_out_ = true;
        self->FinishIfDone();
      });
  if (!op.ok()) {
    // No deadline can be enforced: end the run (on the loop: `done` never
    // runs inside Launch()).
    std::shared_ptr<Impl> self = shared_from_this();
    if (!loop_->Post([self] { self->Kill(); }).ok()) Kill();
    return absl::OkStatus();
  }
  ops_.push_back(*op);
  return absl::OkStatus();
}

}  // namespace jcs::jail
