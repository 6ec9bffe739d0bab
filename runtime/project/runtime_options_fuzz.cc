// Fuzzes the runtime-option front ends and the one validator behind them:
// the input is read as an options JSON document (`--options FILE`), as
// KEY=VALUE lines (`--opt`) and as one JSON value, and every list that parses
// is validated and rendered (diagnostics, effective options, protobuf).
// Invariants beyond "no crash": a Value survives the protobuf round trip, and
// the normalized options a valid list renders validate again to the same
// diagnostics (what the supervisor reports is something it would accept).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "runtime/project/runtime_options.h"
#include "runtime/project/value.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::runtime::OptionList;
using jcs::runtime::ValidatedOptions;
using jcs::runtime::Value;

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

// Known finding (reported, runtime_options_error.* is not this target's to
// fix): the structured invalid_runtime_opt payload is a proto3 message whose
// `key` is a string field, so a key that is not UTF-8 (possible through
// `--opt`) does not survive it and GetInvalidRuntimeOpt returns nullopt.
// The payload is checked for ASCII keys only until that is fixed.
bool IsAscii(absl::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool AllKeysAscii(const OptionList& options) {
  for (const auto& [key, value] : options) {
    if (!IsAscii(key)) return false;
  }
  return true;
}

void ValidateAndRender(const OptionList& options) {
  (void)jcs::runtime::FirstInvalidRuntimeOpt(options);
  const absl::StatusOr<ValidatedOptions> valid =
      jcs::runtime::ValidateRuntimeOptions(options);
  if (!valid.ok()) {
    FUZZ_CHECK(valid.status().code() == absl::StatusCode::kInvalidArgument);
    if (AllKeysAscii(options)) {
      FUZZ_CHECK(
          jcs::runtime::GetInvalidRuntimeOpt(valid.status()).has_value());
    }
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
  } else if (IsAscii(text)) {
    FUZZ_CHECK(jcs::runtime::GetInvalidRuntimeOpt(kv.status()).has_value());
  }

  if (absl::StatusOr<Value> value = jcs::runtime::ParseJson(text); value.ok()) {
    CheckProtoRoundTrip(*value);
    FUZZ_CHECK(jcs::runtime::FromJson(jcs::runtime::ToJson(*value)) == *value);
  }
  return 0;
}
