#include "tests/serve_harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/control_client.h"

extern char** environ;

namespace jcs::serve_test {
namespace {

constexpr size_t kChildStackBytes = 256 * 1024;

void SleepMs(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> BuildEnv(const RunOptions& options) {
  std::set<std::string> drop(options.unset_env.begin(),
                             options.unset_env.end());
  for (const std::string& kv : options.extra_env) {
    drop.insert(kv.substr(0, kv.find('=')));
  }
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    if (drop.count(kv.substr(0, kv.find('='))) == 0) env.push_back(kv);
  }
  env.insert(env.end(), options.extra_env.begin(), options.extra_env.end());
  return env;
}

ExitInfo FromStatus(int status) {
  ExitInfo info;
  if (WIFEXITED(status)) {
    info.exited = true;
    info.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info.term_signal = WTERMSIG(status);
  }
  return info;
}

// Waits for `pid` until `deadline`; false if it is still running then.
bool WaitUntil(pid_t pid, double deadline, ExitInfo* info) {
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *info = FromStatus(status);
      return true;
    }
    if (r < 0 && errno != EINTR) {
      *info = ExitInfo();
      return true;  // not our child any more: nothing to wait for
    }
    if (NowSeconds() >= deadline) return false;
    SleepMs(2);
  }
}

ExitInfo KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ExitInfo info = FromStatus(status);
  info.timed_out = true;
  return info;
}

struct SpawnArgs {
  char** argv;
  char** envp;
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  const char* cwd;
  const std::function<bool()>* setup;
};

int ChildMain(void* raw) {
  const SpawnArgs* args = static_cast<const SpawnArgs*>(raw);
  // A test that crashes takes its daemons and commands with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (dup2(args->stdin_fd, 0) < 0 || dup2(args->stdout_fd, 1) < 0 ||
      dup2(args->stderr_fd, 2) < 0) {
    _exit(127);
  }
  close_range(3, ~0U, 0);
  if (args->cwd != nullptr && chdir(args->cwd) != 0) _exit(127);
  if (args->setup != nullptr && *args->setup && !(*args->setup)()) _exit(127);
  execve(args->argv[0], args->argv, args->envp);
  _exit(127);
}

// clone(2) with `flags` (namespaces) | SIGCHLD running ChildMain.
pid_t Spawn(SpawnArgs* args, int flags) {
  void* stack = mmap(nullptr, kChildStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  const pid_t pid =
      clone(ChildMain, static_cast<char*>(stack) + kChildStackBytes,
            flags | SIGCHLD, args);
  munmap(stack, kChildStackBytes);  // the child has its own copy
  return pid;
}

// Parses frames from `bytes` starting at *offset; appends whole Responses.
// Returns false on a frame that is not a Response.
bool ParseFrames(const std::string& bytes, size_t* offset,
                 std::vector<proto::Response>* out) {
  while (true) {
    uint64_t length = 0;
    size_t i = 0;
    bool complete = false;
    for (; *offset + i < bytes.size() && i < 10; ++i) {
      const uint8_t b = static_cast<uint8_t>(bytes[*offset + i]);
      length |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        complete = true;
        break;
      }
    }
    if (!complete) return i < 10;
    const size_t start = *offset + i + 1;
    if (bytes.size() - start < length) return true;  // need more
    proto::Response response;
    if (!response.ParseFromArray(bytes.data() + start,
                                 static_cast<int>(length))) {
      return false;
    }
    out->push_back(std::move(response));
    *offset = start + length;
  }
}

ReadResult ReadImpl(int fd, size_t max_responses, double timeout_s) {
  ReadResult result;
  const double deadline = NowSeconds() + timeout_s;
  std::string bytes;
  size_t offset = 0;
  while (result.responses.size() < max_responses) {
    const double left = deadline - NowSeconds();
    if (left <= 0) {
      result.timed_out = true;
      break;
    }
    struct pollfd p = {fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      result.reset = true;
      break;
    }
    if (n == 0) {
      result.eof = true;
      break;
    }
    bytes.append(buf, static_cast<size_t>(n));
    if (!ParseFrames(bytes, &offset, &result.responses)) {
      result.malformed = true;
      break;
    }
  }
  if ((result.eof || result.reset) && offset != bytes.size()) {
    result.malformed = true;  // a partial frame before the close
  }
  return result;
}

}  // namespace

double NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

std::string JcsBinary() {
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    const char* dir = getenv(var);
    if (dir == nullptr || dir[0] == '\0') continue;
    const std::string path = std::string(dir) + "/jcs/tools/jcs";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "bazel-bin/tools/jcs";  // outside Bazel: from the workspace
}

// ---- files ----

