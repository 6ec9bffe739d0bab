#include "supervisor/alert_exec.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "jail/runner.h"
#include "jail/spec.h"
#include "loop/event_loop.h"
#include "proto/jail.pb.h"

namespace jcs::supervisor {
namespace {

constexpr uint64_t kMemoryBytes = 256ull << 20;
constexpr uint64_t kPids = 64;
constexpr uint64_t kTmpBytes = 16ull << 20;
constexpr uint64_t kFsizeBytes = 16ull << 20;
constexpr uint64_t kNofile = 256;
// Output is read and dropped up to this much; then our end is closed and
// a program still writing gets EPIPE (or dies of SIGPIPE).
constexpr size_t kMaxDrainBytes = 1 << 20;
// Past the jail's own deadline (which kills the tree), the runner gives up
// waiting for its report after this much more.
constexpr absl::Duration kReportGrace = absl::Seconds(5);

// Writing the document to a program that exited (or never started) raises
// SIGPIPE in the writing thread; the daemon ignores it, but the runner must
// not depend on its caller's dispositions. Blocked for the run; a pending
// one is consumed before the mask is restored.
class BlockSigpipe {
 public:
  BlockSigpipe() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~BlockSigpipe() {
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  BlockSigpipe(const BlockSigpipe&) = delete;
  BlockSigpipe& operator=(const BlockSigpipe&) = delete;

 private:
  sigset_t set_, old_;
};

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

bool UnderSystemDir(const std::string& path) {
  for (const std::string& dir : jail::DefaultSystemDirs()) {
    if (absl::StartsWith(path, dir + "/")) return true;
  }
  return false;
}

absl::Status Outcome(const jail::RunResult& r, const std::string& program,
                     absl::Duration timeout, bool cancelled) {
  if (cancelled) {
    return absl::CancelledError(absl::StrCat(
        "exec sink ", program, ": killed at shutdown (process tree killed)"));
  }
  switch (r.status) {
    case jail::RunStatus::kExited:
      if (r.exec_errno != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("exec sink ", program,
                         ": cannot execute: ", strerror(r.exec_errno)));
      }
      if (r.exit_code == 0) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat(
          "exec sink ", program, ": exited with status ", r.exit_code));
    case jail::RunStatus::kTimeout:
      return absl::DeadlineExceededError(absl::StrCat(
          "exec sink ", program, ": timed out after ",
          absl::FormatDuration(timeout), " (process tree killed)"));
    case jail::RunStatus::kSignaled:
      return absl::UnavailableError(
          absl::StrCat("exec sink ", program, ": killed by signal ", r.signal));
    case jail::RunStatus::kOom:
      return absl::ResourceExhaustedError(
          absl::StrCat("exec sink ", program, ": out of memory (256 MiB)"));
    case jail::RunStatus::kPidsLimit:
      return absl::ResourceExhaustedError(
          absl::StrCat("exec sink ", program, ": pids limit (64)"));
    case jail::RunStatus::kViolation:
      return absl::PermissionDeniedError(
          absl::StrCat("exec sink ", program, ": sandbox violation, killed"));
    case jail::RunStatus::kSetupError:
      break;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "exec sink ", program, ": jail setup failed (not run): ", r.error));
}

