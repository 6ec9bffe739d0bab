// Errors of the model adapters: a stable kind in front of the message
// ("llm_timeout: ...") and as a status payload, so the conversation runtime
// and an operator can tell a timeout from a refused connection or a broken
// stream without parsing prose.
#ifndef JCS_RUNTIME_CONVERSATION_LLM_ERROR_H_
#define JCS_RUNTIME_CONVERSATION_LLM_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace jcs::runtime::conversation {

inline constexpr char kLlmErrorPayloadUrl[] = "jcs.llm_error_kind";

// Kinds.
inline constexpr char kLlmHttpError[] = "llm_http_error";  // 4xx/5xx
inline constexpr char kLlmMalformedResponse[] = "llm_malformed_response";
inline constexpr char kLlmStreamTruncated[] = "llm_stream_truncated";
inline constexpr char kLlmTimeout[] = "llm_timeout";
inline constexpr char kLlmConnectionFailed[] = "llm_connection_failed";
inline constexpr char kLlmTlsError[] = "llm_tls_error";
inline constexpr char kLlmResponseTooLarge[] = "llm_response_too_large";
inline constexpr char kLlmBadRequest[] = "llm_bad_request";  // ours, unsent
inline constexpr char kLlmOverloaded[] = "llm_overloaded";   // too many calls

absl::Status LlmError(absl::StatusCode code, absl::string_view kind,
                      absl::string_view message);
// The kind of an LlmError status, or "" for any other status.
std::string LlmErrorKind(const absl::Status& status);

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_LLM_ERROR_H_
