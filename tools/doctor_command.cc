// `jcs doctor [--json] [--path DIR]`: which jail layers this host can
// enforce, with fixes for the missing ones.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "jail/doctor.h"
#include "tools/client_common.h"
#include "tools/commands.h"

namespace jcs::tools {

const CommandSpec& DoctorSpec() {
  static const auto* spec = new CommandSpec{
      "doctor",
      "",
      "Probes each jail layer on this host and prints which are available, "
      "with the fix for each missing one; exit 0 when the default jail (jcs "
      "run) can be enforced, 1 otherwise.",
      {{"--path", "DIR", "the current directory",
        "where project_quota (the disk_quota_bytes/disk_quota_inodes "
        "budget) is probed"},
       JsonFlag("print the layers as JSON")}};
  return *spec;
}

int DoctorCommand(const std::vector<std::string>& args) {
  const CommandSpec* spec = &DoctorSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(*spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (!flags->positional.empty()) {
    return UsageError(*spec, "unknown argument '" + flags->positional[0] + "'");
  }
  const bool json = flags->Has("--json");
  // project_quota depends on the filesystem: by default the one of the
  // current directory (where `jcs project start .` would put the project).
  const std::string quota_path = flags->Get("--path", ".");
  std::vector<jail::LayerStatus> layers = jail::ProbeHostLayers();
  // Not root: what `jcs run` as this user enforces, and whether its default
  // jail can run at all (the exit status).
  const bool rootless = geteuid() != 0;
  if (rootless) layers.push_back(jail::RootlessRunLayer(layers, geteuid()));
  // Optional per project, so not essential for the exit status.
  layers.push_back(jail::ProbeProjectQuotaLayer(quota_path));
  fputs((json ? jail::FormatLayerJson(layers) : jail::FormatLayerTable(layers))
            .c_str(),
        stdout);
  bool essential_ok = true;
  for (const jail::LayerStatus& layer : layers) {
    for (const char* essential :
         {"capabilities", "user_namespace", "mount_namespace", "pid_namespace",
          "network_namespace", "ipc_namespace", "uts_namespace",
          "cgroup_namespace", "seccomp", "seccomp_user_notification", "procfs",
          "new_mount_api", "proc_in_pid_namespace"}) {
      if (layer.name == essential && !layer.available) essential_ok = false;
    }
  }
  // Every jail runs in its own cgroup: some writable hierarchy (cgroup2, or
  // the v1 controllers) must exist.
  bool any_cgroup = false;
  for (const jail::LayerStatus& layer : layers) {
    if ((layer.name == "cgroup_v2" || layer.name.rfind("cgroup_v1.", 0) == 0) &&
        layer.available) {
      any_cgroup = true;
    }
  }
  if (rootless) {
    for (const jail::LayerStatus& layer : layers) {
      if (layer.name == "rootless_run") return layer.available ? 0 : 1;
    }
  }
  return essential_ok && any_cgroup ? 0 : 1;
}

}  // namespace jcs::tools
