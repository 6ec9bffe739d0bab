// Limits and defaults of a JailSpec that both the flag parser and its
// --help (spec.cc) and Finalize (spec_finalize.cc) use, so they cannot
// disagree.
#ifndef JCS_JAIL_SPEC_LIMITS_H_
#define JCS_JAIL_SPEC_LIMITS_H_

#include <cstdint>

namespace jcs::jail {

inline constexpr uint64_t kMaxTimeoutMs = 7ull * 24 * 3600 * 1000;

inline constexpr uint64_t kDefaultTimeoutMs = 60'000;
inline constexpr uint64_t kDefaultMemory = 512ull << 20;
inline constexpr uint64_t kDefaultPids = 256;
inline constexpr uint64_t kDefaultTmpSize = 64ull << 20;
inline constexpr uint64_t kDefaultNofile = 1024;
inline constexpr uint64_t kDefaultFsize = 1ull << 30;
inline constexpr uint32_t kNobody = 65534;
inline constexpr const char* kDefaultHostname = "jcs";
inline constexpr const char* kDefaultCgroupParent = "jcs";

}  // namespace jcs::jail

#endif  // JCS_JAIL_SPEC_LIMITS_H_
