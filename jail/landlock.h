// Landlock as the jail's second filesystem layer, applied by the jailed
// program's process after pivot_root (paths are jail paths) and before seccomp.
// The plan is built in the supervisor (allocation allowed); ApplyLandlock runs
// between clone and exec and is async-signal-safe.
#ifndef JCS_JAIL_LANDLOCK_H_
#define JCS_JAIL_LANDLOCK_H_

#include <cstdint>
#include <string>
#include <vector>

namespace jcs::jail {

// Landlock ABI version of the running kernel, or 0 when Landlock is
// unavailable.
int LandlockAbi();

struct LandlockPlan {
  static constexpr int kMaxRules = 64;
  static constexpr int kMaxPath = 512;
  struct Rule {
    char path[kMaxPath];
    uint64_t access;  // LANDLOCK_ACCESS_FS_* bits, already masked to what `abi`
                      // supports
  };
  int abi = 0;                  // 0: nothing to apply
  uint64_t handled_access = 0;  // every FS right the ABI knows
  uint64_t scoped =
      0;  // LANDLOCK_SCOPE_* (ABI >= 6): abstract unix sockets, signals
  Rule rules[kMaxRules];
  int rule_count = 0;
};

// Read-only+execute for `read_exec_paths` (system dirs), read-write (create,
// remove, truncate, ioctl on devices, ...) for `read_write_paths` (root, rw
// binds, /tmp, /dev/shm), read+write of files for `device_paths` (/dev),
// read-only for `read_only_paths` (/proc, ro binds). Returns an error string
// when a path is too long or there are too many rules.
bool BuildLandlockPlan(int abi, const std::vector<std::string>& read_exec_paths,
                       const std::vector<std::string>& read_only_paths,
                       const std::vector<std::string>& read_write_paths,
                       const std::vector<std::string>& device_paths,
                       LandlockPlan* plan, std::string* error);

// Creates the ruleset, adds every rule whose path exists (a missing path is
// skipped), and calls landlock_restrict_self. Requires no_new_privs. Returns 0
// or -errno; `*failed_path` names the rule that failed, if any.
// Async-signal-safe.
int ApplyLandlock(const LandlockPlan& plan, const char** failed_path);

}  // namespace jcs::jail

#endif  // JCS_JAIL_LANDLOCK_H_
