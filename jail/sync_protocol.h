// Messages between the jail (its init and the program's process before exec)
// and the supervisor, sent over a SOCK_SEQPACKET socketpair: one fixed-size,
// trivially copyable struct per message, so the child side never allocates and
// the parent always reads whole messages.
#ifndef JCS_JAIL_SYNC_PROTOCOL_H_
#define JCS_JAIL_SYNC_PROTOCOL_H_

#include <cstdint>

namespace jcs::jail {

enum class SyncType : uint32_t {
  kGo = 1,          // supervisor -> init: id maps written, cgroup joined; start
                    // building the jail
  kError = 2,       // jail -> supervisor: setup failed at `where` with `err`
  kReady = 3,       // program -> supervisor: seccomp listener fd attached
                    // (SCM_RIGHTS); exec next
  kExecFailed = 4,  // program -> supervisor: execve failed with `err`
  kMainExited = 5,  // init -> supervisor: the program exited with `wait_status`
  kCgroupReady = 6,     // supervisor -> init: the init is in the run's cgroup;
                        // fork the program
  kEgressListener = 7,  // init -> supervisor: the egress proxy's listening
                        // socket inside the jail's netns (SCM_RIGHTS)
  kRun = 8,  // supervisor -> init of a warm jail: run this command (a
             // RunHeader and its strings; stdin/stdout/stderr as SCM_RIGHTS)
  kWarmReady = 9,  // init of a warm jail -> supervisor: built, waiting for
                   // kRun
};

// Setup steps timed inside the jail; the supervisor turns the stamps into a
// per-step breakdown.
enum SetupStep : int {
  kStepMountNamespace = 0,  // private propagation, cgroup namespace
  kStepOpenSources,         // openat2 + open_tree of every bind source
  kStepNewRoot,             // root tmpfs, /tmp, /dev, /proc
  kStepBinds,               // move_mount of every bind
  kStepUtsNet,              // hostname, loopback
  kStepPivotRoot,           // pivot_root, detach old root, read-only root
  kStepForkProgram,         // init forks the program's process
  kStepCredentials,         // rlimits, capabilities, uid/gid, no_new_privs
  kStepLandlock,
  kStepSeccomp,
  kStepCount,
};

inline constexpr const char* kSetupStepNames[kStepCount] = {
    "mount_namespace", "open_bind_sources", "new_root",
    "binds",           "uts_net",           "pivot_root",
    "fork_program",    "credentials",       "landlock",
    "seccomp"};

// Layers the jail reports as actually applied (bit per layer).
enum LayerBit : uint32_t {
  kLayerLandlock = 1u << 0,
  kLayerSeccomp = 1u << 1,
  kLayerNoNewPrivs = 1u << 2,
  kLayerCapsDropped = 1u << 3,
  kLayerPivotRoot = 1u << 4,
  kLayerLoopbackUp = 1u << 5,
};

// A warm jail's command: the header, then `strings_bytes` bytes of
// NUL-terminated strings: the working directory, argc arguments, envc
// "KEY=VALUE" entries. At most kMaxRunMessage bytes in all.
struct RunHeader {
  SyncType type;  // kRun
  uint32_t argc;
  uint32_t envc;
  uint32_t strings_bytes;
};
inline constexpr size_t kMaxRunMessage = 128 * 1024;
inline constexpr uint32_t kMaxRunStrings = 4096;

struct SyncMessage {
  SyncType type;
  int32_t err;          // errno for kError / kExecFailed
  int32_t wait_status;  // kMainExited
  uint32_t layers;      // LayerBit set, kReady
  int32_t landlock_abi;
  int64_t start_ns;  // CLOCK_MONOTONIC when the jail received kGo
  int64_t step_end_ns[kStepCount];  // CLOCK_MONOTONIC at the end of each step
                                    // (0: not reached)
  char where[64];    // kError: the layer or step, e.g. "mount /usr"
  char detail[256];  // kError: what was being done
};

}  // namespace jcs::jail

#endif  // JCS_JAIL_SYNC_PROTOCOL_H_
