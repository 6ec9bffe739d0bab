#include "tools/private_daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

// Unix socket paths hold at most 107 bytes.
constexpr size_t kMaxSocketPath = 107;

void RemoveTree(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);  // never follows symlinks
}

std::string ExitText(int wstatus) {
  if (WIFEXITED(wstatus)) return absl::StrCat("exit ", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return absl::StrCat("signal ", WTERMSIG(wstatus));
  return "unknown status";
}

}  // namespace

absl::StatusOr<std::unique_ptr<PrivateDaemon>> PrivateDaemon::Start(
    absl::Duration timeout, const std::string& extra_config,
    const std::string& tag) {
  const char* tmp = getenv("TMPDIR");
  const std::string base = tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp";
  // The path goes into the daemon's text-format config inside quotes: only
  // characters that need no escaping there.
  for (const char c : base) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' ||
          c == '.' || c == '_' || c == '-')) {
      return absl::InvalidArgumentError(
          absl::StrCat("TMPDIR: '", base,
                       "' has a character other than [A-Za-z0-9/._-]; set "
                       "TMPDIR to a plain directory path for the private "
                       "daemon's socket and state"));
    }
  }
  std::string templ = base + "/" + tag + ".XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("creating the private daemon's directory ", templ));
  }
  const std::string dir = templ;
  const std::string socket_path = dir + "/jcs.sock";
  if (socket_path.size() > kMaxSocketPath) {
    RemoveTree(dir);
    return absl::InvalidArgumentError(
        absl::StrCat("the private daemon's socket path ", socket_path,
                     " is longer than 107 bytes: set TMPDIR to a shorter "
                     "directory"));
  }
  const std::string config = dir + "/serve.cfg";
  {
    std::ofstream out(config);
    out << "socket_path: \"" << socket_path << "\"\nstate_dir: \"" << dir
        << "/state\"\n"
        << extra_config;
    if (!out) {
      RemoveTree(dir);
      return absl::InternalError("writing the private daemon's config");
    }
  }
  // Everything the child needs, built before fork: between fork and exec it
  // only makes system calls.
  std::vector<std::string> args = {"jcs", "serve", "--config", config};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    RemoveTree(dir);
    return absl::ErrnoToStatus(err, "fork");
  }
  if (pid == 0) {
    // Drains when this command dies; stdout and stdin are the MCP client's,
    // never the daemon's.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
      _exit(127);
    }
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  std::unique_ptr<PrivateDaemon> daemon(new PrivateDaemon(dir, pid));
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int wstatus = 0;
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      daemon->pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("the private jcs serve exited (", ExitText(wstatus),
                       ") before it answered; its errors are above"));
    }
    if (absl::StatusOr<std::unique_ptr<ControlClient>> client =
            ControlClient::Connect(socket_path, absl::Seconds(5));
        client.ok()) {
      proto::Request ping;
      ping.mutable_ping();
      if ((*client)->Call(std::move(ping)).ok()) return daemon;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the private jcs serve did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

PrivateDaemon::~PrivateDaemon() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);  // a drain: running calls end, the journal commits
    int wstatus = 0;
    while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  RemoveTree(dir_);
}

}  // namespace jcs::tools
