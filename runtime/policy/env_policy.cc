#include "runtime/policy/env_policy.h"

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {

bool IsValidEnvKey(std::string_view key) {
  if (key.empty()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    const bool ok =
        absl::ascii_isalpha(c) || c == '_' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

EnvDecision CheckEnvPayload(const nlohmann::json& args,
                            const ValidatedOptions& options) {
  EnvDecision decision;
  if (!args.is_object()) return decision;
  const auto it = args.find("env");
  if (it == args.end()) return decision;
  auto invalid = [&decision]() {
    decision.ok = false;
    decision.reason = kInvalidEnvPayload;
    decision.env.clear();
    return decision;
  };
  if (!it->is_object()) return invalid();

  std::set<std::string> denied;
  for (const auto& [key, value] : it->items()) {
    if (!IsValidEnvKey(key) || !value.is_string()) return invalid();
    const std::string& s = value.get_ref<const std::string&>();
    if (s.find('\0') != std::string::npos) return invalid();
    if (std::find(options.tool_env_allowlist.begin(),
                  options.tool_env_allowlist.end(),
                  key) == options.tool_env_allowlist.end()) {
      denied.insert(key);
    }
    decision.env.emplace_back(key, s);
  }
  if (!denied.empty()) {
    decision.ok = false;
    decision.reason = kEnvVarsNotAllowed;
    decision.denied_keys.assign(denied.begin(), denied.end());
    decision.env.clear();
  }
  return decision;
}

}  // namespace jcs::runtime
