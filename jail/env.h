// The jail's environment: a fixed baseline plus explicitly given variables;
// nothing from the host.
#ifndef JCS_JAIL_ENV_H_
#define JCS_JAIL_ENV_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

// The baseline every jailed program sees unless --env overrides a key.
inline constexpr char kBaselinePath[] =
    "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
inline constexpr char kBaselineHome[] = "/tmp";
inline constexpr char kBaselineLang[] = "C.UTF-8";

// A key must match [A-Za-z_][A-Za-z0-9_]*; a value must not contain NUL.
absl::Status ValidateEnvVar(absl::string_view key, absl::string_view value);

// "KEY=VALUE" strings: the baseline (PATH, HOME, LANG) with the spec's
// variables applied on top, sorted by key.
std::vector<std::string> BuildJailEnv(const proto::JailSpec& spec);

}  // namespace jcs::jail

#endif  // JCS_JAIL_ENV_H_
