#include "tools/option_flags.h"

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tools/client_common.h"

namespace jcs::tools {

absl::StatusOr<runtime::OptionList> GatherOptions(const ParsedFlags& flags) {
  runtime::OptionList options;
  if (const std::string file = flags.Get("--options"); !file.empty()) {
    std::ifstream in(file);
    if (!in) {
      return absl::InvalidArgumentError("--options: cannot read " + file);
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<nlohmann::json> syntax =
        ParseJsonText("--options " + file, text.str());
    if (!syntax.ok()) return syntax.status();
    absl::StatusOr<runtime::OptionList> parsed =
        runtime::ParseOptionsJson(text.str());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--options ", file, ": ", parsed.status().message()));
    }
    options = *std::move(parsed);
  }
  absl::StatusOr<runtime::OptionList> cli =
      runtime::ParseKeyValues(flags.All("--opt"));
  if (!cli.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--opt: ", cli.status().message()));
  }
  options.insert(options.end(), cli->begin(), cli->end());
  return options;
}

}  // namespace jcs::tools
