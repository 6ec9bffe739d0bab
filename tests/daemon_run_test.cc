// `jcs run --daemon` end to end (issue 16): the real daemon (daemon_run:
// true) and the real CLI. What a cold run passes through, a daemon run
// passes through too (stdin, stdout, stderr, exit status, signals), a client
// that dies takes its jail with it, and the daemon trusts nothing the client
// says: an unauthorized uid, a root the caller may not use and specs forged
// to ask for more than a cold run by that caller could get (another uid,
// uid 0, a network mode no cold run has, a spec jcs run never finalized) are
// refused. The forged specs go over the raw protocol from a process running
// as the caller (a CLI would never send them).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "jail/fd_passing.h"
#include "jail/spec.h"
#include "proto/control.pb.h"
#include "telemetry/metrics/exposition_check.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

constexpr uid_t kBob = 1000;       // an allowed client
constexpr uid_t kAlice = 1001;     // another user
constexpr uid_t kStranger = 1003;  // not allowed at all

// The CLI copied where every user can run it (the runfiles are under root's
// private home).
std::string SharedJcs() {
  static TempDir* bin = new TempDir();
  const std::string copy = bin->Sub("jcs");
  if (!PathExists(copy)) {
    std::filesystem::copy_file(JcsBinary(), copy);
    chmod(copy.c_str(), 0755);
  }
  return copy;
}

// The field after the command name in /proc/PID/stat: "S" state, "P" ppid.
std::string StatField(pid_t pid, char which) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return "";
  std::istringstream fields(line.substr(paren + 1));
  std::string state, ppid;
  fields >> state >> ppid;
  return which == 'S' ? state : ppid;
}

// The live process whose command line is exactly `argv`, or -1.
pid_t ProcessRunning(const std::vector<std::string>& argv) {
  std::string wanted;
  for (const std::string& arg : argv) wanted += arg + '\0';
  pid_t found = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::ifstream in(entry.path() / "cmdline");
    std::stringstream text;
    text << in.rdbuf();
    if (text.str() == wanted) found = atoi(name.c_str());
  }
  return found;
}

std::string CommOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/comm"));
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// Live processes whose command line contains `marker`.
int ProcessesWith(const std::string& marker) {
  int count = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return -1;
  while (struct dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream in(absl::StrCat("/proc/", entry->d_name, "/cmdline"));
    std::stringstream text;
    text << in.rdbuf();
    std::string cmdline = text.str();
    if (cmdline.find(marker) == std::string::npos) continue;
    std::ifstream stat(absl::StrCat("/proc/", entry->d_name, "/stat"));
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() &&
        line[paren + 2] == 'Z') {
      continue;
    }
    ++count;
  }
  closedir(proc);
  return count;
}

class DaemonRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0)
      GTEST_SKIP() << "the daemon and the other users need root";
    ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
    root_ = homes_.MakeOwnedDir("root", kBob, kBob);
    bob_home_ = homes_.MakeOwnedDir("bob", kBob, kBob);
    chmod(bob_home_.c_str(), 0700);
    alice_home_ = homes_.MakeOwnedDir("alice", kAlice, kAlice);
    chmod(alice_home_.c_str(), 0700);
    // Bob's own directory inside Alice's private one: writable by him, but
    // he cannot reach it.
    bob_in_alice_ = homes_.MakeOwnedDir("alice/bobs", kBob, kBob);
    // Writable by every jail user: only the uid check stands between Bob
    // and a jail as someone else there.
    shared_ = homes_.MakeOwnedDir("shared", kBob, kBob);
    chmod(shared_.c_str(), 0777);
  }
  void TearDown() override {
    if (geteuid() == 0) {
      EXPECT_EQ(daemon_.StopCleanly(), "");
    }
  }

  std::string Daemon() const { return "--daemon=" + daemon_.socket_path(); }
  // `sh -c SCRIPT` on the host; the script finds the CLI in $JCS and the
  // daemon flag in $DAEMON.
  RunResult Shell(const std::string& script, double timeout_s = 60) {
    RunOptions options = TimeoutAfter(timeout_s);
    options.extra_env = {"JCS=" + SharedJcs(), "DAEMON=" + Daemon(),
                         "ROOT=" + root_};
    return RunProgram({"/bin/sh", "-c", script}, options);
  }
  RunResult RunAs(uid_t uid, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     "--reuid",
                                     std::to_string(uid),
                                     "--regid",
                                     std::to_string(uid),
                                     "--clear-groups",
                                     "--",
                                     SharedJcs()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, TimeoutAfter(60));
  }

  // The daemon's first answer to a hand-made daemon_run request sent by a
  // process running as `uid`:`uid`.
  proto::Response ForgedAs(uid_t uid, const proto::JailSpec& spec) {
    proto::Request request;
    request.set_id(7);
    *request.mutable_daemon_run()->mutable_spec() = spec;
    const std::string frame = RequestFrame(request);
    const std::string socket = daemon_.socket_path();
    int pipe_fds[2];
    EXPECT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      close(pipe_fds[0]);
      if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) {
        _exit(2);
      }
      const int fd = ConnectUnix(socket);
      if (fd < 0 || !SendAll(fd, frame)) _exit(3);
      const ReadResult read = ReadResponses(fd, 1, 20);
      if (read.responses.empty()) _exit(4);
      const std::string bytes = read.responses[0].SerializeAsString();
      (void)!write(pipe_fds[1], bytes.data(), bytes.size());
      _exit(0);
    }
    close(pipe_fds[1]);
    std::string bytes;
    char buffer[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0) {
      bytes.append(buffer, n);
    }
    close(pipe_fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    proto::Response response;
    EXPECT_TRUE(response.ParseFromString(bytes));
    return response;
  }

  // What a cold `jcs run` as Bob would run in his own directory.
  proto::JailSpec BobsSpec(std::string root = "") {
    if (root.empty()) root = bob_home_;
    proto::JailSpec spec;
    spec.set_root(root);
    spec.set_uid(kBob);
    spec.set_gid(kBob);
    spec.add_argv("/bin/true");
    absl::StatusOr<jail::FinalSpec> final_spec = jail::Finalize(spec, root);
    EXPECT_TRUE(final_spec.ok()) << final_spec.status();
    return final_spec.ok() ? final_spec->spec : spec;
  }

  ::jcs::serve_test::Daemon daemon_{absl::StrCat(
      "daemon_run: true\nsocket_mode: 0666\nallowed_uids: ", kBob, "\n")};
  TempDir homes_;
  std::string root_;
  std::string bob_home_;
  std::string alice_home_;
  std::string bob_in_alice_;
  std::string shared_;
};

TEST_F(DaemonRunTest, PassesStdinStdoutStderrAndTheExitStatus) {
  const RunResult r = Shell(
      "echo hello | $JCS run $DAEMON --root \"$ROOT\" -- /bin/sh -c "
      "'read line; echo \"got:$line\"; echo oops >&2; exit 3'");
  EXPECT_TRUE(r.exited && r.exit_code == 3) << r.Describe();
  EXPECT_EQ(r.out, "got:hello\n");
  EXPECT_EQ(r.err, "oops\n");
}

