// The default seccomp policy, compiled (and self-checked) at build time.
#ifndef JCS_JAIL_SECCOMP_PRECOMPILED_H_
#define JCS_JAIL_SECCOMP_PRECOMPILED_H_

#include "jail/seccomp_policy.h"

namespace jcs::jail {

// Built once per process from the generated arrays; never fails.
const SeccompPolicy& PrecompiledDefaultPolicy();

}  // namespace jcs::jail

#endif  // JCS_JAIL_SECCOMP_PRECOMPILED_H_
