#include "runtime/policy/sensitive_scan.h"

#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"

namespace jcs::runtime {
namespace {

struct Pattern {
  const char* kind;
  const RE2* re;
};

constexpr std::size_t kPatternCount = 6;

// Compiled once, never destroyed (function-local static of pointers).
const std::array<Pattern, kPatternCount>& Patterns() {
  static const std::array<Pattern, kPatternCount>* const patterns = [] {
    RE2::Options options;
    options.set_log_errors(false);
    auto make = [&options](const char* re) { return new RE2(re, options); };
    return new std::array<Pattern, kPatternCount>{{
        {"bearer_token", make(R"re((?i)\bBearer\s+[A-Za-z0-9\-._~+/]+=*)re")},
        {"openai_key", make(R"re(\bsk-[A-Za-z0-9]{16,}\b)re")},
        {"github_token", make(R"re(\bghp_[A-Za-z0-9]{20,}\b)re")},
        {"github_pat", make(R"re(\bgithub_pat_[A-Za-z0-9_]{20,}\b)re")},
        {"aws_access_key", make(R"re(\bAKIA[0-9A-Z]{16}\b)re")},
        {"slack_token", make(R"re(\bxox[baprs]-[A-Za-z0-9-]{10,}\b)re")},
    }};
  }();
  return *patterns;
}

constexpr std::array<std::string_view, 9> kSensitiveKeyTokens = {
    "token",         "secret",     "password",    "api_key",   "apikey",
    "authorization", "credential", "private_key", "access_key"};

std::string NormalizeKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  bool in_run = false;
  for (char c : key) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
      in_run = false;
    } else if (!in_run) {
      out.push_back('_');
      in_run = true;
    }
  }
  return out;
}

bool IsSensitiveKey(std::string_view key) {
  const std::string normalized = NormalizeKey(key);
  for (std::string_view token : kSensitiveKeyTokens) {
    if (normalized.find(token) != std::string::npos) return true;
  }
  return false;
}

bool IsBlank(const nlohmann::json& value) {
  if (value.is_null()) return true;
  if (!value.is_string()) return false;
  const std::string& s = value.get_ref<const std::string&>();
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isspace(static_cast<unsigned char>(c));
  });
}

class Scanner {
 public:
  void Scan(const nlohmann::json& value, int depth) {
    if (Full()) return;
    if (value.is_object()) {
      for (auto it = value.begin(); it != value.end() && !Full(); ++it) {
        const std::size_t mark = path_.size();
        if (!path_.empty()) path_.push_back('.');
        path_.append(it.key());
        if (IsSensitiveKey(it.key()) && !IsBlank(it.value())) {
          Add("sensitive_key");
        }
        Descend(it.value(), depth);
        path_.resize(mark);
      }
    } else if (value.is_array()) {
      for (std::size_t i = 0; i < value.size() && !Full(); ++i) {
        const std::size_t mark = path_.size();
        absl::StrAppend(&path_, "[", i, "]");
        Descend(value[i], depth);
        path_.resize(mark);
      }
    } else if (value.is_string()) {
      ScanString(value.get_ref<const std::string&>());
    }
  }

  SensitiveScanResult Finish() && {
    result_.finding_count = result_.findings.size();
    std::set<std::string> kinds;
    for (const SensitiveFinding& f : result_.findings) kinds.insert(f.kind);
    result_.finding_kinds.assign(kinds.begin(), kinds.end());
    for (std::size_t i = 0;
         i < result_.findings.size() && i < kMaxReportedFindingPaths; ++i) {
      result_.finding_paths.push_back(result_.findings[i].path);
    }
    return std::move(result_);
  }

 private:
  bool Full() const { return result_.findings.size() >= kMaxSensitiveFindings; }

  void Descend(const nlohmann::json& child, int depth) {
    if (!child.is_object() && !child.is_array() && !child.is_string()) return;
    if (depth + 1 > kMaxScanDepth) {
      result_.truncated = true;
      return;
    }
    Scan(child, depth + 1);
  }

  void ScanString(const std::string& s) {
    if (s.empty()) return;
    std::size_t n = std::min(s.size(), kMaxScannedBytesPerString);
    if (n > budget_) {
      n = budget_;
    }
    if (n < s.size()) result_.truncated = true;
    if (n == 0) return;
    budget_ -= n;
    const re2::StringPiece text(s.data(), n);
    for (const Pattern& p : Patterns()) {
      if (RE2::PartialMatch(text, *p.re)) {
        Add(p.kind);
        return;
      }
    }
  }

  void Add(const char* kind) {
    if (Full()) return;
    if (!seen_.emplace(kind, path_).second) return;
    result_.findings.push_back(SensitiveFinding{kind, path_});
  }

  std::string path_;
  std::set<std::pair<std::string, std::string>> seen_;
  std::size_t budget_ = kMaxScannedBytesTotal;
  SensitiveScanResult result_;
};

}  // namespace

SensitiveScanResult ScanForSensitiveArtifacts(const nlohmann::json& result) {
  Scanner scanner;
  scanner.Scan(result, 0);
  return std::move(scanner).Finish();
}

std::vector<std::string> RiskFlags(const SensitiveScanResult& scan) {
  if (scan.findings.empty()) return {};
  return {kSensitiveArtifactRiskFlag};
}

nlohmann::json SensitiveScanEventFields(const SensitiveScanResult& scan) {
  return nlohmann::json{{"finding_count", scan.finding_count},
                        {"finding_kinds", scan.finding_kinds},
                        {"finding_paths", scan.finding_paths}};
}

}  // namespace jcs::runtime
