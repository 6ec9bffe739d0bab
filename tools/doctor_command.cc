// `jcs doctor [--json] [--path DIR]`: which jail layers this host can
// enforce, with fixes for the missing ones.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "jail/doctor.h"
#include "tools/commands.h"

namespace jcs::tools {

int DoctorCommand(const std::vector<std::string>& args) {
  bool json = false;
  // project_quota depends on the filesystem: by default the one of the
  // current directory (where `jcs project start .` would put the project).
  std::string quota_path = ".";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--path") {
      if (i + 1 >= args.size()) {
        fputs("jcs doctor: --path needs a directory\n", stderr);
        return 2;
      }
      quota_path = args[++i];
    } else if (arg == "-h" || arg == "--help") {
      puts(
          "usage: jcs doctor [--json] [--path DIR]\nProbes each jail layer "
          "on this host; exit 0 when the default jail (jcs run) can be "
          "enforced, 1 otherwise.\n--path DIR: where project_quota (the "
          "disk_quota_bytes/disk_quota_inodes budget) is probed (default: the "
          "current directory).");
      return 0;
    } else {
      fprintf(stderr, "jcs doctor: unknown argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  std::vector<jail::LayerStatus> layers = jail::ProbeHostLayers();
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
  return essential_ok && any_cgroup ? 0 : 1;
}

}  // namespace jcs::tools
