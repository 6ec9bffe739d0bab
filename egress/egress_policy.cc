#include "egress/egress_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace jcs::egress {
namespace {

absl::Status Invalid(std::string_view what, std::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat(
      std::string(what), ": \"",
      absl::CHexEscape(absl::string_view(text.data(), text.size())), "\""));
}

AddressClass ClassifyV4(const uint8_t* b) {
  const uint32_t a = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
                     (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  auto in = [a](uint32_t net, int bits) {
    const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (a == 0xA9FEA9FE) return AddressClass::kMetadata;  // 169.254.169.254
  if (in(0x00000000, 8)) return AddressClass::kUnspecified;
  if (in(0x7F000000, 8)) return AddressClass::kLoopback;
  if (in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16)) {
    return AddressClass::kPrivate;
  }
  if (in(0xA9FE0000, 16)) return AddressClass::kLinkLocal;
  if (in(0x64400000, 10)) return AddressClass::kCgnat;
  if (in(0xE0000000, 4)) return AddressClass::kMulticast;
  if (in(0xF0000000, 4)) return AddressClass::kReserved;
  return AddressClass::kPublic;
}

bool IsDnsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '_' || c == '.';
}

bool ParsePort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  IpAddress out;
  if (s.find(':') != std::string::npos) {
    in6_addr a6;
    if (inet_pton(AF_INET6, s.c_str(), &a6) != 1) return std::nullopt;
    out.family = AF_INET6;
    memcpy(out.bytes.data(), &a6, 16);
    return out;
  }
  // inet_aton accepts trailing garbage after a space; reject it first.
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.') {
      return std::nullopt;
    }
  }
  in_addr a4;
  if (inet_aton(s.c_str(), &a4) == 0) return std::nullopt;
  out.family = AF_INET;
  memcpy(out.bytes.data(), &a4, 4);
  return out;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
  } else if (family == AF_INET6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  }
  return buf;
}

bool IpAddress::operator==(const IpAddress& other) const {
  if (family != other.family) return false;
  return memcmp(bytes.data(), other.bytes.data(), family == AF_INET ? 4 : 16) ==
         0;
}

AddressClass ClassifyAddress(const IpAddress& address) {
  const uint8_t* b = address.bytes.data();
  if (address.family == AF_INET) return ClassifyV4(b);
  if (address.family != AF_INET6) return AddressClass::kReserved;
  static constexpr uint8_t kZero[16] = {};
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};
  static constexpr uint8_t kNat64Prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0,
                                               0, 0,    0,    0,    0, 0};
  if (memcmp(b, kZero, 16) == 0) return AddressClass::kUnspecified;
  if (memcmp(b, kZero, 15) == 0 && b[15] == 1) return AddressClass::kLoopback;
  if (memcmp(b, kMappedPrefix, 12) == 0 || memcmp(b, kNat64Prefix, 12) == 0 ||
      memcmp(b, kZero, 12) == 0) {
    return ClassifyV4(b + 12);
  }
  // fd00:ec2::254, the AWS IPv6 metadata endpoint.
  static constexpr uint8_t kAwsMetadata[16] = {
      0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
  if (memcmp(b, kAwsMetadata, 16) == 0) return AddressClass::kMetadata;
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::kPrivate;  // fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::kPrivate;
  if (b[0] == 0xff) return AddressClass::kMulticast;
  return AddressClass::kPublic;
}

const char* AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kLinkLocal:
      return "link_local";
    case AddressClass::kMetadata:
      return "metadata";
    case AddressClass::kCgnat:
      return "cgnat";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kMulticast:
      return "multicast";
    case AddressClass::kReserved:
      return "reserved";
  }
  return "unknown";
}

