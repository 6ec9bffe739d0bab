// The daemon's runner for exec alert sinks (telemetry/alerts/router.h
// ExecRunner): the program runs in a jail like any tool's, never as the
// daemon's root.
//
// Each delivery is one cold jail: a fresh empty root directory under
// `work_dir` (owned by the daemon, so the jail user is nobody, 65534), no
// network (NET_NONE: its own empty network namespace, no loopback to the
// host), the default read-only system directories plus, read-only, the
// program's own directory when it lies outside them, a private 16 MiB /tmp,
// the usual seccomp policy, Landlock and cgroup limits (256 MiB, 64 pids).
// The alert's JSON line is written to its stdin; its stdout and stderr are
// read and dropped (the first 1 MiB; then the pipe is closed). The run is
// bounded by the sink's timeout, after which the jail kills the whole process
// tree; a run the router cancels (shutdown) is killed at once.
//
// Runs on the router's thread with an event loop of its own: the daemon's
// loop, and so every tool call, never waits for a sink.
#ifndef JCS_SUPERVISOR_ALERT_EXEC_H_
#define JCS_SUPERVISOR_ALERT_EXEC_H_

#include <string>

#include "absl/status/status.h"
#include "telemetry/alerts/router.h"

namespace jcs::supervisor {

// An ExecRunner whose runs get their roots under `work_dir` (created 0711
// when missing). OK when the program exited 0; else an error naming what
// happened (exit status, signal, timeout, jail setup failure).
telemetry::alerts::ExecRunner JailedAlertExecRunner(std::string work_dir);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_ALERT_EXEC_H_
