// Builds the ChildContext of a jail from its finalized spec: the mount plan,
// the program's argv and environment, rlimits, the seccomp program and the
// Landlock plan. Used by the supervisor of a run and by the zygote that
// clones warm jails.
#ifndef JCS_JAIL_CHILD_CONTEXT_H_
#define JCS_JAIL_CHILD_CONTEXT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "jail/child.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

// The program's environment: the baseline, the spec's variables and, in
// egress mode, the proxy variables pointing at 127.0.0.1:`egress_port`.
std::vector<std::string> ProgramEnv(const proto::JailSpec& spec,
                                    int egress_port);

// Errors name the layer ("mounts: ...", "landlock: ..."). `warnings` and
// `layers` get what the report should say about Landlock.
absl::Status FillChildContext(const proto::JailSpec& spec, bool warm,
                              ChildContext* ctx,
                              std::vector<std::string>* warnings,
                              std::map<std::string, std::string>* layers);

// clone3 of a jail child (new user, mount, pid, net, ipc and uts
// namespaces, CLONE_PIDFD into *pidfd, CLONE_INTO_CGROUP when cgroup_fd >=
// 0). The child runs JailChildMain(ctx) and never returns; the parent gets
// the pid or -1 (errno set).
long CloneJailChild(const ChildContext& ctx, int cgroup_fd, int* pidfd,
                    int exit_signal);

}  // namespace jcs::jail

#endif  // JCS_JAIL_CHILD_CONTEXT_H_
