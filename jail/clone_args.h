// clone3(2)'s argument block (include/uapi/linux/sched.h), spelled out: the
// kernel headers' struct clashes with glibc's.
#ifndef JCS_JAIL_CLONE_ARGS_H_
#define JCS_JAIL_CLONE_ARGS_H_

#include <cstddef>
#include <cstdint>

namespace jcs::jail {

struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;  // CLONE_ARGS_SIZE_VER1 (Linux 5.5)
  uint64_t set_tid_size;
  uint64_t cgroup;  // CLONE_ARGS_SIZE_VER2 (Linux 5.7)
};

// The first published layout: what any clone3 kernel accepts.
inline constexpr size_t kCloneArgsSizeVer0 = 64;
inline constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

}  // namespace jcs::jail

#endif  // JCS_JAIL_CLONE_ARGS_H_
