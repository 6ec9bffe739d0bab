// Sensitive-artifact scan of a tool result (spec §4.6, issue 4 step 6).
//
// The scan is non-blocking: it never fails a tool call, it only reports
// findings that the caller turns into `risk_flags`,
// `sensitivity_findings_count`, `sensitivity_finding_kinds` and the
// `security.sensitive_artifact_detected` event.
//
// What is flagged:
//   - Object keys. A key is normalized (ASCII-downcased, every run of
//     non-alphanumeric bytes turned into one `_`); if the normalized key
//     contains token, secret, password, api_key, apikey, authorization,
//     credential, private_key or access_key and the value is neither null nor
//     a blank (empty or all-whitespace) string, the finding is
//     {kind: "sensitive_key", path: <path of the key>}. Any other value
//     (number, bool, object, array, even empty) counts as non-blank. The scan
//     then recurses into the value either way.
//   - Strings. The first of these RE2 patterns that matches decides the kind
//     (one finding per string at most): bearer_token (case-insensitive),
//     openai_key, github_token, github_pat, aws_access_key, slack_token.
//
// Paths: object members are joined with `.` (`a.b.key`), array elements
// append `[i]` (`items[2].token`); the document root is the empty path. Keys
// appear verbatim (not normalized) in paths.
//
// Findings are deduplicated by (kind, path), kept in discovery order
// (depth-first, object members in nlohmann::json iteration order, i.e. sorted
// by key) and capped at kMaxSensitiveFindings; the walk stops once the cap
// is reached.
//
// Tool output is untrusted, so the work is bounded:
//   - only the first kMaxScannedBytesPerString bytes of each string are
//     matched (a token straddling the cut may be missed or, since `\b`
//     matches at the end of the scanned prefix, reported);
//   - at most kMaxScannedBytesTotal string bytes are matched per document;
//     later strings are skipped;
//   - values nested deeper than kMaxScanDepth (the root is depth 0) are not
//     visited; a key at the depth limit is still checked, its value is not.
// Whenever a bound cut the scan short, `truncated` is set.
#ifndef JCS_RUNTIME_SENSITIVE_SCAN_H_
#define JCS_RUNTIME_SENSITIVE_SCAN_H_

#include <cstddef>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace jcs::runtime {

inline constexpr std::size_t kMaxSensitiveFindings = 25;
inline constexpr std::size_t kMaxReportedFindingPaths = 10;
inline constexpr std::size_t kMaxScannedBytesPerString = 1 << 20;  // 1 MiB
inline constexpr std::size_t kMaxScannedBytesTotal = 8 << 20;      // 8 MiB
inline constexpr int kMaxScanDepth = 64;

inline constexpr char kSensitiveArtifactRiskFlag[] =
    "sensitive_artifact_detected";

struct SensitiveFinding {
  std::string kind;  // "sensitive_key", "bearer_token", "openai_key", ...
  std::string path;  // "a.b.key", "items[2].token", "" for the root

  bool operator==(const SensitiveFinding&) const = default;
};

struct SensitiveScanResult {
  // Deduplicated by (kind, path), discovery order, at most
  // kMaxSensitiveFindings.
  std::vector<SensitiveFinding> findings;
  // findings.size().
  std::size_t finding_count = 0;
  // Sorted unique kinds of `findings`.
  std::vector<std::string> finding_kinds;
  // Paths of the first kMaxReportedFindingPaths findings, in order.
  std::vector<std::string> finding_paths;
  // True when a depth or byte bound skipped part of the document.
  bool truncated = false;
};

// Scans a tool result. Never fails; bounded as described above.
SensitiveScanResult ScanForSensitiveArtifacts(const nlohmann::json& result);

// {"sensitive_artifact_detected"} when there is any finding, else {}.
std::vector<std::string> RiskFlags(const SensitiveScanResult& scan);

// Event fields for `security.sensitive_artifact_detected`:
// {"finding_count": N, "finding_kinds": [...], "finding_paths": [...]}.
nlohmann::json SensitiveScanEventFields(const SensitiveScanResult& scan);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_SENSITIVE_SCAN_H_