TempDir::TempDir() {
  char tmpl[] = "/tmp/jcs-serve-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) abort();
  path_ = tmpl;
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() { RemoveTree(path_); }

std::string TempDir::MakeDir(const std::string& rel) const {
  const std::string path = Sub(rel);
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  return path;
}

std::string TempDir::MakeOwnedDir(const std::string& rel, uid_t uid,
                                  gid_t gid) const {
  const std::string path = MakeDir(rel);
  if (chown(path.c_str(), uid, gid) != 0) abort();
  return path;
}

std::string TempDir::WriteFile(const std::string& rel,
                               const std::string& content) const {
  const std::string path = Sub(rel);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// ---- processes ----

std::string ExitInfo::Describe() const {
  if (timed_out) {
    return absl::StrCat("timed out (killed; signal ", term_signal, ")");
  }
  if (exited) return absl::StrCat("exit ", exit_code);
  if (term_signal != 0) {
    return absl::StrCat("killed by signal ", term_signal, " (",
                        strsignal(term_signal), ")");
  }
  return "not reaped";
}

std::string RunResult::Describe() const {
  return absl::StrCat(ExitInfo::Describe(), "\n--- stdout ---\n", out,
                      "\n--- stderr ---\n", err);
}

int RunResult::ErrLines() const {
  int lines = 0;
  for (char c : err) lines += c == '\n';
  return lines;
}

RunOptions TimeoutAfter(double seconds) {
  RunOptions options;
  options.timeout_s = seconds;
  return options;
}

RunResult RunProgram(const std::vector<std::string>& argv_in,
                     const RunOptions& options) {
  RunResult result;
  std::vector<std::string> argv_strings = argv_in;
  std::vector<std::string> env_strings = BuildEnv(options);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = absl::StrCat("pipe: ", strerror(errno));
    return result;
  }
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  SpawnArgs args = {
      argv.data(), envp.data(),
      devnull,     out_pipe[1],
      err_pipe[1], options.cwd.empty() ? nullptr : options.cwd.c_str(),
      nullptr};
  const pid_t pid = Spawn(&args, 0);
  close(devnull);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.err = absl::StrCat("clone: ", strerror(errno));
    return result;
  }
  const double deadline = NowSeconds() + options.timeout_s;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    const double left = deadline - NowSeconds();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int ready = poll(fds, 2, static_cast<int>(left * 1000) + 1);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[8192];
      const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (struct pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  ExitInfo info;
  if (timed_out || !WaitUntil(pid, deadline, &info)) info = KillAndReap(pid);
  static_cast<ExitInfo&>(result) = info;
  return result;
}

RunResult RunJcs(const std::vector<std::string>& args,
                 const RunOptions& options) {
  std::vector<std::string> argv = {JcsBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, options);
}

// ---- daemon ----

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {
  config_path_ = dir_.Sub("config.txtpb");
  socket_path_ = dir_.Sub("jcs.sock");
  state_dir_ = dir_.Sub("state");
  log_path_ = dir_.Sub("serve.log");
}

Daemon::Daemon(const std::string& extra_config) : Daemon(DaemonOptions()) {
  options_.extra_config = extra_config;
}

Daemon::~Daemon() {
  if (running()) KillAndReap(pid_);
}

void Daemon::WriteConfig(const std::string& text) {
  dir_.WriteFile("config.txtpb", text);
  config_written_ = true;
}

bool Daemon::Start() {
  if (!config_written_) {
    std::string text;
    if (options_.set_paths) {
      text = absl::StrCat("socket_path: \"", socket_path_, "\"\nstate_dir: \"",
                          state_dir_, "\"\n");
    }
    WriteConfig(text + options_.extra_config + "\n");
  }
  std::vector<std::string> argv_strings = {JcsBinary(), "serve"};
  if (options_.pass_config) {
    argv_strings.insert(argv_strings.end(), {"--config", config_path_});
  }
  std::vector<std::string> env_strings = BuildEnv({});
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);
  // A restarted daemon appends to the same log: only what this start wrote
  // counts.
  const size_t log_start = Log().size();
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out = open(dir_.Sub("serve.out").c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int log =
      open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  SpawnArgs args = {argv.data(),
                    envp.data(),
                    devnull,
                    out,
                    options_.stderr_fd >= 0 ? options_.stderr_fd : log,
                    nullptr,
                    &options_.child_setup};
  pid_ = Spawn(&args, options_.clone_flags);
  close(devnull);
  close(out);
  close(log);
  if (pid_ < 0) return false;
  reaped_ = false;
  if (!options_.wait_ready) return true;
  const double deadline = NowSeconds() + options_.ready_timeout_s;
  while (NowSeconds() < deadline) {
    if (Log().find("jcs serve: listening on ", log_start) !=
        std::string::npos) {
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_ = FromStatus(status);
      return false;
    }
    SleepMs(2);
  }
  return false;
}

std::string Daemon::Log() const { return ReadFileOrEmpty(log_path_); }

void Daemon::Signal(int sig) {
  if (running()) kill(pid_, sig);
}

bool Daemon::WaitExited(double timeout_s, ExitInfo* info) {
  if (!reaped_ && pid_ > 0) {
    if (!WaitUntil(pid_, NowSeconds() + timeout_s, &exit_)) return false;
    reaped_ = true;
  }
  *info = exit_;
  return true;
}

ExitInfo Daemon::Wait(double timeout_s) {
  ExitInfo info;
  if (WaitExited(timeout_s, &info)) return info;
  exit_ = KillAndReap(pid_);
  reaped_ = true;
  return exit_;
}

ExitInfo Daemon::Stop(double timeout_s) {
  Signal(SIGTERM);
  return Wait(timeout_s);
}

std::string Daemon::StopCleanly(double timeout_s) {
  const ExitInfo info = Stop(timeout_s);
  std::string problems;
  if (!info.exited || info.exit_code != 0) {
    absl::StrAppend(&problems, "daemon ended with ", info.Describe(),
                    " (expected exit 0 after SIGTERM). ");
  }
  if (PathExists(socket_path_)) {
    absl::StrAppend(&problems, "socket file ", socket_path_, " left behind. ");
  }
  if (!problems.empty()) absl::StrAppend(&problems, "log:\n", Log());
  return problems;
}

// ---- processes on the host ----

pid_t ParentOf(pid_t pid) {
  const std::string text =
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  // The comm field may hold spaces and parentheses: parse after the last ')'.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  char state = 0;
  int ppid = -1;
  if (sscanf(text.c_str() + paren + 1, " %c %d", &state, &ppid) != 2) {
    return -1;
  }
  return ppid;
}

std::string CommOf(pid_t pid) {
  std::string comm = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/comm"));
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return children;
  while (struct dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    if (ParentOf(static_cast<pid_t>(pid)) == parent) {
      children.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(dir);
  return children;
}

pid_t ZygoteOf(pid_t daemon_pid, double timeout_s) {
  const double deadline = NowSeconds() + timeout_s;
  while (true) {
    for (pid_t child : ChildrenOf(daemon_pid)) {
      if (CommOf(child) == "jcs-zygote") return child;
    }
    if (NowSeconds() >= deadline) return -1;
    SleepMs(5);
  }
}

std::vector<pid_t> IdleWarmJails(pid_t zygote) {
  std::vector<pid_t> idle;
  for (pid_t init : ChildrenOf(zygote)) {
    for (pid_t program : ChildrenOf(init)) {
      // Before the command's exec the program process is still the init's
      // clone (named "init"); a jail in use runs something else.
      if (CommOf(program) == "init") {
        idle.push_back(init);
        break;
      }
    }
  }
  return idle;
}

bool WaitForIdleWarmJail(pid_t daemon_pid, double timeout_s) {
  const double deadline = NowSeconds() + timeout_s;
  const pid_t zygote = ZygoteOf(daemon_pid, timeout_s);
  if (zygote < 0) return false;
  while (IdleWarmJails(zygote).empty()) {
    if (NowSeconds() >= deadline) return false;
    SleepMs(10);
  }
  return true;
}

// ---- raw protocol ----

int ConnectUnix(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n =
        send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string Varint(uint64_t value) {
  std::string out;
  do {
    uint8_t byte = value & 0x7f;
    value >>= 7;
    if (value != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (value != 0);
  return out;
}

std::string RequestFrame(const proto::Request& request) {
  const std::string payload = request.SerializeAsString();
  return Varint(payload.size()) + payload;
}

std::string ReadResult::Describe() const {
  std::string out =
      absl::StrCat(responses.size(), " responses", eof ? ", eof" : "",
                   timed_out ? ", timeout" : "", reset ? ", reset" : "",
                   malformed ? ", malformed bytes" : "");
  for (size_t i = 0; i < responses.size() && i < 5; ++i) {
    absl::StrAppend(&out, "\n  ", responses[i].ShortDebugString());
  }
  return out;
}

ReadResult ReadResponses(int fd, size_t max_responses, double timeout_s) {
  return ReadImpl(fd, max_responses, timeout_s);
}

ReadResult ReadUntilClosed(int fd, double timeout_s) {
  return ReadImpl(fd, static_cast<size_t>(-1), timeout_s);
}

ReadResult DecodeResponses(const std::string& bytes) {
  ReadResult result;
  size_t offset = 0;
  if (!ParseFrames(bytes, &offset, &result.responses) ||
      offset != bytes.size()) {
    result.malformed = true;
  }
  return result;
}

std::string PingError(const std::string& socket_path, double timeout_s) {
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
      tools::ControlClient::Connect(socket_path, absl::Seconds(timeout_s));
  if (!client.ok()) return std::string(client.status().message());
  proto::Request request;
  request.mutable_ping();
  absl::StatusOr<proto::Response> response = (*client)->Call(request);
  if (!response.ok()) return std::string(response.status().message());
  if (!response->has_ping()) {
    return "unexpected response: " + response->ShortDebugString();
  }
  return "";
}

}  // namespace jcs::serve_test
