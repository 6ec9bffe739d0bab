#include "jail/seccomp_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

using ::testing::ElementsAre;

constexpr uint64_t kTiocsti = 0x5412;
constexpr uint64_t kTioclinux = 0x541C;
constexpr uint64_t kFionread = 0x541B;
constexpr uint64_t kTcgets = 0x5401;
constexpr uint64_t kHigh = uint64_t{1} << 32;
constexpr int kX32Bit = 0x40000000;

const SeccompPolicy& Policy() {
  static const SeccompPolicy* policy = [] {
    absl::StatusOr<SeccompPolicy> compiled = SeccompPolicy::CompileDefault();
    if (!compiled.ok()) {
      fprintf(stderr, "CompileDefault: %s\n",
              compiled.status().ToString().c_str());
      abort();
    }
    return new SeccompPolicy(*std::move(compiled));
  }();
  return *policy;
}

uint32_t Eval(int nr, uint64_t arg0 = 0, uint64_t arg1 = 0,
              uint32_t arch = AUDIT_ARCH_X86_64) {
  seccomp_data data{};
  data.nr = nr;
  data.arch = arch;
  data.args[0] = arg0;
  data.args[1] = arg1;
  return Policy().Evaluate(data);
}

// The deny set, listed independently of the implementation.
constexpr char kDeniedNames[] =
    "ptrace process_vm_readv process_vm_writev bpf io_uring_setup "
    "io_uring_enter io_uring_register userfaultfd keyctl add_key request_key "
    "perf_event_open mount umount2 fsopen fsconfig fsmount fspick move_mount "
    "open_tree mount_setattr chroot pivot_root setns kexec_load "
    "kexec_file_load init_module finit_module delete_module swapon swapoff "
    "reboot open_by_handle_at name_to_handle_at syslog acct quotactl "
    "lookup_dcookie iopl ioperm settimeofday clock_settime clock_adjtime "
    "adjtimex uselib nfsservctl vhangup";

int Nr(const std::string& name) {
  return seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name.c_str());
}

std::vector<std::string> DeniedNames() {
  return absl::StrSplit(kDeniedNames, ' ', absl::SkipEmpty());
}

TEST(SeccompPolicyTest, CompilesToASaneProgram) {
  const SeccompPolicy& policy = Policy();
  printf("compiled policy: %zu BPF instructions\n", policy.instruction_count());
  EXPECT_GT(policy.instruction_count(), 100u);
  EXPECT_LT(policy.instruction_count(), 4096u);
  ASSERT_NE(policy.program()->filter, nullptr);
  EXPECT_EQ(policy.program()->len, policy.instruction_count());
  // libseccomp starts by loading seccomp_data.arch.
  EXPECT_EQ(policy.program()->filter[0].code, BPF_LD | BPF_W | BPF_ABS);
  EXPECT_EQ(policy.program()->filter[0].k, 4u);
}

TEST(SeccompPolicyTest, MoveKeepsProgramPointerValid) {
  absl::StatusOr<SeccompPolicy> compiled = SeccompPolicy::CompileDefault();
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  const size_t count = compiled->instruction_count();
  SeccompPolicy moved(*std::move(compiled));
  EXPECT_EQ(moved.program()->len, count);
  EXPECT_EQ(moved.instruction_count(), count);
  EXPECT_EQ(compiled->program()->len, 0u);
  absl::StatusOr<SeccompPolicy> other = SeccompPolicy::CompileDefault();
  ASSERT_TRUE(other.ok()) << other.status();
  *other = std::move(moved);
  EXPECT_EQ(other->program()->len, count);
  seccomp_data data{};
  data.nr = Nr("getpid");
  data.arch = AUDIT_ARCH_X86_64;
  EXPECT_EQ(other->Evaluate(data), SECCOMP_RET_ALLOW);
  EXPECT_EQ(other->ErrnoFor(Nr("ptrace")), EPERM);
}

