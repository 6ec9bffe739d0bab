#include "jail/seccomp_precompiled.h"

#include <iterator>
#include <vector>

#include "jail/default_seccomp_bpf.inc"

namespace jcs::jail {

const SeccompPolicy& PrecompiledDefaultPolicy() {
  static const SeccompPolicy* policy =
      new SeccompPolicy(SeccompPolicy::FromCompiled(
          std::vector<sock_filter>(std::begin(precompiled::kFilter),
                                   std::end(precompiled::kFilter)),
          std::vector<int>(std::begin(precompiled::kEpermSyscalls),
                           std::end(precompiled::kEpermSyscalls))));
  return *policy;
}

}  // namespace jcs::jail
