// Test library for the `jcs serve` integration tests: starts the real daemon
// (from the runfiles) on a unique temporary socket with its own state
// directory, runs the real CLI with captured output and deadlines, and speaks
// the control protocol over raw sockets (for malformed and pipelined traffic
// the client library would never send).
#ifndef JCS_TESTS_SERVE_HARNESS_H_
#define JCS_TESTS_SERVE_HARNESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "proto/control.pb.h"

namespace jcs::serve_test {

// The `jcs` binary under test ($TEST_SRCDIR/jcs/tools/jcs).
std::string JcsBinary();

double NowSeconds();

// A fresh directory /tmp/jcs-serve-XXXXXX (mode 0755, so unprivileged test
// peers can reach a socket inside it), removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }
  // Creates <path>/<rel> (and parents) and returns its path.
  std::string MakeDir(const std::string& rel) const;
  // MakeDir, then chown to uid:gid: a project root whose owner the tools run
  // as (a root-owned root needs an explicit run_as).
  std::string MakeOwnedDir(const std::string& rel, uid_t uid = 1000,
                           gid_t gid = 1000) const;
  // Writes <path>/<rel> and returns its path.
  std::string WriteFile(const std::string& rel,
                        const std::string& content) const;

 private:
  std::string path_;
};

void RemoveTree(const std::string& path);
std::string ReadFileOrEmpty(const std::string& path);
bool PathExists(const std::string& path);  // lstat succeeds

// How a process ended.
struct ExitInfo {
  bool exited = false;  // normal exit (else signalled or still running)
  int exit_code = -1;
  int term_signal = 0;
  bool timed_out = false;  // the harness had to SIGKILL it
  std::string Describe() const;
};

struct RunResult : ExitInfo {
  std::string out;
  std::string err;
  std::string Describe() const;
  // Number of '\n'-terminated lines in `err`.
  int ErrLines() const;
};

struct RunOptions {
  std::string cwd;                     // empty: inherit
  std::vector<std::string> extra_env;  // "K=V", appended to this environment
  std::vector<std::string> unset_env;  // names removed from the environment
  double timeout_s = 30;
};

// RunOptions with only a timeout.
RunOptions TimeoutAfter(double seconds);

// Runs argv[0] (a path) to completion with captured stdout/stderr.
RunResult RunProgram(const std::vector<std::string>& argv,
                     const RunOptions& options = {});
// Runs `jcs ARGS...`.
RunResult RunJcs(const std::vector<std::string>& args,
                 const RunOptions& options = {});

struct DaemonOptions {
  // Text appended to the generated config (which sets socket_path and
  // state_dir unless `set_paths` is false).
  std::string extra_config;
  bool set_paths = true;
  // Pass `--config FILE` (else the daemon runs on its embedded default).
  bool pass_config = true;
  // Extra clone(2) namespace flags for the daemon process (e.g.
  // CLONE_NEWPID | CLONE_NEWNS): the daemon is then this process's direct
  // child and the namespaces' first process.
  int clone_flags = 0;
  // Runs in the child right before exec (only async-signal-safe calls);
  // returning false makes the child exit 127.
  std::function<bool()> child_setup;
  // When >= 0, the daemon's stderr (instead of the file Log() reads).
  int stderr_fd = -1;
  // Wait for "listening on" in the daemon's log (or its exit).
  bool wait_ready = true;
  double ready_timeout_s = 15;
};

// One `jcs serve` process with its own temp directory, config, socket and
// state directory. The destructor SIGKILLs it if it is still running.
class Daemon {
 public:
  explicit Daemon(DaemonOptions options = {});
  explicit Daemon(const std::string& extra_config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Writes the config and starts the daemon; with wait_ready, true once it
  // logged "listening on", false if it exited first or the deadline passed.
  bool Start();
  // The config file's path (written by Start; tests may overwrite it first
  // with WriteConfig).
  const std::string& config_path() const { return config_path_; }
  void WriteConfig(const std::string& text);
  const std::string& socket_path() const { return socket_path_; }
  const std::string& state_dir() const { return state_dir_; }
  const TempDir& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !reaped_; }
  // The daemon's stderr so far.
  std::string Log() const;

  void Signal(int sig);
  // Waits for the exit; SIGKILLs and reports timed_out after `timeout_s`.
  ExitInfo Wait(double timeout_s = 20);
  // Polls for an exit without blocking beyond `timeout_s`; false if running.
  bool WaitExited(double timeout_s, ExitInfo* info);
  // SIGTERM, then Wait.
  ExitInfo Stop(double timeout_s = 20);
  // Stops it and returns "" if it exited 0 and left no socket file, else a
  // description of what went wrong (for EXPECT_EQ(..., "")).
  std::string StopCleanly(double timeout_s = 20);

 private:
  DaemonOptions options_;
  TempDir dir_;
  std::string config_path_;
  std::string socket_path_;
  std::string state_dir_;
  std::string log_path_;
  bool config_written_ = false;
  pid_t pid_ = -1;
  bool reaped_ = false;
  ExitInfo exit_;
};

// ---- processes on the host (/proc) ----

// The parent of `pid` by /proc/PID/stat (zombies included), -1 if gone.
pid_t ParentOf(pid_t pid);
// /proc/PID/comm without the newline ("" if gone).
std::string CommOf(pid_t pid);
// The children of `parent` (zombies included; this kernel has no
// /proc/PID/task/TID/children).
std::vector<pid_t> ChildrenOf(pid_t parent);
// The daemon's zygote (jail/zygote.h): its child named "jcs-zygote", or -1
// after `timeout_s`. Polls: the zygote renames itself only after the fork,
// so right after the daemon started it may still read as "jcs".
pid_t ZygoteOf(pid_t daemon_pid, double timeout_s = 10);
// The idle warm jails the zygote has built: its children (the jails' inits)
// whose own child (the warm program process, forked once the jail's mounts
// and masks are in place) has not exec'd a command yet.
std::vector<pid_t> IdleWarmJails(pid_t zygote);
// Polls until the zygote of `daemon_pid` holds at least one idle warm jail.
bool WaitForIdleWarmJail(pid_t daemon_pid, double timeout_s = 20);

// ---- raw protocol ----

// A connected Unix stream socket, or -1 (errno set).
int ConnectUnix(const std::string& path);
// Writes everything (MSG_NOSIGNAL); false on error (errno set).
bool SendAll(int fd, const std::string& data);
// A Request frame (varint length + serialized request).
std::string RequestFrame(const proto::Request& request);
// Encodes a varint (for hand-made frame headers).
std::string Varint(uint64_t value);

struct ReadResult {
  std::vector<proto::Response> responses;
  bool eof = false;        // the daemon closed the connection
  bool timed_out = false;  // the deadline passed first
  bool reset = false;      // ECONNRESET or another read error
  bool malformed = false;  // bytes that are not Response frames
  std::string Describe() const;
};

// Reads Response frames until `max_responses` arrived, the peer closed, or
// `timeout_s` passed.
ReadResult ReadResponses(int fd, size_t max_responses, double timeout_s);
// Reads until the peer closes (or the deadline), collecting the responses.
ReadResult ReadUntilClosed(int fd, double timeout_s);
// Decodes a byte string of Response frames (trailing partial data: malformed).
ReadResult DecodeResponses(const std::string& bytes);

// A Ping through a fresh client-library connection; "" on success, else the
// failure.
std::string PingError(const std::string& socket_path, double timeout_s = 5);

}  // namespace jcs::serve_test

#endif  // JCS_TESTS_SERVE_HARNESS_H_
