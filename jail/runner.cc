#include "jail/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "egress/egress_policy.h"
#include "egress/egress_proxy.h"
#include "jail/child.h"
#include "jail/procfs.h"
#include "jail/run_impl.h"
#include "jail/seccomp_policy.h"
#include "jail/sync_protocol.h"
#include "jail/zygote.h"
#include "loop/event_loop.h"

namespace jcs::jail {
namespace {

// The fix an operator needs for a failure in a given layer.
std::string FixFor(absl::string_view where, int err, uint32_t uid) {
  if (absl::StartsWith(where, "chdir") && (err == EACCES || err == EPERM)) {
    // Not a host problem: the jail user lacks the permission on the host
    // directory (typically a root owned by uid 0, mapped to nobody).
    return absl::StrCat("fix: the jail user (uid ", uid,
                        ") cannot enter it; pass --uid with the directory "
                        "owner's uid, or chown/chmod the directory");
  }
  if (absl::StartsWith(where, "proc")) {
    return "fix: procfs can only be mounted in a user namespace when the "
           "host's /proc is fully "
           "visible (no paths masked by a container runtime); run jcs on the "
           "host or unmask /proc";
  }
  if (absl::StartsWith(where, "bind source") ||
      absl::StartsWith(where, "bind target")) {
    return err == ELOOP ? "fix: the path is or became a symlink; binds never "
                          "follow symlinks, "
                          "give the real path"
                        : "fix: check that the path exists and is readable";
  }
  if (absl::StartsWith(where, "seccomp")) {
    return "fix: the kernel needs seccomp filters with user notification "
           "(Linux 5.0+, "
           "CONFIG_SECCOMP_FILTER); see jcs doctor";
  }
  if (absl::StartsWith(where, "landlock")) {
    return "fix: run with --landlock off to rely on mounts and seccomp only, "
           "or fix the path";
  }
  if (absl::StartsWith(where, "mount") ||
      absl::StartsWith(where, "open_tree") || absl::StartsWith(where, "bind") ||
      absl::StartsWith(where, "root tmpfs") ||
      absl::StartsWith(where, "pivot_root") ||
      absl::StartsWith(where, "attach")) {
    return "fix: the kernel needs the new mount API (open_tree, move_mount, "
           "mount_setattr: Linux "
           "5.12+) and mounts in user namespaces; see jcs doctor";
  }
  if (absl::StartsWith(where, "net"))
    return "fix: see jcs doctor (network_namespace)";
  return "fix: see jcs doctor";
}

}  // namespace

bool JailRun::Impl::HandleSyncMessage() {
  if (sync_fd_ < 0) return false;
  SyncMessage msg;
  struct iovec iov = {&msg, sizeof(msg)};
  alignas(struct cmsghdr) char
      control[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
  struct msghdr hdr = {};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(sync_fd_, &hdr, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) return false;
  if (n == 0) {
    // Every jail-side end is closed: the init is gone; the pidfd says how.
    close(sync_fd_);
    sync_fd_ = -1;
    return false;
  }
  int passed_fd = -1;
  pid_t sender = -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr;
       c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      memcpy(&passed_fd, CMSG_DATA(c), sizeof(int));
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      sender = cred.pid;
    }
  }
  if (n != sizeof(msg)) {
    if (passed_fd >= 0) close(passed_fd);
    SetupError("sync socket: truncated message from the jail");
    return true;
  }
  msg.where[sizeof(msg.where) - 1] = '\0';
  msg.detail[sizeof(msg.detail) - 1] = '\0';
  switch (msg.type) {
    case SyncType::kError:
      SetupError(absl::StrCat(msg.where, ": ", msg.detail, ": ",
                              ErrnoText(msg.err), " (",
                              FixFor(msg.where, msg.err, spec_.uid()), ")"));
      break;
    case SyncType::kReady: {
      if (passed_fd < 0) {
        SetupError("seccomp: the jail did not pass its notification listener");
        break;
      }
      notify_fd_ = passed_fd;
      passed_fd = -1;
      ArmNotify();
      program_pid_ = sender;
      int64_t previous = msg.start_ns;
      for (int step = 0; step < kStepCount; ++step) {
        if (msg.step_end_ns[step] == 0) continue;
        AddStep(kSetupStepNames[step],
                (msg.step_end_ns[step] - previous) / 1000);
        previous = msg.step_end_ns[step];
      }
      if (warm_) {
        // From sending the command to the init having read it, and from the
        // seccomp step to this supervisor handling kReady.
        AddStep("run_delivery", msg.start_ns / 1000 - start_us_);
        AddStep("ready_delivery", RunNowUs() - previous / 1000);
      }
      AddStep("total_to_exec", RunNowUs() - start_us_ + clone_us_);
      ready_at_us_ = RunNowUs();
      r_.layers["seccomp"] =
          (msg.layers & kLayerSeccomp) ? "enforced" : "not enforced";
      r_.layers["no_new_privs"] =
          (msg.layers & kLayerNoNewPrivs) ? "enforced" : "not enforced";
      r_.layers["capabilities_dropped"] =
          (msg.layers & kLayerCapsDropped) ? "enforced" : "no";
      r_.layers["pivot_root"] =
          (msg.layers & kLayerPivotRoot) ? "enforced" : "not enforced";
      if (msg.layers & kLayerLandlock) {
        r_.layers["landlock"] =
            absl::StrCat("enforced (ABI ", msg.landlock_abi, ")");
      }
      if (spec_.net() == proto::NET_LOOPBACK) {
        r_.layers["network"] =
            (msg.layers & kLayerLoopbackUp) ? "loopback only" : "lo down";
      }
      break;
    }
    case SyncType::kExecFailed:
      r_.exec_errno = msg.err;
      break;
    case SyncType::kWarmReady:
      built_ = true;
      MaybeReady();
      break;
    case SyncType::kEgressListener:
      if (passed_fd < 0 || proxy_ == nullptr) {
        SetupError("net egress: the jail did not pass the proxy's socket");
        break;
      }
      if (absl::Status served = proxy_->Serve(passed_fd); !served.ok()) {
        SetupError(absl::StrCat("net egress: proxy: ", served.message()));
      }
      passed_fd = -1;  // the proxy owns it now
      break;
    case SyncType::kMainExited:
      program_exited_ = true;
      program_status_ = msg.wait_status;
      // From exec to the program's exit reported by the init.
      if (ready_at_us_ > 0) AddStep("exec_to_exit", RunNowUs() - ready_at_us_);
      break;
    default:
      SetupError("sync socket: unknown message from the jail");
  }
  if (passed_fd >= 0) close(passed_fd);
  return true;
}

