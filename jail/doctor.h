// Probes which jail layers this host can enforce, for `jcs doctor` and
// fail-closed checks.
#ifndef JCS_JAIL_DOCTOR_H_
#define JCS_JAIL_DOCTOR_H_

#include <string>
#include <vector>

namespace jcs::jail {

struct LayerStatus {
  std::string name;  // "user_namespace", "pid_namespace", ..., "seccomp",
                     // "seccomp_user_notification", "landlock", "cgroup_v2",
                     // "cgroup_v2.memory", "cgroup_v1.memory", "io_uring", ...
  bool available = false;
  std::string detail;  // what was found ("ABI 7", "mounted at
                       // /sys/fs/cgroup/unified, controllers: ")
  std::string
      fix;  // how to make it available when it is not (empty when available)
};

// Runs every probe; each probe that needs a child process forks and reaps it.
std::vector<LayerStatus> ProbeHostLayers();

// `project_quota`: whether a per-project disk budget (disk_quota_bytes,
// disk_quota_inodes) can be enforced for projects under `dir`
// (jail/project_quota.h). Not part of ProbeHostLayers: it depends on the
// directory, not the host.
LayerStatus ProbeProjectQuotaLayer(const std::string& dir);

// `rootless_run`, for a caller other than root: whether `jcs run` as this
// user can run the default jail, from the probed `layers`. Every layer but
// the cgroup limits needs no privilege; those need a cgroup v2 subtree
// delegated to the user with the memory and pids controllers (cgroup_v2,
// cgroup_v2.memory, cgroup_v2.pids). The detail says what a run enforces
// either way; the fix names the options.
LayerStatus RootlessRunLayer(const std::vector<LayerStatus>& layers,
                             unsigned uid);

// Human-readable table, one layer per line: "ok   user_namespace  ..." /
// "MISSING ... fix: ...".
std::string FormatLayerTable(const std::vector<LayerStatus>& layers);
// JSON array of {name, available, detail, fix}.
std::string FormatLayerJson(const std::vector<LayerStatus>& layers);

}  // namespace jcs::jail

#endif  // JCS_JAIL_DOCTOR_H_