TEST(SeccompPolicyTest, ErrnoFor) {
  const SeccompPolicy& policy = Policy();
  for (const std::string& name : DeniedNames()) {
    const int nr = Nr(name);
    ASSERT_GE(nr, 0) << name;
    EXPECT_EQ(policy.ErrnoFor(nr), EPERM) << name;
  }
  for (const char* name : {"clone", "unshare", "ioctl", "socket", "socketpair",
                           "seccomp", "personality"}) {
    EXPECT_EQ(policy.ErrnoFor(Nr(name)), EPERM) << name;
  }
  for (const char* name : {"clone3", "sysfs", "getpid", "read"}) {
    EXPECT_EQ(policy.ErrnoFor(Nr(name)), ENOSYS) << name;
  }
  EXPECT_EQ(policy.ErrnoFor(1000), ENOSYS);
  EXPECT_EQ(policy.ErrnoFor(-1), ENOSYS);
}

TEST(SeccompPolicyTest, SyscallName) {
  EXPECT_EQ(SeccompPolicy::SyscallName(SYS_ptrace), "ptrace");
  EXPECT_EQ(SeccompPolicy::SyscallName(SYS_getpid), "getpid");
  EXPECT_EQ(SeccompPolicy::SyscallName(SYS_clone3), "clone3");
  EXPECT_EQ(SeccompPolicy::SyscallName(1000), "syscall_1000");
}

TEST(SeccompPolicyTest, ArchitectureChecks) {
  EXPECT_EQ(Eval(SYS_getpid), SECCOMP_RET_ALLOW);
  // i386 (int 0x80) getpid is 20; everything foreign is killed.
  EXPECT_EQ(Eval(20, 0, 0, AUDIT_ARCH_I386), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Eval(SYS_getpid, 0, 0, AUDIT_ARCH_AARCH64),
            SECCOMP_RET_KILL_PROCESS);
  // x32 shares AUDIT_ARCH_X86_64 and sets bit 30 of nr.
  for (int nr : {SYS_getpid, SYS_read, SYS_ptrace, 0, 512, 0x3fffffff}) {
    EXPECT_EQ(Eval(kX32Bit | nr), SECCOMP_RET_KILL_PROCESS) << nr;
  }
}

TEST(SeccompPolicyTest, DefaultNotifiesAndClone3IsEnosys) {
  for (const std::string& name : DeniedNames()) {
    EXPECT_EQ(Eval(Nr(name)), SECCOMP_RET_USER_NOTIF) << name;
  }
  EXPECT_EQ(Eval(Nr("sysfs")), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(1000), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_clone3), SECCOMP_RET_ERRNO | ENOSYS);
  for (const char* name :
       {"read", "write", "openat", "mmap", "execve", "exit_group", "wait4",
        "futex", "rt_sigaction", "memfd_create", "getdents64", "pkey_alloc"}) {
    EXPECT_EQ(Eval(Nr(name)), SECCOMP_RET_ALLOW) << name;
  }
}

TEST(SeccompPolicyTest, IoctlComparesLow32Bits) {
  for (uint64_t high : std::vector<uint64_t>{0, kHigh, 0xffffffff00000000,
                                             uint64_t{0x1234} << 40}) {
    EXPECT_EQ(Eval(SYS_ioctl, 0, high | kTiocsti), SECCOMP_RET_USER_NOTIF)
        << high;
    EXPECT_EQ(Eval(SYS_ioctl, 0, high | kTioclinux), SECCOMP_RET_USER_NOTIF)
        << high;
    EXPECT_EQ(Eval(SYS_ioctl, 0, high | kTcgets), SECCOMP_RET_ALLOW) << high;
    EXPECT_EQ(Eval(SYS_ioctl, 0, high | kFionread), SECCOMP_RET_ALLOW) << high;
  }
  int notified = 0;
  for (uint64_t cmd = 0x5000; cmd < 0x6000; ++cmd) {
    if (Eval(SYS_ioctl, 3, cmd) != SECCOMP_RET_ALLOW) ++notified;
  }
  EXPECT_EQ(notified, 2);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t cmd = rng();
    const uint32_t low = static_cast<uint32_t>(cmd);
    const bool denied = low == kTiocsti || low == kTioclinux;
    EXPECT_EQ(Eval(SYS_ioctl, 0, cmd),
              denied ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_ALLOW)
        << std::hex << cmd;
  }
}

