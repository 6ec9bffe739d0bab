// Redaction of secrets in everything jcs stores, shows or streams (spec §5.2):
// telemetry payloads (and through the bus: recent events and errors,
// subscribers, the journal, alerts), tool results kept in the journal.
//
// - A key whose normalized form (lower-cased, every non-alphanumeric turned
//   into '_') contains token, secret, password, api_key, apikey,
//   authorization, credential, private_key or access_key has its value
//   replaced by "[REDACTED]", whatever the value is.
// - In strings, in this order: "Bearer <token>" -> "Bearer [REDACTED]";
//   "api_key=...", "token: ...", "secret=", "password=", "authorization=" ->
//   the prefix and "[REDACTED]"; GitHub (ghp_, github_pat_), OpenAI-style
//   (sk-), AWS access key ids (AKIA...) and Slack (xox?-) tokens ->
//   "[REDACTED]".
// - Beyond the original: a string that is itself a JSON object or array (an
//   error carrying a serialized response body, say) is parsed, redacted the
//   same way and serialized again, so `{"token":"..."}` inside a string does
//   not slip past the key rule.
// - Keys are text as well: an object's keys go through the same string rules
//   (a token or a JSON document as a key does not slip past), and a key
//   redacted onto a name the object already has gets "#2", "#3", ... so no
//   member is lost.
#ifndef JCS_TELEMETRY_REDACT_H_
#define JCS_TELEMETRY_REDACT_H_

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace jcs::telemetry {

inline constexpr char kRedacted[] = "[REDACTED]";

// True for a key whose value is always redacted.
bool IsSecretKey(std::string_view key);

// The string with every secret pattern replaced (JSON inside is handled by
// Redact()).
std::string RedactString(std::string_view text);

// Redacts `value` in place, recursively (objects, arrays, strings). Nesting
// deeper than kMaxRedactDepth is replaced whole by "[REDACTED]": no secret
// hides below the depth the walk reaches.
inline constexpr int kMaxRedactDepth = 64;
void Redact(nlohmann::json& value);
nlohmann::json Redacted(nlohmann::json value);

}  // namespace jcs::telemetry

#endif  // JCS_TELEMETRY_REDACT_H_
