#include "telemetry/redact.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "re2/re2.h"

namespace jcs::telemetry {
namespace {

// Compiled once; RE2 is safe to share between threads and linear-time on any
// input (no backtracking blow-up on a hostile string).
const RE2& BearerPattern() {
  static const RE2* const re =
      new RE2(R"((?i)\b(Bearer)\s+[A-Za-z0-9\-._~+/]+=*)");
  return *re;
}

const RE2& AssignmentPattern() {
  static const RE2* const re = new RE2(
      R"((?i)((?:api[_-]?key|token|secret|password|authorization)\s*[:=]\s*)([^\s,;]+))");
  return *re;
}

// A superset of the three patterns above, as one linear scan: a string
// without any of these cannot match them, and most strings (paths, ids,
// event names) skip the three replacements.
const RE2& MayHoldSecret() {
  static const RE2* const re = new RE2(
      R"((?i)bearer|api|token|secret|password|authorization|ghp_|github_pat_|sk-|akia|xox)");
  return *re;
}

const RE2& TokenPattern() {
  static const RE2* const re = new RE2(
      R"(ghp_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9\-_]{16,}|AKIA[0-9A-Z]{16}|xox[baprs]-[A-Za-z0-9\-]{10,})");
  return *re;
}

constexpr std::string_view kSecretKeyParts[] = {
    "token",         "secret",     "password",    "api_key",   "apikey",
    "authorization", "credential", "private_key", "access_key"};

void RedactAt(nlohmann::json& value, int depth);

// A string that looks like a JSON document is redacted as one.
bool RedactEmbeddedJson(std::string& text, int depth) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (text[first] != '{' && text[first] != '['))
    return false;
  nlohmann::json inner = nlohmann::json::parse(text, nullptr, false);
  if (inner.is_discarded() || !inner.is_structured()) return false;
  RedactAt(inner, depth + 1);
  text = inner.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return true;
}

// A JSON document in a string is redacted as one; other text through the
// patterns.
std::string RedactedText(std::string text, int depth) {
  if (!RedactEmbeddedJson(text, depth)) text = RedactString(text);
  return text;
}

// Keys are text too: a tool's output parsed into an object can carry a token
// as a key ({"sk-...": 1}; found by redact_fuzz in a JSON string's keys). A
// key redacted onto a name the object already has gets "#2", "#3", ...
// rather than overwriting that member.
void RedactObject(nlohmann::json& object, int depth) {
  bool keys_change = false;
  for (auto it = object.begin(); it != object.end() && !keys_change; ++it) {
    keys_change = RedactedText(it.key(), depth) != it.key();
  }
  if (!keys_change) {
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (IsSecretKey(it.key())) {
        it.value() = kRedacted;
      } else {
        RedactAt(it.value(), depth + 1);
      }
    }
    return;
  }
  nlohmann::json out = nlohmann::json::object();
  for (auto it = object.begin(); it != object.end(); ++it) {
    std::string key = RedactedText(it.key(), depth);
    if (out.contains(key)) {
      int n = 2;
      while (out.contains(absl::StrCat(key, "#", n))) ++n;
      key = absl::StrCat(key, "#", n);
    }
    if (IsSecretKey(it.key()) || IsSecretKey(key)) {
      out[key] = kRedacted;
    } else {
      RedactAt(it.value(), depth + 1);
      out[key] = std::move(it.value());
    }
  }
  object = std::move(out);
}

void RedactAt(nlohmann::json& value, int depth) {
  if (depth > kMaxRedactDepth) {
    value = kRedacted;
    return;
  }
  if (value.is_object()) {
    RedactObject(value, depth);
  } else if (value.is_array()) {
    for (nlohmann::json& item : value) RedactAt(item, depth + 1);
  } else if (value.is_string()) {
    value = RedactedText(value.get<std::string>(), depth);
  }
}

}  // namespace

bool IsSecretKey(std::string_view key) {
  std::string normalized;
  normalized.reserve(key.size());
  for (const char c : key) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 'A' && u <= 'Z') {
      normalized.push_back(static_cast<char>(u - 'A' + 'a'));
    } else if ((u >= 'a' && u <= 'z') || (u >= '0' && u <= '9')) {
      normalized.push_back(c);
    } else {
      normalized.push_back('_');
    }
  }
  for (std::string_view part : kSecretKeyParts) {
    if (normalized.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string RedactString(std::string_view text) {
  std::string out(text);
  if (!RE2::PartialMatch(out, MayHoldSecret())) return out;
  RE2::GlobalReplace(&out, BearerPattern(), R"(\1 [REDACTED])");
  RE2::GlobalReplace(&out, AssignmentPattern(), R"(\1[REDACTED])");
  RE2::GlobalReplace(&out, TokenPattern(), kRedacted);
  return out;
}

void Redact(nlohmann::json& value) { RedactAt(value, 0); }

nlohmann::json Redacted(nlohmann::json value) {
  Redact(value);
  return value;
}

}  // namespace jcs::telemetry
