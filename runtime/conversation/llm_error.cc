#include "runtime/conversation/llm_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace jcs::runtime::conversation {

absl::Status LlmError(absl::StatusCode code, absl::string_view kind,
                      absl::string_view message) {
  absl::Status status(code, absl::StrCat(kind, ": ", message));
  status.SetPayload(kLlmErrorPayloadUrl, absl::Cord(kind));
  return status;
}

std::string LlmErrorKind(const absl::Status& status) {
  auto kind = status.GetPayload(kLlmErrorPayloadUrl);
  return kind.has_value() ? std::string(*kind) : std::string();
}

}  // namespace jcs::runtime::conversation
