#include "runtime/policy/network_policy.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"
#include "runtime/policy/json_like.h"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;

// std::string_view helpers (Debian's absl::string_view is not
// std::string_view).
bool IsSpace(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c));
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view Trim(std::string_view s) {
  s = TrimLeft(s);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  return out;
}

bool Contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

const RE2& UrlRegex() {
  static const RE2* const re = new RE2(
      R"re((?:^|[^A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+\-.]{1,20}://[^\s"'<>()[\]{}]+))re");
  return *re;
}

const RE2& KeyedRegex() {
  static const RE2* const re = new RE2(
      R"re((?i)(url|uri|host|domain|endpoint)\s*(=|:|=>)\s*["']?([^\s"',}>]+))re");
  return *re;
}

bool IsTargetKey(std::string_view key) {
  const std::string lower = Lower(key);
  for (std::string_view token : {"url", "uri", "host", "domain", "endpoint"}) {
    if (Contains(lower, token)) return true;
  }
  return false;
}

class Scanner {
 public:
  NetworkTargets Finish() && { return std::move(result_); }

  // Generic (key-based) recursion.
  void Generic(const json& value, int depth) {
    if (!Enter(depth)) return;
    if (value.is_object()) {
      for (const auto& [key, child] : value.items()) {
        if (IsTargetKey(key)) {
          TargetValue(child, depth + 1);
        } else {
          Generic(child, depth + 1);
        }
      }
    } else if (value.is_array()) {
      for (const json& child : value) Generic(child, depth + 1);
    } else if (value.is_string()) {
      const std::string& s = value.get_ref<const std::string&>();
      json decoded;
      if (TryDecode(s, &decoded, depth)) {
        Generic(decoded, depth + 1);
      } else {
        Opaque(s);
      }
    }
  }

  // A value under a target key.
  void TargetValue(const json& value, int depth) {
    if (!Enter(depth)) return;
    if (value.is_object()) {
      Generic(value, depth);
    } else if (value.is_array()) {
      for (const json& child : value) TargetValue(child, depth + 1);
    } else if (value.is_string()) {
      const std::string& s = value.get_ref<const std::string&>();
      json decoded;
      if (TryDecode(s, &decoded, depth)) {
        TargetValue(decoded, depth + 1);
      } else {
        Add(s);
        Opaque(s);
      }
    }
  }

 private:
  bool Enter(int depth) {
    if (depth > kMaxNetworkScanDepth) {
      result_.truncated = true;
      return false;
    }
    return true;
  }

  bool TryDecode(const std::string& s, json* out, int depth) {
    std::optional<json> decoded =
        DecodeJsonLike(s, kMaxNetworkScanBytes, kMaxNetworkScanDepth - depth,
                       &result_.truncated);
    if (!decoded.has_value()) return false;
    *out = *std::move(decoded);
    return true;
  }

  void Add(std::string_view candidate) {
    const std::string_view trimmed = Trim(candidate);
    if (trimmed.empty()) return;
    std::string owned(trimmed);
    if (seen_.insert(owned).second) result_.targets.push_back(std::move(owned));
  }

  void Opaque(const std::string& s) {
    std::size_t n = s.size();
    if (n > kMaxNetworkScanBytes) {
      n = kMaxNetworkScanBytes;
      result_.truncated = true;
    }
    const re2::StringPiece text(s.data(), n);
    {
      re2::StringPiece input = text;
      re2::StringPiece url;
      while (RE2::FindAndConsume(&input, UrlRegex(), &url)) {
        Add(std::string_view(url.data(), url.size()));
      }
    }
    {
      re2::StringPiece input = text;
      re2::StringPiece value;
      while (
          RE2::FindAndConsume(&input, KeyedRegex(), nullptr, nullptr, &value)) {
        Add(std::string_view(value.data(), value.size()));
      }
    }
  }

  NetworkTargets result_;
  std::unordered_set<std::string> seen_;
};

bool IsSchemeChar(char c, bool first) {
  if (absl::ascii_isalpha(static_cast<unsigned char>(c))) return true;
  if (first) return false;
  return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '+' ||
         c == '-' || c == '.';
}

