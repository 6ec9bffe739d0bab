// Env passthrough check of a tool call's arguments (spec §3.6, issue 4
// pipeline step 2). Runs before the policy (schema -> env -> policy), so a
// failure here never creates a policy decision.
//
// The caller decides which tools it applies to (tools that run programs and
// accept a top-level `env` argument, e.g. `exec`, command.run.*,
// workflow.run.*) and emits `security.env_denied` on failure.
//
// Outcomes, checked in this order:
//   - args is not an object, or has no `env` key -> ok, empty env.
//   - `env` is not an object (null included: a present key must be a map)
//     -> invalid_env_payload.
//   - any key is not a valid environment variable name
//     `[A-Za-z_][A-Za-z0-9_]*` (so blank keys are rejected too), or any
//     value is not a string or contains a NUL byte -> invalid_env_payload.
//     These keys and values become real environment variables in the jail.
//   - keys not in tool_env_allowlist (exact, case-sensitive match; the
//     default allowlist is empty, so deny-all) -> env_vars_not_allowed with
//     the sorted, unique denied keys.
//   - otherwise ok (an empty object too), with the env as (key, value) pairs
//     sorted by key, to be passed to the jailed program (the original
//     dropped them, quirk 8).
#ifndef JCS_RUNTIME_ENV_POLICY_H_
#define JCS_RUNTIME_ENV_POLICY_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {

inline constexpr char kInvalidEnvPayload[] = "invalid_env_payload";
inline constexpr char kEnvVarsNotAllowed[] = "env_vars_not_allowed";

struct EnvDecision {
  bool ok = true;
  std::string reason;                    // "" when ok
  std::vector<std::string> denied_keys;  // env_vars_not_allowed only
  std::vector<std::pair<std::string, std::string>> env;  // when ok
};

// True for `[A-Za-z_][A-Za-z0-9_]*`.
bool IsValidEnvKey(std::string_view key);

EnvDecision CheckEnvPayload(const nlohmann::json& args,
                            const ValidatedOptions& options);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_ENV_POLICY_H_
