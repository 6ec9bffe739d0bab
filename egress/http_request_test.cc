#include "egress/http_request.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::egress {
namespace {

using State = ParseResult::State;

ParseResult Parse(const std::string& s, size_t max = 16384) {
  return ParseRequestHead(s, max);
}

TEST(RequestHeadTest, Connect) {
  const std::string req =
      "CONNECT API.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n"
      "User-Agent: curl\r\n\r\n\x16\x03\x01";
  ParseResult r = Parse(req);
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_TRUE(r.head.is_connect);
  EXPECT_EQ(r.head.host, "api.example.test");
  EXPECT_EQ(r.head.port, 443);
  EXPECT_FALSE(r.head.host_is_ip);
  EXPECT_EQ(r.head_bytes, req.size() - 3);
  EXPECT_EQ(r.head.Header("user-agent"), "curl");
}

TEST(RequestHeadTest, ConnectIpv6) {
  ParseResult r = Parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head.host, "::1");
  EXPECT_TRUE(r.head.host_is_ip);
  EXPECT_EQ(r.head.port, 8443);
}

TEST(RequestHeadTest, ConnectNeedsPort) {
  for (const char* bad : {"CONNECT example.com HTTP/1.1\r\n\r\n",
                          "CONNECT example.com:0 HTTP/1.1\r\n\r\n",
                          "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
                          "CONNECT http://example.com:443 HTTP/1.1\r\n\r\n",
                          "CONNECT ::1:443 HTTP/1.1\r\n\r\n"}) {
    ParseResult r = Parse(bad);
    EXPECT_EQ(r.state, State::kError) << bad;
    EXPECT_EQ(r.status, 400) << bad;
  }
}

TEST(RequestHeadTest, AbsoluteForm) {
  ParseResult r = Parse(
      "GET http://Example.test:8080/a/b?c=d HTTP/1.1\r\nHost: "
      "example.test:8080\r\nContent-Length: 5\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_FALSE(r.head.is_connect);
  EXPECT_EQ(r.head.scheme, "http");
  EXPECT_EQ(r.head.host, "example.test");
  EXPECT_EQ(r.head.port, 8080);
  EXPECT_EQ(r.head.origin_form, "/a/b?c=d");
  EXPECT_EQ(r.head.content_length, 5u);
  EXPECT_EQ(r.head.host_header, "example.test:8080");

  r = Parse("GET http://example.test HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head.port, 80);
  EXPECT_EQ(r.head.origin_form, "/");
  r = Parse("GET http://example.test?x HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head.origin_form, "/?x");

  r = Parse("RETR FTP://files.test/x HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head.scheme, "ftp");
  EXPECT_EQ(r.head.port, 21);
}

TEST(RequestHeadTest, BadRequests) {
  for (const char* bad : {
           "GET / HTTP/1.1\r\nHost: x\r\n\r\n",  // origin-form
           "GET * HTTP/1.1\r\n\r\n",
           "GET http://x/ HTTP/2.0\r\n\r\n",
           "GET http://x/ HTTP/1.1 extra\r\n\r\n",
           "GET  http://x/ HTTP/1.1\r\n\r\n",
           "G(T http://x/ HTTP/1.1\r\n\r\n",
           "GET http://u:p@x/ HTTP/1.1\r\n\r\n",
           "GET http://x/#frag HTTP/1.1\r\n\r\n",
           "GET http://x\\@evil/ HTTP/1.1\r\n\r\n",
           "GET 1http://x/ HTTP/1.1\r\n\r\n",
           "GET http://x/ HTTP/1.1\r\nBad Header: v\r\n\r\n",
           "GET http://x/ HTTP/1.1\r\nNoColon\r\n\r\n",
           "GET http://x/ HTTP/1.1\r\nA: b\r\n c\r\n\r\n",  // obs-fold
           "GET http://x/ HTTP/1.1\r\nA: b\nC: d\r\n\r\n",  // bare LF
           "GET http://x/ HTTP/1.1\r\nA: b\rC: d\r\n\r\n",  // bare CR
           "GET http://x/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
           "GET http://x/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: "
           "2\r\n\r\n",
           "GET http://x/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
           "GET http://x/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           "GET http://x y/ HTTP/1.1\r\n\r\n",
           "GET http://[::1/ HTTP/1.1\r\n\r\n",
       }) {
    ParseResult r = Parse(bad);
    EXPECT_EQ(r.state, State::kError) << bad;
    EXPECT_EQ(r.status, 400) << bad << " " << r.error;
  }
  // A NUL early is rejected before the head is complete.
  ParseResult r = Parse(std::string("G\0T", 3));
  EXPECT_EQ(r.state, State::kError);
}

TEST(RequestHeadTest, Incomplete) {
  EXPECT_EQ(Parse("").state, State::kNeedMore);
  EXPECT_EQ(Parse("CONNECT a.b:443 HTTP/1.1\r\n").state, State::kNeedMore);
  EXPECT_EQ(Parse("CONNECT a.b:443 HTTP/1.1\r\n\r").state, State::kNeedMore);
}

TEST(RequestHeadTest, HeaderLimits) {
  std::string big = "GET http://x/ HTTP/1.1\r\nX: " + std::string(300, 'a');
  ParseResult r = Parse(big, 256);
  EXPECT_EQ(r.state, State::kError);
  EXPECT_EQ(r.status, 431);
  r = Parse(big + "\r\n\r\n", 256);
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(Parse(big + "\r\n\r\n", 512).state, State::kComplete);
  std::string many = "GET http://x/ HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "A: b\r\n";
  r = Parse(many + "\r\n");
  EXPECT_EQ(r.status, 431);
}

TEST(RequestHeadTest, UpstreamHead) {
  ParseResult r = Parse(
      "POST http://example.test:8080/p?q HTTP/1.1\r\nHost: "
      "example.test:8080\r\nProxy-Connection: keep-alive\r\n"
      "Proxy-Authorization: Basic eA==\r\nConnection: keep-alive, X-Secret\r\n"
      "X-Secret: 1\r\nKeep-Alive: 5\r\nContent-Length: 3\r\nAccept: "
      "*/*\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(BuildUpstreamHead(r.head),
            "POST /p?q HTTP/1.1\r\nHost: example.test:8080\r\n"
            "Content-Length: 3\r\nAccept: */*\r\nConnection: close\r\n\r\n");
  r = Parse("GET http://[::1]:81/ HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(BuildUpstreamHead(r.head),
            "GET / HTTP/1.1\r\nHost: [::1]:81\r\nConnection: close\r\n\r\n");
}

TEST(RequestHeadTest, LooksLikeHttp) {
  EXPECT_TRUE(LooksLikeHttpRequest("GET / HTTP/1.1\r\n"));
  EXPECT_TRUE(LooksLikeHttpRequest("POST "));
  EXPECT_FALSE(LooksLikeHttpRequest("SSH-2.0-OpenSSH\r\n"));
  EXPECT_FALSE(LooksLikeHttpRequest("SSH-2.0-OpenSSH_9.2p1 Debian\r\n"));
  EXPECT_FALSE(LooksLikeHttpRequest("HELO mail.test\r\n"));
  EXPECT_FALSE(LooksLikeHttpRequest("get / HTTP/1.1\r\n"));
  EXPECT_FALSE(LooksLikeHttpRequest(" GET"));
  EXPECT_FALSE(LooksLikeHttpRequest(""));
}

}  // namespace
}  // namespace jcs::egress
