#include "protocol/http/http_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace jcs::protocol::http {
namespace {

TEST(HttpIoTest, LoopbackChecks) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.8.9.10"));
  EXPECT_TRUE(IsLoopbackHost("LOCALHOST"));
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("evil.example"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.evil.example"));
  EXPECT_EQ(OriginHost("http://127.0.0.1:8080/x"), "127.0.0.1");
  EXPECT_EQ(OriginHost("http://[::1]:1"), "::1");
  EXPECT_EQ(OriginHost("null"), std::nullopt);
}

TEST(HttpIoTest, SecretsAndIds) {
  EXPECT_TRUE(SameSecret("abc", "abc"));
  EXPECT_FALSE(SameSecret("abc", "abd"));
  EXPECT_FALSE(SameSecret("abc", "abcd"));
  EXPECT_FALSE(SameSecret("", "a"));
  EXPECT_TRUE(ValidProjectId("p-1.x_y"));
  EXPECT_FALSE(ValidProjectId(".."));
  EXPECT_FALSE(ValidProjectId("a/b"));
  EXPECT_FALSE(ValidProjectId(std::string(129, 'a')));
}

TEST(HttpIoTest, ListenLoopbackOnly) {
  EXPECT_FALSE(ListenLoopback("0.0.0.0:0", "t").ok());
  EXPECT_FALSE(ListenLoopback("localhost:0", "t").ok());
  EXPECT_FALSE(ListenLoopback("127.0.0.1:99999", "t").ok());
  absl::StatusOr<std::pair<int, uint16_t>> l =
      ListenLoopback("127.0.0.1:0", "t");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_GT(l->second, 0);
  close(l->first);
}

TEST(HttpIoTest, ResponseAndIo) {
  EXPECT_EQ(Response(404, {{"A", "b"}}, "x", false),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\nA: b\r\n"
            "Connection: close\r\n\r\nx");
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ASSERT_TRUE(WriteAll(fds[0], "hello", absl::Seconds(1)));
  std::string in;
  ASSERT_TRUE(ReadSome(fds[1], in, absl::Seconds(1)));
  EXPECT_EQ(in, "hello");
  // Nothing more comes: a bounded wait, then false.
  EXPECT_FALSE(ReadSome(fds[1], in, absl::Milliseconds(20)));
  absl::StatusOr<Peer> peer = UnixPeer(fds[1]);
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->uid, geteuid());
  EXPECT_TRUE(PeerAllowed(*peer, {}, {}));
  Peer stranger;
  stranger.uid = 4242;
  stranger.gid = 4242;
  if (geteuid() != 4242) {
    EXPECT_FALSE(PeerAllowed(stranger, {}, {}));
  }
  EXPECT_TRUE(PeerAllowed(stranger, {4242}, {}));
  stranger.groups = {77};
  EXPECT_TRUE(PeerAllowed(stranger, {}, {77}));
  close(fds[0]);
  close(fds[1]);
}

// One deadline for a whole read: bytes arriving now and then do not extend
// it, and a deadline already past waits for nothing.
TEST(HttpIoTest, ReadSomeBeforeKeepsOneDeadline) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  std::string in;
  absl::Time start = absl::Now();
  EXPECT_FALSE(ReadSomeBefore(pair[0], in, start - absl::Seconds(1)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(50));
  ASSERT_EQ(write(pair[1], "ab", 2), 2);
  EXPECT_TRUE(ReadSomeBefore(pair[0], in, absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(in, "ab");
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  int reads = 0;
  while (ReadSomeBefore(pair[0], in, deadline)) ++reads;  // nothing more comes
  EXPECT_EQ(reads, 0);
  EXPECT_GE(absl::Now(), deadline);
  EXPECT_LT(absl::Now() - deadline, absl::Seconds(1));
  close(pair[0]);
  close(pair[1]);
}

}  // namespace
}  // namespace jcs::protocol::http