TEST(SeccompPolicyTest, CloneAndUnshareFlags) {
  const uint64_t kNewFlags[] = {0x20000,    0x02000000, 0x04000000, 0x08000000,
                                0x10000000, 0x20000000, 0x40000000};
  for (uint64_t flag : kNewFlags) {
    EXPECT_EQ(Eval(SYS_clone, flag | SIGCHLD), SECCOMP_RET_USER_NOTIF) << flag;
    EXPECT_EQ(Eval(SYS_unshare, flag), SECCOMP_RET_USER_NOTIF) << flag;
  }
  EXPECT_EQ(Eval(SYS_unshare, 0x80), SECCOMP_RET_USER_NOTIF);  // NEWTIME
  EXPECT_EQ(Eval(SYS_clone, 0x01200011), SECCOMP_RET_ALLOW);   // fork()
  EXPECT_EQ(Eval(SYS_clone, 0x003d0f00), SECCOMP_RET_ALLOW);   // pthread
  EXPECT_EQ(Eval(SYS_unshare, 0x400 | 0x200), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Eval(SYS_unshare, 0), SECCOMP_RET_ALLOW);
}

TEST(SeccompPolicyTest, SocketFamiliesAndTypes) {
  constexpr uint64_t kFlags = SOCK_CLOEXEC | SOCK_NONBLOCK;
  for (uint64_t family : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}) {
    for (uint64_t type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
      EXPECT_EQ(Eval(SYS_socket, family, type), SECCOMP_RET_ALLOW);
      EXPECT_EQ(Eval(SYS_socket, family, type | kFlags), SECCOMP_RET_ALLOW);
    }
    // Netlink is SOCK_RAW by convention and carries no raw IP.
    EXPECT_EQ(Eval(SYS_socket, family, SOCK_RAW), family == AF_NETLINK
                                                      ? SECCOMP_RET_ALLOW
                                                      : SECCOMP_RET_USER_NOTIF);
    EXPECT_EQ(Eval(SYS_socket, family | kHigh, SOCK_STREAM),
              SECCOMP_RET_USER_NOTIF);
  }
  EXPECT_EQ(Eval(SYS_socket, AF_PACKET, SOCK_RAW), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_socket, AF_PACKET, SOCK_DGRAM), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_socket, AF_VSOCK, SOCK_STREAM), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_socket, AF_ALG, SOCK_SEQPACKET), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_socketpair, AF_UNIX, SOCK_STREAM), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Eval(SYS_socketpair, AF_INET, SOCK_STREAM), SECCOMP_RET_USER_NOTIF);
}

TEST(SeccompPolicyTest, SeccompAndPersonality) {
  EXPECT_EQ(Eval(SYS_seccomp, 1, 0), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Eval(SYS_seccomp, 1, 1), SECCOMP_RET_ALLOW);  // TSYNC
  EXPECT_EQ(Eval(SYS_seccomp, 1, 8), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_seccomp, 1, 8 | 1), SECCOMP_RET_USER_NOTIF);
  for (uint64_t persona :
       {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    EXPECT_EQ(Eval(SYS_personality, persona), SECCOMP_RET_ALLOW) << persona;
  }
  EXPECT_EQ(Eval(SYS_personality, 0x0400000), SECCOMP_RET_USER_NOTIF);
  EXPECT_EQ(Eval(SYS_personality, 0x0040000), SECCOMP_RET_USER_NOTIF);
}

// ---------------------------------------------------------------------------
// End to end: the kernel runs the program, this test is the supervisor.

std::string ProbePath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir == nullptr) return "";
  return std::string(srcdir) + "/jcs/tests/syscall_probe";
}

bool SendFd(int sock, int fd) {
  char byte = 0;
  iovec iov = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  return sendmsg(sock, &msg, 0) == 1;
}

