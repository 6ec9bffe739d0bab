// syscall_probe NAME [NAME...] | --list
//
// For each named probe, makes one syscall with invalid arguments (raw
// syscall(2), so libc wrappers and fallbacks do not interfere) and prints
// "NAME RESULT", where RESULT is OK or the errno name (EPERM, ENOSYS, EBADF,
// ...). Unfiltered, the calls fail with EFAULT/EBADF/EINVAL (or succeed
// harmlessly); under a seccomp policy, denied ones give EPERM or ENOSYS.
// Probes that could change this process when unfiltered (unshare, clone) run
// in a forked child. x32_getpid first prints "x32_getpid CALLING" (flushed),
// since an x32-rejecting filter kills the process.
// Exits 0, or 2 on usage errors and unknown probe names.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

// Under --config=asan this program runs inside jails whose seccomp policy
// denies ptrace: LeakSanitizer's exit-time scan (which stops the world with
// ptrace) would abort it and turn every probe run into a failure. The probe
// allocates nothing worth scanning; the hook is unused without LSan.
extern "C" int __lsan_is_turned_off() { return 1; }

namespace {

#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_move_mount
#define __NR_move_mount 429
#endif
#ifndef __NR_fsopen
#define __NR_fsopen 430
#endif
#ifndef __NR_fsconfig
#define __NR_fsconfig 431
#endif
#ifndef __NR_fsmount
#define __NR_fsmount 432
#endif
#ifndef __NR_fspick
#define __NR_fspick 433
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif

constexpr long kCloneNewTime = 0x00000080;
constexpr long kCloneFiles = 0x00000400;
constexpr long kCloneNewNs = 0x00020000;
constexpr long kCloneNewUser = 0x10000000;
constexpr long kAfUnix = 1;
constexpr long kAfInet = 2;
constexpr long kAfNetlink = 16;
constexpr long kAfPacket = 17;
constexpr long kSockStream = 1;
constexpr long kSockDgram = 2;
constexpr long kSockRaw = 3;
constexpr long kIpprotoIcmp = 1;
constexpr long kEthPAll = 0x0300;  // htons(ETH_P_ALL)
constexpr long kTiocsti = 0x5412;
constexpr long kTioclinux = 0x541C;
constexpr long kFionread = 0x541B;
constexpr long kSeccompSetModeFilter = 1;
constexpr long kSeccompGetActionAvail = 2;
constexpr long kSeccompFilterFlagNewListener = 1L << 3;
constexpr long kReadImpliesExec = 0x0400000;
constexpr long kPersonalityQuery = 0xffffffffL;
constexpr long kX32SyscallBit = 0x40000000;
constexpr long kUnassignedNr = 1000;
void* const kBadPtr = reinterpret_cast<void*>(1);  // faults on access

// The result of a raw syscall: 0 for success, else errno.
int Raw(long ret) { return ret == -1 ? errno : 0; }

int Close(long fd) {
  if (fd < 0) return errno;
  close(static_cast<int>(fd));
  return 0;
}

// Runs `call` in a forked child; the child's exit code carries the errno.
template <typename F>
int InChild(F call) {
  const pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) _exit(call());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno;
  }
  if (!WIFEXITED(status)) return EIO;
  return WEXITSTATUS(status);
}

