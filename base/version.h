// The jcs version, in one place: `jcs --version`, the daemon's PingResponse
// and the docs all read it. Builds carry no git revision (offline Bazel, no
// stamping), so this constant is the whole version.
#ifndef JCS_BASE_VERSION_H_
#define JCS_BASE_VERSION_H_

namespace jcs {

inline constexpr char kJcsVersion[] = "0.1.0";

}  // namespace jcs

#endif  // JCS_BASE_VERSION_H_
