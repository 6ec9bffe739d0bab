#include "jail/seccomp_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace jcs::jail {
namespace {

// Flags and constants that older userspace headers may lack.
constexpr uint64_t kCloneNewTime = 0x00000080;
constexpr uint64_t kCloneNewNs = 0x00020000;
constexpr uint64_t kCloneNewCgroup = 0x02000000;
constexpr uint64_t kCloneNewUts = 0x04000000;
constexpr uint64_t kCloneNewIpc = 0x08000000;
constexpr uint64_t kCloneNewUser = 0x10000000;
constexpr uint64_t kCloneNewPid = 0x20000000;
constexpr uint64_t kCloneNewNet = 0x40000000;
constexpr uint64_t kCloneNewMask = kCloneNewNs | kCloneNewCgroup |
                                   kCloneNewUts | kCloneNewIpc | kCloneNewUser |
                                   kCloneNewPid | kCloneNewNet;
constexpr uint64_t kUnshareNewMask = kCloneNewMask | kCloneNewTime;
constexpr uint64_t kSeccompFilterFlagNewListener = 1UL << 3;
constexpr uint32_t kTiocsti = 0x5412;
constexpr uint32_t kTioclinux = 0x541C;
constexpr int kSysX32Bit = 0x40000000;

// Allowed unconditionally: the x86_64 part of moby's default profile
// (profiles/seccomp/default.json) without the capability-gated entries, the
// 32-bit-only names, the deny set below and the syscalls that get argument
// conditions. Names this libseccomp does not know are skipped (they then fall
// to the default action and get ENOSYS).
constexpr char kAllowed[] =
    "accept accept4 access alarm arch_prctl bind brk cachestat capget capset "
    "chdir chmod chown clock_getres clock_gettime clock_nanosleep close "
    "close_range connect copy_file_range creat dup dup2 dup3 epoll_create "
    "get_mempolicy mbind set_mempolicy epoll_create1 epoll_ctl epoll_ctl_old "
    "epoll_pwait epoll_pwait2 epoll_wait "
    "epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat "
    "faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod fchmodat "
    "fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork "
    "fremovexattr fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue "
    "futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents "
    "getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid "
    "getpgrp getpid getppid getpriority getrandom getresgid getresuid "
    "getrlimit get_robust_list getrusage getsid getsockname getsockopt "
    "get_thread_area gettid gettimeofday getuid getxattr inotify_add_watch "
    "inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy "
    "io_getevents io_pgetevents ioprio_get ioprio_set io_setup io_submit kill "
    "landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown "
    "lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek "
    "lsetxattr lstat madvise map_shadow_stack membarrier memfd_create "
    "memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall "
    "mmap modify_ldt mprotect mq_getsetattr mq_notify mq_open mq_timedreceive "
    "mq_timedsend mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync "
    "munlock munlockall munmap nanosleep newfstatat open openat openat2 pause "
    "pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free "
    "pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64 "
    "process_mrelease pselect6 pwrite64 pwritev pwritev2 read readahead "
    "readlink readlinkat readv recvfrom recvmmsg recvmsg remap_file_pages "
    "removexattr rename renameat renameat2 restart_syscall rmdir rseq "
    "rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn "
    "rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity "
    "sched_getattr sched_getparam sched_get_priority_max "
    "sched_get_priority_min sched_getscheduler sched_rr_get_interval "
    "sched_setaffinity sched_setattr sched_setparam sched_setscheduler "
    "sched_yield select semctl semget semop semtimedop sendfile sendmmsg "
    "sendmsg sendto setfsgid setfsuid setgid setgroups setitimer setpgid "
    "setpriority setregid setresgid setresuid setreuid setrlimit "
    "set_robust_list setsid setsockopt set_thread_area set_tid_address setuid "
    "setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd "
    "signalfd4 splice stat statfs statx symlink symlinkat sync sync_file_range "
    "syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun "
    "timer_gettime timer_settime timerfd_create timerfd_gettime "
    "timerfd_settime times tkill truncate umask uname unlink unlinkat utime "
    "utimensat utimes vfork vmsplice wait4 waitid write writev";

// Explicit denials: not allowed at all, notified and answered with EPERM.
constexpr char kDenied[] =
    "ptrace process_vm_readv process_vm_writev process_madvise pidfd_getfd "
    "kcmp bpf io_uring_setup io_uring_enter io_uring_register userfaultfd "
    "keyctl add_key request_key perf_event_open mount umount2 fsopen fsconfig "
    "fsmount fspick move_mount open_tree mount_setattr chroot pivot_root setns "
    "kexec_load kexec_file_load init_module finit_module delete_module swapon "
    "swapoff reboot open_by_handle_at name_to_handle_at syslog acct quotactl "
    "quotactl_fd lookup_dcookie iopl ioperm settimeofday clock_settime "
    "clock_adjtime adjtimex uselib nfsservctl vhangup fanotify_init "
    "sethostname setdomainname";

// Allowed only under argument conditions (rules below); a call that fails its
// condition falls to the default action and is answered with EPERM.
constexpr char kConditional[] =
    "clone unshare ioctl socket socketpair seccomp personality";

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

absl::Status LibseccompError(int rc, absl::string_view step) {
  return absl::InternalError(
      absl::StrCat("seccomp policy: ", step, " failed: ", std::strerror(-rc)));
}

int Resolve(const std::string& name) {
  return seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name.c_str());
}