// A raw clone(flags) without a new stack: the child shares a copy of this
// stack, as with fork, and leaves at once.
int RawClone(long flags) {
  const long ret = syscall(SYS_clone, flags, 0L, 0L, 0L, 0L);
  if (ret == 0) syscall(SYS_exit_group, 0L);  // the child
  if (ret < 0) return errno;
  int status = 0;
  while (waitpid(static_cast<pid_t>(ret), &status, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

int Personality(long persona) {
  const long old = syscall(SYS_personality, kPersonalityQuery);
  const long ret = syscall(SYS_personality, persona);
  const int err = ret == -1 ? errno : 0;
  if (ret != -1 && old != -1) syscall(SYS_personality, old);  // restore
  return err;
}

struct Probe {
  const char* name;
  int (*run)();
};

// Each entry returns 0 or an errno.
const Probe kProbes[] = {
    {"getpid", [] { return Raw(syscall(SYS_getpid)); }},
    {"read_badfd", [] { return Raw(syscall(SYS_read, -1L, nullptr, 0L)); }},
    {"ptrace", [] { return Raw(syscall(SYS_ptrace, -1L, -1L, 0L, 0L)); }},
    {"process_vm_readv",
     [] {
       return Raw(
           syscall(SYS_process_vm_readv, 0L, nullptr, 1L, nullptr, 1L, -1L));
     }},
    {"process_vm_writev",
     [] {
       return Raw(
           syscall(SYS_process_vm_writev, 0L, nullptr, 1L, nullptr, 1L, -1L));
     }},
    {"bpf", [] { return Raw(syscall(SYS_bpf, -1L, nullptr, 0L)); }},
    {"io_uring_setup",
     [] { return Raw(syscall(SYS_io_uring_setup, 0L, nullptr)); }},
    {"io_uring_enter",
     [] {
       return Raw(syscall(SYS_io_uring_enter, -1L, 0L, 0L, 0L, nullptr, 0L));
     }},
    {"io_uring_register",
     [] { return Raw(syscall(SYS_io_uring_register, -1L, 0L, nullptr, 0L)); }},
    {"userfaultfd", [] { return Raw(syscall(SYS_userfaultfd, -1L)); }},
    {"keyctl", [] { return Raw(syscall(SYS_keyctl, -1L, 0L, 0L, 0L, 0L)); }},
    {"add_key",
     [] {
       return Raw(syscall(SYS_add_key, nullptr, nullptr, nullptr, 0L, 0L));
     }},
    {"request_key",
     [] {
       return Raw(syscall(SYS_request_key, nullptr, nullptr, nullptr, 0L));
     }},
    {"perf_event_open",
     [] {
       return Raw(syscall(SYS_perf_event_open, nullptr, 0L, -1L, -1L, 0L));
     }},
    {"mount",
     [] {
       return Raw(syscall(SYS_mount, nullptr, nullptr, nullptr, 0L, nullptr));
     }},
    {"umount2", [] { return Raw(syscall(SYS_umount2, nullptr, 0L)); }},
    {"fsopen", [] { return Raw(syscall(__NR_fsopen, nullptr, 0L)); }},
    {"fsconfig",
     [] { return Raw(syscall(__NR_fsconfig, -1L, 0L, nullptr, nullptr, 0L)); }},
    {"fsmount", [] { return Raw(syscall(__NR_fsmount, -1L, 0L, 0L)); }},
    {"fspick", [] { return Raw(syscall(__NR_fspick, -1L, nullptr, 0L)); }},
    {"move_mount",
     [] {
       return Raw(syscall(__NR_move_mount, -1L, nullptr, -1L, nullptr, -1L));
     }},
    {"open_tree",
     [] { return Raw(syscall(__NR_open_tree, -1L, nullptr, 0L)); }},
    {"mount_setattr",
     [] {
       return Raw(syscall(__NR_mount_setattr, -1L, nullptr, 0L, nullptr, 0L));
     }},
    {"chroot", [] { return Raw(syscall(SYS_chroot, nullptr)); }},
    {"pivot_root",
     [] { return Raw(syscall(SYS_pivot_root, nullptr, nullptr)); }},
    {"setns", [] { return Raw(syscall(SYS_setns, -1L, 0L)); }},
    {"unshare_newuser",
     [] {
       return InChild([] { return Raw(syscall(SYS_unshare, kCloneNewUser)); });
     }},
    {"unshare_newns",
     [] {
       return InChild([] { return Raw(syscall(SYS_unshare, kCloneNewNs)); });
     }},
    {"unshare_newtime",
     [] {
       return InChild([] { return Raw(syscall(SYS_unshare, kCloneNewTime)); });
     }},
    {"unshare_files",
     [] {
       return InChild([] { return Raw(syscall(SYS_unshare, kCloneFiles)); });
     }},
    {"clone_newuser", [] { return RawClone(kCloneNewUser | SIGCHLD); }},
    {"clone_plain", [] { return RawClone(SIGCHLD); }},
    {"clone3", [] { return Raw(syscall(__NR_clone3, nullptr, 0L)); }},
    {"kexec_load",
     [] { return Raw(syscall(SYS_kexec_load, 0L, 0L, nullptr, -1L)); }},
    {"kexec_file_load",
     [] {
       return Raw(syscall(SYS_kexec_file_load, -1L, -1L, 0L, nullptr, -1L));
     }},
    {"init_module",
     [] { return Raw(syscall(SYS_init_module, nullptr, 0L, nullptr)); }},
    {"finit_module",
     [] { return Raw(syscall(SYS_finit_module, -1L, nullptr, 0L)); }},
    {"delete_module",
     [] { return Raw(syscall(SYS_delete_module, nullptr, 0L)); }},
    {"swapon", [] { return Raw(syscall(SYS_swapon, nullptr, 0L)); }},
    {"swapoff", [] { return Raw(syscall(SYS_swapoff, nullptr)); }},
    {"reboot", [] { return Raw(syscall(SYS_reboot, 0L, 0L, 0L, nullptr)); }},
    {"open_by_handle_at",
     [] { return Raw(syscall(SYS_open_by_handle_at, -1L, nullptr, 0L)); }},
    {"name_to_handle_at",
     [] {
       return Raw(
           syscall(SYS_name_to_handle_at, -1L, nullptr, nullptr, nullptr, 0L));
     }},
    {"syslog", [] { return Raw(syscall(SYS_syslog, -1L, nullptr, 0L)); }},
    {"acct", [] { return Raw(syscall(SYS_acct, kBadPtr)); }},
    {"quotactl",
     [] { return Raw(syscall(SYS_quotactl, 0L, nullptr, 0L, nullptr)); }},
    {"lookup_dcookie",
     [] { return Raw(syscall(SYS_lookup_dcookie, 0L, nullptr, 0L)); }},
    {"iopl", [] { return Raw(syscall(SYS_iopl, 4L)); }},
    {"ioperm", [] { return Raw(syscall(SYS_ioperm, -1L, 1L, 0L)); }},
    {"settimeofday",
     [] { return Raw(syscall(SYS_settimeofday, kBadPtr, nullptr)); }},
    {"clock_settime",
     [] { return Raw(syscall(SYS_clock_settime, -1L, nullptr)); }},
    {"clock_adjtime",
     [] { return Raw(syscall(SYS_clock_adjtime, -1L, nullptr)); }},
    {"adjtimex", [] { return Raw(syscall(SYS_adjtimex, nullptr)); }},
    {"uselib", [] { return Raw(syscall(SYS_uselib, nullptr)); }},
    {"socket_raw",
     [] {
       return Close(syscall(SYS_socket, kAfInet, kSockRaw, kIpprotoIcmp));
     }},
    {"socket_packet",
     [] { return Close(syscall(SYS_socket, kAfPacket, kSockRaw, kEthPAll)); }},
    {"socket_inet",
     [] { return Close(syscall(SYS_socket, kAfInet, kSockStream, 0L)); }},
    {"socket_unix",
     [] { return Close(syscall(SYS_socket, kAfUnix, kSockStream, 0L)); }},
    {"socket_netlink",
     [] { return Close(syscall(SYS_socket, kAfNetlink, kSockDgram, 0L)); }},
    {"socketpair_unix",
     [] {
       int fds[2];
       const int err =
           Raw(syscall(SYS_socketpair, kAfUnix, kSockStream, 0L, fds));
       if (err == 0) {
         close(fds[0]);
         close(fds[1]);
       }
       return err;
     }},
    {"socketpair_inet",
     [] {
       int fds[2];
       const int err =
           Raw(syscall(SYS_socketpair, kAfInet, kSockStream, 0L, fds));
       if (err == 0) {
         close(fds[0]);
         close(fds[1]);
       }
       return err;
     }},
    {"ioctl_tiocsti",
     [] { return Raw(syscall(SYS_ioctl, -1L, kTiocsti, nullptr)); }},
    {"ioctl_tiocsti_high",
     [] {
       // ioctl's cmd is an unsigned int in the kernel: the high half is
       // dropped there, so a filter comparing 64 bits would miss this.
       return Raw(syscall(SYS_ioctl, -1L, kTiocsti | (1L << 32), nullptr));
     }},
    {"ioctl_tioclinux",
     [] { return Raw(syscall(SYS_ioctl, -1L, kTioclinux, nullptr)); }},
    {"ioctl_fionread",
     [] { return Raw(syscall(SYS_ioctl, -1L, kFionread, nullptr)); }},
    {"seccomp_new_listener",
     [] {
       return Raw(syscall(SYS_seccomp, kSeccompSetModeFilter,
                          kSeccompFilterFlagNewListener, nullptr));
     }},
    {"seccomp_get_action_avail",
     [] {
       uint32_t action = 0x7fff0000U;  // SECCOMP_RET_ALLOW
       return Raw(syscall(SYS_seccomp, kSeccompGetActionAvail, 0L, &action));
     }},
    {"personality_read_implies_exec",
     [] { return Personality(kReadImpliesExec); }},
    {"personality_query",
     [] { return Raw(syscall(SYS_personality, kPersonalityQuery)); }},
    {"sysfs", [] { return Raw(syscall(SYS_sysfs, 1L, nullptr)); }},
    {"unassigned_nr", [] { return Raw(syscall(kUnassignedNr, 0L)); }},
    {"x32_getpid",
     [] {
       printf("x32_getpid CALLING\n");
       fflush(stdout);
       return Raw(syscall(kX32SyscallBit | SYS_getpid));
     }},
};

std::string ErrnoName(int err) {
  if (err == 0) return "OK";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: %s --list | NAME [NAME...]\n", argv[0]);
    return 2;
  }
  if (std::string(argv[1]) == "--list") {
    for (const Probe& probe : kProbes) printf("%s\n", probe.name);
    return 0;
  }
  int rc = 0;
  for (int i = 1; i < argc; ++i) {
    const Probe* found = nullptr;
    for (const Probe& probe : kProbes) {
      if (strcmp(probe.name, argv[i]) == 0) found = &probe;
    }
    if (found == nullptr) {
      printf("%s UNKNOWN_PROBE\n", argv[i]);
      rc = 2;
      continue;
    }
    const int err = found->run();
    printf("%s %s\n", found->name, ErrnoName(err).c_str());
  }
  fflush(stdout);
  return rc;
}
