#include "egress/tls_client_hello.h"

#include <string>

#include "egress/test_client_hello.h"
#include "gtest/gtest.h"

namespace jcs::egress {
namespace {

using State = ClientHelloInfo::State;
using testing::BuildClientHello;
using testing::HelloOptions;

TEST(ClientHelloTest, ExtractsServerName) {
  const std::string hello =
      BuildClientHello({.server_names = {"API.Example.test."}});
  ClientHelloInfo info = ParseClientHello(hello);
  ASSERT_EQ(info.state, State::kComplete) << info.error;
  EXPECT_TRUE(info.has_sni);
  EXPECT_EQ(info.server_name, "api.example.test");
  EXPECT_FALSE(info.has_ech);
  EXPECT_EQ(info.consumed, hello.size());
}

TEST(ClientHelloTest, NoServerName) {
  ClientHelloInfo info = ParseClientHello(BuildClientHello({}));
  ASSERT_EQ(info.state, State::kComplete);
  EXPECT_FALSE(info.has_sni);
}

TEST(ClientHelloTest, EveryPrefixNeedsMore) {
  const std::string hello = BuildClientHello({.server_names = {"a.test"}});
  for (size_t n = 0; n < hello.size(); ++n) {
    EXPECT_EQ(ParseClientHello(hello.substr(0, n)).state, State::kNeedMore)
        << n;
  }
}

TEST(ClientHelloTest, ReassemblesFragmentedRecords) {
  for (size_t record : {1, 7, 100, 512}) {
    const std::string hello = BuildClientHello({.server_names = {"frag.test"},
                                                .padding = 9000,
                                                .record_size = record});
    ClientHelloInfo info = ParseClientHello(hello);
    ASSERT_EQ(info.state, State::kComplete) << record << " " << info.error;
    EXPECT_EQ(info.server_name, "frag.test");
    EXPECT_EQ(ParseClientHello(hello.substr(0, hello.size() - 1)).state,
              State::kNeedMore);
  }
}

TEST(ClientHelloTest, LargeHelloOverSeveralFullRecords) {
  // A 20 KiB ClientHello does not fit one 16 KiB record.
  const std::string hello =
      BuildClientHello({.server_names = {"big.test"}, .padding = 20000});
  ClientHelloInfo info = ParseClientHello(hello);
  ASSERT_EQ(info.state, State::kComplete) << info.error;
  EXPECT_EQ(info.server_name, "big.test");
}

TEST(ClientHelloTest, TooLarge) {
  const std::string hello =
      BuildClientHello({.server_names = {"big.test"}, .padding = 40000});
  EXPECT_EQ(ParseClientHello(hello).state, State::kMalformed);
}

TEST(ClientHelloTest, NotTls) {
  EXPECT_EQ(ParseClientHello("GET / HTTP/1.1\r\n").state, State::kNotTls);
  EXPECT_EQ(ParseClientHello("SSH-2.0-x").state, State::kNotTls);
  EXPECT_EQ(ParseClientHello("").state, State::kNeedMore);
}

TEST(ClientHelloTest, Malformed) {
  std::string hello = BuildClientHello({.server_names = {"a.test"}});
  std::string bad = hello;
  bad[5] = 2;  // server_hello
  EXPECT_EQ(ParseClientHello(bad).state, State::kMalformed);
  bad = hello;
  bad[1] = 2;  // record version 2.x
  EXPECT_EQ(ParseClientHello(bad).state, State::kMalformed);
  // An alert record in the middle of the handshake.
  std::string two = BuildClientHello(
      {.server_names = {"a.test"}, .padding = 100, .record_size = 50});
  two[55] = 21;
  EXPECT_EQ(ParseClientHello(two).state, State::kMalformed);
  EXPECT_EQ(ParseClientHello(std::string("\x16\x03\x01\x00\x00", 5)).state,
            State::kMalformed);
}

TEST(ClientHelloTest, DuplicateHostNamesRejected) {
  ClientHelloInfo info = ParseClientHello(
      BuildClientHello({.server_names = {"a.test", "b.test"}}));
  EXPECT_EQ(info.state, State::kMalformed);
}

TEST(ClientHelloTest, BadNameCharactersRejected) {
  EXPECT_EQ(ParseClientHello(
                BuildClientHello({.server_names = {std::string("a\0b", 3)}}))
                .state,
            State::kMalformed);
  EXPECT_EQ(ParseClientHello(BuildClientHello({.server_names = {"a b"}})).state,
            State::kMalformed);
}

// Found by tls_client_hello_fuzz: "a.." was read as "a.". A name with an
// empty label names no host; it is refused, not normalised.
TEST(ClientHelloTest, EmptyLabelRejected) {
  for (const char* name : {"a..", ".", "..", ".a", "a..b", "a.b..", "..a"}) {
    const ClientHelloInfo info =
        ParseClientHello(BuildClientHello({.server_names = {name}}));
    EXPECT_EQ(info.state, State::kMalformed) << name;
    EXPECT_EQ(info.error, "empty_server_name_label") << name;
  }
  // One trailing dot (the root) is still accepted and dropped.
  const ClientHelloInfo info =
      ParseClientHello(BuildClientHello({.server_names = {"a.b."}}));
  ASSERT_EQ(info.state, State::kComplete) << info.error;
  EXPECT_EQ(info.server_name, "a.b");
}

TEST(ClientHelloTest, ReportsEch) {
  ClientHelloInfo info = ParseClientHello(
      BuildClientHello({.server_names = {"public.test"}, .ech = true}));
  ASSERT_EQ(info.state, State::kComplete);
  EXPECT_TRUE(info.has_ech);
}

TEST(ClientHelloTest, TruncatedExtensionMalformed) {
  std::string hello = BuildClientHello({.server_names = {"a.test"}});
  // Shorten the handshake length by one: trailing bytes no longer parse.
  hello[8] = static_cast<char>(hello[8] - 1);
  hello[4] = static_cast<char>(hello[4] - 1);
  hello.pop_back();
  EXPECT_EQ(ParseClientHello(hello).state, State::kMalformed);
}

}  // namespace
}  // namespace jcs::egress