std::vector<std::string> Names(const char* list) {
  return absl::StrSplit(list, ' ', absl::SkipEmpty());
}

absl::Status AddRule(scmp_filter_ctx ctx, uint32_t action, int nr,
                     absl::string_view name,
                     const std::vector<scmp_arg_cmp>& cmps) {
  int rc = seccomp_rule_add_exact_array(ctx, action, nr, cmps.size(),
                                        cmps.empty() ? nullptr : cmps.data());
  if (rc < 0) {
    return LibseccompError(rc, absl::StrCat("seccomp_rule_add(", name, ")"));
  }
  return absl::OkStatus();
}

// The kernel reads some arguments (ioctl's cmd) as 32-bit values, so a deny
// compare must ignore the upper half. libseccomp cannot express "low 32 bits
// not in S" directly (SCMP_CMP_NE compares all 64 bits, and an unconditional
// ALLOW would swallow conditional rules on the same syscall), so this walks
// the binary trie of S from bit 31 down and adds one ALLOW rule per subtree
// that contains no value of S: (arg & high_bits_mask) == prefix. The rules
// cover exactly the 32-bit values outside S, whatever the upper 32 bits are.
absl::Status AllowLow32NotIn(scmp_filter_ctx ctx, int nr,
                             absl::string_view name, unsigned arg,
                             uint32_t prefix, int bit,
                             const std::vector<uint32_t>& denied) {
  for (uint32_t value : {0u, 1u}) {
    const uint32_t child = prefix | (value << bit);
    std::vector<uint32_t> subset;
    for (uint32_t d : denied) {
      if (((d >> bit) & 1u) == value) subset.push_back(d);
    }
    if (subset.empty()) {
      const uint64_t mask = 0xffffffffULL & ~((1ULL << bit) - 1);
      scmp_arg_cmp cmp = {arg, SCMP_CMP_MASKED_EQ, mask, child};
      absl::Status status = AddRule(ctx, SCMP_ACT_ALLOW, nr, name, {cmp});
      if (!status.ok()) return status;
    } else if (bit > 0) {
      absl::Status status =
          AllowLow32NotIn(ctx, nr, name, arg, child, bit - 1, subset);
      if (!status.ok()) return status;
    }
    // bit == 0 with a non-empty subset: that value is denied, no rule.
  }
  return absl::OkStatus();
}

