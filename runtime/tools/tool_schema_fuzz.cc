// Fuzzes tool-argument validation against an input_schema: the first line of
// the input is the schema, the rest the arguments (both JSON; either may be
// malformed or hostile, since tool catalogs and calls both come from
// outside). Invariants beyond "no crash": the detailed and the Status forms
// agree, and every failure renders the documented message grammar.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "runtime/tools/tool_schema.h"
#include "sanitizers/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view schema_text = in.substr(0, nl);
  const std::string_view args_text =
      nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  const nlohmann::json schema =
      nlohmann::json::parse(schema_text, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json args =
      nlohmann::json::parse(args_text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded() || args.is_discarded()) return 0;

  const std::optional<jcs::runtime::ToolArgsError> error =
      jcs::runtime::ValidateToolArgsDetailed(schema, args);
  const absl::Status status = jcs::runtime::ValidateToolArgs(schema, args);
  FUZZ_CHECK(error.has_value() == !status.ok());
  if (!error.has_value()) return 0;
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  const std::string reason = error->Reason();
  FUZZ_CHECK(status.message() == "invalid_tool_args: " + reason);
  FUZZ_CHECK(absl::StartsWith(
      reason, jcs::runtime::FormatToolArgsPath(error->path) + ": "));
  (void)jcs::runtime::ToolArgsErrorKindName(error->kind);
  return 0;
}
