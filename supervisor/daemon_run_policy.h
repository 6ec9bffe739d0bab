// Whether the daemon runs a `jcs run --daemon` spec for a peer (issue 16).
//
// The client's spec is never trusted: the daemon finalizes it again (the
// same jail::Finalize a cold `jcs run` uses) and refuses any difference, so a
// spec no cold run would produce (hand-made, or finalized by another
// version) never reaches the jail builder. Then a peer that is not
// privileged (root or the daemon's own uid) gets only what a cold run of its
// own could do: a cold run as that uid maps the jail user to its own uid and
// gid (an unprivileged user namespace can map nothing else), binds only
// paths it can reach (search permission on every ancestor: its own mount
// calls resolve them as that uid), and puts its cgroup where jcs run puts it.
// On top of that the root must pass the rule projects use
// (runtime/project/root_access.h: read, write and search), and no bind may
// hold the daemon's own files (socket, state, config, log).
#ifndef JCS_SUPERVISOR_DAEMON_RUN_POLICY_H_
#define JCS_SUPERVISOR_DAEMON_RUN_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jail/spec.h"
#include "proto/jail.pb.h"
#include "supervisor/control_server.h"

namespace jcs::supervisor {

struct DaemonRunPolicy {
  // Root or the daemon's own uid: any spec a cold run as root accepts.
  bool privileged = false;
  // Paths no bind of an unprivileged peer may be, hold or lie in.
  std::vector<std::string> daemon_paths;
};

// The spec to run (the daemon's own finalization, with its warnings), or
// PermissionDenied (the peer may not have it) / InvalidArgument (not a
// finalized spec), each naming the field and what was expected.
absl::StatusOr<jail::FinalSpec> CheckDaemonRunSpec(
    const proto::JailSpec& spec, const PeerCredentials& peer,
    const DaemonRunPolicy& policy);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_DAEMON_RUN_POLICY_H_