absl::Status AddConditionalRules(scmp_filter_ctx ctx) {
  const int clone_nr = Resolve("clone");
  const int unshare_nr = Resolve("unshare");
  const int ioctl_nr = Resolve("ioctl");
  const int socket_nr = Resolve("socket");
  const int socketpair_nr = Resolve("socketpair");
  const int seccomp_nr = Resolve("seccomp");
  const int personality_nr = Resolve("personality");
  for (int nr : {clone_nr, unshare_nr, ioctl_nr, socket_nr, socketpair_nr,
                 seccomp_nr, personality_nr}) {
    if (nr < 0) {
      return absl::InternalError(
          "seccomp policy: libseccomp cannot resolve a conditional syscall");
    }
  }

  // clone(flags, ...) on x86_64: no namespace flags. (clone3 hides its flags
  // in a struct and is answered ENOSYS elsewhere.)
  absl::Status status =
      AddRule(ctx, SCMP_ACT_ALLOW, clone_nr, "clone",
              {SCMP_A0(SCMP_CMP_MASKED_EQ, kCloneNewMask, 0)});
  if (!status.ok()) return status;
  status = AddRule(ctx, SCMP_ACT_ALLOW, unshare_nr, "unshare",
                   {SCMP_A0(SCMP_CMP_MASKED_EQ, kUnshareNewMask, 0)});
  if (!status.ok()) return status;

  // ioctl(fd, cmd, ...): cmd is an unsigned int in the kernel.
  status = AllowLow32NotIn(ctx, ioctl_nr, "ioctl", /*arg=*/1, /*prefix=*/0,
                           /*bit=*/31, {kTiocsti, kTioclinux});
  if (!status.ok()) return status;

  // socket(family, type, protocol): the type's low nibble is the socket type,
  // the rest are SOCK_NONBLOCK/SOCK_CLOEXEC.
  for (uint64_t family : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}) {
    for (uint64_t type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
      status = AddRule(ctx, SCMP_ACT_ALLOW, socket_nr, "socket",
                       {SCMP_A0(SCMP_CMP_EQ, family),
                        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, type)});
      if (!status.ok()) return status;
    }
  }
  // Netlink speaks SOCK_RAW by convention (glibc's getifaddrs, iproute2); it
  // carries no raw IP, and the jail's network namespace is its own.
  status = AddRule(ctx, SCMP_ACT_ALLOW, socket_nr, "socket",
                   {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW)});
  if (!status.ok()) return status;
  status = AddRule(ctx, SCMP_ACT_ALLOW, socketpair_nr, "socketpair",
                   {SCMP_A0(SCMP_CMP_EQ, AF_UNIX)});
  if (!status.ok()) return status;

  // seccomp(op, flags, args): filters may stack, but no listener of their own.
  status =
      AddRule(ctx, SCMP_ACT_ALLOW, seccomp_nr, "seccomp",
              {SCMP_A1(SCMP_CMP_MASKED_EQ, kSeccompFilterFlagNewListener, 0)});
  if (!status.ok()) return status;

  // personality(persona): the values moby allows (PER_LINUX, PER_LINUX32,
  // UNAME26 variants, query). The kernel takes an unsigned int.
  for (uint64_t persona :
       {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    status = AddRule(ctx, SCMP_ACT_ALLOW, personality_nr, "personality",
                     {SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffff, persona)});
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<sock_filter>> ExportBpf(scmp_filter_ctx ctx) {
  const int fd = memfd_create("jcs-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat(
        "seccomp policy: memfd_create failed: ", std::strerror(errno)));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  int rc = seccomp_export_bpf(ctx, fd);
  if (rc < 0) return LibseccompError(rc, "seccomp_export_bpf");
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) {
    return absl::InternalError(
        absl::StrCat("seccomp policy: lseek on exported filter failed: ",
                     std::strerror(errno)));
  }
  if (size == 0 || size % sizeof(sock_filter) != 0 ||
      size / sizeof(sock_filter) > BPF_MAXINSNS) {
    return absl::InternalError(
        absl::StrCat("seccomp policy: exported filter has an invalid size of ",
                     size, " bytes (limit ", BPF_MAXINSNS, " instructions)"));
  }
  std::vector<sock_filter> filter(size / sizeof(sock_filter));
  char* out = reinterpret_cast<char*>(filter.data());
  off_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, out + done, size - done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InternalError(
          absl::StrCat("seccomp policy: reading the exported filter failed: ",
                       n == 0 ? "short read" : std::strerror(errno)));
    }
    done += n;
  }
  return filter;
}

