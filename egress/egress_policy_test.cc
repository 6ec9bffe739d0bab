#include "egress/egress_policy.h"

#include <netinet/in.h>

#include <string>

#include "gtest/gtest.h"

namespace jcs::egress {
namespace {

AddressClass Class(const char* text) {
  std::optional<IpAddress> a = IpAddress::Parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.has_value() ? ClassifyAddress(*a) : AddressClass::kReserved;
}

TEST(IpAddressTest, ParsesAndCanonicalizes) {
  EXPECT_EQ(IpAddress::Parse("127.1")->ToString(), "127.0.0.1");
  EXPECT_EQ(IpAddress::Parse("0x7f.0.0.1")->ToString(), "127.0.0.1");
  EXPECT_EQ(IpAddress::Parse("2130706433")->ToString(), "127.0.0.1");
  EXPECT_EQ(IpAddress::Parse("0:0::1")->ToString(), "::1");
  EXPECT_EQ(IpAddress::Parse("::1")->family, AF_INET6);
  EXPECT_FALSE(IpAddress::Parse("example.com").has_value());
  EXPECT_FALSE(IpAddress::Parse("1.2.3.4 x").has_value());
  EXPECT_FALSE(IpAddress::Parse("").has_value());
  EXPECT_FALSE(IpAddress::Parse("::g").has_value());
}

TEST(ClassifyAddressTest, Ranges) {
  EXPECT_EQ(Class("8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(Class("93.184.216.34"), AddressClass::kPublic);
  EXPECT_EQ(Class("127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(Class("127.255.0.9"), AddressClass::kLoopback);
  EXPECT_EQ(Class("10.1.2.3"), AddressClass::kPrivate);
  EXPECT_EQ(Class("172.16.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(Class("172.31.255.255"), AddressClass::kPrivate);
  EXPECT_EQ(Class("172.32.0.1"), AddressClass::kPublic);
  EXPECT_EQ(Class("192.168.1.1"), AddressClass::kPrivate);
  EXPECT_EQ(Class("169.254.1.1"), AddressClass::kLinkLocal);
  EXPECT_EQ(Class("169.254.169.254"), AddressClass::kMetadata);
  EXPECT_EQ(Class("100.64.0.1"), AddressClass::kCgnat);
  EXPECT_EQ(Class("100.127.255.255"), AddressClass::kCgnat);
  EXPECT_EQ(Class("100.128.0.1"), AddressClass::kPublic);
  EXPECT_EQ(Class("0.0.0.0"), AddressClass::kUnspecified);
  EXPECT_EQ(Class("0.1.2.3"), AddressClass::kUnspecified);
  EXPECT_EQ(Class("224.0.0.1"), AddressClass::kMulticast);
  EXPECT_EQ(Class("239.255.255.250"), AddressClass::kMulticast);
  EXPECT_EQ(Class("255.255.255.255"), AddressClass::kReserved);
  EXPECT_EQ(Class("2606:4700::1111"), AddressClass::kPublic);
  EXPECT_EQ(Class("::1"), AddressClass::kLoopback);
  EXPECT_EQ(Class("::"), AddressClass::kUnspecified);
  EXPECT_EQ(Class("fc00::1"), AddressClass::kPrivate);
  EXPECT_EQ(Class("fd12:3456::1"), AddressClass::kPrivate);
  EXPECT_EQ(Class("fe80::1"), AddressClass::kLinkLocal);
  EXPECT_EQ(Class("febf::1"), AddressClass::kLinkLocal);
  EXPECT_EQ(Class("fec0::1"), AddressClass::kPrivate);
  EXPECT_EQ(Class("ff02::1"), AddressClass::kMulticast);
  EXPECT_EQ(Class("fd00:ec2::254"), AddressClass::kMetadata);
  // Embedded IPv4.
  EXPECT_EQ(Class("::ffff:127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(Class("::ffff:169.254.169.254"), AddressClass::kMetadata);
  EXPECT_EQ(Class("::ffff:8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(Class("64:ff9b::10.0.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(Class("::10.0.0.1"), AddressClass::kPrivate);
  EXPECT_STREQ(AddressClassName(AddressClass::kMetadata), "metadata");
}

TEST(HostPortTest, Parses) {
  absl::StatusOr<HostPort> hp = ParseHostPort("API.Example.COM.:8443");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "api.example.com");
  EXPECT_EQ(hp->port, 8443);
  EXPECT_FALSE(hp->is_ip);
  hp = ParseHostPort("[::1]:443");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_TRUE(hp->is_ip);
  hp = ParseHostPort("127.1");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_TRUE(hp->is_ip);
  EXPECT_FALSE(hp->port.has_value());
  for (const char* bad :
       {"", ":80", "a..b", "a.b:0", "a.b:65536", "a.b:x", "::1", "[::1",
        "[1.2.3.4]", "a b", "a%2eb", "exa\tmple", "-:1:2", "[::1]x",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

TEST(AllowEntryTest, Parses) {
  struct Case {
    const char* text;
    const char* host;
    std::optional<uint16_t> port;
  } cases[] = {
      {"example.com", "example.com", std::nullopt},
      {" Example.COM:443 ", "example.com", 443},
      {"[::1]:8443", "::1", 8443},
      {"::1", "::1", std::nullopt},
      {"https://x.y/z", "x.y", std::nullopt},
      {"https://x.y:8443/z?q", "x.y", 8443},
      {"*.example.com", "example.com", std::nullopt},
      {".example.com", "example.com", std::nullopt},
      {"10.0.0.1", "10.0.0.1", std::nullopt},
  };
  for (const Case& c : cases) {
    absl::StatusOr<AllowEntry> e = ParseAllowEntry(c.text);
    ASSERT_TRUE(e.ok()) << c.text << ": " << e.status();
    EXPECT_EQ(e->host, c.host) << c.text;
    EXPECT_EQ(e->port, c.port) << c.text;
  }
  for (const char* bad : {"", "https://u@x.y/", "a b", "x.y:0", "http://"}) {
    EXPECT_FALSE(ParseAllowEntry(bad).ok()) << bad;
  }
}

TEST(AllowEntryTest, Matching) {
  const AllowEntry any{"example.com", std::nullopt};
  EXPECT_TRUE(MatchesAllowEntry(any, "example.com", 443));
  EXPECT_TRUE(MatchesAllowEntry(any, "api.example.com", 80));
  EXPECT_TRUE(MatchesAllowEntry(any, "a.b.example.com", 80));
  EXPECT_FALSE(MatchesAllowEntry(any, "notexample.com", 443));
  EXPECT_FALSE(MatchesAllowEntry(any, "example.com.evil.test", 443));
  EXPECT_FALSE(MatchesAllowEntry(any, "com", 443));
  const AllowEntry port{"example.com", 443};
  EXPECT_TRUE(MatchesAllowEntry(port, "api.example.com", 443));
  EXPECT_FALSE(MatchesAllowEntry(port, "api.example.com", 8443));
  const AllowEntry ip{"10.0.0.1", std::nullopt};
  EXPECT_TRUE(MatchesAllowEntry(ip, "10.0.0.1", 1));
  EXPECT_FALSE(MatchesAllowEntry(ip, "x.10.0.0.1", 1));
  EXPECT_FALSE(MatchesAllowEntry(AllowEntry{}, "", 1));

  const AllowEntry priv{"db.internal", 5432};
  EXPECT_TRUE(MatchesPrivateEntry(priv, "db.internal", 5432));
  EXPECT_FALSE(MatchesPrivateEntry(priv, "x.db.internal", 5432));
  EXPECT_FALSE(MatchesPrivateEntry(priv, "db.internal", 5433));
}

TEST(PolicyTest, Lists) {
  EgressPolicy policy;
  EXPECT_FALSE(IsHostAllowed(policy, "example.com", 443));  // fails closed
  policy.allow = {{"example.com", std::nullopt}, {"other.test", 8080}};
  policy.allow_private = {{"db.test", std::nullopt}};
  EXPECT_TRUE(IsHostAllowed(policy, "www.example.com", 1));
  EXPECT_TRUE(IsHostAllowed(policy, "other.test", 8080));
  EXPECT_FALSE(IsHostAllowed(policy, "other.test", 80));
  EXPECT_TRUE(IsPrivateAllowed(policy, "db.test", 1));
  EXPECT_FALSE(IsPrivateAllowed(policy, "example.com", 1));
  // An allow_private entry allows its host too, exactly: not subdomains,
  // not other ports.
  EXPECT_TRUE(IsHostAllowed(policy, "db.test", 5432));
  EXPECT_FALSE(IsHostAllowed(policy, "x.db.test", 5432));
  EgressPolicy private_only;
  private_only.allow_private = {{"localhost", 8080}};
  EXPECT_TRUE(IsHostAllowed(private_only, "localhost", 8080));
  EXPECT_FALSE(IsHostAllowed(private_only, "localhost", 8081));
  EXPECT_FALSE(IsHostAllowed(private_only, "a.localhost", 8080));
  EXPECT_TRUE(IsSchemeAllowed(policy, "HTTPS"));
  EXPECT_TRUE(IsSchemeAllowed(policy, "http"));
  EXPECT_FALSE(IsSchemeAllowed(policy, "ftp"));
  EXPECT_FALSE(IsSchemeAllowed(policy, "tcp"));
}

}  // namespace
}  // namespace jcs::egress