TEST_F(DaemonRunTest, ExitStatusIsTheColdRunsOne) {
  for (const std::string& program :
       {std::string("/bin/true"), std::string("/bin/false"),
        std::string("/bin/sh -c 'kill -9 $$'"),
        std::string("/bin/sh -c 'exit 3'"),
        std::string("/nonexistent/program")}) {
    const RunResult cold =
        Shell(absl::StrCat("$JCS run --root \"$ROOT\" -- ", program));
    const RunResult warm =
        Shell(absl::StrCat("$JCS run $DAEMON --root \"$ROOT\" -- ", program));
    EXPECT_TRUE(cold.exited && warm.exited)
        << cold.Describe() << warm.Describe();
    EXPECT_EQ(warm.exit_code, cold.exit_code)
        << program << "\n"
        << cold.Describe() << warm.Describe();
    EXPECT_EQ(warm.err, cold.err) << program;
  }
  // Killed by SIGKILL: 128 + 9.
  const RunResult killed =
      Shell("$JCS run $DAEMON --root \"$ROOT\" -- /bin/sh -c 'kill -9 $$'");
  EXPECT_EQ(killed.exit_code, 137) << killed.Describe();
  // Later runs of the same shape use a warm jail and still say the same.
  const RunResult again = Shell(
      "$JCS run $DAEMON --root \"$ROOT\" --report - -q -- /bin/sh -c 'exit 3'");
  EXPECT_EQ(again.exit_code, 3) << again.Describe();
  EXPECT_NE(again.err.find("\"exit_code\""), std::string::npos)
      << again.Describe();
}

TEST_F(DaemonRunTest, SigtermToTheClientReachesTheJailedProgram) {
  const RunResult r = Shell(
      "$JCS run $DAEMON --root \"$ROOT\" -- /bin/sh -c "
      "'trap \"exit 42\" TERM; touch \"$PWD/ready\"; "
      "while :; do sleep 0.05; done' & pid=$!; "
      "for i in $(seq 200); do [ -e \"$ROOT/ready\" ] && break; sleep 0.05; "
      "done; kill -TERM $pid; wait $pid; echo status=$?");
  EXPECT_EQ(r.out, "status=42\n") << r.Describe();
}

