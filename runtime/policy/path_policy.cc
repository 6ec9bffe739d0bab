#include "runtime/policy/path_policy.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "runtime/policy/json_like.h"

namespace jcs::runtime {
namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The non-empty `/`-separated components of `path`.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::string ForwardSlashes(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '\\', '/');
  return out;
}

// §3.4 wildcard matching with the character comparison `same`: greedy with
// backtracking to the last `*` only, hence O(|pattern| * |text|).
template <typename Same>
bool WildcardMatchImpl(std::string_view pattern, std::string_view text,
                       Same same) {
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' ||
         (pattern[p] != '*' && same(pattern[p], text[t])))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const RE2& OpaquePathRe() {
  static const RE2* const re = [] {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(false);
    options.set_encoding(RE2::Options::EncodingLatin1);
    return new RE2(
        R"re((path|file_path|filepath)\s*(=|:|=>)\s*["']?([^\s"',}>]+))re",
        options);
  }();
  return *re;
}

bool IsPathKey(const std::string& key) {
  return absl::AsciiStrToLower(key).find("path") != std::string::npos;
}

class Extractor {
 public:
  std::vector<std::string> candidates;
  bool truncated = false;

  void Walk(const nlohmann::json& value, bool path_context, int depth) {
    if (depth > kMaxPathScanDepth) {
      truncated = true;
      return;
    }
    if (value.is_object()) {
      for (const auto& [key, child] : value.items()) {
        Walk(child, IsPathKey(key), depth + 1);
      }
    } else if (value.is_array()) {
      for (const auto& child : value) Walk(child, path_context, depth + 1);
    } else if (value.is_string()) {
      HandleString(value.get_ref<const std::string&>(), path_context, depth);
    }
  }

 private:
  std::set<std::string> seen_;
  std::size_t budget_ = kMaxPathScanTotalBytes;

  void Add(std::string_view raw) {
    std::string candidate(Trim(raw));
    if (candidate.empty() || seen_.count(candidate) > 0) return;
    if (candidates.size() >= kMaxPathCandidates) {
      truncated = true;
      return;
    }
    seen_.insert(candidate);
    candidates.push_back(std::move(candidate));
  }

  void OpaqueScan(std::string_view text) {
    re2::StringPiece input(text.data(),
                           std::min(text.size(), kMaxPathScanStringBytes));
    std::string value;
    while (
        RE2::FindAndConsume(&input, OpaquePathRe(), nullptr, nullptr, &value)) {
      Add(value);
    }
  }

  // Takes up to `n` bytes from the document budget; false when exhausted.
  bool Charge(std::size_t n) {
    if (budget_ == 0) return false;
    budget_ -= std::min(budget_, n);
    return true;
  }

  void HandleString(const std::string& s, bool path_context, int depth) {
    std::string_view trimmed = Trim(s);
    if (trimmed.empty()) return;
    if (!Charge(std::min(s.size(), kMaxPathScanStringBytes)) && !path_context) {
      return;
    }
    if (std::optional<nlohmann::json> decoded =
            DecodeJsonLike(trimmed, kMaxPathScanStringBytes,
                           kMaxPathScanDepth - depth, &truncated)) {
      // A decoded bare string under a path key stays a path-key value.
      Walk(*decoded, path_context, depth);
      return;
    }
    if (path_context) Add(s);
    OpaqueScan(s);
  }
};

// Collapses "", "." and ".." lexically; `path` must be absolute.
std::string NormalizeLexically(std::string_view path) {
  std::vector<std::string_view> parts;
  for (std::string_view part : SplitPath(path)) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (std::string_view part : parts) {
    out += '/';
    out.append(part);
  }
  return out.empty() ? "/" : out;
}

std::string Parent(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string()
                                                  : path.substr(0, slash);
}

// Resolves every symlink of the absolute, normalized `path`. A missing
// component ends the lookups; the rest is appended lexically.
absl::StatusOr<std::string> ResolveSymlinks(const std::string& path) {
  std::vector<std::string> pending;  // components, last one first
  for (std::string_view part : SplitPath(path)) {
    pending.emplace(pending.begin(), part);
  }
  std::string current;  // "" is "/"
  bool missing = false;
  int hops = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      current = Parent(current);
      continue;
    }
    std::string next = absl::StrCat(current, "/", part);
    if (missing) {
      current = std::move(next);
      continue;
    }
    struct stat st;
    if (lstat(next.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        missing = true;
        current = std::move(next);
        continue;
      }
      return absl::FailedPreconditionError(
          absl::StrCat("lstat ", next, ": ", std::strerror(errno)));
    }
    if (!S_ISLNK(st.st_mode)) {
      current = std::move(next);
      continue;
    }
    if (++hops > kMaxSymlinkHops) {
      return absl::FailedPreconditionError(
          absl::StrCat("too many symlinks: ", path));
    }
    char buf[PATH_MAX];
    const ssize_t n = readlink(next.c_str(), buf, sizeof(buf));
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof(buf)) {
      return absl::FailedPreconditionError(absl::StrCat("readlink ", next));
    }
    const std::string_view target(buf, static_cast<std::size_t>(n));
    if (target.front() == '/') current.clear();
    const std::vector<std::string_view> parts = SplitPath(target);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      pending.emplace_back(*it);
    }
  }
  return current.empty() ? std::string("/") : current;
}

