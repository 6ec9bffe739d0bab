// Runs one program in a jail and supervises it to the end: prepares the cgroup,
// seccomp program, mount plan and Landlock plan, clones the jail, answers
// seccomp notifications, enforces the deadline, and tears everything down
// (every descendant killed, the cgroup removed).
#ifndef JCS_JAIL_RUNNER_H_
#define JCS_JAIL_RUNNER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "loop/event_loop.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

enum class RunStatus {
  kExited,
  kSignaled,
  kTimeout,
  kOom,
  kPidsLimit,
  kViolation,
  kSetupError
};
const char* RunStatusName(RunStatus status);

struct Violation {
  int nr = 0;
  std::string name;
  uint64_t count = 0;
};

struct EgressDenialRecord {
  std::string host;
  uint16_t port = 0;
  std::string reason;  // network_endpoint_denied / network_protocol_denied
  std::string detail;
};

// The egress proxy's account of one run (--net egress).
struct EgressReport {
  bool enabled = false;
  uint64_t connections = 0;
  uint64_t allowed = 0;
  uint64_t denied = 0;
  uint64_t bytes_in = 0;                    // to the program
  uint64_t bytes_out = 0;                   // from the program
  std::vector<EgressDenialRecord> denials;  // the first kMaxEgressDenials
};
inline constexpr size_t kMaxEgressDenials = 100;

struct RunResult {
  RunStatus status = RunStatus::kSetupError;
  int exit_code = 125;  // what `jcs run` exits with
  int signal = 0;       // the signal that killed the program, if any
  int64_t wall_time_us = 0;
  // Setup breakdown in microseconds, in order ("cgroup", "seccomp_compile",
  // "clone", ...).
  std::vector<std::pair<std::string, int64_t>> setup_us;
  // Teardown breakdown in microseconds ("kill_and_reap", "cgroup_stats",
  // "cgroup_destroy").
  std::vector<std::pair<std::string, int64_t>> teardown_us;
  std::vector<Violation> violations;
  uint64_t descendants_killed =
      0;  // processes other than the program and the jail's init
  uint64_t memory_peak_bytes = 0;
  uint64_t oom_kills = 0;
  uint64_t pids_limit_hits = 0;
  std::string cgroup_backend;
  std::map<std::string, std::string>
      layers;  // layer -> "enforced" / "not enforced: why" / detail
  std::vector<std::string> warnings;
  std::string error;   // setup_error: one line naming the layer and the fix
  int exec_errno = 0;  // the program could not be executed
  uid_t uid = 0;
  gid_t gid = 0;
  // Kill() ended the run; `program_killed`: the program was still running
  // then (or at the deadline).
  bool killed = false;
  bool program_killed = false;
  // The program ran in a jail built ahead of time (JailRun::StartWarm).
  bool warm_jail = false;
  EgressReport egress;
};

// The program's stdin, stdout and stderr: fds of the caller (-1: the caller's
// own 0, 1 or 2). They are inherited by the jail at Start(); the caller closes
// its copies of the jail-side ends right after Start() returns, so its reads
// see EOF when the last jailed process is gone.
struct JailStdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

// One jailed program supervised on a caller's event loop (a daemon runs many
// at once on its loop). Start() blocks the calling thread for the launch only
// (cgroup, clone, id maps: a few ms); the run itself is driven by the loop's
// completions: the sync socket, the init's pidfd, the seccomp listener and the
// deadline. `done` runs exactly once, on the loop thread, never inline from
// Start(), after every process of the jail is gone and its cgroup removed.
//
// The init is cloned by the calling thread, and its PDEATHSIG fires when that
// thread exits: call Start() on a thread that lives as long as the process
// (the loop's).
class JailRun {
 public:
  using Done = std::function<void(RunResult)>;
  // Each refusal of the egress proxy, as it happens (on the loop thread).
  using OnEgressDenied = std::function<void(const EgressDenialRecord&)>;

