#include "tests/jcs_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

extern char** environ;

namespace jcs::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "jcs_runner: %s: %s\n", what.c_str(), strerror(errno));
  fflush(stderr);
  abort();
}

std::string Runfile(const std::string& rel) {
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    const char* dir = getenv(var);
    if (dir == nullptr || dir[0] == '\0') continue;
    const std::string path = std::string(dir) + "/jcs/" + rel;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  // Outside Bazel: relative to the workspace.
  const std::string local = "bazel-bin/" + rel;
  if (access(local.c_str(), X_OK) == 0) return local;
  errno = ENOENT;
  Die("cannot find " + rel + " in the runfiles");
}

void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Reads what is available; returns false at EOF or on a hard error.
bool ReadSome(int fd, std::string* into, size_t cap) {
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      if (into != nullptr && into->size() < cap) {
        into->append(
            buf, std::min<size_t>(static_cast<size_t>(n), cap - into->size()));
      }
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

// Rootless: a 0755 directory under /tmp with a copy of jcs and a "reports"
// directory owned by the jail user; removed when the test process exits.
const std::string& RootlessDir() {
  static const std::string* dir = [] {
    char tmpl[] = "/tmp/jcs-rootless-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
    auto* path = new std::string(tmpl);
    if (chmod(path->c_str(), 0755) != 0) Die("chmod " + *path);
    const std::string reports = *path + "/reports";
    if (mkdir(reports.c_str(), 0755) != 0 ||
        chown(reports.c_str(), kJailUid, kJailGid) != 0) {
      Die("reports dir " + reports);
    }
    std::atexit([] { RemoveTree(RootlessDir()); });
    return path;
  }();
  return *dir;
}

std::string ReportDir() {
  if (Rootless()) return RootlessDir() + "/reports";
  const char* dir = getenv("TEST_TMPDIR");
  if (dir != nullptr && dir[0] != '\0') return dir;
  return "/tmp";
}

}  // namespace

std::string ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string data;
  char buf[4096];
  while (data.size() < 65536) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

double NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

bool Rootless() {
  const char* value = getenv("JCS_TEST_ROOTLESS");
  return value != nullptr && std::string(value) == "1";
}

namespace {

// A copy of jcs that kJailUid can execute.
const std::string& JailUserJcsPath() {
  static const std::string* copy = [] {
    auto* path = new std::string(RootlessDir() + "/jcs");
    WriteHostFile(*path, ReadHostFile(Runfile("tools/jcs")), 0755);
    return path;
  }();
  return *copy;
}

}  // namespace

std::string JcsPath() {
  return Rootless() ? JailUserJcsPath() : Runfile("tools/jcs");
}
std::string ProbePath() { return Runfile("tests/syscall_probe"); }

std::string UniqueToken(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  std::ostringstream s;
  s << prefix << getpid() << "x" << static_cast<long>(NowSeconds() * 1000)
    << "x" << counter++ << "x" << (rd() % 1000000);
  return s.str();
}

std::string SleepMarker() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  std::ostringstream s;
  // 1000.<pid><counter><random>: a plain decimal duration that no other test
  // run uses at the same time.
  s << "1000." << getpid() << (counter++ % 10) << (100000 + rd() % 900000);
  return s.str();
}

std::string ProcessResult::Describe() const {
  std::ostringstream s;
  s << "pid " << pid << ", ";
  if (killed_by_harness) s << "KILLED BY THE HARNESS after its deadline, ";
  if (exited) {
    s << "exit " << exit_code;
  } else {
    s << "signal " << term_signal;
  }
  s << ", wall " << wall_s << " s\n--- stdout ---\n"
    << out.substr(0, 4000) << "\n--- stderr ---\n"
    << err.substr(0, 4000) << "\n";
  return s.str();
}