absl::StatusOr<std::string> NormalizeHostName(std::string_view host,
                                              bool* is_ip) {
  if (is_ip != nullptr) *is_ip = false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    std::optional<IpAddress> a = IpAddress::Parse(host);
    if (!a.has_value() || a->family != AF_INET6) {
      return Invalid("invalid IPv6 literal", host);
    }
    if (is_ip != nullptr) *is_ip = true;
    return a->ToString();
  }
  if (host.empty()) return Invalid("empty host", host);
  if (std::optional<IpAddress> a = IpAddress::Parse(host); a.has_value()) {
    if (is_ip != nullptr) *is_ip = true;
    return a->ToString();
  }
  if (host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return Invalid("invalid host", host);
  size_t label = 0;
  for (char c : host) {
    if (!IsDnsNameChar(c)) return Invalid("invalid host", host);
    if (c == '.') {
      if (label == 0) return Invalid("invalid host (empty label)", host);
      label = 0;
    } else if (++label > 63) {
      return Invalid("invalid host (label longer than 63)", host);
    }
  }
  if (label == 0) return Invalid("invalid host (empty label)", host);
  return absl::AsciiStrToLower(absl::string_view(host.data(), host.size()));
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view authority) {
  HostPort out;
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Invalid("unterminated IPv6 literal", authority);
    }
    host = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Invalid("invalid authority", authority);
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':') != colon) {
        return Invalid("unbracketed IPv6 literal in authority", authority);
      }
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    uint16_t p = 0;
    if (!ParsePort(port, &p)) return Invalid("invalid port", authority);
    out.port = p;
  }
  absl::StatusOr<std::string> h = NormalizeHostName(host, &out.is_ip);
  if (!h.ok()) return h.status();
  out.host = *std::move(h);
  return out;
}

absl::StatusOr<AllowEntry> ParseAllowEntry(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s[0]))) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  if (const size_t sep = s.find("://"); sep != std::string_view::npos) {
    s = s.substr(sep + 3);
    const size_t end = s.find_first_of("/?#\\");
    if (end != std::string_view::npos) s = s.substr(0, end);
    if (s.find('@') != std::string_view::npos) {
      return Invalid("allow entry with userinfo", text);
    }
  }
  if (s.starts_with("*.")) {
    s.remove_prefix(2);
  } else if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
  }
  AllowEntry entry;
  // A bare IPv6 address ("::1"): no port.
  if (s.find(':') != s.rfind(':') && (s.empty() || s.front() != '[')) {
    std::optional<IpAddress> a = IpAddress::Parse(s);
    if (!a.has_value() || a->family != AF_INET6) {
      return Invalid("invalid allow entry", text);
    }
    entry.host = a->ToString();
    return entry;
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(s);
  if (!hp.ok()) {
    return Invalid(
        absl::StrCat("invalid allow entry (", hp.status().message(), ")"),
        text);
  }
  entry.host = std::move(hp->host);
  entry.port = hp->port;
  return entry;
}

bool MatchesAllowEntry(const AllowEntry& entry, std::string_view host,
                       uint16_t port) {
  if (entry.host.empty()) return false;
  if (entry.port.has_value() && *entry.port != port) return false;
  if (host == entry.host) return true;
  if (IpAddress::Parse(entry.host).has_value()) return false;
  return host.size() > entry.host.size() && host.ends_with(entry.host) &&
         host[host.size() - entry.host.size() - 1] == '.';
}

bool MatchesPrivateEntry(const AllowEntry& entry, std::string_view host,
                         uint16_t port) {
  if (entry.host.empty() || host != entry.host) return false;
  return !entry.port.has_value() || *entry.port == port;
}

bool IsHostAllowed(const EgressPolicy& policy, std::string_view host,
                   uint16_t port) {
  for (const AllowEntry& e : policy.allow) {
    if (MatchesAllowEntry(e, host, port)) return true;
  }
  // Allowing a host to reach private addresses is the stronger statement:
  // it allows the host itself too (exactly, as for the private check).
  for (const AllowEntry& e : policy.allow_private) {
    if (MatchesPrivateEntry(e, host, port)) return true;
  }
  return false;
}

bool IsPrivateAllowed(const EgressPolicy& policy, std::string_view host,
                      uint16_t port) {
  for (const AllowEntry& e : policy.allow_private) {
    if (MatchesPrivateEntry(e, host, port)) return true;
  }
  return false;
}

bool IsSchemeAllowed(const EgressPolicy& policy, std::string_view scheme) {
  const std::string want =
      absl::AsciiStrToLower(absl::string_view(scheme.data(), scheme.size()));
  for (const std::string& s : policy.allowed_schemes) {
    if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(s)) == want) {
      return true;
    }
  }
  return false;
}

}  // namespace jcs::egress
