// The jail's mount plan, computed by the supervisor before clone: which host
// paths are bound where (and how), which merged-/usr symlinks are recreated,
// and which paths Landlock lets the program execute from or write to.
#ifndef JCS_JAIL_MOUNT_PLAN_H_
#define JCS_JAIL_MOUNT_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jail/child.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

struct MountPlan {
  // In mount order: system directories, then the root and the extra binds
  // (parents before children), then the device nodes.
  std::vector<ChildBind> binds;
  std::vector<ChildSymlink> symlinks;
  // Root-relative jail paths of the directories between the root and each
  // mask or bind inside it, shallowest first, pinned after binds[pins_after]
  // (the root's bind). See ChildContext::pins.
  std::vector<std::string> pins;
  int pins_after = -1;
  std::vector<std::string> read_exec;   // system dirs and --ro binds
  std::vector<std::string> read_write;  // the root and --rw binds
};

// The host device nodes bound into the jail's /dev.
inline constexpr const char* kJailDevices[] = {"null", "zero", "full", "random",
                                               "urandom"};

// `spec` must come from Finalize(). A system directory missing on the host is
// skipped; a system directory that is a symlink (/bin -> usr/bin) is recreated
// as the same symlink; a missing device node is an error. Masks come with the
// identity Finalize (or jcs serve's scan) recorded and are checked against it
// in the jail, never re-resolved here: a mask whose path has gone fails the
// launch instead of being dropped.
absl::StatusOr<MountPlan> PlanMounts(const proto::JailSpec& spec);

// An existing host directory the new root is attached to while it is built (in
// the jail's private mount namespace only).
std::string StagingDir();

}  // namespace jcs::jail

#endif  // JCS_JAIL_MOUNT_PLAN_H_
