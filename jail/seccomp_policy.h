// The jail's seccomp policy: compiled once (libseccomp) into a classic BPF
// program that the child installs with a raw seccomp(2) call, plus the table
// the supervisor uses to answer and name the user notifications that denied
// calls raise.
#ifndef JCS_JAIL_SECCOMP_POLICY_H_
#define JCS_JAIL_SECCOMP_POLICY_H_

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace jcs::jail {

class SeccompPolicy {
 public:
  // Compiles the default policy for the native architecture (x86_64): arch
  // check with foreign arches and x32 (nr | 0x40000000) killed; default deny;
  // an allowlist shaped like the common container default profile; clone3 ->
  // ERRNO(ENOSYS) without notification; clone/unshare with any CLONE_NEW* flag,
  // ioctl TIOCSTI/TIOCLINUX (low 32 bits), raw/packet sockets, seccomp
  // NEW_LISTENER and the dangerous set -> USER_NOTIF (answered with EPERM);
  // every other syscall -> USER_NOTIF answered with ENOSYS.
  static absl::StatusOr<SeccompPolicy> CompileDefault();

  // A policy from an already compiled program and its EPERM syscall list (the
  // build-time compiled default, see seccomp_precompiled.h).
  static SeccompPolicy FromCompiled(std::vector<sock_filter> filter,
                                    std::vector<int> eperm_syscalls);
  // C++ source that defines `kFilter` and `kEpermSyscalls` for FromCompiled.
  std::string ToCppSource() const;
  const std::vector<int>& eperm_syscalls() const { return eperm_syscalls_; }

  // The program for seccomp(SECCOMP_SET_MODE_FILTER,
  // SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog).
  const sock_fprog* program() const { return &fprog_; }
  size_t instruction_count() const { return filter_.size(); }

  // The errno the supervisor answers a notification for `nr` with (EPERM for
  // explicit denials, ENOSYS otherwise).
  int ErrnoFor(int nr) const;
  // Syscall name for reports ("ptrace"), or "syscall_<nr>" when unknown.
  static std::string SyscallName(int nr);

  // Runs the compiled program on `data` (a small classic-BPF interpreter) and
  // returns the SECCOMP_RET_* value the kernel would act on; malformed programs
  // yield KILL_PROCESS. Used to self-check the compiled filter and by tests.
  uint32_t Evaluate(const seccomp_data& data) const;

  SeccompPolicy(const SeccompPolicy&) = delete;
  SeccompPolicy& operator=(const SeccompPolicy&) = delete;
  SeccompPolicy(SeccompPolicy&& other) noexcept;
  SeccompPolicy& operator=(SeccompPolicy&& other) noexcept;

 private:
  SeccompPolicy() = default;
  void SyncProgram();  // points fprog_ at filter_

  std::vector<sock_filter> filter_;
  sock_fprog fprog_{};
  std::vector<int> eperm_syscalls_;  // sorted
};

}  // namespace jcs::jail

#endif  // JCS_JAIL_SECCOMP_POLICY_H_