bool IsValidScheme(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!IsSchemeChar(s[i], i == 0)) return false;
  }
  return true;
}

// The downcased text before the first "://" ("" when absent).
std::string SchemeOf(std::string_view target) {
  const std::size_t pos = target.find("://");
  if (pos == std::string_view::npos) return "";
  return Lower(TrimLeft(target.substr(0, pos)));
}

std::string_view CutAtPathStart(std::string_view s) {
  const std::size_t end = s.find_first_of("/?#\\");
  return end == std::string_view::npos ? s : s.substr(0, end);
}

std::string_view AfterLastAt(std::string_view s) {
  const std::size_t at = s.rfind('@');
  return at == std::string_view::npos ? s : s.substr(at + 1);
}

std::string_view DropPort(std::string_view s) {
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    return close == std::string_view::npos ? s.substr(1)
                                           : s.substr(1, close - 1);
  }
  const std::size_t colon = s.find(':');
  if (colon != std::string_view::npos &&
      s.find(':', colon + 1) == std::string_view::npos) {
    return s.substr(0, colon);
  }
  return s;
}

std::string FinishHost(std::string_view host) { return Lower(Trim(host)); }

}  // namespace

NetworkTargets ScanNetworkTargets(const json& args) {
  Scanner scanner;
  scanner.Generic(args, 0);
  return std::move(scanner).Finish();
}

std::vector<std::string> ExtractNetworkTargets(const json& args) {
  return ScanNetworkTargets(args).targets;
}

std::string NormalizeHost(std::string_view target) {
  std::string_view s = Trim(target);
  const std::size_t sep = s.find("://");
  if (sep != std::string_view::npos && IsValidScheme(s.substr(0, sep))) {
    const std::string_view authority = CutAtPathStart(s.substr(sep + 3));
    return FinishHost(DropPort(AfterLastAt(authority)));
  }
  if (s.starts_with("//")) s.remove_prefix(2);
  return FinishHost(DropPort(AfterLastAt(CutAtPathStart(s))));
}

NetworkDecision CheckNetwork(const json& args,
                             const ValidatedOptions& options) {
  NetworkDecision decision;
  auto deny = [&decision](const char* reason) {
    decision.allowed = false;
    decision.reason = reason;
    return decision;
  };
  if (options.network_egress_policy != EgressPolicy::kAllow) {
    return deny(kNetworkDenied);
  }
  const NetworkTargets scanned = ScanNetworkTargets(args);
  if (scanned.truncated) return deny(kNetworkEndpointDenied);

  std::vector<std::string> schemes;
  for (const std::string& s : options.network_allowed_schemes) {
    schemes.push_back(Lower(Trim(s)));
  }
  for (const std::string& target : scanned.targets) {
    if (!Contains(target, "://")) continue;
    std::string scheme = SchemeOf(target);
    if (std::find(schemes.begin(), schemes.end(), scheme) == schemes.end()) {
      decision.target = target;
      decision.scheme = std::move(scheme);
      return deny(kNetworkProtocolDenied);
    }
  }

  std::vector<std::string> allowlist;
  for (const std::string& entry : options.network_allowlist) {
    std::string host = NormalizeHost(entry);
    if (!host.empty()) allowlist.push_back(std::move(host));
  }
  // Only a configured-empty list allows any host; a list of blank entries
  // allows none.
  if (options.network_allowlist.empty()) return decision;
  for (const std::string& target : scanned.targets) {
    std::string host = NormalizeHost(target);
    const bool ok =
        !host.empty() &&
        std::any_of(allowlist.begin(), allowlist.end(),
                    [&host](const std::string& entry) {
                      return host == entry ||
                             (host.size() > entry.size() &&
                              host.ends_with(entry) &&
                              host[host.size() - entry.size() - 1] == '.');
                    });
    if (!ok) {
      decision.target = target;
      decision.host = std::move(host);
      return deny(kNetworkEndpointDenied);
    }
  }
  return decision;
}

}  // namespace jcs::runtime