  // `spec` must come from Finalize(). `tty` (`jcs run --tty`): the stdio
  // fds are the slave of a pseudo-terminal whose host path ("/dev/pts/3")
  // this is; the node is bound at the same path in the jail's /dev (so
  // ttyname() finds it), with /dev/tty, and the program's process makes it
  // its controlling terminal.
  static std::unique_ptr<JailRun> Start(runtime::EventLoop* loop,
                                        const proto::JailSpec& spec,
                                        std::vector<std::string> warnings,
                                        JailStdio stdio, Done done,
                                        OnEgressDenied on_denied = nullptr,
                                        std::string tty = "");
  // A warm jail: built now (off the loop, on a launcher thread that lives as
  // long as the process), its init waiting for Launch() with the command.
  // `spec` (from Finalize) fixes everything but argv, env, cwd and the
  // timeout, which come with Launch(). `on_ready` runs (on the loop, never
  // inline) once it is idle; `on_end` if it dies or fails before it is
  // launched; after Launch() the launch's `done` runs instead.
  static std::unique_ptr<JailRun> StartWarm(runtime::EventLoop* loop,
                                            const proto::JailSpec& spec,
                                            std::vector<std::string> warnings,
                                            std::function<void()> on_ready,
                                            Done on_end);
  // Runs a command in a warm jail: argv, env, cwd and timeout_ms from
  // `spec` (which must equal the warm spec in everything else: the caller
  // checks), stdio from `stdio` (all three required). FailedPrecondition when
  // the jail is not idle, ResourceExhausted when the command is too large
  // for one message (launch a cold jail instead).
  absl::Status Launch(const proto::JailSpec& spec, JailStdio stdio, Done done,
                      OnEgressDenied on_denied = nullptr);
  // Warm, built and waiting for Launch().
  bool idle() const;
  // The loop never waits for the kernel: when the program's processes are
  // all gone and only the jail's init is left, `done` runs as soon as the
  // init is killed, and reaping it and removing the cgroup finish on a
  // background thread afterwards; when more is left, killing it, waiting for
  // it and removing the cgroup run on that thread before `done` is posted
  // to the loop (which must keep running until `done`). Off by default
  // (`jcs run` has nothing else to serve and exits right after `done`).
  void set_async_teardown(bool on);

  // Drops `done` and ends the run like Kill(), in the background when async
  // teardown is on: for a caller that discards a warm jail on the loop.
  void Abandon();

  // Kills the run if it is still going, without calling `done`.
  ~JailRun();
  JailRun(const JailRun&) = delete;
  JailRun& operator=(const JailRun&) = delete;

  // Passes `sig` to the program (through the jail's init).
  void Signal(int sig);
  // Ends the run now: every process of the jail is killed, the cgroup
  // removed, and `done` gets the result (killed = true).
  void Kill();
  bool finished() const;

  class Impl;

 private:
  explicit JailRun(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
  bool abandoned_ = false;
};

// Stops building warm jails: queued builds are dropped and the one in
// progress is waited for. Call it before destroying the event loop (and the
// zygote) the warm jails were started on.
void StopWarmJailBuilds();

// Finishes the teardowns still running off the loop (killing and removing
// every jail they hold) and takes no more: later ones run inline. Call it
// at shutdown, after the runs' owners are gone and before the process exits.
void StopJailTeardowns();

// The one-shot form (`jcs run`): its own loop, the caller's stdio, and
// SIGINT/SIGTERM/SIGHUP/SIGQUIT forwarded to the program (a second one ends
// the run at once). `spec` must come from Finalize(). Never throws; every
// failure is a kSetupError result with `error` set. `warnings` from Finalize
// are carried into the result.
// `stdio`: the program's stdio instead of the caller's own (fds >= 0 are
// closed by RunJail once the jail holds its copies); `tty` as for
// JailRun::Start.
RunResult RunJail(const proto::JailSpec& spec,
                  const std::vector<std::string>& warnings,
                  JailStdio stdio = {}, std::string tty = "");

}  // namespace jcs::jail

#endif  // JCS_JAIL_RUNNER_H_