void JailRun::Impl::HandleNotification() {
  memset(notif_, 0, sizeof(*notif_));
  if (seccomp_notify_receive(notify_fd_, notif_) != 0)
    return;  // the caller died meanwhile
  ++violations_[notif_->data.nr];
  memset(notif_resp_, 0, sizeof(*notif_resp_));
  notif_resp_->id = notif_->id;
  notif_resp_->error = -policy_->ErrnoFor(notif_->data.nr);
  notif_resp_->val = 0;
  notif_resp_->flags =
      0;  // never SECCOMP_USER_NOTIF_FLAG_CONTINUE: notifications only deny
  seccomp_notify_respond(notify_fd_, notif_resp_);
}

void JailRun::Impl::DrainSyncMessages() {
  while (HandleSyncMessage()) {
  }
}

void JailRun::Impl::DrainNotifications() {
  while (notify_fd_ >= 0) {
    struct pollfd p = {notify_fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;
    if (!(p.revents & POLLIN)) {
      // Every filtered process is gone: nothing more can be denied.
      close(notify_fd_);
      notify_fd_ = -1;
      break;
    }
    HandleNotification();
  }
}

bool JailRun::Impl::PrepareEgress() {
  egress::EgressPolicy policy;
  for (const std::string& text : spec_.allow_host()) {
    absl::StatusOr<egress::AllowEntry> entry = egress::ParseAllowEntry(text);
    if (!entry.ok()) {
      SetupError(absl::StrCat("net egress: --allow-host ", text, ": ",
                              entry.status().message()));
      return false;
    }
    policy.allow.push_back(*std::move(entry));
  }
  for (const std::string& text : spec_.allow_private_host()) {
    absl::StatusOr<egress::AllowEntry> entry = egress::ParseAllowEntry(text);
    if (!entry.ok()) {
      SetupError(absl::StrCat("net egress: --allow-private-host ", text, ": ",
                              entry.status().message()));
      return false;
    }
    policy.allow_private.push_back(*std::move(entry));
  }
  if (spec_.allow_scheme_size() > 0) {
    policy.allowed_schemes.assign(spec_.allow_scheme().begin(),
                                  spec_.allow_scheme().end());
  }
  r_.egress.enabled = true;
  std::weak_ptr<Impl> weak = weak_from_this();
  absl::StatusOr<std::unique_ptr<egress::EgressProxy>> proxy =
      egress::EgressProxy::Create(
          loop_, std::move(policy), egress::EgressLimits(),
          [weak](const egress::EgressDenial& denial) {
            std::shared_ptr<Impl> self = weak.lock();
            if (self == nullptr) return;
            EgressDenialRecord record{denial.host, denial.port, denial.reason,
                                      denial.detail};
            if (self->r_.egress.denials.size() < kMaxEgressDenials) {
              self->r_.egress.denials.push_back(record);
            }
            if (self->on_egress_denied_) self->on_egress_denied_(record);
          });
  if (!proxy.ok()) {
    SetupError(absl::StrCat("net egress: proxy: ", proxy.status().message()));
    return false;
  }
  proxy_ = *std::move(proxy);
  return true;
}

void JailRun::Impl::StopEgress() {
  if (proxy_ == nullptr) return;
  const egress::EgressStats stats = proxy_->stats();
  r_.egress.connections = stats.connections;
  r_.egress.allowed = stats.allowed;
  r_.egress.denied = stats.denied;
  r_.egress.bytes_in = stats.bytes_in;
  r_.egress.bytes_out = stats.bytes_out;
  proxy_->Shutdown();
  proxy_.reset();
}

void JailRun::Impl::FinishIfDone() {
  if (setup_failed_ || program_exited_ || init_dead_ || timed_out_) Finish();
}

void JailRun::Impl::ArmNotify() {
  if (finished_ || notify_fd_ < 0) return;
  std::weak_ptr<Impl> weak = weak_from_this();
  absl::StatusOr<runtime::OpId> op =
      loop_->PollMultishot(notify_fd_, POLLIN, [weak](int res, bool more) {
        std::shared_ptr<Impl> self = weak.lock();
        if (self == nullptr || self->finished_) return;
        if (res > 0) self->DrainNotifications();
        if (!more && self->notify_fd_ >= 0 && res >= 0) self->ArmNotify();
      });
  if (op.ok()) ops_.push_back(*op);
}

// Every fd of the run is driven by the caller's io_uring loop: the sync
// socket, the init's pidfd, the seccomp listener and the deadline. Callbacks
// hold a weak reference: a run that is gone ignores late completions.
bool JailRun::Impl::Arm() {
  if (seccomp_notify_alloc(&notif_, &notif_resp_) != 0) {
    SetupError("seccomp: cannot allocate notification buffers");
    return false;
  }
  std::weak_ptr<Impl> weak = weak_from_this();
  auto with_self = [weak](auto fn) {
    return [weak, fn](auto... args) {
      std::shared_ptr<Impl> self = weak.lock();
      if (self != nullptr && !self->finished_) fn(self.get(), args...);
    };
  };
  absl::StatusOr<runtime::OpId> op = runtime::OpId{0};
  if (!warm_) {
    const int64_t deadline =
        start_us_ + static_cast<int64_t>(spec_.timeout_ms()) * 1000;
    op = loop_->Timeout(absl::Microseconds(deadline - RunNowUs()),
                        with_self([](Impl* self, int res) {
                          if (res == 0) {
                            self->timed_out_ = true;
                            self->FinishIfDone();
                          }
                        }));
  }
  if (op.ok()) {
    if (*op != 0) ops_.push_back(*op);
    op = loop_->PollMultishot(sync_fd_, POLLIN,
                              with_self([](Impl* self, int res, bool more) {
                                if (res > 0) self->DrainSyncMessages();
                                self->FinishIfDone();
                              }));
  }
  if (op.ok()) {
    ops_.push_back(*op);
    op = loop_->WaitPid(pidfd_, with_self([](Impl* self, int res) {
                          // Take what the jail sent before it died, then stop.
                          self->DrainSyncMessages();
                          self->init_dead_ = true;
                          self->FinishIfDone();
                        }));
  }
  if (!op.ok()) {
    SetupError(absl::StrCat("supervisor: event loop: ", op.status().message()));
    return false;
  }
  ops_.push_back(*op);
  ArmNotify();
  // Messages that arrived before the polls were armed.
  DrainSyncMessages();
  return true;
}

void JailRun::Impl::Start() {
  t0_us_ = RunNowUs();
  if (Prepare() && Clone() && JoinCgroup() && Arm() && !setup_failed_ &&
      !program_exited_ && !init_dead_) {
    return;
  }
  // Setup failed, or the program already ended while the polls were being
  // armed (its messages were drained then): finish on the loop (never call
  // done_ inline).
  std::weak_ptr<Impl> weak = weak_from_this();
  absl::Status posted = loop_->Post([weak] {
    if (std::shared_ptr<Impl> self = weak.lock()) self->Finish();
  });
  if (!posted.ok()) {
    // The loop cannot take the task: tear down now and report through done_
    // on the next Signal/Kill; never leave the jail running.
    SetupError(absl::StrCat("supervisor: event loop: ", posted.message()));
    Finish();
  }
}

const char* RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kExited:
      return "exited";
    case RunStatus::kSignaled:
      return "signaled";
    case RunStatus::kTimeout:
      return "timeout";
    case RunStatus::kOom:
      return "oom";
    case RunStatus::kPidsLimit:
      return "pids_limit";
    case RunStatus::kViolation:
      return "violation";
    case RunStatus::kSetupError:
      return "setup_error";
  }
  return "unknown";
}