Process::Process(const std::vector<std::string>& argv,
                 const ProcessOptions& options)
    : options_(options) {
  std::vector<char*> cargv;
  std::vector<std::string> argv_copy = argv;
  for (std::string& a : argv_copy) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_copy;
  for (char** e = environ; *e != nullptr; ++e) env_copy.push_back(*e);
  for (const std::string& e : options.extra_env) env_copy.push_back(e);
  std::vector<char*> cenv;
  for (std::string& e : env_copy) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    Die("pipe2");
  }
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) Die("open /dev/null");
  std::string slave_path;
  if (options.pty_stdin) {
    pty_master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pty_master_ < 0 || grantpt(pty_master_) != 0 ||
        unlockpt(pty_master_) != 0) {
      Die("posix_openpt");
    }
    const char* name = ptsname(pty_master_);
    if (name == nullptr) Die("ptsname");
    slave_path = name;
  }

  const std::string join_cgroup_procs = options.join_cgroup + "/cgroup.procs";
  start_s_ = NowSeconds();
  pid_ = fork();
  if (pid_ < 0) Die("fork");
  if (pid_ == 0) {
    // Child: only simple syscalls from here on.
    signal(SIGPIPE, SIG_DFL);
    if (options.pty_stdin) {
      setsid();
      const int slave = open(slave_path.c_str(), O_RDWR);
      if (slave < 0) _exit(120);
      ioctl(slave, TIOCSCTTY, 0);
      dup2(slave, 0);
    } else {
      dup2(devnull, 0);
    }
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    // Move the inherited fds out of the way, then into place.
    std::vector<std::pair<int, int>> moved;
    for (const auto& [from, to] : options.inherit_fds) {
      const int tmp = fcntl(from, F_DUPFD_CLOEXEC, 600);
      if (tmp < 0) _exit(121);
      moved.push_back({tmp, to});
    }
    syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    if (!options.join_cgroup.empty()) {
      const int procs = open(join_cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (procs < 0 || write(procs, "0", 1) != 1) _exit(124);
      close(procs);
    }
    if (options.as_jail_user &&
        (setgroups(0, nullptr) != 0 ||
         setresgid(kJailGid, kJailGid, kJailGid) != 0 ||
         setresuid(kJailUid, kJailUid, kJailUid) != 0)) {
      _exit(123);
    }
    for (const auto& [tmp, to] : moved) {
      if (dup2(tmp, to) < 0) _exit(122);  // dup2 clears FD_CLOEXEC on `to`
    }
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  close(devnull);
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  SetNonBlocking(out_fd_);
  SetNonBlocking(err_fd_);
  if (pty_master_ >= 0) SetNonBlocking(pty_master_);
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) Die("pidfd_open");
  result_.pid = pid_;
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  for (int fd : {pidfd_, out_fd_, err_fd_, pty_master_}) {
    if (fd >= 0) close(fd);
  }
}

void Process::Signal(int sig) {
  if (!reaped_) syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0);
}

void Process::Pump(int timeout_ms) {
  struct pollfd fds[4];
  int n = 0;
  const int out_i = out_fd_ >= 0 ? n : -1;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  const int err_i = err_fd_ >= 0 ? n : -1;
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  const bool poll_pty = pty_master_ >= 0 && pty_polling_;
  const int pty_i = poll_pty ? n : -1;
  if (poll_pty) fds[n++] = {pty_master_, POLLIN, 0};
  const int pid_i = n;
  fds[n++] = {pidfd_, POLLIN, 0};
  if (poll(fds, n, timeout_ms) <= 0) return;
  if (out_i >= 0 && fds[out_i].revents != 0 &&
      !ReadSome(out_fd_, &result_.out, options_.max_output)) {
    close(out_fd_);
    out_fd_ = -1;
  }
  if (err_i >= 0 && fds[err_i].revents != 0 &&
      !ReadSome(err_fd_, &result_.err, options_.max_output)) {
    close(err_fd_);
    err_fd_ = -1;
  }
  if (pty_i >= 0 && fds[pty_i].revents != 0) {
    // Keep the master open until the child is reaped (closing it would hang
    // up the child's session); stop polling it once the slave side is gone.
    if (!ReadSome(pty_master_, nullptr, 0) ||
        (fds[pty_i].revents & (POLLHUP | POLLERR))) {
      pty_polling_ = false;
    }
  }
  if (fds[pid_i].revents & POLLIN) {
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) {
      reaped_ = true;
      result_.wall_s = NowSeconds() - start_s_;
      if (WIFEXITED(status)) {
        result_.exited = true;
        result_.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        result_.term_signal = WTERMSIG(status);
      }
    }
  }
}

ProcessResult Process::Wait() {
  double deadline = start_s_ + options_.kill_after_s;
  while (!reaped_) {
    const double left = deadline - NowSeconds();
    if (left <= 0 && !result_.killed_by_harness) {
      kill(pid_, SIGKILL);
      result_.killed_by_harness = true;
      deadline = NowSeconds() + 3600;
      continue;
    }
    Pump(static_cast<int>(std::clamp(left * 1000, 1.0, 200.0)));
  }
  // What the child wrote before it exited is in the pipes now.
  for (int* fd : {&out_fd_, &err_fd_}) {
    if (*fd < 0) continue;
    ReadSome(*fd, fd == &out_fd_ ? &result_.out : &result_.err,
             options_.max_output);
    close(*fd);
    *fd = -1;
  }
  return result_;
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const ProcessOptions& options) {
  Process process(argv, options);
  return process.Wait();
}

int JcsResult::StderrLines() const {
  return static_cast<int>(std::count(err.begin(), err.end(), '\n'));
}

std::string JcsResult::Describe() const {
  std::string s = ProcessResult::Describe();
  if (has_report) s += "--- report ---\n" + report.dump(2) + "\n";
  return s;
}