absl::Status RunOnce(const std::string& work_dir,
                     const std::vector<std::string>& argv,
                     const std::string& document, absl::Duration timeout,
                     const std::function<bool()>& cancelled) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError(
        "exec sink: the program must be an absolute path");
  }
  if (mkdir(work_dir.c_str(), 0711) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("exec sink: mkdir ", work_dir, ": ", strerror(errno)));
  }
  std::string root = work_dir + "/run.XXXXXX";
  if (mkdtemp(root.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "exec sink: mkdtemp under ", work_dir, ": ", strerror(errno)));
  }
  // Empty and owned by the daemon: the jail user is nobody and can write
  // nothing here but its private /tmp.
  chmod(root.c_str(), 0755);
  const auto remove_root = [&root] {
    std::error_code ignored;
    std::filesystem::remove_all(root, ignored);
  };

  proto::JailSpec spec;
  spec.set_root(root);
  spec.set_cwd(root);
  for (const std::string& arg : argv) spec.add_argv(arg);
  spec.set_net(proto::NET_NONE);
  spec.set_timeout_ms(static_cast<uint64_t>(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout))));
  spec.set_memory_bytes(kMemoryBytes);
  spec.set_pids(kPids);
  spec.set_tmp_size_bytes(kTmpBytes);
  spec.set_fsize_bytes(kFsizeBytes);
  spec.set_nofile(kNofile);
  spec.set_hostname("jcs-alert");
  // The program's own directory, read-only, when the system directories
  // (bound in every jail) do not hold it.
  if (!UnderSystemDir(argv[0])) {
    spec.add_ro(std::filesystem::path(argv[0]).parent_path().string());
  }
  absl::StatusOr<jail::FinalSpec> final_spec = jail::Finalize(spec, root);
  if (!final_spec.ok()) {
    remove_root();
    return absl::FailedPreconditionError(absl::StrCat(
        "exec sink ", argv[0],
        ": jail spec refused (not run): ", final_spec.status().message()));
  }
  absl::StatusOr<std::unique_ptr<runtime::EventLoop>> loop =
      runtime::EventLoop::Create(32);
  if (!loop.ok()) {
    remove_root();
    return absl::UnavailableError(
        absl::StrCat("exec sink: event loop: ", loop.status().message()));
  }
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    remove_root();
    return absl::UnavailableError(
        absl::StrCat("exec sink: pipe: ", strerror(errno)));
  }
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    close(in_pipe[0]);
    close(in_pipe[1]);
    remove_root();
    return absl::UnavailableError(
        absl::StrCat("exec sink: pipe: ", strerror(err)));
  }
  const BlockSigpipe no_sigpipe;
  int in_write = in_pipe[1], out_read = out_pipe[0];
  bool finished = false;
  jail::RunResult result;
  std::unique_ptr<jail::JailRun> run = jail::JailRun::Start(
      loop->get(), final_spec->spec, std::move(final_spec->warnings),
      jail::JailStdio{in_pipe[0], out_pipe[1], out_pipe[1]},
      [&finished, &result](jail::RunResult r) {
        result = std::move(r);
        finished = true;
      });
  close(in_pipe[0]);
  close(out_pipe[1]);

  // The document: a program that does not read it all gets the rest
  // dropped (EPIPE) when it exits; the deadline bounds one that never reads.
  bool writing = false;
  if ((*loop)
          ->WriteAll(in_write, document,
                     [&in_write, &writing](int) {
                       CloseFd(in_write);
                       writing = false;
                     })
          .ok()) {
    writing = true;
  } else {
    CloseFd(in_write);
  }
  std::array<char, 16384> buffer;
  size_t drained = 0;
  bool reading = false;
  std::function<void()> arm_read = [&] {
    reading = (*loop)
                  ->Read(out_read, absl::MakeSpan(buffer),
                         [&](int res) {
                           reading = false;
                           if (res > 0) drained += static_cast<size_t>(res);
                           if (res > 0 && drained < kMaxDrainBytes) {
                             arm_read();
                           } else {
                             CloseFd(out_read);
                           }
                         })
                  .ok();
    if (!reading) CloseFd(out_read);
  };
  arm_read();

  const absl::Time give_up = absl::Now() + timeout + kReportGrace;
  bool was_cancelled = false;
  bool killed = false;
  while (!finished || writing || reading) {
    (void)(*loop)->RunOnce(absl::Milliseconds(50));
    if (finished) {
      // Every process of the jail is gone: what is left in the pipes ends
      // at once; stop waiting for a writer nobody reads.
      if (writing || reading) {
        CloseFd(in_write);
        CloseFd(out_read);
        break;
      }
      continue;
    }
    if (!killed && cancelled && cancelled()) {
      was_cancelled = true;
      killed = true;
      run->Kill();
    } else if (!killed && absl::Now() > give_up) {
      killed = true;
      run->Kill();
    }
  }
  run.reset();
  // The loop cancels what is still in flight before the fds close.
  loop->reset();
  CloseFd(in_write);
  CloseFd(out_read);
  remove_root();
  return Outcome(result, argv[0], timeout, was_cancelled);
}

}  // namespace

telemetry::alerts::ExecRunner JailedAlertExecRunner(std::string work_dir) {
  return [work_dir = std::move(work_dir)](
             const std::vector<std::string>& argv, const std::string& document,
             absl::Duration timeout, const std::function<bool()>& cancelled) {
    return RunOnce(work_dir, argv, document, timeout, cancelled);
  };
}

}  // namespace jcs::supervisor