seccomp_data MakeData(int nr, uint32_t arch, uint64_t arg0 = 0,
                      uint64_t arg1 = 0) {
  seccomp_data data{};
  data.nr = nr;
  data.arch = arch;
  data.args[0] = arg0;
  data.args[1] = arg1;
  return data;
}

}  // namespace

absl::StatusOr<SeccompPolicy> SeccompPolicy::CompileDefault() {
  // libseccomp 2.5.4 accepts SCMP_ACT_NOTIFY as the default action (it only
  // refuses rules whose action equals the default, with -EACCES): every
  // syscall without an ALLOW/ERRNO rule, and every conditional syscall whose
  // condition fails, raises a user notification.
  Ctx ctx(seccomp_init(SCMP_ACT_NOTIFY));
  if (ctx == nullptr) {
    return absl::InternalError(
        "seccomp policy: seccomp_init(SCMP_ACT_NOTIFY) failed");
  }
  // The context starts with the native arch only; anything else, and x32
  // numbers (libseccomp emits "nr >= 0x40000000 -> bad arch" for x86_64
  // filters without x32; checked below), kills the process.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH,
                            SCMP_ACT_KILL_PROCESS);
  if (rc < 0) return LibseccompError(rc, "seccomp_attr_set(ACT_BADARCH)");
  // A binary search over syscall numbers instead of a linear chain: fewer
  // instructions run per syscall and a faster load.
  rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (rc < 0) return LibseccompError(rc, "seccomp_attr_set(CTL_OPTIMIZE)");

  SeccompPolicy policy;
  std::vector<int> allowed;
  for (const std::string& name : Names(kAllowed)) {
    const int nr = Resolve(name);
    if (nr < 0) continue;  // unknown to this libseccomp, or not x86_64
    allowed.push_back(nr);
    absl::Status status = AddRule(ctx.get(), SCMP_ACT_ALLOW, nr, name, {});
    if (!status.ok()) return status;
  }
  std::sort(allowed.begin(), allowed.end());
  auto add_eperm = [&](const std::string& name) -> absl::Status {
    const int nr = Resolve(name);
    if (nr < 0) return absl::OkStatus();
    if (std::binary_search(allowed.begin(), allowed.end(), nr)) {
      return absl::InternalError(absl::StrCat("seccomp policy: ", name,
                                              " is both allowed and denied"));
    }
    policy.eperm_syscalls_.push_back(nr);
    return absl::OkStatus();
  };
  for (const std::string& name : Names(kDenied)) {
    absl::Status status = add_eperm(name);
    if (!status.ok()) return status;
  }
  for (const std::string& name : Names(kConditional)) {
    absl::Status status = add_eperm(name);
    if (!status.ok()) return status;
  }
  std::sort(policy.eperm_syscalls_.begin(), policy.eperm_syscalls_.end());
  policy.eperm_syscalls_.erase(
      std::unique(policy.eperm_syscalls_.begin(), policy.eperm_syscalls_.end()),
      policy.eperm_syscalls_.end());

  absl::Status status = AddConditionalRules(ctx.get());
  if (!status.ok()) return status;

  // glibc probes clone3 and falls back to clone on ENOSYS; no notification.
  const int clone3_nr = Resolve("clone3");
  if (clone3_nr >= 0) {
    status =
        AddRule(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), clone3_nr, "clone3", {});
    if (!status.ok()) return status;
  }

  absl::StatusOr<std::vector<sock_filter>> filter = ExportBpf(ctx.get());
  if (!filter.ok()) return filter.status();
  policy.filter_ = *std::move(filter);
  policy.SyncProgram();

  // Fail closed if libseccomp's output does not do what this policy relies
  // on (foreign arch, x32 numbers, default action, clone3, masked ioctl).
  struct Check {
    const char* what;
    seccomp_data data;
    uint32_t want;
  };
  const Check checks[] = {
      {"i386 syscall killed", MakeData(20, AUDIT_ARCH_I386),
       SECCOMP_RET_KILL_PROCESS},
      {"x32 syscall killed",
       MakeData(kSysX32Bit | Resolve("getpid"), AUDIT_ARCH_X86_64),
       SECCOMP_RET_KILL_PROCESS},
      {"x32 high syscall killed",
       MakeData(kSysX32Bit | 0x3ff, AUDIT_ARCH_X86_64),
       SECCOMP_RET_KILL_PROCESS},
      {"getpid allowed", MakeData(Resolve("getpid"), AUDIT_ARCH_X86_64),
       SECCOMP_RET_ALLOW},
      {"unknown syscall notified", MakeData(1000, AUDIT_ARCH_X86_64),
       SECCOMP_RET_USER_NOTIF},
      {"clone3 ENOSYS", MakeData(clone3_nr, AUDIT_ARCH_X86_64),
       SECCOMP_RET_ERRNO | ENOSYS},
      {"ioctl TIOCSTI notified",
       MakeData(Resolve("ioctl"), AUDIT_ARCH_X86_64, 0,
                (1ULL << 32) | kTiocsti),
       SECCOMP_RET_USER_NOTIF},
  };
  for (const Check& check : checks) {
    const uint32_t got = policy.Evaluate(check.data);
    if (got != check.want) {
      return absl::InternalError(absl::StrCat(
          "seccomp policy: self-check '", check.what, "' failed: got 0x",
          absl::Hex(got), ", want 0x", absl::Hex(check.want)));
    }
  }
  return policy;
}

