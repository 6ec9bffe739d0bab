// Path policy of the tool runtime (spec §3.2-§3.4, issue 4 step 3, paths).
//
// CheckToolPaths extracts every path candidate from a tool call's arguments,
// resolves each against the project root (symlinks included) and decides:
//   - inside the root: allowed unless the root-relative path is sensitive;
//   - outside the root: allowed only through an outside_root_allowlist entry
//     (its reason_code is recorded) and still subject to the sensitive check;
//     otherwise "outside_root".
// The first failing candidate halts the check.
//
// Decisions on the spec's [quirk]s and open points:
//   1. A JSON string literal under a path key ("\"../x\"") decodes to a bare
//      string that is treated as a path-key value again (a candidate), not
//      only opaque-scanned (quirk 2).
//   2. A list under a path key passes the path-key context to its elements,
//      so `{"paths": ["../x"]}` yields the candidate `../x` (the original
//      recursed "generically", opaque-scanning the elements only). A map
//      under a path key is walked with its own keys deciding.
//   3. Symlinks are resolved fully (every level, dangling links included, at
//      most kMaxSymlinkHops hops), not one level deep; `..` in the candidate
//      is collapsed lexically first, as in the original.
//   4. Tool arguments are untrusted, so the work is bounded:
//      - JSON nesting deeper than kMaxPathScanDepth (the arguments themselves
//        and JSON decoded from strings, counted together) and more than
//        kMaxPathCandidates distinct candidates mark the extraction
//        truncated; CheckToolPaths then denies with "outside_root" and an
//        empty candidate (fail closed).
//      - Strings longer than kMaxPathScanStringBytes are not JSON-decoded and
//        only their first kMaxPathScanStringBytes bytes are opaque-scanned;
//        after kMaxPathScanTotalBytes of decoded/scanned text per document,
//        strings under non-path keys are skipped (the jail is the backstop).
//      - Candidates longer than kMaxCandidateBytes or containing NUL bytes do
//        not resolve (InvalidArgument) and are denied as "outside_root".
//   5. A root that is not an existing directory gives "invalid_root_path" for
//      every call, even one without path candidates.
//   6. outside_root_allowlist entries are expanded (`\` -> `/`, relative ones
//      against the canonical root, `..` collapsed, symlinks resolved),
//      deduplicated and sorted by (pattern, reason_code); the first match in
//      that order wins. A resolution error drops the entry.
//   7. The sensitive check on an outside-root path matches its absolute
//      resolved path (IsSensitivePath's rules below, so ".aws/credentials"
//      catches "/home/u/.aws/credentials").
//   8. Reason codes of the exceptions used are recorded once each, in first
//      use order.
//   9. The sensitive check covers the candidate's ancestors too
//      (IsSensitivePathOrAncestor), as the fs tools and the jail's masks do.
#ifndef JCS_RUNTIME_PATH_POLICY_H_
#define JCS_RUNTIME_PATH_POLICY_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {

inline constexpr int kMaxPathScanDepth = 64;
inline constexpr std::size_t kMaxPathScanStringBytes = 1 << 20;
inline constexpr std::size_t kMaxPathScanTotalBytes = 16 << 20;
inline constexpr std::size_t kMaxPathCandidates = 4096;
inline constexpr std::size_t kMaxCandidateBytes = 4096;
inline constexpr int kMaxSymlinkHops = 40;

// Path candidates of `args` (§3.2): trimmed, non-empty, deduplicated, in
// first-seen order. `truncated` (optional) is set when a structural bound
// (depth, candidate count) cut the extraction short.
std::vector<std::string> ExtractPathCandidates(const nlohmann::json& args,
                                               bool* truncated = nullptr);

// §3.4 wildcard: `*` any run of characters (`/` included), `?` exactly one
// character, everything else literal; anchored and case-sensitive (the
// outside_root_allowlist match; the sensitive-path match folds case, see
// IsSensitivePath). Runs in O(|pattern| * |text|) time worst case, without
// recursion.
bool WildcardMatch(std::string_view pattern, std::string_view text);

// The canonical root (realpath); FailedPrecondition("invalid_root_path") when
// it is empty, does not exist or is not a directory.
absl::StatusOr<std::string> CanonicalRoot(const std::string& root);

// Resolves `candidate` against `root`: relative candidates are joined to the
// canonical root, `..` and `.` are collapsed lexically, then every symlink is
// resolved (the non-existing rest is appended verbatim). Returns the absolute
// resolved path, which may lie outside the root.
// Errors: FailedPrecondition("invalid_root_path") for a bad root;
// InvalidArgument for an empty, over-long or NUL-containing candidate;
// FailedPrecondition for a symlink loop or an lstat/readlink failure other
// than a missing component.
absl::StatusOr<std::string> ResolveInRoot(const std::string& root,
                                          const std::string& candidate);

// True when `path` equals `canonical_root` or lies under it.
bool IsInsideRoot(std::string_view canonical_root, std::string_view path);

// §3.4 decision on a root-relative (or, outside the root, absolute) path:
// sensitive iff a denylist pattern matches and no allowlist pattern does.
// One rule for both lists, used by every tool and by the jail's masks
// (runtime/policy/sensitive_mask.h), so what a tool may not read the jail
// hides:
//   - Patterns are trimmed; `\` reads as `/` in patterns and paths; trailing
//     separators are dropped ("secrets/" is "secrets"); empty ones ignored.
//   - Matching is ASCII case-insensitive ("*.key" denies "SERVER.KEY", and an
//     allowlisted ".env" allows ".ENV"): a key is no less secret for its
//     name's case, and on a case-folding filesystem (vfat, ext4 casefold)
//     another spelling opens the same file. Non-ASCII bytes compare exactly.
//   - A pattern without `/` matches the path's last segment (basename); the
//     callers check ancestors themselves where a sensitive directory hides
//     its content (fs tools, asset tools, the mask walk).
//   - A pattern starting with `/` is anchored: it matches the whole path, a
//     root-relative path being read as "/" + path ("/secrets/*" is the root's
//     secrets/ only; "/etc/shadow" an absolute path outside the root, or the
//     root's etc/shadow).
//   - Any other pattern with a `/` matches the whole path or any run of its
//     trailing whole segments: ".aws/credentials" matches ".aws/credentials"
//     and "home/.aws/credentials", not "x.aws/credentials".
bool IsSensitivePath(std::string_view match_path,
                     const std::vector<std::string>& denylist,
                     const std::vector<std::string>& allowlist);

// IsSensitivePath of `match_path` or of any of its ancestors, each on its
// own: a file inside a sensitive directory is sensitive even when the file
// itself is allowlisted, as the jail masks such a directory whole
// ("certs.pem/readme.txt" is denied by "*.pem"). "" is never sensitive.
bool IsSensitivePathOrAncestor(std::string_view match_path,
                               const std::vector<std::string>& denylist,
                               const std::vector<std::string>& allowlist);

struct PathDecision {
  bool allowed = true;
  // "", "outside_root", "sensitive_path_denied" or "invalid_root_path".
  std::string reason;
  std::string candidate;      // the offending candidate (as extracted)
  std::string resolved_path;  // its resolved absolute path, when known
  // Reason codes of the outside_root_allowlist entries used.
  std::vector<std::string> exception_reason_codes;
};

PathDecision CheckToolPaths(const std::string& root, const nlohmann::json& args,
                            const ValidatedOptions& options);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_PATH_POLICY_H_
