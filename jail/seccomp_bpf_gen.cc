// Build-time compiler of the default seccomp policy: prints the BPF program as
// C++ source, so that `jcs run` installs a precompiled filter instead of
// running libseccomp on every launch.
#include <cstdio>

#include "jail/seccomp_policy.h"

int main() {
  absl::StatusOr<jcs::jail::SeccompPolicy> policy =
      jcs::jail::SeccompPolicy::CompileDefault();
  if (!policy.ok()) {
    fprintf(stderr, "seccomp_bpf_gen: %s\n",
            std::string(policy.status().message()).c_str());
    return 1;
  }
  fputs(policy->ToCppSource().c_str(), stdout);
  return 0;
}
