// Landlock via raw syscalls. Debian 12's <linux/landlock.h> stops at ABI 1/2,
// so every newer constant and the full ruleset attribute layout are defined
// here, and the size passed to landlock_create_ruleset matches what the running
// ABI understands.
//
// ABI history used below:
//   1 (5.13) FS rights EXECUTE .. MAKE_SYM      2 (5.19) FS REFER (rename/link
//   across dirs) 3 (6.2)  FS TRUNCATE                        4 (6.7)  net
//   rights (not handled by jcs: the 5 (6.10) FS IOCTL_DEV netns is the network
//   layer) 6 (6.12) scopes: abstract unix sockets, signals   7 (6.15) audit
//   logging flags (no new rights)
//
// Signal scoping (ABI >= 6) forbids the jailed process from signalling any
// process outside its Landlock domain. That is always what we want: the jail
// has its own pid namespace, its init and every descendant inherit the domain,
// so only processes outside the jail become unreachable.
#include "jail/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

namespace jcs::jail {
namespace {

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;

// Filesystem rights (uapi LANDLOCK_ACCESS_FS_*).
constexpr uint64_t kExecute = 1ULL << 0;
constexpr uint64_t kWriteFile = 1ULL << 1;
constexpr uint64_t kReadFile = 1ULL << 2;
constexpr uint64_t kReadDir = 1ULL << 3;
constexpr uint64_t kRemoveDir = 1ULL << 4;
constexpr uint64_t kRemoveFile = 1ULL << 5;
constexpr uint64_t kMakeChar = 1ULL << 6;
constexpr uint64_t kMakeDir = 1ULL << 7;
constexpr uint64_t kMakeReg = 1ULL << 8;
constexpr uint64_t kMakeSock = 1ULL << 9;
constexpr uint64_t kMakeFifo = 1ULL << 10;
constexpr uint64_t kMakeBlock = 1ULL << 11;
constexpr uint64_t kMakeSym = 1ULL << 12;
constexpr uint64_t kRefer = 1ULL << 13;     // ABI 2
constexpr uint64_t kTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kIoctlDev = 1ULL << 15;  // ABI 5

constexpr uint64_t kAbi1Fs = kExecute | kWriteFile | kReadFile | kReadDir |
                             kRemoveDir | kRemoveFile | kMakeChar | kMakeDir |
                             kMakeReg | kMakeSock | kMakeFifo | kMakeBlock |
                             kMakeSym;

// Rights that make sense on a non-directory; the kernel rejects a rule on a
// file that carries any other right with EINVAL.
constexpr uint64_t kFileRights =
    kExecute | kWriteFile | kReadFile | kTruncate | kIoctlDev;

// Scopes (uapi LANDLOCK_SCOPE_*, ABI 6).
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
constexpr uint64_t kScopeSignal = 1ULL << 1;

// Full layout of struct landlock_ruleset_attr as of ABI 6+.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};
static_assert(sizeof(PathBeneathAttr) == 12);

size_t RulesetAttrSize(int abi) {
  if (abi >= 6) return sizeof(RulesetAttr);
  if (abi >= 4) return offsetof(RulesetAttr, scoped);
  return offsetof(RulesetAttr, handled_access_net);
}

uint64_t FsRightsForAbi(int abi) {
  if (abi <= 0) return 0;
  uint64_t rights = kAbi1Fs;
  if (abi >= 2) rights |= kRefer;
  if (abi >= 3) rights |= kTruncate;
  if (abi >= 5) rights |= kIoctlDev;
  return rights;
}

uint64_t ScopesForAbi(int abi) {
  return abi >= 6 ? (kScopeAbstractUnixSocket | kScopeSignal) : 0;
}

// Adds `path` with `access` to the plan (merging a repeated path). Returns
// false with `error` set when the path is unusable or the plan is full.
bool AddPlanRule(const std::string& path, uint64_t access, const char* kind,
                 LandlockPlan* plan, std::string* error) {
  if (path.empty() || path[0] != '/') {
    *error = std::string("landlock: ") + kind + " path must be absolute: \"" +
             path + "\"";
    return false;
  }
  if (path.find('\0') != std::string::npos) {
    *error = std::string("landlock: ") + kind + " path contains a NUL byte";
    return false;
  }
  if (path.size() >= static_cast<size_t>(LandlockPlan::kMaxPath)) {
    *error = std::string("landlock: ") + kind + " path too long (" +
             std::to_string(path.size()) + " bytes, max " +
             std::to_string(LandlockPlan::kMaxPath - 1) +
             "): " + path.substr(0, 64) + "...";
    return false;
  }
  for (int i = 0; i < plan->rule_count; ++i) {
    if (path == plan->rules[i].path) {
      plan->rules[i].access |= access;
      return true;
    }
  }
  if (plan->rule_count >= LandlockPlan::kMaxRules) {
    *error = "landlock: too many rules (max " +
             std::to_string(LandlockPlan::kMaxRules) + "), cannot add " + kind +
             " path " + path;
    return false;
  }
  LandlockPlan::Rule& rule = plan->rules[plan->rule_count++];
  std::memcpy(rule.path, path.c_str(), path.size() + 1);
  rule.access = access;
  return true;
}

}  // namespace

int LandlockAbi() {
  const int saved = errno;
  long abi =
      syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  errno = saved;
  return abi > 0 ? static_cast<int>(abi) : 0;
}

bool BuildLandlockPlan(int abi, const std::vector<std::string>& read_exec_paths,
                       const std::vector<std::string>& read_only_paths,
                       const std::vector<std::string>& read_write_paths,
                       const std::vector<std::string>& device_paths,
                       LandlockPlan* plan, std::string* error) {
  plan->abi = 0;
  plan->handled_access = 0;
  plan->scoped = 0;
  plan->rule_count = 0;
  error->clear();
  if (abi <= 0) return true;  // Landlock unavailable: nothing to apply.

  const uint64_t all = FsRightsForAbi(abi);
  const uint64_t read_exec = kExecute | kReadFile | kReadDir;
  const uint64_t read_only = kReadFile | kReadDir;
  const uint64_t device = (kReadFile | kWriteFile | kIoctlDev | kReadDir) & all;
  struct Group {
    const std::vector<std::string>* paths;
    uint64_t access;
    const char* kind;
  };
  const Group groups[] = {
      {&read_exec_paths, read_exec, "read_exec"},
      {&read_only_paths, read_only, "read_only"},
      {&read_write_paths, all, "read_write"},
      {&device_paths, device, "device"},
  };
  for (const Group& group : groups) {
    for (const std::string& path : *group.paths) {
      if (!AddPlanRule(path, group.access & all, group.kind, plan, error)) {
        plan->rule_count = 0;
        return false;
      }
    }
  }
  plan->abi = abi;
  plan->handled_access = all;
  plan->scoped = ScopesForAbi(abi);
  return true;
}

int ApplyLandlock(const LandlockPlan& plan, const char** failed_path) {
  if (failed_path != nullptr) *failed_path = nullptr;
  if (plan.abi <= 0) return 0;

  RulesetAttr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.handled_access_fs = plan.handled_access;
  attr.handled_access_net =
      0;  // The network layer is the empty netns / egress proxy.
  attr.scoped = plan.abi >= 6 ? plan.scoped : 0;
  const int ruleset_fd = static_cast<int>(syscall(
      SYS_landlock_create_ruleset, &attr, RulesetAttrSize(plan.abi), 0));
  if (ruleset_fd < 0) return -errno;

  int result = 0;
  for (int i = 0; i < plan.rule_count && i < LandlockPlan::kMaxRules; ++i) {
    const LandlockPlan::Rule& rule = plan.rules[i];
    const int fd = open(rule.path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // Absent in this jail: nothing to allow.
      result = -errno;
      if (failed_path != nullptr) *failed_path = rule.path;
      break;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      result = -errno;
      if (failed_path != nullptr) *failed_path = rule.path;
      close(fd);
      break;
    }
    PathBeneathAttr beneath;
    beneath.allowed_access = rule.access & plan.handled_access;
    if (!S_ISDIR(st.st_mode)) beneath.allowed_access &= kFileRights;
    beneath.parent_fd = fd;
    if (beneath.allowed_access != 0 &&
        syscall(SYS_landlock_add_rule, ruleset_fd, kRulePathBeneath, &beneath,
                0) != 0) {
      result = -errno;
      if (failed_path != nullptr) *failed_path = rule.path;
    }
    close(fd);
    if (result != 0) break;
  }

  // landlock_restrict_self requires no_new_privs (or CAP_SYS_ADMIN); the jail
  // sets it anyway before seccomp, and setting it twice is harmless.
  if (result == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    result = -errno;
  if (result == 0 && syscall(SYS_landlock_restrict_self, ruleset_fd, 0) != 0)
    result = -errno;
  close(ruleset_fd);
  return result;
}

}  // namespace jcs::jail