std::string_view Basename(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The sensitive-path comparison of one character: ASCII case folded, `\`
// read as `/` (patterns may be written with either separator).
char FoldSensitive(char c) {
  return c == '\\' ? '/' : absl::ascii_tolower(static_cast<unsigned char>(c));
}

bool IsSeparator(char c) { return c == '/' || c == '\\'; }

// One trimmed, non-empty pattern (trailing separators already removed)
// against `path` (forward slashes): see IsSensitivePath for the rules.
bool SensitivePatternMatches(std::string_view pattern, std::string_view path) {
  const auto match = [](std::string_view p, std::string_view t) {
    return WildcardMatchImpl(p, t, [](char a, char b) {
      return FoldSensitive(a) == FoldSensitive(b);
    });
  };
  // Quick reject (the mask walk asks for every entry of the tree): what
  // follows the pattern's last wildcard or separator is literal, and every
  // form below matches up to the end of the path, so the path must end so.
  const std::size_t cut = pattern.find_last_of("*?/\\");
  const std::string_view tail =
      cut == std::string_view::npos ? pattern : pattern.substr(cut + 1);
  if (path.size() < tail.size() ||
      !std::equal(tail.begin(), tail.end(), path.end() - tail.size(),
                  [](char a, char b) {
                    return FoldSensitive(a) == FoldSensitive(b);
                  })) {
    return false;
  }
  if (std::none_of(pattern.begin(), pattern.end(), IsSeparator)) {
    return match(pattern, Basename(path));
  }
  if (IsSeparator(pattern.front())) {
    // Anchored. A root-relative path is matched as "/" + path: dropping the
    // pattern's leading separator instead avoids the copy.
    if (!path.empty() && path.front() == '/') return match(pattern, path);
    return match(pattern.substr(1), path);
  }
  // Unanchored: the whole path or any run of its trailing whole segments, so
  // ".aws/credentials" also catches "home/.aws/credentials" (and, outside the
  // root, "/home/u/.aws/credentials") but not "x.aws/credentials".
  std::size_t start = 0;
  while (true) {
    if (match(pattern, path.substr(start))) return true;
    const std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
}

bool AnyMatches(const std::vector<std::string>& patterns,
                std::string_view path) {
  for (const std::string& raw : patterns) {
    std::string_view pattern = Trim(raw);
    // "secrets/" names the directory "secrets": the trailing separator would
    // otherwise make the pattern match nothing (fail open).
    while (!pattern.empty() && IsSeparator(pattern.back())) {
      pattern.remove_suffix(1);
    }
    if (pattern.empty()) continue;
    if (SensitivePatternMatches(pattern, path)) return true;
  }
  return false;
}

struct ExpandedEntry {
  std::string pattern;
  std::string reason_code;
  bool operator<(const ExpandedEntry& o) const {
    return std::tie(pattern, reason_code) < std::tie(o.pattern, o.reason_code);
  }
};

std::vector<ExpandedEntry> ExpandOutsideRootAllowlist(
    const std::string& canonical_root,
    const std::vector<OutsideRootEntry>& entries) {
  std::set<ExpandedEntry> expanded;
  for (const OutsideRootEntry& entry : entries) {
    std::string reason(Trim(entry.reason_code));
    std::string pattern = ForwardSlashes(entry.pattern);
    if (reason.empty() || pattern.empty() ||
        pattern.find('\0') != std::string::npos) {
      continue;
    }
    if (pattern.front() != '/') {
      pattern = absl::StrCat(canonical_root, "/", pattern);
    }
    absl::StatusOr<std::string> resolved =
        ResolveSymlinks(NormalizeLexically(pattern));
    if (!resolved.ok()) continue;
    expanded.insert({*std::move(resolved), std::move(reason)});
  }
  return {expanded.begin(), expanded.end()};
}

PathDecision Deny(std::string reason, std::string candidate,
                  std::string resolved, std::vector<std::string> codes) {
  PathDecision decision;
  decision.allowed = false;
  decision.reason = std::move(reason);
  decision.candidate = std::move(candidate);
  decision.resolved_path = std::move(resolved);
  decision.exception_reason_codes = std::move(codes);
  return decision;
}

}  // namespace

std::vector<std::string> ExtractPathCandidates(const nlohmann::json& args,
                                               bool* truncated) {
  Extractor extractor;
  extractor.Walk(args, /*path_context=*/false, /*depth=*/0);
  if (truncated != nullptr) *truncated = extractor.truncated;
  return std::move(extractor.candidates);
}

bool WildcardMatch(std::string_view pattern, std::string_view text) {
  return WildcardMatchImpl(pattern, text,
                           [](char a, char b) { return a == b; });
}

absl::StatusOr<std::string> CanonicalRoot(const std::string& root) {
  if (root.empty() || root.find('\0') != std::string::npos) {
    return absl::FailedPreconditionError("invalid_root_path");
  }
  char buf[PATH_MAX];
  struct stat st;
  if (realpath(root.c_str(), buf) == nullptr || stat(buf, &st) != 0 ||
      !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError("invalid_root_path");
  }
  return std::string(buf);
}

absl::StatusOr<std::string> ResolveInRoot(const std::string& root,
                                          const std::string& candidate) {
  absl::StatusOr<std::string> canonical_root = CanonicalRoot(root);
  if (!canonical_root.ok()) return canonical_root.status();
  if (candidate.empty() || candidate.size() > kMaxCandidateBytes ||
      candidate.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("unresolvable path candidate");
  }
  const std::string joined =
      candidate.front() == '/' ? candidate
                               : absl::StrCat(*canonical_root, "/", candidate);
  return ResolveSymlinks(NormalizeLexically(joined));
}

bool IsInsideRoot(std::string_view canonical_root, std::string_view path) {
  if (canonical_root == "/") return !path.empty() && path.front() == '/';
  return path == canonical_root ||
         (path.size() > canonical_root.size() &&
          path.substr(0, canonical_root.size()) == canonical_root &&
          path[canonical_root.size()] == '/');
}

bool IsSensitivePath(std::string_view match_path,
                     const std::vector<std::string>& denylist,
                     const std::vector<std::string>& allowlist) {
  const std::string path = ForwardSlashes(match_path);
  return AnyMatches(denylist, path) && !AnyMatches(allowlist, path);
}

bool IsSensitivePathOrAncestor(std::string_view match_path,
                               const std::vector<std::string>& denylist,
                               const std::vector<std::string>& allowlist) {
  const std::string path = ForwardSlashes(match_path);
  for (std::size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    // "" (the leading slash of an absolute path) and "a/" (an empty
    // segment) name no ancestor.
    if (slash == 0 || path[slash - 1] == '/') continue;
    if (IsSensitivePath(std::string_view(path).substr(0, slash), denylist,
                        allowlist)) {
      return true;
    }
  }
  return !path.empty() && IsSensitivePath(path, denylist, allowlist);
}

PathDecision CheckToolPaths(const std::string& root, const nlohmann::json& args,
                            const ValidatedOptions& options) {
  absl::StatusOr<std::string> canonical_root = CanonicalRoot(root);
  if (!canonical_root.ok()) return Deny("invalid_root_path", "", "", {});
  bool truncated = false;
  const std::vector<std::string> candidates =
      ExtractPathCandidates(args, &truncated);
  if (truncated) return Deny("outside_root", "", "", {});

  std::vector<ExpandedEntry> exceptions;
  bool exceptions_expanded = false;
  std::vector<std::string> codes;
  for (const std::string& candidate : candidates) {
    absl::StatusOr<std::string> resolved = ResolveInRoot(root, candidate);
    if (!resolved.ok()) return Deny("outside_root", candidate, "", codes);
    std::string match_path;
    if (IsInsideRoot(*canonical_root, *resolved)) {
      match_path = *resolved == *canonical_root
                       ? std::string()
                       : resolved->substr(*canonical_root == "/"
                                              ? 1
                                              : canonical_root->size() + 1);
    } else {
      if (!exceptions_expanded) {
        exceptions = ExpandOutsideRootAllowlist(*canonical_root,
                                                options.outside_root_allowlist);
        exceptions_expanded = true;
      }
      const ExpandedEntry* match = nullptr;
      for (const ExpandedEntry& entry : exceptions) {
        if (WildcardMatch(entry.pattern, *resolved)) {
          match = &entry;
          break;
        }
      }
      if (match == nullptr) {
        return Deny("outside_root", candidate, *resolved, codes);
      }
      if (std::find(codes.begin(), codes.end(), match->reason_code) ==
          codes.end()) {
        codes.push_back(match->reason_code);
      }
      match_path = *resolved;
    }
    if (IsSensitivePathOrAncestor(match_path, options.sensitive_path_denylist,
                                  options.sensitive_path_allowlist)) {
      return Deny("sensitive_path_denied", candidate, *resolved, codes);
    }
  }
  PathDecision decision;
  decision.exception_reason_codes = std::move(codes);
  return decision;
}

}  // namespace jcs::runtime
