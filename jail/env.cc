#include "jail/env.h"

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace jcs::jail {

absl::Status ValidateEnvVar(absl::string_view key, absl::string_view value) {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "--env: empty variable name; expected KEY=VALUE");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool alpha =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (digit && i > 0))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--env: invalid variable name %s: expected "
                          "[A-Za-z_][A-Za-z0-9_]* (bad character at "
                          "offset %d)",
                          absl::CHexEscape(key), i));
    }
  }
  if (value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--env: value of ", key, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

std::vector<std::string> BuildJailEnv(const proto::JailSpec& spec) {
  std::map<std::string, std::string> vars = {{"PATH", kBaselinePath},
                                             {"HOME", kBaselineHome},
                                             {"LANG", kBaselineLang}};
  for (const proto::EnvVar& var : spec.env()) vars[var.key()] = var.value();
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [key, value] : vars)
    out.push_back(absl::StrCat(key, "=", value));
  return out;
}

}  // namespace jcs::jail