int ReceiveFd(int sock, int timeout_ms) {
  pollfd pfd = {sock, POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) != 1) return -1;
  char byte = 0;
  iovec iov = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return -1;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET ||
      cmsg->cmsg_type != SCM_RIGHTS) {
    return -1;
  }
  int fd = -1;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

struct Outcome {
  std::string output;
  std::map<std::string, std::string> results;  // probe -> last result
  std::map<std::string, int> notified;         // syscall name -> count
  std::vector<std::string> errors;
  int status = 0;
};

// Forks a child that installs the policy with a listener, hands the listener
// over and execs syscall_probe; answers every notification with
// -ErrnoFor(nr) until the child is gone (or a deadline passes).
Outcome RunUnderPolicy(const SeccompPolicy& policy,
                       const std::vector<std::string>& probes) {
  Outcome out;
  const std::string path = ProbePath();
  if (path.empty() || access(path.c_str(), X_OK) != 0) {
    out.errors.push_back("syscall_probe not found at '" + path + "'");
    return out;
  }
  std::vector<std::string> args = {path};
  args.insert(args.end(), probes.begin(), probes.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int sv[2];
  int pipefd[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
      pipe2(pipefd, O_CLOEXEC) != 0) {
    out.errors.push_back(std::string("socketpair/pipe: ") + strerror(errno));
    return out;
  }
  const sock_fprog* prog = policy.program();
  const pid_t pid = fork();
  if (pid < 0) {
    out.errors.push_back(std::string("fork: ") + strerror(errno));
    return out;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (dup2(pipefd[1], STDOUT_FILENO) < 0) _exit(120);
    const rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);  // the x32 probe dies by SIGSYS
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(121);
    const long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                  SECCOMP_FILTER_FLAG_NEW_LISTENER, prog);
    if (listener < 0) _exit(122);
    if (!SendFd(sv[1], static_cast<int>(listener))) _exit(123);
    close(static_cast<int>(listener));
    execv(argv[0], argv.data());
    _exit(124);
  }
  close(sv[1]);
  close(pipefd[1]);
  const int listener = ReceiveFd(sv[0], 20000);
  close(sv[0]);
  if (listener < 0) {
    out.errors.push_back("did not receive the listener fd");
    kill(pid, SIGKILL);
  }

  seccomp_notif* req = nullptr;
  seccomp_notif_resp* resp = nullptr;
  if (seccomp_notify_alloc(&req, &resp) != 0) {
    out.errors.push_back("seccomp_notify_alloc failed");
    kill(pid, SIGKILL);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int listen_fd = req != nullptr ? listener : -1;
  int pipe_fd = pipefd[0];
  bool exited = false;
  while (!exited || pipe_fd >= 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      out.errors.push_back("timed out; output so far:\n" + out.output);
      kill(pid, SIGKILL);
      if (!exited) waitpid(pid, &out.status, 0);
      exited = true;
      break;
    }
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {pipe_fd, POLLIN, 0}};
    if (poll(fds, 2, 100) < 0 && errno != EINTR) {
      out.errors.push_back(std::string("poll: ") + strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      memset(req, 0, sizeof(*req));
      if (seccomp_notify_receive(listen_fd, req) == 0) {
        ++out.notified[SeccompPolicy::SyscallName(req->data.nr)];
        if (req->data.arch != AUDIT_ARCH_X86_64) {
          out.errors.push_back("notification with a foreign arch");
        }
        resp->id = req->id;
        resp->val = 0;
        resp->error = -policy.ErrnoFor(req->data.nr);
        resp->flags = 0;
        // Fails only if the caller died meanwhile.
        seccomp_notify_respond(listen_fd, resp);
      }
    } else if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      listen_fd = -1;  // no task left in the filter
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      const ssize_t n = read(pipe_fd, buf, sizeof(buf));
      if (n > 0) {
        out.output.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        pipe_fd = -1;
      }
    }
    if (!exited && waitpid(pid, &out.status, WNOHANG) == pid) exited = true;
  }
  if (!exited) waitpid(pid, &out.status, 0);
  if (listener >= 0) close(listener);
  close(pipefd[0]);
  if (req != nullptr) seccomp_notify_free(req, resp);

  std::istringstream lines(out.output);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    out.results[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

struct Expectation {
  const char* probe;
  const char* result;
  const char* notified_as;  // nullptr: must not raise a notification
};

const Expectation kExpectations[] = {
    // Explicit denials: notified, answered EPERM.
    {"ptrace", "EPERM", "ptrace"},
    {"process_vm_readv", "EPERM", "process_vm_readv"},
    {"process_vm_writev", "EPERM", "process_vm_writev"},
    {"bpf", "EPERM", "bpf"},
    {"io_uring_setup", "EPERM", "io_uring_setup"},
    {"io_uring_enter", "EPERM", "io_uring_enter"},
    {"io_uring_register", "EPERM", "io_uring_register"},
    {"userfaultfd", "EPERM", "userfaultfd"},
    {"keyctl", "EPERM", "keyctl"},
    {"add_key", "EPERM", "add_key"},
    {"request_key", "EPERM", "request_key"},
    {"perf_event_open", "EPERM", "perf_event_open"},
    {"mount", "EPERM", "mount"},
    {"umount2", "EPERM", "umount2"},
    {"fsopen", "EPERM", "fsopen"},
    {"fsconfig", "EPERM", "fsconfig"},
    {"fsmount", "EPERM", "fsmount"},
    {"fspick", "EPERM", "fspick"},
    {"move_mount", "EPERM", "move_mount"},
    {"open_tree", "EPERM", "open_tree"},
    {"mount_setattr", "EPERM", "mount_setattr"},
    {"chroot", "EPERM", "chroot"},
    {"pivot_root", "EPERM", "pivot_root"},
    {"setns", "EPERM", "setns"},
    {"kexec_load", "EPERM", "kexec_load"},
    {"kexec_file_load", "EPERM", "kexec_file_load"},
    {"init_module", "EPERM", "init_module"},
    {"finit_module", "EPERM", "finit_module"},
    {"delete_module", "EPERM", "delete_module"},
    {"swapon", "EPERM", "swapon"},
    {"swapoff", "EPERM", "swapoff"},
    {"reboot", "EPERM", "reboot"},
    {"open_by_handle_at", "EPERM", "open_by_handle_at"},
    {"name_to_handle_at", "EPERM", "name_to_handle_at"},
    {"syslog", "EPERM", "syslog"},
    {"acct", "EPERM", "acct"},
    {"quotactl", "EPERM", "quotactl"},
    {"lookup_dcookie", "EPERM", "lookup_dcookie"},
    {"iopl", "EPERM", "iopl"},
    {"ioperm", "EPERM", "ioperm"},
    {"settimeofday", "EPERM", "settimeofday"},
    {"clock_settime", "EPERM", "clock_settime"},
    {"clock_adjtime", "EPERM", "clock_adjtime"},
    {"adjtimex", "EPERM", "adjtimex"},
    {"uselib", "EPERM", "uselib"},
    // Conditional denials.
    {"unshare_newuser", "EPERM", "unshare"},
    {"unshare_newns", "EPERM", "unshare"},
    {"unshare_newtime", "EPERM", "unshare"},
    {"clone_newuser", "EPERM", "clone"},
    {"socket_raw", "EPERM", "socket"},
    {"socket_packet", "EPERM", "socket"},
    {"socketpair_inet", "EPERM", "socketpair"},
    {"ioctl_tiocsti", "EPERM", "ioctl"},
    {"ioctl_tiocsti_high", "EPERM", "ioctl"},
    {"ioctl_tioclinux", "EPERM", "ioctl"},
    {"seccomp_new_listener", "EPERM", "seccomp"},
    {"personality_read_implies_exec", "EPERM", "personality"},
    // Default deny: notified, answered ENOSYS.
    {"sysfs", "ENOSYS", "sysfs"},
    {"unassigned_nr", "ENOSYS", "syscall_1000"},
    // clone3: ENOSYS straight from the filter, no notification.
    {"clone3", "ENOSYS", nullptr},
    // Allowed: the kernel's own answer to the invalid arguments.
    {"getpid", "OK", nullptr},
    {"read_badfd", "EBADF", nullptr},
    {"ioctl_fionread", "EBADF", nullptr},
    {"socket_inet", "OK", nullptr},
    {"socket_unix", "OK", nullptr},
    {"socket_netlink", "OK", nullptr},
    {"socketpair_unix", "OK", nullptr},
    {"unshare_files", "OK", nullptr},
    {"clone_plain", "OK", nullptr},
    {"personality_query", "OK", nullptr},
    {"seccomp_get_action_avail", "OK", nullptr},
};

// "name: got N, want M" for every syscall whose notification count differs.
std::string DiffCounts(const std::map<std::string, int>& got,
                       const std::map<std::string, int>& want) {
  std::map<std::string, std::pair<int, int>> both;
  for (const auto& [name, count] : got) both[name].first = count;
  for (const auto& [name, count] : want) both[name].second = count;
  std::string diff;
  for (const auto& [name, counts] : both) {
    if (counts.first != counts.second) {
      diff += name + ": notified " + std::to_string(counts.first) + ", want " +
              std::to_string(counts.second) + "\n";
    }
  }
  return diff;
}

TEST(SeccompPolicyEndToEndTest, ProbesGetTheExpectedOutcome) {
  std::vector<std::string> probes;
  std::map<std::string, int> want_notified;
  for (const Expectation& e : kExpectations) {
    probes.push_back(e.probe);
    if (e.notified_as != nullptr) ++want_notified[e.notified_as];
  }
  const Outcome out = RunUnderPolicy(Policy(), probes);
  ASSERT_TRUE(out.errors.empty()) << testing::PrintToString(out.errors);
  ASSERT_TRUE(WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0)
      << "status " << out.status << "\n"
      << out.output;
  for (const Expectation& e : kExpectations) {
    auto it = out.results.find(e.probe);
    ASSERT_NE(it, out.results.end()) << e.probe << " missing:\n" << out.output;
    EXPECT_EQ(it->second, e.result) << e.probe;
  }
  // Every denial was reported by name, exactly as often as it was probed:
  // nothing allowed was notified, and the probe's own startup (dynamic
  // loader, libc, stdio) needed nothing outside the allowlist.
  EXPECT_EQ(DiffCounts(out.notified, want_notified), "");
}

TEST(SeccompPolicyEndToEndTest, X32SyscallKillsTheProcess) {
  const Outcome out = RunUnderPolicy(Policy(), {"getpid", "x32_getpid"});
  ASSERT_TRUE(out.errors.empty()) << testing::PrintToString(out.errors);
  EXPECT_TRUE(WIFSIGNALED(out.status) && WTERMSIG(out.status) == SIGSYS)
      << "status " << out.status << "\n"
      << out.output;
  std::vector<std::string> lines;
  std::istringstream stream(out.output);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  EXPECT_THAT(lines, ElementsAre("getpid OK", "x32_getpid CALLING"));
  EXPECT_TRUE(out.notified.empty());
}

TEST(SeccompPolicyEndToEndTest, ProbeListsItsProbes) {
  const std::string path = ProbePath();
  ASSERT_EQ(access(path.c_str(), X_OK), 0) << path;
  FILE* list = popen((path + " --list").c_str(), "r");
  ASSERT_NE(list, nullptr);
  std::string names;
  char buf[256];
  while (fgets(buf, sizeof(buf), list) != nullptr) names += buf;
  EXPECT_EQ(pclose(list), 0);
  for (const Expectation& e : kExpectations) {
    EXPECT_NE(names.find(std::string(e.probe) + "\n"), std::string::npos)
        << e.probe;
  }
  EXPECT_NE(names.find("x32_getpid\n"), std::string::npos);
}

}  // namespace
}  // namespace jcs::jail
