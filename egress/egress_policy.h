// Egress policy of the jail's proxy (issue 5): allowlist entries, host and
// address parsing, and the classification of addresses a name may not
// resolve to.
//
// Hosts. A host is either a DNS name (ASCII letters, digits, '-', '_' and
// '.', at most 253 characters, labels of 1..63 characters, downcased, one
// trailing dot dropped) or an IP literal. Every form inet_aton(3) accepts
// ("127.1", "0x7f.0.0.1", "2130706433") is an IPv4 literal, since the system
// resolver would treat it as one; IPv6 literals are written in brackets in
// authorities ("[::1]:443") and may be bare in allowlist entries. IP literals
// are kept in their canonical inet_ntop(3) form, so "127.1" and "127.0.0.1"
// compare equal. Anything else (percent-encoding, userinfo, IDN in Unicode
// form, spaces, control characters) is invalid.
//
// Matching. An allow entry "example.com" matches the host "example.com" and
// every subdomain ("api.example.com"), never "notexample.com"; an entry that
// is an IP literal matches only that address. A port on the entry must equal
// the target's port; no port matches every port. An empty allowlist allows
// nothing (the proxy fails closed). allow_private entries match exactly (no
// subdomains): they name the hosts that may reach loopback, private,
// link-local, CGNAT, unspecified, multicast or metadata addresses, and are
// allowed hosts themselves (no allow entry needed for them).
#ifndef JCS_EGRESS_EGRESS_POLICY_H_
#define JCS_EGRESS_EGRESS_POLICY_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace jcs::egress {

inline constexpr char kEndpointDenied[] = "network_endpoint_denied";
inline constexpr char kProtocolDenied[] = "network_protocol_denied";

struct AllowEntry {
  std::string host;  // normalized, lowercase; or a canonical IP literal
  std::optional<uint16_t> port;
};

struct EgressPolicy {
  // Exact host or any subdomain of it; optional port.
  std::vector<AllowEntry> allow;
  // Compared downcased. "https" covers CONNECT tunnels carrying TLS, "http"
  // absolute-form requests and tunnels carrying complete HTTP requests for
  // the CONNECT target (checked request by request), "tcp" tunnels carrying
  // anything else (not allowed by default).
  std::vector<std::string> allowed_schemes = {"http", "https"};
  // Hosts (exact names or IP literals) explicitly allowed to resolve to (or
  // be) loopback/private/link-local/... addresses.
  std::vector<AllowEntry> allow_private;
};

// An IPv4 or IPv6 address (no port, no scope id).
struct IpAddress {
  int family = 0;                   // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes

  // Bare literal (no brackets). IPv4 accepts every inet_aton(3) form.
  static std::optional<IpAddress> Parse(std::string_view text);
  std::string ToString() const;  // canonical inet_ntop(3) form
  bool operator==(const IpAddress& other) const;
};

enum class AddressClass {
  kPublic,
  kLoopback,     // 127/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10
  kLinkLocal,    // 169.254/16, fe80::/10
  kMetadata,     // 169.254.169.254, fd00:ec2::254
  kCgnat,        // 100.64/10
  kUnspecified,  // 0/8, ::
  kMulticast,    // 224/4, ff00::/8
  kReserved,     // 240/4 (with 255.255.255.255)
};

// IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64
// (64:ff9b::/96) IPv6 addresses are classified by their embedded IPv4
// address.
AddressClass ClassifyAddress(const IpAddress& address);
const char* AddressClassName(AddressClass c);
inline bool IsPublic(const IpAddress& a) {
  return ClassifyAddress(a) == AddressClass::kPublic;
}

// A host with an optional port, from an authority ("host", "host:port",
// "[v6]", "[v6]:port"). The host is normalized (see the top comment).
struct HostPort {
  std::string host;
  std::optional<uint16_t> port;
  bool is_ip = false;
};
absl::StatusOr<HostPort> ParseHostPort(std::string_view authority);

// Normalizes a bare host (no port, IPv6 with or without brackets).
absl::StatusOr<std::string> NormalizeHostName(std::string_view host,
                                              bool* is_ip = nullptr);

// "example.com", "example.com:443", "[::1]:8443", "::1", "*.example.com"
// (same as example.com), "https://x.y/z" -> x.y (an explicit URL port is
// kept, a default one is not implied).
absl::StatusOr<AllowEntry> ParseAllowEntry(std::string_view text);

// Entry matching (see the top comment).
bool MatchesAllowEntry(const AllowEntry& entry, std::string_view host,
                       uint16_t port);
bool MatchesPrivateEntry(const AllowEntry& entry, std::string_view host,
                         uint16_t port);
bool IsHostAllowed(const EgressPolicy& policy, std::string_view host,
                   uint16_t port);
bool IsPrivateAllowed(const EgressPolicy& policy, std::string_view host,
                      uint16_t port);
bool IsSchemeAllowed(const EgressPolicy& policy, std::string_view scheme);

}  // namespace jcs::egress

#endif  // JCS_EGRESS_EGRESS_POLICY_H_
