#include "tools/option_flags.h"

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/project/value.h"

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
    // The same reader as the daemon config's default_options_json.
    absl::StatusOr<runtime::OptionList> parsed =
        runtime::ParseOptionsDocument("--options " + file, text.str());
    if (!parsed.ok()) return parsed.status();
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
