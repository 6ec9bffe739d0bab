// The JSON report of one `jcs run` (--report).
#ifndef JCS_JAIL_REPORT_H_
#define JCS_JAIL_REPORT_H_

#include <string>

#include "jail/runner.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

// {"status", "exit_code", "signal", "wall_time_ms", "warm_jail" (a jail
// built ahead of time ran it: `jcs run --daemon`), "setup_us": {step: us},
// "violations":
// [{"syscall", "nr", "count"}], "descendants_killed", "memory_peak_bytes",
// "oom_kills", "pids_limit_hits", "cgroup_backend", "layers": {layer: state},
// "warnings", "error", "program", "uid", "gid"}
std::string FormatReport(const proto::JailSpec& spec, const RunResult& result);

}  // namespace jcs::jail

#endif  // JCS_JAIL_REPORT_H_
