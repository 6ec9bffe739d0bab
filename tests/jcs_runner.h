// Test library for the escape suite: runs the real `jcs` binary (from the
// runfiles) with bounded, captured output, parses its --report JSON, makes
// throw-away project directories owned by an unprivileged test uid, and looks
// for leftovers (processes by a unique marker in their argv, per-run cgroups,
// host mounts).
#ifndef JCS_TESTS_JCS_RUNNER_H_
#define JCS_TESTS_JCS_RUNNER_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace jcs::testing {

// The host uid/gid that owns test project directories, so the jail user
// (mapped to the owner of --root) can write there.
inline constexpr uid_t kJailUid = 1000;
inline constexpr gid_t kJailGid = 1000;

// The rootless variant of a suite (its second test target sets
// JCS_TEST_ROOTLESS=1): every `jcs` the harness starts runs as kJailUid /
// kJailGid, not root, and a jail gets --memory unlimited --pids unlimited
// ahead of the test's own flags (this host delegates no cgroup v2 subtree
// to an unprivileged user: limits would be refused).
bool Rootless();
// Cases that only root can run, skipped in the rootless variant with why.
#define JCS_SKIP_IF_ROOTLESS(why)                                        \
  do {                                                                   \
    if (::jcs::testing::Rootless()) GTEST_SKIP() << "rootless: " << why; \
  } while (0)

// Paths of the binaries under test, from the runfiles ($TEST_SRCDIR/jcs/...);
// rootless: a copy of jcs in a directory kJailUid can reach (the runfiles
// lie under a 0700 /root).
std::string JcsPath();
std::string ProbePath();

// A unique string (prefix + pid + time + counter + random) for markers.
std::string UniqueToken(const std::string& prefix);
// A `sleep` argument that is a valid duration and unique: "1000.<digits>".
std::string SleepMarker();

struct ProcessOptions {
  // (fd in this process, fd number in the child): kept open, without
  // FD_CLOEXEC, across the exec. Every other fd but 0/1/2 is closed.
  std::vector<std::pair<int, int>> inherit_fds;
  // stdin is a new pseudo-terminal that is also the child's controlling
  // terminal (the child runs in a new session); else /dev/null.
  bool pty_stdin = false;
  // Extra "KEY=VALUE" entries appended to this process's environment.
  std::vector<std::string> extra_env;
  // The child drops to kJailUid/kJailGid (no supplementary groups) before
  // its exec: how the rootless variant starts jcs (set by RunJcs, RunJail
  // and BackgroundJail when Rootless()).
  bool as_jail_user = false;
  // A cgroup v2 directory the child moves itself into (cgroup.procs) before
  // any of that: how a test hands jcs a delegated subtree.
  std::string join_cgroup;
  // The child gets SIGKILL after this long (keeps every test bounded).
  double kill_after_s = 90;
  // Output beyond this many bytes per stream is discarded.
  size_t max_output = 1 << 20;
};

struct ProcessResult {
  pid_t pid = -1;
  bool exited = false;  // normal exit (else killed by term_signal)
  int exit_code = -1;
  int term_signal = 0;
  bool killed_by_harness = false;  // hit kill_after_s
  std::string out;
  std::string err;
  double wall_s = 0;
  // Human-readable summary for assertion messages.
  std::string Describe() const;
};

// A started child process whose stdout/stderr are captured.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const ProcessOptions& options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig` to the child (only while it has not been reaped).
  void Signal(int sig);
  // Waits for the exit (reading the pipes meanwhile) and returns the result.
  // After the child exits, what is already in the pipes is read and the rest
  // is ignored (leaked holders of the pipes cannot stall the test).
  ProcessResult Wait();

 private:
  void Pump(int timeout_ms);
  ProcessOptions options_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int pty_master_ = -1;
  bool pty_polling_ = true;
  bool reaped_ = false;
  double start_s_ = 0;
  ProcessResult result_;
};

// Runs a program to completion.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const ProcessOptions& options = {});

struct JcsResult : ProcessResult {
  bool has_report = false;
  std::string report_text;
  nlohmann::json report;  // null unless has_report
  // Number of '\n'-terminated lines on stderr.
  int StderrLines() const;
  std::string Describe() const;
};

// A temporary project: <base>/root owned by kJailUid, where <base> is a fresh
// 0755 directory under /tmp. (Bazel's $TEST_TMPDIR lives under /root, mode
// 0700, which the jail's user namespace cannot traverse.) The base and its
// other children are outside the jail (rootless: the base is owned by
// kJailUid, who runs jcs). Removed on destruction.
class Project {
 public:
  explicit Project(uid_t uid = kJailUid, gid_t gid = kJailGid);
  ~Project();
  Project(const Project&) = delete;
  Project& operator=(const Project&) = delete;