BackgroundThread& JailReaper() {
  static BackgroundThread* const thread = new BackgroundThread();
  return *thread;
}

void StopJailTeardowns() { JailReaper().Stop(/*drop_queued=*/false); }

std::unique_ptr<JailRun> JailRun::Start(runtime::EventLoop* loop,
                                        const proto::JailSpec& spec,
                                        std::vector<std::string> warnings,
                                        JailStdio stdio, Done done,
                                        OnEgressDenied on_denied,
                                        std::string tty) {
  auto impl = std::make_shared<Impl>(loop, spec, std::move(warnings), stdio,
                                     std::move(done), std::move(on_denied),
                                     std::move(tty));
  impl->Start();
  return std::unique_ptr<JailRun>(new JailRun(std::move(impl)));
}

void JailRun::Abandon() {
  abandoned_ = true;
  impl_->DropDone();
  impl_->Kill();
}

JailRun::~JailRun() {
  impl_->DropDone();
  if (abandoned_) return;  // ends in the background (see Abandon)
  // Nobody may be running the loop any more: tear down synchronously.
  impl_->set_async_teardown(false);
  impl_->Kill();
}

std::unique_ptr<JailRun> JailRun::StartWarm(runtime::EventLoop* loop,
                                            const proto::JailSpec& spec,
                                            std::vector<std::string> warnings,
                                            std::function<void()> on_ready,
                                            Done on_end) {
  auto impl = std::make_shared<Impl>(loop, spec, std::move(warnings),
                                     JailStdio{}, std::move(on_end), nullptr);
  impl->StartWarm(std::move(on_ready));
  return std::unique_ptr<JailRun>(new JailRun(std::move(impl)));
}

