// Fuzzes redaction (telemetry/redact.h) with arbitrary strings and, when the
// input parses, JSON documents. The property that matters: no secret
// survives. After redaction no string anywhere, key or value, matches a
// token pattern (nor a Bearer credential in redacted text), and every value
// under a secret key is "[REDACTED]" (a depth cut counts: it replaces the whole
// subtree).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "re2/re2.h"
#include "sanitizers/fuzz_check.h"
#include "telemetry/redact.h"

namespace {

using jcs::telemetry::IsSecretKey;
using jcs::telemetry::kRedacted;

const RE2& TokenPattern() {
  static const RE2* const tokens = new RE2(
      R"(ghp_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9\-_]{16,}|AKIA[0-9A-Z]{16}|xox[baprs]-[A-Za-z0-9\-]{10,})");
  return *tokens;
}

bool HasSecret(std::string_view text) {
  static const RE2* const bearer =
      new RE2(R"((?i)\bBearer\s+[A-Za-z0-9\-._~+/]*[A-Za-z0-9])");
  return RE2::PartialMatch(text, TokenPattern()) ||
         (RE2::PartialMatch(text, *bearer) &&
          !RE2::PartialMatch(text, R"((?i)\bBearer\s+\[REDACTED\])"));
}

void CheckRedacted(const nlohmann::json& value) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      FUZZ_CHECK(!RE2::PartialMatch(it.key(), TokenPattern()));
      if (IsSecretKey(it.key())) {
        FUZZ_CHECK(it.value() == kRedacted);
      } else {
        CheckRedacted(it.value());
      }
    }
  } else if (value.is_array()) {
    for (const nlohmann::json& item : value) CheckRedacted(item);
  } else if (value.is_string()) {
    FUZZ_CHECK(!RE2::PartialMatch(value.get<std::string>(), TokenPattern()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string out = jcs::telemetry::RedactString(input);
  FUZZ_CHECK(!HasSecret(out));
  // Redacting twice changes nothing more.
  FUZZ_CHECK(jcs::telemetry::RedactString(out) == out);

  nlohmann::json doc = nlohmann::json::parse(input, nullptr, false);
  if (!doc.is_discarded()) {
    jcs::telemetry::Redact(doc);
    CheckRedacted(doc);
    // What a sink stores is serializable whatever the input held.
    (void)doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
