#include "runtime/project/runtime_options_error.h"

#include <climits>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/common.h"

namespace jcs::runtime {

std::string InvalidRuntimeOpt::ReasonString() const {
  if (!entry_index.has_value()) return reason;
  return absl::StrCat(reason, "[", *entry_index, "]: ", entry_reason);
}

std::string FormatInvalidRuntimeOpt(const InvalidRuntimeOpt& error) {
  return absl::StrCat("invalid_runtime_opt{key: \"", absl::CEscape(error.key),
                      "\", reason: \"", absl::CEscape(error.ReasonString()),
                      "\"}");
}

proto::InvalidRuntimeOpt InvalidRuntimeOptToProto(
    const InvalidRuntimeOpt& error) {
  proto::InvalidRuntimeOpt p;
  p.set_key(error.key);
  p.set_reason(error.reason);
  if (error.entry_index.has_value()) {
    p.set_entry_index(*error.entry_index);
    p.set_entry_reason(error.entry_reason);
  }
  return p;
}

InvalidRuntimeOpt InvalidRuntimeOptFromProto(
    const proto::InvalidRuntimeOpt& p) {
  if (!p.entry_reason().empty()) {
    return InvalidRuntimeOpt::Entry(p.key(), p.entry_index(), p.entry_reason());
  }
  return InvalidRuntimeOpt::Simple(p.key(), p.reason());
}

namespace {

// The check protobuf's parser applies to string fields, so what passes here
// parses back.
bool IsUtf8(absl::string_view text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) return false;
  return google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                             text.size());
}

}  // namespace

std::string ReportableKey(absl::string_view key) {
  return IsUtf8(key) ? std::string(key) : absl::CHexEscape(key);
}

std::optional<InvalidRuntimeOpt> NonUtf8KeyError(absl::string_view key) {
  if (IsUtf8(key)) return std::nullopt;
  return InvalidRuntimeOpt::Simple(ReportableKey(key), "expected_utf8_key");
}

absl::Status InvalidRuntimeOptStatus(const InvalidRuntimeOpt& error) {
  InvalidRuntimeOpt reported = error;
  reported.key = ReportableKey(error.key);
  absl::Status status =
      absl::InvalidArgumentError(FormatInvalidRuntimeOpt(reported));
  status.SetPayload(
      kInvalidRuntimeOptPayloadUrl,
      absl::Cord(InvalidRuntimeOptToProto(reported).SerializeAsString()));
  return status;
}

std::optional<InvalidRuntimeOpt> GetInvalidRuntimeOpt(
    const absl::Status& status) {
  absl::optional<absl::Cord> payload =
      status.GetPayload(kInvalidRuntimeOptPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  proto::InvalidRuntimeOpt p;
  if (!p.ParseFromString(std::string(*payload))) return std::nullopt;
  return InvalidRuntimeOptFromProto(p);
}

}  // namespace jcs::runtime
