// Pieces shared by the probes of `jcs doctor` (jail/doctor.cc) and its
// cgroup probes (jail/doctor_cgroup.cc).
#ifndef JCS_JAIL_DOCTOR_PROBE_H_
#define JCS_JAIL_DOCTOR_PROBE_H_

#include <optional>
#include <string>
#include <vector>

#include "jail/doctor.h"

namespace jcs::jail::doctor_probe {

// "ENOENT (No such file or directory)".
std::string ErrnoText(int err);
// First 64 KiB of a small file, or nullopt when it cannot be read.
std::optional<std::string> ReadSmallFile(const std::string& path);
// The file with newlines turned to spaces, trimmed.
std::optional<std::string> ReadTrimmed(const std::string& path);
// A row named `name`, everything else unset.
LayerStatus Row(std::string name);

// The cgroup rows: v2 and its controllers, the v1 controllers.
void AppendCgroupLayers(std::vector<LayerStatus>* layers);

}  // namespace jcs::jail::doctor_probe

#endif  // JCS_JAIL_DOCTOR_PROBE_H_