SeccompPolicy::SeccompPolicy(SeccompPolicy&& other) noexcept
    : filter_(std::move(other.filter_)),
      eperm_syscalls_(std::move(other.eperm_syscalls_)) {
  SyncProgram();
  other.filter_.clear();
  other.SyncProgram();
}

SeccompPolicy& SeccompPolicy::operator=(SeccompPolicy&& other) noexcept {
  if (this != &other) {
    filter_ = std::move(other.filter_);
    eperm_syscalls_ = std::move(other.eperm_syscalls_);
    SyncProgram();
    other.filter_.clear();
    other.SyncProgram();
  }
  return *this;
}

void SeccompPolicy::SyncProgram() {
  fprog_.len = static_cast<unsigned short>(filter_.size());
  fprog_.filter = filter_.empty() ? nullptr : filter_.data();
}

int SeccompPolicy::ErrnoFor(int nr) const {
  return std::binary_search(eperm_syscalls_.begin(), eperm_syscalls_.end(), nr)
             ? EPERM
             : ENOSYS;
}

std::string SeccompPolicy::SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (name == nullptr) return absl::StrCat("syscall_", nr);
  std::string result(name);
  free(name);
  return result;
}

uint32_t SeccompPolicy::Evaluate(const seccomp_data& data) const {
  constexpr uint32_t kBad = SECCOMP_RET_KILL_PROCESS;
  uint32_t a = 0;
  uint32_t x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  const size_t n = filter_.size();
  for (size_t pc = 0; pc < n; ++pc) {
    const sock_filter& ins = filter_[pc];
    const uint32_t k = ins.k;
    switch (BPF_CLASS(ins.code)) {
      case BPF_LD:
      case BPF_LDX: {
        uint32_t value = 0;
        switch (BPF_MODE(ins.code)) {
          case BPF_ABS:
            if (BPF_CLASS(ins.code) != BPF_LD || BPF_SIZE(ins.code) != BPF_W ||
                k % 4 != 0 || k + 4 > sizeof(data)) {
              return kBad;
            }
            std::memcpy(&value, reinterpret_cast<const char*>(&data) + k, 4);
            break;
          case BPF_IMM:
            value = k;
            break;
          case BPF_MEM:
            if (k >= BPF_MEMWORDS) return kBad;
            value = mem[k];
            break;
          case BPF_LEN:
            value = sizeof(data);
            break;
          default:
            return kBad;
        }
        (BPF_CLASS(ins.code) == BPF_LD ? a : x) = value;
        break;
      }
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS) return kBad;
        mem[k] = BPF_CLASS(ins.code) == BPF_ST ? a : x;
        break;
      case BPF_ALU: {
        const uint32_t operand = BPF_SRC(ins.code) == BPF_X ? x : k;
        switch (BPF_OP(ins.code)) {
          case BPF_ADD:
            a += operand;
            break;
          case BPF_SUB:
            a -= operand;
            break;
          case BPF_MUL:
            a *= operand;
            break;
          case BPF_DIV:
            if (operand == 0) return kBad;
            a /= operand;
            break;
          case BPF_MOD:
            if (operand == 0) return kBad;
            a %= operand;
            break;
          case BPF_AND:
            a &= operand;
            break;
          case BPF_OR:
            a |= operand;
            break;
          case BPF_XOR:
            a ^= operand;
            break;
          case BPF_LSH:
            a = operand >= 32 ? 0 : a << operand;
            break;
          case BPF_RSH:
            a = operand >= 32 ? 0 : a >> operand;
            break;
          case BPF_NEG:
            a = -a;
            break;
          default:
            return kBad;
        }
        break;
      }
      case BPF_JMP: {
        size_t offset = 0;
        if (BPF_OP(ins.code) == BPF_JA) {
          offset = k;
        } else {
          const uint32_t operand = BPF_SRC(ins.code) == BPF_X ? x : k;
          bool taken = false;
          switch (BPF_OP(ins.code)) {
            case BPF_JEQ:
              taken = a == operand;
              break;
            case BPF_JGT:
              taken = a > operand;
              break;
            case BPF_JGE:
              taken = a >= operand;
              break;
            case BPF_JSET:
              taken = (a & operand) != 0;
              break;
            default:
              return kBad;
          }
          offset = taken ? ins.jt : ins.jf;
        }
        if (offset >= n - pc - 1) return kBad;  // must land inside
        pc += offset;
        break;
      }
      case BPF_RET:
        if (BPF_RVAL(ins.code) == BPF_K) return k;
        if (BPF_RVAL(ins.code) == BPF_A) return a;
        return kBad;
      case BPF_MISC:
        if (BPF_MISCOP(ins.code) == BPF_TAX) {
          x = a;
        } else if (BPF_MISCOP(ins.code) == BPF_TXA) {
          a = x;
        } else {
          return kBad;
        }
        break;
      default:
        return kBad;
    }
  }
  return kBad;  // fell off the end
}

