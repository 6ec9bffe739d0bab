// `jcs doctor [--json]`: which jail layers this host can enforce, with fixes
// for the missing ones.
#include <cstdio>

#include "jail/doctor.h"
#include "tools/commands.h"

namespace jcs::tools {

int DoctorCommand(const std::vector<std::string>& args) {
  bool json = false;
  for (const std::string& arg : args) {
    if (arg == "--json") {
      json = true;
    } else if (arg == "-h" || arg == "--help") {
      puts(
          "usage: jcs doctor [--json]\nProbes each jail layer on this host; "
          "exit 0 when the "
          "default jail (jcs run) can be enforced, 1 otherwise.");
      return 0;
    } else {
      fprintf(stderr, "jcs doctor: unknown argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  const std::vector<jail::LayerStatus> layers = jail::ProbeHostLayers();
  fputs((json ? jail::FormatLayerJson(layers) : jail::FormatLayerTable(layers))
            .c_str(),
        stdout);
  bool essential_ok = true;
  for (const jail::LayerStatus& layer : layers) {
    for (const char* essential :
         {"user_namespace", "mount_namespace", "pid_namespace",
          "network_namespace", "ipc_namespace", "uts_namespace",
          "cgroup_namespace", "seccomp", "seccomp_user_notification",
          "procfs"}) {
      if (layer.name == essential && !layer.available) essential_ok = false;
    }
  }
  return essential_ok ? 0 : 1;
}

}  // namespace jcs::tools