  const std::string& root() const { return root_; }
  const std::string& base() const { return base_; }
  std::string Path(const std::string& rel) const { return root_ + "/" + rel; }
  // Writes a file in the root, owned by the project uid.
  void WriteFile(const std::string& rel, const std::string& content,
                 mode_t mode = 0644) const;
  bool Exists(const std::string& rel) const;
  std::string ReadFile(const std::string& rel) const;
  // Copies the syscall probe to <root>/syscall_probe (root-owned, 0755) and
  // returns the in-jail path.
  std::string InstallProbe() const;

 private:
  std::string base_;
  std::string root_;
  uid_t uid_;
  gid_t gid_;
};

// Runs `jcs ARGS...` (no report handling); rootless, `jcs run` gets
// --memory unlimited --pids unlimited ahead of ARGS' own flags.
JcsResult RunJcs(const std::vector<std::string>& args,
                 const ProcessOptions& options = {});
// Runs `jcs run --root ROOT --report FILE FLAGS... -- ARGV...` (the program
// in a jail rooted at the project) and parses the report.
JcsResult RunJail(const Project& project, const std::vector<std::string>& flags,
                  const std::vector<std::string>& argv,
                  const ProcessOptions& options = {});

// A jail run in the background (for kill -9 and in-flight inspection).
class BackgroundJail {
 public:
  BackgroundJail(const Project& project, const std::vector<std::string>& flags,
                 const std::vector<std::string>& argv,
                 const ProcessOptions& options = {});
  pid_t pid() const { return process_->pid(); }
  void Signal(int sig) { process_->Signal(sig); }
  JcsResult Wait();

 private:
  std::string report_path_;
  std::unique_ptr<Process> process_;
};

// `/usr/bin/python3 -c CODE ARGS...` (sys.argv[1:] == ARGS).
std::vector<std::string> Python(const std::string& code,
                                const std::vector<std::string>& args = {});
// `/bin/bash -c SCRIPT`.
std::vector<std::string> Bash(const std::string& script);

// Live processes (not zombies; this process excluded) whose argv contains
// `marker` (and, when `comm` is not empty, whose /proc/PID/comm is `comm`).
std::vector<pid_t> ProcessesWithMarker(const std::string& marker,
                                       const std::string& comm = "");
// Polls until at least `count` such processes exist; false on deadline.
bool WaitForMarkerCount(const std::string& marker, size_t count,
                        double timeout_s, const std::string& comm = "");
// Polls until none exists; false on deadline.
bool WaitForNoMarker(const std::string& marker, double timeout_s);
// Polls until `sig`, sent to `pid` (which blocks it and reads it from a
// signalfd), is no longer pending: the process has taken it. Standard
// signals do not queue, so a second one sent earlier would merge with the
// first. False on deadline.
bool WaitForSignalTaken(pid_t pid, int sig, double timeout_s);

// Per-run cgroup directories of the jcs process `jcs_pid` (named
// run-<jcs_pid>-*) anywhere below /sys/fs/cgroup.
std::vector<std::string> RunCgroupDirs(pid_t jcs_pid);
// Removes (rmdir, deepest first) the per-run cgroups a killed jcs left.
void RemoveRunCgroups(pid_t jcs_pid);

// This process's /proc/self/mountinfo, one entry per line, mount ids dropped
// (so only the mount set is compared).
std::vector<std::string> HostMounts();
// Lines in `after` missing from `before`.
std::vector<std::string> NewLines(const std::vector<std::string>& before,
                                  const std::vector<std::string>& after);

// The last line of `out` that parses as a JSON object (scripts print their
// findings as one JSON line); null if none.
nlohmann::json LastJsonLine(const std::string& out);

// The inode number of a namespace link such as /proc/self/ns/net.
unsigned long NamespaceInode(const std::string& path);

// Host-side file helpers.
void WriteHostFile(const std::string& path, const std::string& content,
                   mode_t mode = 0644);
std::string ReadHostFile(const std::string& path);
// Up to 64 KiB of a file with plain reads; "" on any error (for /proc and
// cgroup files that may vanish mid-read).
std::string ReadSmallFile(const std::string& path);
void RemoveTree(const std::string& path);

// Whether host uid/gid `uid` can open `path` for reading (checked in a forked
// child that drops to that uid): the control proving a file is readable for
// the jail user unless the jail hides it.
bool ReadableAs(uid_t uid, gid_t gid, const std::string& path);

double NowSeconds();

}  // namespace jcs::testing

#endif  // JCS_TESTS_JCS_RUNNER_H_
