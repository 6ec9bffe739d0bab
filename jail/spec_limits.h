// Limits of a JailSpec that both the flag parser (spec.cc) and Finalize
// (spec_finalize.cc) enforce, so the two cannot disagree.
#ifndef JCS_JAIL_SPEC_LIMITS_H_
#define JCS_JAIL_SPEC_LIMITS_H_

#include <cstdint>

namespace jcs::jail {

inline constexpr uint64_t kMaxTimeoutMs = 7ull * 24 * 3600 * 1000;

}  // namespace jcs::jail

#endif  // JCS_JAIL_SPEC_LIMITS_H_
