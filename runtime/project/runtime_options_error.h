// The `invalid_runtime_opt` error (spec §2: `{:invalid_runtime_opt, key,
// reason}`) as a struct, and its encoding in an absl::Status.
//
// Encoding: absl::InvalidArgumentError whose message is exactly
// FormatInvalidRuntimeOpt(error), e.g.
//   invalid_runtime_opt{key: "tool_timeout_ms", reason:
//   "expected_positive_integer"}
// with a payload under kInvalidRuntimeOptPayloadUrl holding the serialized
// proto::InvalidRuntimeOpt, so callers recover the struct with
// GetInvalidRuntimeOpt instead of parsing the message.
#ifndef JCS_RUNTIME_RUNTIME_OPTIONS_ERROR_H_
#define JCS_RUNTIME_RUNTIME_OPTIONS_ERROR_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/runtime_options.pb.h"

namespace jcs::runtime {

inline constexpr absl::string_view kInvalidRuntimeOptPayloadUrl =
    "type.googleapis.com/jcs.proto.InvalidRuntimeOpt";

struct InvalidRuntimeOpt {
  std::string key;
  // The reason atom, e.g. "unknown_option". For outside_root_allowlist
  // entries it is "invalid_entry" and entry_index / entry_reason are set.
  std::string reason;
  std::optional<int64_t> entry_index;  // zero-based
  std::string entry_reason;            // e.g. "missing_reason_code"

  static InvalidRuntimeOpt Simple(std::string key, std::string reason) {
    return {std::move(key), std::move(reason), std::nullopt, ""};
  }
  static InvalidRuntimeOpt Entry(std::string key, int64_t index,
                                 std::string entry_reason) {
    return {std::move(key), "invalid_entry", index, std::move(entry_reason)};
  }

  // The reason as one string: "expected_positive_integer", or
  // "invalid_entry[2]: missing_reason_code".
  std::string ReasonString() const;

  friend bool operator==(const InvalidRuntimeOpt& a,
                         const InvalidRuntimeOpt& b) {
    return a.key == b.key && a.reason == b.reason &&
           a.entry_index == b.entry_index && a.entry_reason == b.entry_reason;
  }
};

// `invalid_runtime_opt{key: "<key>", reason: "<ReasonString()>"}`; the key is
// C-escaped (it may come from untrusted input).
std::string FormatInvalidRuntimeOpt(const InvalidRuntimeOpt& error);

proto::InvalidRuntimeOpt InvalidRuntimeOptToProto(
    const InvalidRuntimeOpt& error);
InvalidRuntimeOpt InvalidRuntimeOptFromProto(const proto::InvalidRuntimeOpt& p);

// The key as an error may carry it: unchanged when it is valid UTF-8,
// otherwise hex-escaped (printable ASCII). The payload and the control API's
// Error.key are proto3 string fields, which must hold UTF-8: a parser refuses
// the whole message otherwise, and the error would lose its structure.
std::string ReportableKey(absl::string_view key);

// For a key that is not valid UTF-8 (possible through `--opt`; no option key
// is): the error naming it (ReportableKey) with reason "expected_utf8_key".
// nullopt for a UTF-8 key.
std::optional<InvalidRuntimeOpt> NonUtf8KeyError(absl::string_view key);

// The absl::Status form described above. A key that is not valid UTF-8 is
// carried as ReportableKey(key), so the payload always parses back.
absl::Status InvalidRuntimeOptStatus(const InvalidRuntimeOpt& error);
// The struct back from a status built by InvalidRuntimeOptStatus (also after
// it was wrapped with the same payload); nullopt for any other status.
std::optional<InvalidRuntimeOpt> GetInvalidRuntimeOpt(
    const absl::Status& status);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_RUNTIME_OPTIONS_ERROR_H_