SeccompPolicy SeccompPolicy::FromCompiled(std::vector<sock_filter> filter,
                                          std::vector<int> eperm_syscalls) {
  SeccompPolicy policy;
  policy.filter_ = std::move(filter);
  policy.eperm_syscalls_ = std::move(eperm_syscalls);
  std::sort(policy.eperm_syscalls_.begin(), policy.eperm_syscalls_.end());
  policy.SyncProgram();
  return policy;
}

std::string SeccompPolicy::ToCppSource() const {
  std::string out =
      "// Generated by //jail:seccomp_bpf_gen from "
      "SeccompPolicy::CompileDefault."
      "\n// Do not edit.\n#include <linux/filter.h>\n\n"
      "namespace jcs::jail::precompiled {\n\ninline constexpr sock_filter "
      "kFilter[] = {\n";
  for (const sock_filter& insn : filter_) {
    absl::StrAppend(&out, "    {", insn.code, ", ", insn.jt, ", ", insn.jf,
                    ", ", insn.k, "u},\n");
  }
  absl::StrAppend(&out, "};\n\ninline constexpr int kEpermSyscalls[] = {");
  for (int nr : eperm_syscalls_) absl::StrAppend(&out, nr, ", ");
  absl::StrAppend(&out, "};\n\n}  // namespace jcs::jail::precompiled\n");
  return out;
}

}  // namespace jcs::jail