absl::Status JailRun::Launch(const proto::JailSpec& spec, JailStdio stdio,
                             Done done, OnEgressDenied on_denied) {
  return impl_->Launch(spec, stdio, std::move(done), std::move(on_denied));
}

bool JailRun::idle() const { return impl_->idle(); }

void JailRun::set_async_teardown(bool on) { impl_->set_async_teardown(on); }

void JailRun::Signal(int sig) { impl_->Signal(sig); }
void JailRun::Kill() {
  std::shared_ptr<Impl> impl = impl_;  // done_ may destroy this handle
  impl->Kill();
}
bool JailRun::finished() const { return impl_->finished(); }

RunResult RunJail(const proto::JailSpec& spec,
                  const std::vector<std::string>& warnings, JailStdio stdio,
                  std::string tty) {
  // The caller's copies of the jail-side ends, closed once the jail holds
  // its own (or on every early return).
  std::vector<int> owned;
  for (int fd : {stdio.in, stdio.out, stdio.err}) {
    if (fd >= 0 && std::find(owned.begin(), owned.end(), fd) == owned.end()) {
      owned.push_back(fd);
    }
  }
  const auto close_owned = [&owned] {
    for (int fd : owned) close(fd);
    owned.clear();
  };
  RunResult result;
  sigset_t mask, old_mask;
  sigemptyset(&mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, &old_mask);
  const int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  runtime::EventLoop::Options options;
  // The egress proxy (--net egress) drives its connections on this loop too.
  options.sq_entries = 64;
  options.max_in_flight = 1024;
  absl::StatusOr<std::unique_ptr<runtime::EventLoop>> loop =
      runtime::EventLoop::Create(options);
  if (!loop.ok() || signal_fd < 0) {
    result.warnings = warnings;
    result.error =
        !loop.ok() ? absl::StrCat("supervisor: ", loop.status().message())
                   : absl::StrCat("supervisor: signalfd: ", ErrnoText(errno));
    if (signal_fd >= 0) close(signal_fd);
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    close_owned();
    return result;
  }
  bool finished = false;
  std::unique_ptr<JailRun> run = JailRun::Start(
      loop->get(), spec, warnings, stdio,
      [&](RunResult r) {
        result = std::move(r);
        finished = true;
        (*loop)->Stop();
      },
      nullptr, std::move(tty));
  close_owned();
  int signals_received = 0;
  std::function<void()> arm_signals = [&] {
    (void)(*loop)->PollMultishot(signal_fd, POLLIN, [&](int res, bool more) {
      struct signalfd_siginfo info;
      while (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
        // First signal: pass it on to the program (through the jail's
        // init); a second one ends the run at once.
        if (++signals_received == 1) {
          run->Signal(static_cast<int>(info.ssi_signo));
        } else {
          run->Kill();
        }
      }
      if (!more && !finished && res >= 0) arm_signals();
    });
  };
  arm_signals();
  while (!finished) {
    if (absl::Status status = (*loop)->Run(); !status.ok()) {
      run.reset();  // kills and tears down without a result
      result.status = RunStatus::kSetupError;
      result.exit_code = 125;
      result.error = absl::StrCat("supervisor: event loop: ", status.message());
      break;
    }
  }
  run.reset();
  loop->reset();
  close(signal_fd);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return result;
}

}  // namespace jcs::jail
