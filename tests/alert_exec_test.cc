// Exec alert sinks run jailed (issue 13, supervisor/alert_exec.h), through
// the daemon's real runner in this process (as root, like the daemon):
//   - the alert document arrives on stdin, exit 0 is a delivery and any
//     other status an error naming it; output is read and dropped;
//   - it runs as nobody, with a private writable /tmp and a read-only root;
//   - the timeout kills the whole process tree;
//   - ATTACK: the sink program tries to read a host file outside its binds
//     (beside the daemon's state) and to connect to a listener on the host's
//     loopback; it can do neither. The same script run unjailed can do both
//     (checked first, so the test would fail if the jail let either through).
#include "supervisor/alert_exec.h"

#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"
#include "tests/tool_harness.h"

extern char** environ;

namespace jcs::serve_test {
namespace {

constexpr char kDocument[] =
    "{\"event\":\"security.sandbox_violation\",\"payload\":{},"
    "\"metadata\":{\"alert_severity\":\"critical\"},\"extra_args\":[]}\n";

class AlertExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The daemon's layout: a 0700 state directory holding its secrets and
    // the runs' roots. Not under /tmp: every jail has a private /tmp, which
    // would hide a host file there whatever the binds.
    char tmpl[] = "/var/tmp/jcs-alert-exec-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
    state_ = tmpl;
    runner_ = supervisor::JailedAlertExecRunner(state_ + "/alert-exec");
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(state_, ignored);
  }

  absl::Status Run(const std::vector<std::string>& argv,
                   const std::string& document = kDocument,
                   absl::Duration timeout = absl::Seconds(10)) {
    return runner_(argv, document, timeout, [] { return false; });
  }

  std::string state_;
  telemetry::alerts::ExecRunner runner_;
};

TEST_F(AlertExecTest, DocumentOnStdinAndExitStatus) {
  // Exit 0 only when stdin is exactly the document.
  const std::string script = absl::StrCat(
      "doc=$(cat); [ \"$doc\" = '",
      std::string(kDocument, sizeof(kDocument) - 2), "' ] && exit 0; exit 7");
  EXPECT_TRUE(Run({"/bin/sh", "-c", script}).ok());
  const absl::Status other =
      Run({"/bin/sh", "-c", script}, "{\"event\":\"other\"}\n");
  EXPECT_EQ(other.message(), "exec sink /bin/sh: exited with status 7");
  // The roots are removed after each run.
  EXPECT_TRUE(WaitFor(
      [&] {
        return RunProgram(
                   {"/bin/sh", "-c", "ls -A " + state_ + "/alert-exec | wc -l"})
                   .out == "0\n";
      },
      5));
}

// Never the daemon's root: the run's root belongs to the daemon, so the
// jail user is nobody; its /tmp is private and writable, the root is not.
TEST_F(AlertExecTest, RunsAsNobodyWithAPrivateTmp) {
  EXPECT_TRUE(Run({"/bin/sh", "-c",
                   "[ \"$(id -u)\" = 65534 ] || exit 9; "
                   "echo x > /tmp/scratch || exit 10; "
                   "touch ./file 2>/dev/null && exit 11; exit 0"})
                  .ok());
}

TEST_F(AlertExecTest, OutputIsDiscardedAndBounded) {
  // 8 MiB on stdout and stderr: read and dropped up to 1 MiB, then the
  // pipe closes and the writer dies of SIGPIPE (an error, but bounded).
  const absl::Status loud =
      Run({"/bin/sh", "-c", "head -c 8388608 /dev/zero; exit 0"});
  EXPECT_TRUE(loud.ok() || absl::StrContains(loud.message(), "signal 13"))
      << loud;
  // A little output is simply dropped.
  EXPECT_TRUE(Run({"/bin/sh", "-c", "echo hello; echo oops >&2; exit 0"}).ok());
}

TEST_F(AlertExecTest, TimeoutKillsTheWholeTree) {
  const std::string marker = UniqueSleepMarker();
  const absl::Time start = absl::Now();
  const absl::Status s = Run({"/bin/sh", "-c",
                              absl::StrCat("/bin/sleep ", marker, " & ",
                                           "/bin/sleep ", marker, "; exit 0")},
                             kDocument, absl::Milliseconds(500));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "timed out after 500ms")) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // Both sleeps, the background one included, are gone.
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 0; }, 5));
}

TEST_F(AlertExecTest, CancelKillsARunAtOnce) {
  const std::string marker = UniqueSleepMarker();
  const absl::Time start = absl::Now();
  const absl::Status s = runner_(
      {"/bin/sleep", marker}, kDocument, absl::Seconds(60),
      [start] { return absl::Now() - start > absl::Milliseconds(300); });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(CountProcessesWithArg(marker), 0);
}

TEST_F(AlertExecTest, RefusesARelativeProgram) {
  EXPECT_EQ(Run({"sh", "-c", "exit 0"}).code(),
            absl::StatusCode::kInvalidArgument);
}

// A TCP listener on the host's 127.0.0.1 (an ephemeral port).
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "listener: " << strerror(errno);
    }
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }
  // Connections accepted so far (non-blocking).
  int Accepted() {
    for (;;) {
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return accepted_;
      close(c);
      ++accepted_;
    }
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  int accepted_ = 0;
};

// The attack, one probe per exit status: 21 the secret was read, 22 the
// host's loopback listener was reached, 0 neither. bash for /dev/tcp.
std::string AttackScript(const std::string& secret, int port) {
  return absl::StrCat("cat > /dev/null; ", "grep -q 's3cr3t\\|root' '", secret,
                      "' 2>/dev/null && exit 21; ",
                      "(exec 3<>/dev/tcp/127.0.0.1/", port,
                      ") 2>/dev/null && exit 22; exit 0");
}

// Runs `argv` unjailed (as the daemon would without the jail).
int RunUnjailed(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.data()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0].c_str(), nullptr, nullptr, args.data(),
                  environ) != 0) {
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(AlertExecTest, AttackSinkCannotReadHostFilesOrReachLoopback) {
  // A secret beside the runs' roots, in the daemon's state directory, world
  // readable (only the binds may stop it), and a listener on the host.
  const std::string secret = state_ + "/journal-secret";
  std::ofstream(secret) << "s3cr3t\n";
  ASSERT_EQ(chmod(secret.c_str(), 0644), 0);
  ASSERT_EQ(chmod(state_.c_str(), 0755), 0);
  Listener listener;
  const std::string port_only = AttackScript("/nonexistent", listener.port());
  const std::string read_only = AttackScript(secret, 1);

  // Control: unjailed, each probe succeeds (the test can fail).
  EXPECT_EQ(RunUnjailed({"/bin/bash", "-c", read_only}), 21);
  EXPECT_EQ(RunUnjailed({"/bin/bash", "-c", port_only}), 22);
  ASSERT_TRUE(WaitFor([&] { return listener.Accepted() == 1; }, 5));

  // Jailed: the read probe works on what the jail binds (/etc/passwd:
  // exit 21 is reported), and neither attack gets through.
  EXPECT_EQ(Run({"/bin/bash", "-c", AttackScript("/etc/passwd", 1)}).message(),
            "exec sink /bin/bash: exited with status 21");
  const absl::Status read = Run({"/bin/bash", "-c", read_only});
  EXPECT_TRUE(read.ok()) << read;
  const absl::Status connect = Run({"/bin/bash", "-c", port_only});
  EXPECT_TRUE(connect.ok()) << connect;
  EXPECT_EQ(listener.Accepted(), 1);
}

}  // namespace
}  // namespace jcs::serve_test