Project::Project(uid_t uid, gid_t gid) : uid_(uid), gid_(gid) {
  char tmpl[] = "/tmp/jcs-escape-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  base_ = tmpl;
  if (chmod(base_.c_str(), 0755) != 0) Die("chmod " + base_);
  // Rootless: jcs runs as the jail user, and writes its reports here.
  if (Rootless() && chown(base_.c_str(), kJailUid, kJailGid) != 0) {
    Die("chown " + base_);
  }
  root_ = base_ + "/root";
  if (mkdir(root_.c_str(), 0755) != 0) Die("mkdir " + root_);
  if (chown(root_.c_str(), uid_, gid_) != 0) Die("chown " + root_);
}

Project::~Project() { RemoveTree(base_); }

void Project::WriteFile(const std::string& rel, const std::string& content,
                        mode_t mode) const {
  const std::string path = Path(rel);
  WriteHostFile(path, content, mode);
  if (chown(path.c_str(), uid_, gid_) != 0) Die("chown " + path);
}

bool Project::Exists(const std::string& rel) const {
  struct stat st;
  return lstat(Path(rel).c_str(), &st) == 0;
}

std::string Project::ReadFile(const std::string& rel) const {
  return ReadHostFile(Path(rel));
}

std::string Project::InstallProbe() const {
  const std::string path = Path("syscall_probe");
  WriteHostFile(path, ReadHostFile(ProbePath()), 0755);
  return path;
}

namespace {

ProcessOptions ForJcs(ProcessOptions options) {
  if (Rootless()) options.as_jail_user = true;
  return options;
}

}  // namespace

JcsResult RunJcs(const std::vector<std::string>& args,
                 const ProcessOptions& options) {
  std::vector<std::string> argv = {options.as_jail_user ? JailUserJcsPath()
                                                        : JcsPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  if (Rootless() && args.size() > 0 && args[0] == "run") {
    argv.insert(argv.begin() + 2,
                {"--memory", "unlimited", "--pids", "unlimited"});
  }
  JcsResult result;
  static_cast<ProcessResult&>(result) = RunProcess(argv, ForJcs(options));
  return result;
}

namespace {

std::vector<std::string> JailArgv(const Project& project,
                                  const std::vector<std::string>& flags,
                                  const std::vector<std::string>& program,
                                  const std::string& report_path) {
  std::vector<std::string> argv = {JcsPath(),      "run",      "--root",
                                   project.root(), "--report", report_path};
  if (Rootless()) {
    // Before the test's flags: a case that sets a limit gets it (and the
    // refusal, without a delegated cgroup).
    argv.insert(argv.end(), {"--memory", "unlimited", "--pids", "unlimited"});
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  return argv;
}

void LoadReport(const std::string& path, JcsResult* result) {
  std::ifstream in(path);
  if (!in) return;
  std::stringstream buf;
  buf << in.rdbuf();
  result->report_text = buf.str();
  nlohmann::json parsed =
      nlohmann::json::parse(result->report_text, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    result->report = std::move(parsed);
    result->has_report = true;
  }
  unlink(path.c_str());
}

}  // namespace

JcsResult RunJail(const Project& project, const std::vector<std::string>& flags,
                  const std::vector<std::string>& argv,
                  const ProcessOptions& options) {
  const std::string report =
      ReportDir() + "/" + UniqueToken("report-") + ".json";
  JcsResult result;
  static_cast<ProcessResult&>(result) =
      RunProcess(JailArgv(project, flags, argv, report), ForJcs(options));
  LoadReport(report, &result);
  return result;
}

BackgroundJail::BackgroundJail(const Project& project,
                               const std::vector<std::string>& flags,
                               const std::vector<std::string>& argv,
                               const ProcessOptions& options)
    : report_path_(ReportDir() + "/" + UniqueToken("report-") + ".json"),
      process_(std::make_unique<Process>(
          JailArgv(project, flags, argv, report_path_), ForJcs(options))) {}

JcsResult BackgroundJail::Wait() {
  JcsResult result;
  static_cast<ProcessResult&>(result) = process_->Wait();
  LoadReport(report_path_, &result);
  return result;
}

std::vector<std::string> Python(const std::string& code,
                                const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", code};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::string> Bash(const std::string& script) {
  return {"/bin/bash", "-c", script};
}

std::vector<pid_t> ProcessesWithMarker(const std::string& marker,
                                       const std::string& comm) {
  std::vector<pid_t> found;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) Die("opendir /proc");
  const pid_t self = getpid();
  while (struct dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long pid = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid == self) continue;
    const std::string path = std::string("/proc/") + entry->d_name;
    // Plain reads: the process may exit at any moment (ESRCH mid-read).
    const std::string args = ReadSmallFile(path + "/cmdline");
    if (args.find(marker) == std::string::npos) continue;
    if (!comm.empty()) {
      std::string name = ReadSmallFile(path + "/comm");
      if (!name.empty() && name.back() == '\n') name.pop_back();
      if (name != comm) continue;
    }
    // Zombies have an empty cmdline already; double-check the state anyway.
    const std::string line = ReadSmallFile(path + "/stat");
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos ||
        (paren + 2 < line.size() &&
         (line[paren + 2] == 'Z' || line[paren + 2] == 'X'))) {
      continue;
    }
    found.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return found;
}

