// Network egress check of a tool call's arguments (spec §3.1 step 2 and §3.5,
// issue 4 pipeline step 3, network part).
//
// Only network-capable tools are checked: the caller (the policy pipeline)
// calls CheckNetwork only when the tool's safety flags say network_capable;
// other tools never reach it and get no network decision.
//
// Target extraction (ExtractNetworkTargets), walking `args` depth-first
// (object members in nlohmann::json order, i.e. sorted by key):
//   - A target key is a key whose ASCII-downcased name contains url, uri,
//     host, domain or endpoint (substring match, so `base_url`, `hostname`).
//   - Under a target key: a string that (trimmed) starts with `{`, `[` or `"`
//     is JSON-decoded; the decoded value is a target value again (decoded
//     strings become targets, decoded lists give one target value per
//     element, decoded maps are re-scanned by key). Any other string is a
//     target itself and is also opaque-scanned. Lists: each element is a
//     target value. Maps: generic (key-based) recursion. Other scalars are
//     ignored.
//   - Under other keys: maps and lists are recursed; strings get the same
//     JSON-decode attempt (decoded values recursed generically), otherwise
//     an opaque scan only.
//   - Opaque scan: the union of the URL regex (group 1) and the
//     case-insensitive keyed regex `(url|uri|host|domain|endpoint)\s*(=|:|=>)
//     \s*["']?([^\s"',}>]+)` (group 3), URL matches first.
//   - Targets are trimmed, blank ones dropped, deduplicated keeping
//     first-seen order.
// Bounds: values nested deeper than kMaxNetworkScanDepth (the root is depth
// 0; JSON decoding adds a level) are not visited and only the first
// kMaxNetworkScanBytes of a string are opaque-scanned. Either cut sets
// `truncated`, and CheckNetwork then denies the call (fail closed, reason
// network_endpoint_denied with an empty target): a tool cannot hide a target
// behind a deep or huge argument.
//
// Host normalization (NormalizeHost), decisions:
//   - A target containing `://` whose prefix is a valid scheme
//     ([A-Za-z][A-Za-z0-9+.-]*) is parsed as a URI: the authority ends at the
//     first `/`, `?`, `#` or `\` (backslash too, since WHATWG-style clients
//     treat it as a path separator: `https://evil.test\@example.com` is
//     evil.test), userinfo up to the last `@` is dropped, then the port.
//     The URI host may be empty (`file:///x`); an empty host never matches
//     a non-empty allowlist.
//   - Otherwise the spec's fallback: strip a leading `//`, cut at the first
//     `/`, `?`, `#` or `\`, keep the part after the last `@`, drop the port.
//   - Port dropping: `[v6]:port` and `[v6]` keep the bracket content; a bare
//     host with exactly one `:` is cut there; a bare host with several `:`
//     (an unbracketed IPv6 address) is kept whole.
//   - Finally trimmed and ASCII-downcased.
//
// CheckNetwork, in order:
//   1. network_egress_policy != allow -> network_denied.
//   2. truncated scan -> network_endpoint_denied (see above).
//   3. Scheme check on every target containing `://`: the text before the
//      first `://`, downcased, must be one of network_allowed_schemes
//      (compared trimmed and downcased). A prefix that is not a valid scheme
//      (`curl ftp://x` as a whole) is not in any list, so it is denied
//      -> network_protocol_denied. All targets pass this check before any
//      host is checked.
//   4. Host check: an empty network_allowlist allows any host; otherwise
//      each target's host must equal an entry or end with "." + entry
//      (entries normalized with NormalizeHost, blank ones dropped, a list of
//      only blank entries allows nothing; so
//      `notexample.com` does not match `example.com`)
//      -> network_endpoint_denied.
// The first offending target (in extraction order) is reported.
#ifndef JCS_RUNTIME_NETWORK_POLICY_H_
#define JCS_RUNTIME_NETWORK_POLICY_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {

inline constexpr int kMaxNetworkScanDepth = 64;
inline constexpr std::size_t kMaxNetworkScanBytes = 1 << 20;  // 1 MiB

inline constexpr char kNetworkDenied[] = "network_denied";
inline constexpr char kNetworkProtocolDenied[] = "network_protocol_denied";
inline constexpr char kNetworkEndpointDenied[] = "network_endpoint_denied";

struct NetworkTargets {
  std::vector<std::string> targets;  // deduplicated, first-seen order
  bool truncated = false;            // a depth or size bound cut the scan
};

NetworkTargets ScanNetworkTargets(const nlohmann::json& args);

// The targets of ScanNetworkTargets (without the truncation flag).
std::vector<std::string> ExtractNetworkTargets(const nlohmann::json& args);

// The host of a target, normalized as described above ("" when none).
std::string NormalizeHost(std::string_view target);

struct NetworkDecision {
  bool allowed = true;
  std::string reason;  // "" when allowed, else one of the kNetwork* reasons
  std::string target;  // the offending target ("" for network_denied)
  std::string host;    // its normalized host (endpoint denials)
  std::string scheme;  // its downcased scheme (protocol denials)
};

// Only for network-capable tools (see above).
NetworkDecision CheckNetwork(const nlohmann::json& args,
                             const ValidatedOptions& options);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_NETWORK_POLICY_H_
