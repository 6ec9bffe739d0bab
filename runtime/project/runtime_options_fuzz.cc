// Fuzzes the runtime-option front ends and the one validator behind them:
// the input is read as an options JSON document (`--options FILE`), as
// KEY=VALUE lines (`--opt`) and as one JSON value, and every list that parses
// is validated and rendered (diagnostics, effective options, protobuf).
// Invariants beyond "no crash": a Value survives the protobuf round trip, and
// the normalized options a valid list renders validate again to the same
// diagnostics (what the supervisor reports is something it would accept).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "runtime/project/runtime_options.h"
#include "runtime/project/runtime_options_error.h"
#include "runtime/project/value.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::runtime::OptionList;
using jcs::runtime::ValidatedOptions;
using jcs::runtime::Value;

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

// Every refusal carries the structured invalid_runtime_opt error whatever
// the key's bytes, its key valid UTF-8 (so it survives the proto payload and
// the control API's Error), and the message is that error formatted.
void CheckStructuredError(const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  const std::optional<jcs::runtime::InvalidRuntimeOpt> error =
      jcs::runtime::GetInvalidRuntimeOpt(status);
  FUZZ_CHECK(error.has_value());
  FUZZ_CHECK(!error->reason.empty());
  FUZZ_CHECK(jcs::runtime::ReportableKey(error->key) == error->key);
  FUZZ_CHECK(status.message() == jcs::runtime::FormatInvalidRuntimeOpt(*error));
}

void ValidateAndRender(const OptionList& options) {
  const std::optional<jcs::runtime::InvalidRuntimeOpt> first =
      jcs::runtime::FirstInvalidRuntimeOpt(options);
  const absl::StatusOr<ValidatedOptions> valid =
      jcs::runtime::ValidateRuntimeOptions(options);
  FUZZ_CHECK(valid.ok() == !first.has_value());
  if (!valid.ok()) {
    CheckStructuredError(valid.status());
    FUZZ_CHECK(jcs::runtime::GetInvalidRuntimeOpt(valid.status()) == first);
    return;
  }
  (void)jcs::runtime::RuntimeOptsJson(*valid).dump(-1, ' ', false, kReplace);
  (void)jcs::runtime::EffectiveOptionsJson(*valid).dump(-1, ' ', false,
                                                        kReplace);
  const jcs::proto::RuntimeOptions wire =
      jcs::runtime::RuntimeOptsProto(*valid);
  const absl::StatusOr<ValidatedOptions> again =
      jcs::runtime::ValidateRuntimeOptions(
          jcs::runtime::OptionsFromProto(wire));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(jcs::runtime::RuntimeOptsJson(*again) ==
             jcs::runtime::RuntimeOptsJson(*valid));
  (void)valid->ProtocolAllowed("mcp");
}

void CheckProtoRoundTrip(const Value& value) {
  FUZZ_CHECK(jcs::runtime::FromProto(jcs::runtime::ToProto(value)) == value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const absl::string_view text(in.data(), in.size());

  if (absl::StatusOr<OptionList> doc = jcs::runtime::ParseOptionsJson(text);
      doc.ok()) {
    for (const auto& [key, value] : *doc) CheckProtoRoundTrip(value);
    ValidateAndRender(*doc);
  }

  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (absl::StatusOr<OptionList> kv = jcs::runtime::ParseKeyValues(lines);
      kv.ok()) {
    FUZZ_CHECK(kv->size() == lines.size());
    for (const auto& [key, value] : *kv) CheckProtoRoundTrip(value);
    ValidateAndRender(*kv);
  } else {
    CheckStructuredError(kv.status());
  }

  if (absl::StatusOr<Value> value = jcs::runtime::ParseJson(text); value.ok()) {
    CheckProtoRoundTrip(*value);
    FUZZ_CHECK(jcs::runtime::FromJson(jcs::runtime::ToJson(*value)) == *value);
  }
  return 0;
}