TEST_F(DaemonRunTest, AClientKilledWithSigkillLeavesNoProcess) {
  const std::string marker = absl::StrCat("1000.", getpid(), "17");
  // The client's stdio is not the harness's pipe (the program would hold it
  // open), and the run's own deadline is far away: only the client's death
  // can end the program within the test.
  const double start = NowSeconds();
  const RunResult r = Shell(absl::StrCat(
      "$JCS run $DAEMON --timeout 600 --root \"$ROOT\" -- /bin/sh -c "
      "'touch \"$PWD/ready\"; exec sleep ",
      marker,
      "' </dev/null >/dev/null 2>&1 & pid=$!; "
      "for i in $(seq 200); do [ -e \"$ROOT/ready\" ] && break; sleep 0.05; "
      "done; before=$(pgrep -c -f '^sleep ",
      marker, "'); kill -KILL $pid; wait $pid; echo status=$? before=$before"));
  // Running before the kill (what follows is not vacuous).
  EXPECT_EQ(r.out, "status=137 before=1\n") << r.Describe();
  EXPECT_LT(NowSeconds() - start, 30);
  int left = -1;
  for (int i = 0; i < 100; ++i) {
    left = ProcessesWith(marker);
    if (left == 0) break;
    usleep(50'000);
  }
  EXPECT_EQ(left, 0) << "the jailed program outlived its client";
}

// A run with no warm jail of its shape starts cold, and even then the jail
// is cloned by the daemon's zygote, not by the daemon: a clone of the daemon
// copies its page tables and leaves every page of it copy-on-write, which
// its event loops pay for in page faults (jail/zygote.h).
TEST_F(DaemonRunTest, AColdRunIsClonedByTheZygoteNotByTheDaemon) {
  const std::string marker = absl::StrCat("1000.", getpid(), "23");
  // --timeout 597: a shape no other run used, so no warm jail has it.
  const RunResult started = Shell(absl::StrCat(
      "$JCS run $DAEMON --timeout 597 --root \"$ROOT\" -- /bin/sh -c "
      "'touch \"$PWD/cold-ready\"; exec sleep ",
      marker,
      "' </dev/null >/dev/null 2>&1 & pid=$!; "
      "for i in $(seq 200); do [ -e \"$ROOT/cold-ready\" ] && break; "
      "sleep 0.05; done; echo $pid"));
  ASSERT_TRUE(started.exited && started.exit_code == 0) << started.Describe();
  const pid_t client = atoi(started.out.c_str());
  ASSERT_GT(client, 0) << started.Describe();
  const pid_t program = ProcessRunning({"sleep", marker});
  ASSERT_GT(program, 0) << "the program is not running";
  const pid_t init = atoi(StatField(program, 'P').c_str());
  ASSERT_GT(init, 1);
  const pid_t cloner = atoi(StatField(init, 'P').c_str());
  EXPECT_NE(cloner, daemon_.pid()) << "the daemon cloned the jail itself";
  EXPECT_EQ(CommOf(cloner), "jcs-zygote");
  EXPECT_EQ(atoi(StatField(cloner, 'P').c_str()), daemon_.pid());
  kill(client, SIGKILL);
  int left = -1;
  for (int i = 0; i < 100 && left != 0; ++i) {
    left = ProcessesWith(marker);
    if (left != 0) usleep(50'000);
  }
  EXPECT_EQ(left, 0) << "the jailed program outlived its client";
}

// The first run of a shape is cold; the shape's warm jails are built then,
// and each run's jail is replaced after the run has answered (so that the
// building does not compete with the client for the CPUs): a run of the
// same shape finds a warm jail every time.
TEST_F(DaemonRunTest, EveryLaterRunOfAShapeFindsAWarmJail) {
  // --timeout 593: a shape no other run used.
  const std::string run =
      "$JCS run $DAEMON --timeout 593 --root \"$ROOT\" --report - -q -- "
      "/bin/sh -c 'exit 4'";
  const RunResult first = Shell(run);
  EXPECT_EQ(first.exit_code, 4) << first.Describe();
  EXPECT_NE(first.err.find("\"warm_jail\": false"), std::string::npos)
      << first.Describe();
  // More runs than the pool holds (kWarmPerShape, 2): without the refill
  // the third one would start cold. The pause leaves a loaded host time to
  // build the next jail.
  for (int i = 0; i < 5; ++i) {
    usleep(300'000);
    const RunResult later = Shell(run);
    EXPECT_EQ(later.exit_code, 4) << later.Describe();
    EXPECT_NE(later.err.find("\"warm_jail\": true"), std::string::npos)
        << "run " << i + 2 << "\n"
        << later.Describe();
  }
}

// The samples of `jcs metrics` from `daemon`, by series.
std::map<std::string, double> Scrape(const ::jcs::serve_test::Daemon& daemon) {
  const RunResult r =
      RunJcs({"metrics", "--socket", daemon.socket_path()}, TimeoutAfter(60));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  absl::StatusOr<std::map<std::string, double>> parsed =
      telemetry::metrics::CheckExposition(r.out);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << r.out;
  return parsed.ok() ? *parsed : std::map<std::string, double>();
}

// daemon_run_max_concurrent bounds the runs at once: one more is refused
// with daemon_run_busy, naming the option, and never queued or run cold;
// once a run ends, the next one runs. `jcs metrics` counts all of it.
TEST_F(DaemonRunTest, RunsBeyondMaxConcurrentAreRefusedAndCounted) {
  ::jcs::serve_test::Daemon bounded(
      "daemon_run: true\ndaemon_run_max_concurrent: 1\n");
  ASSERT_TRUE(bounded.Start()) << bounded.Log();
  RunOptions options = TimeoutAfter(60);
  options.extra_env = {"JCS=" + SharedJcs(),
                       "DAEMON=--daemon=" + bounded.socket_path(),
                       "ROOT=" + root_};
  const auto shell = [&](const std::string& script) {
    return RunProgram({"/bin/sh", "-c", script}, options);
  };
  const RunResult held = shell(
      "$JCS run $DAEMON --root \"$ROOT\" -- /bin/sh -c "
      "'touch \"$PWD/busy-ready\"; exec sleep 30' </dev/null >/dev/null "
      "2>&1 & pid=$!; for i in $(seq 200); do [ -e \"$ROOT/busy-ready\" ] "
      "&& break; sleep 0.05; done; echo $pid");
  ASSERT_TRUE(held.exited && held.exit_code == 0) << held.Describe();
  const pid_t holder = atoi(held.out.c_str());
  ASSERT_GT(holder, 0) << held.Describe();
  std::map<std::string, double> s = Scrape(bounded);
  EXPECT_EQ(s["jcs_daemon_runs_active"], 1);

  // --daemon-fallback does not turn the refusal into a cold run.
  const RunResult busy = shell(
      "$JCS run $DAEMON --daemon-fallback --root \"$ROOT\" -- "
      "/bin/sh -c 'echo ran'");
  EXPECT_EQ(busy.exit_code, 125) << busy.Describe();
  EXPECT_EQ(busy.out, "") << "the refused run ran";
  EXPECT_NE(busy.err.find("daemon_run_busy"), std::string::npos)
      << busy.Describe();
  EXPECT_NE(busy.err.find("daemon_run_max_concurrent"), std::string::npos)
      << busy.Describe();
  s = Scrape(bounded);
  EXPECT_EQ(s["jcs_daemon_runs_refused_total{reason=\"daemon_run_busy\"}"], 1);

  kill(holder, SIGTERM);  // forwarded: the held run ends
  int status = 0;
  for (int i = 0; i < 200 && waitpid(holder, &status, WNOHANG) == 0; ++i) {
    usleep(50'000);
  }
  // The slot is free once the daemon has seen the run end.
  RunResult after;
  for (int i = 0; i < 50; ++i) {
    after = shell("$JCS run $DAEMON --root \"$ROOT\" -- /bin/sh -c 'exit 6'");
    if (after.exit_code != 125) break;
    usleep(100'000);
  }
  EXPECT_EQ(after.exit_code, 6) << after.Describe();
  s = Scrape(bounded);
  EXPECT_EQ(s["jcs_daemon_runs_active"], 0);
  EXPECT_EQ(s["jcs_daemon_runs_started_total{jail=\"warm\"}"] +
                s["jcs_daemon_runs_started_total{jail=\"cold\"}"],
            2);
  EXPECT_EQ(s["jcs_daemon_runs_finished_total{status=\"exited\"}"] +
                s["jcs_daemon_runs_finished_total{status=\"signaled\"}"],
            2);
  EXPECT_EQ(bounded.StopCleanly(), "");
}

// A finalized spec running `script` under sh as Bob in his directory.
proto::JailSpec ScriptSpec(const std::string& root, const std::string& script) {
  proto::JailSpec spec;
  spec.set_root(root);
  spec.set_uid(kBob);
  spec.set_gid(kBob);
  spec.add_argv("/bin/sh");
  spec.add_argv("-c");
  spec.add_argv(script);
  absl::StatusOr<jail::FinalSpec> final_spec = jail::Finalize(spec, root);
  EXPECT_TRUE(final_spec.ok()) << final_spec.status();
  return final_spec.ok() ? final_spec->spec : spec;
}

proto::Request DaemonRunRequest(const proto::JailSpec& spec) {
  proto::Request request;
  request.set_id(5);
  *request.mutable_daemon_run()->mutable_spec() = spec;
  return request;
}

// Everything readable from `fd` until EOF (or 20 s).
std::string ReadToEof(int fd) {
  std::string text;
  char buffer[4096];
  const double deadline = NowSeconds() + 20;
  while (NowSeconds() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    text.append(buffer, n);
  }
  return text;
}

// The client of an earlier version: the request, the accepted answer, then
// stdio as one byte with SCM_RIGHTS. Still served.
TEST_F(DaemonRunTest, StdioAfterTheAcceptedAnswerStillRuns) {
  const int fd = ConnectUnix(daemon_.socket_path());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(
      fd, RequestFrame(DaemonRunRequest(ScriptSpec(root_, "echo two-step")))));
  const ReadResult accepted = ReadResponses(fd, 1, 20);
  ASSERT_EQ(accepted.responses.size(), 1u) << accepted.Describe();
  ASSERT_TRUE(accepted.responses[0].daemon_run().accepted())
      << accepted.responses[0].DebugString();
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int fds[3] = {null_fd, out[1], out[1]};
  const char byte = 'F';
  ASSERT_EQ(jail::SendWithFds(fd, &byte, 1, fds, 3, 0), 1);
  close(null_fd);
  close(out[1]);
  EXPECT_EQ(ReadToEof(out[0]), "two-step\n");
  close(out[0]);
  const ReadResult end = ReadResponses(fd, 1, 20);
  ASSERT_EQ(end.responses.size(), 1u) << end.Describe();
  EXPECT_TRUE(end.responses[0].daemon_run().finished());
  EXPECT_EQ(end.responses[0].daemon_run().exit_code(), 0);
  close(fd);
}

// Descriptors ride only on a daemon_run: with any other request they are
// closed by the daemon (not kept) and the request is refused.
TEST_F(DaemonRunTest, DescriptorsWithAnotherRequestAreClosedAndRefused) {
  const int fd = ConnectUnix(daemon_.socket_path());
  ASSERT_GE(fd, 0);
  proto::Request ping;
  ping.set_id(3);
  ping.mutable_ping();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const std::string frame = RequestFrame(ping);
  ASSERT_EQ(jail::SendWithFds(fd, frame.data(), frame.size(), &p[1], 1, 0),
            static_cast<ssize_t>(frame.size()));
  close(p[1]);  // the daemon's copy is the only writer left
  const ReadResult r = ReadUntilClosed(fd, 20);
  ASSERT_EQ(r.responses.size(), 1u) << r.Describe();
  EXPECT_EQ(r.responses[0].error().reason(), "malformed_request");
  EXPECT_NE(r.responses[0].error().message().find("only with a daemon_run"),
            std::string::npos)
      << r.responses[0].DebugString();
  EXPECT_EQ(ReadToEof(p[0]), "") << "the daemon kept the descriptor";
  close(p[0]);
  close(fd);
}

TEST_F(DaemonRunTest, ADaemonRunWithTwoDescriptorsIsRefused) {
  const int fd = ConnectUnix(daemon_.socket_path());
  ASSERT_GE(fd, 0);
  const std::string frame =
      RequestFrame(DaemonRunRequest(ScriptSpec(root_, "echo never")));
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const int fds[2] = {p[1], p[1]};
  ASSERT_EQ(jail::SendWithFds(fd, frame.data(), frame.size(), fds, 2, 0),
            static_cast<ssize_t>(frame.size()));
  close(p[1]);
  const ReadResult r = ReadUntilClosed(fd, 20);
  ASSERT_EQ(r.responses.size(), 1u) << r.Describe();
  EXPECT_EQ(r.responses[0].error().reason(), "malformed_request");
  EXPECT_NE(r.responses[0].error().message().find("2 descriptors"),
            std::string::npos)
      << r.responses[0].DebugString();
  EXPECT_EQ(ReadToEof(p[0]), "") << "the program ran, or a copy was kept";
  close(p[0]);
  close(fd);
}

TEST_F(DaemonRunTest, AnUnauthorizedUidIsRefused) {
  const RunResult r = RunAs(kStranger, {"run", Daemon(), "--root", shared_,
                                        "--uid", "1003", "--", "/bin/true"});
  EXPECT_TRUE(r.exited && r.exit_code == 125) << r.Describe();
  EXPECT_NE(r.err.find("unauthorized"), std::string::npos) << r.Describe();
  // Nor with --daemon-fallback: a refusal is not a missing daemon.
  const RunResult fallback =
      RunAs(kStranger, {"run", Daemon(), "--daemon-fallback", "--root", shared_,
                        "--uid", "1003", "--", "/bin/true"});
  EXPECT_EQ(fallback.exit_code, 125) << fallback.Describe();
}

TEST_F(DaemonRunTest, AnAllowedUserRunsAsHimselfInHisOwnDirectory) {
  const RunResult r = RunAs(kBob, {"run", Daemon(), "--root", bob_home_, "--",
                                   "/bin/sh", "-c", "id -u; id -g"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.out, "1000\n1000\n");
  // The raw protocol's positive control: the forged specs below are refused
  // for what they ask, not for how they are sent.
  const proto::Response ok = ForgedAs(kBob, BobsSpec());
  EXPECT_TRUE(ok.has_daemon_run() && ok.daemon_run().accepted())
      << ok.DebugString();
}

TEST_F(DaemonRunTest, ARootTheCallerMayNotUseIsRefused) {
  // Through the CLI: his own finalization cannot even resolve it.
  const RunResult r = RunAs(
      kBob, {"run", Daemon(), "--root", bob_in_alice_, "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  // Forged: a spec finalized by root for that directory, as Bob.
  proto::JailSpec spec = BobsSpec();
  spec.set_root(bob_in_alice_);
  spec.set_cwd(bob_in_alice_);
  const proto::Response refused = ForgedAs(kBob, spec);
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().reason(), "unauthorized");
  EXPECT_NE(refused.error().message().find("uid 1000 may not use"),
            std::string::npos)
      << refused.error().message();
}

TEST_F(DaemonRunTest, ASpecForAnotherUidIsRefused) {
  proto::JailSpec spec = BobsSpec(shared_);
  spec.set_uid(kAlice);
  spec.set_gid(kAlice);
  proto::Response refused = ForgedAs(kBob, spec);
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().reason(), "unauthorized");
  EXPECT_NE(refused.error().message().find("uid:"), std::string::npos)
      << refused.error().message();
  // Host uid 0 (root's files, even without capabilities).
  spec = BobsSpec(shared_);
  spec.set_uid(0);
  spec.set_gid(0);
  spec.set_allow_host_root(true);
  refused = ForgedAs(kBob, spec);
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().reason(), "unauthorized");
}

TEST_F(DaemonRunTest, ANetworkModeNoColdRunHasIsRefused) {
  proto::JailSpec spec = BobsSpec();
  spec.set_net(static_cast<proto::NetMode>(99));  // e.g. "the host's"
  const proto::Response refused = ForgedAs(kBob, spec);
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_NE(refused.error().message().find("net"), std::string::npos)
      << refused.error().message();
}

TEST_F(DaemonRunTest, ASpecJcsRunNeverFinalizedIsRefused) {
  // Defaults left out (here: no memory limit field at all, which the jail
  // would read as "unlimited").
  proto::JailSpec spec = BobsSpec();
  spec.clear_memory_bytes();
  const proto::Response refused = ForgedAs(kBob, spec);
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().reason(), "invalid_spec");
  EXPECT_NE(refused.error().message().find("memory_bytes"), std::string::npos)
      << refused.error().message();
}

TEST_F(DaemonRunTest, DaemonRunsAreOffUnlessSwitchedOn) {
  ::jcs::serve_test::Daemon off{std::string("socket_mode: 0666\n")};
  ASSERT_TRUE(off.Start()) << off.Log();
  const RunResult r =
      Shell(absl::StrCat("$JCS run --daemon=", off.socket_path(),
                         " --root \"$ROOT\" -- /bin/true"));
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_NE(r.err.find("daemon_run_disabled"), std::string::npos)
      << r.Describe();
  const RunResult fallback =
      Shell(absl::StrCat("$JCS run --daemon=", off.socket_path(),
                         " --daemon-fallback --root \"$ROOT\" -- /bin/true"));
  EXPECT_EQ(fallback.exit_code, 0) << fallback.Describe();
  EXPECT_NE(fallback.err.find("running cold (--daemon-fallback)"),
            std::string::npos)
      << fallback.Describe();
  EXPECT_EQ(off.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