bool WaitForMarkerCount(const std::string& marker, size_t count,
                        double timeout_s, const std::string& comm) {
  const double deadline = NowSeconds() + timeout_s;
  for (;;) {
    if (ProcessesWithMarker(marker, comm).size() >= count) return true;
    if (NowSeconds() >= deadline) return false;
    usleep(10'000);
  }
}

bool WaitForNoMarker(const std::string& marker, double timeout_s) {
  const double deadline = NowSeconds() + timeout_s;
  for (;;) {
    if (ProcessesWithMarker(marker).empty()) return true;
    if (NowSeconds() >= deadline) return false;
    usleep(10'000);
  }
}

bool WaitForSignalTaken(pid_t pid, int sig, double timeout_s) {
  const double deadline = NowSeconds() + timeout_s;
  const unsigned long long bit = 1ULL << (sig - 1);
  for (;;) {
    // ShdPnd: signals sent to the process; SigPnd: to its main thread.
    std::istringstream status(
        ReadSmallFile("/proc/" + std::to_string(pid) + "/status"));
    unsigned long long pending = 0;
    bool found = false;
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("ShdPnd:", 0) == 0 || line.rfind("SigPnd:", 0) == 0) {
        pending |= std::stoull(line.substr(7), nullptr, 16);
        found = true;
      }
    }
    if (found && (pending & bit) == 0) return true;
    if (NowSeconds() >= deadline) return false;
    usleep(5'000);
  }
}

namespace {

void FindRunDirs(const std::string& dir, const std::string& prefix, int depth,
                 std::vector<std::string>* out) {
  if (depth > 10) return;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;  // vanished meanwhile, or not a directory
  while (struct dirent* entry = readdir(d)) {
    if (entry->d_type != DT_DIR) continue;
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    if (name.rfind(prefix, 0) == 0) out->push_back(path);
    FindRunDirs(path, prefix, depth + 1, out);
  }
  closedir(d);
}

}  // namespace

std::vector<std::string> RunCgroupDirs(pid_t jcs_pid) {
  std::vector<std::string> out;
  FindRunDirs("/sys/fs/cgroup", "run-" + std::to_string(jcs_pid) + "-", 0,
              &out);
  return out;
}

void RemoveRunCgroups(pid_t jcs_pid) {
  std::vector<std::string> dirs = RunCgroupDirs(jcs_pid);
  std::vector<std::string> all;
  for (const std::string& dir : dirs) {
    FindRunDirs(dir, "", 0, &all);  // every subdirectory
    all.push_back(dir);
  }
  std::sort(all.begin(), all.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  for (const std::string& dir : all) rmdir(dir.c_str());
}

std::vector<std::string> HostMounts() {
  std::vector<std::string> lines;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // Drop "mount_id parent_id": ids are reused, the rest identifies a mount.
    size_t pos = line.find(' ');
    if (pos != std::string::npos) pos = line.find(' ', pos + 1);
    lines.push_back(pos == std::string::npos ? line : line.substr(pos + 1));
  }
  return lines;
}

std::vector<std::string> NewLines(const std::vector<std::string>& before,
                                  const std::vector<std::string>& after) {
  std::multiset<std::string> old(before.begin(), before.end());
  std::vector<std::string> added;
  for (const std::string& line : after) {
    auto it = old.find(line);
    if (it == old.end()) {
      added.push_back(line);
    } else {
      old.erase(it);
    }
  }
  return added;
}

nlohmann::json LastJsonLine(const std::string& out) {
  std::istringstream in(out);
  std::string line;
  nlohmann::json last;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) last = std::move(parsed);
  }
  return last;
}

unsigned long NamespaceInode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) Die("stat " + path);
  return static_cast<unsigned long>(st.st_ino);
}

void WriteHostFile(const std::string& path, const std::string& content,
                   mode_t mode) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) Die("open " + path);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("write " + path);
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, mode) != 0) Die("fchmod " + path);
  close(fd);
}

std::string ReadHostFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("read " + path);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

bool ReadableAs(uid_t uid, gid_t gid, const std::string& path) {
  const pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(2);
    }
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    _exit(fd >= 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace jcs::testing
