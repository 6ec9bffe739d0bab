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

ParseResult Tunnel(const std::string& s, size_t max = 16384) {
  return ParseRequestHead(s, max, HeadContext::kTunnel);
}

// The bypass: "A " looked like the start of an HTTP request, and the tunnel
// was relayed as http. Only a complete, valid head counts now.
TEST(TunnelRequestTest, PrefixThatLooksLikeHttpIsNotARequest) {
  EXPECT_EQ(Tunnel("A ").state, State::kNeedMore);
  for (const std::string& bad : {
           std::string("A \x00\x01\x02", 5),
           std::string("A \r\n"),
           std::string("A B\r\n"),
           std::string("SSH-2.0-OpenSSH_9.2p1 Debian\r\n"),
           std::string("HELO mail.test\r\n"),
           std::string("{\"jsonrpc\": \"2.0\"}"),
           std::string("GET / HTTP/2.0\r\n"),
           std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
       }) {
    ParseResult r = Tunnel(bad);
    EXPECT_EQ(r.state, State::kError) << bad;
    EXPECT_EQ(r.status, 400) << bad;
  }
  // The request line is refused once complete, before any header arrives.
  EXPECT_EQ(Tunnel("SSH-2.0-OpenSSH_9.2p1 Debian\r\n").error,
            "malformed_request_line");
}

TEST(TunnelRequestTest, PartialHeads) {
  for (const char* partial : {"", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r\n",
                              "GET / HTTP/1.1\r\nHost: a.test\r\n",
                              "GET / HTTP/1.1\r\nHost: a.test\r\n\r"}) {
    EXPECT_EQ(Tunnel(partial).state, State::kNeedMore) << partial;
  }
}

TEST(TunnelRequestTest, OriginFormNeedsHost) {
  ParseResult r = Tunnel("GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.state, State::kError);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error, "missing_host_header");
  r = Tunnel("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.error, "missing_host_header");
  r = Tunnel("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
  EXPECT_EQ(r.error, "invalid_host_header");
  r = Tunnel("GET / HTTP/1.1\r\nHost: u@a.test\r\n\r\n");
  EXPECT_EQ(r.error, "invalid_host_header");
  r = Tunnel("GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n");
  EXPECT_EQ(r.error, "duplicate_host_header");
}

TEST(TunnelRequestTest, OriginForm) {
  const std::string req =
      "POST /a/b?c HTTP/1.1\r\nHost: API.example.test:8080\r\n"
      "Content-Length: 3\r\n\r\nabcGET";
  ParseResult r = Tunnel(req);
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head_bytes, req.size() - 6);
  EXPECT_EQ(r.head.scheme, "http");
  EXPECT_EQ(r.head.host, "api.example.test");
  EXPECT_EQ(r.head.port, 8080);
  EXPECT_EQ(r.head.origin_form, "/a/b?c");
  EXPECT_EQ(r.head.content_length, 3u);
  EXPECT_FALSE(r.head.is_connect);

  r = Tunnel("GET / HTTP/1.0\r\nHost: [::1]\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head.host, "::1");
  EXPECT_TRUE(r.head.host_is_ip);
  EXPECT_EQ(r.head.port, 80);
}

TEST(TunnelRequestTest, TargetForms) {
  ParseResult r =
      Tunnel("GET http://a.test:81/x HTTP/1.1\r\nHost: a.test:81\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head.port, 81);
  struct Case {
    const char* request;
    const char* error;
  } cases[] = {
      {"CONNECT a.test:81 HTTP/1.1\r\nHost: a.test:81\r\n\r\n",
       "connect_inside_tunnel"},
      {"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n", "not_absolute_form"},
      {"GET https://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
       "tunnel_request_scheme_not_http"},
      {"GET /#f HTTP/1.1\r\nHost: a.test\r\n\r\n", "malformed_request_target"},
      {"GET http://u@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
       "userinfo_in_target"},
  };
  for (const Case& c : cases) {
    r = Tunnel(c.request);
    EXPECT_EQ(r.state, State::kError) << c.request;
    EXPECT_EQ(r.error, c.error) << c.request;
  }
}

TEST(TunnelRequestTest, TransferEncodingOnlyChunked) {
  ParseResult r = Tunnel(
      "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_TRUE(r.head.has_transfer_encoding);
  for (const char* bad : {
           "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, "
           "chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\n",
           "POST / HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
       }) {
    r = Tunnel(bad);
    EXPECT_EQ(r.state, State::kError) << bad;
    EXPECT_EQ(r.status, 501) << bad;
    EXPECT_EQ(r.error, "unsupported_transfer_encoding") << bad;
  }
  r = Tunnel(
      "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 5\r\n\r\n");
  EXPECT_EQ(r.error, "content_length_with_transfer_encoding");
}

TEST(TunnelRequestTest, HeaderBlockTooLarge) {
  const std::string big =
      "GET / HTTP/1.1\r\nHost: a.test\r\nX: " + std::string(600, 'a');
  ParseResult r = Tunnel(big, 512);
  EXPECT_EQ(r.state, State::kError);
  EXPECT_EQ(r.status, 431);
  r = Tunnel(big + "\r\n\r\n", 512);
  EXPECT_EQ(r.status, 431);
  // A request line longer than the bound is refused too.
  r = Tunnel("GET /" + std::string(600, 'a'), 512);
  EXPECT_EQ(r.status, 431);
}

absl::Status Check(const std::string& request, const std::string& host,
                   uint16_t port) {
  ParseResult r = Tunnel(request);
  EXPECT_EQ(r.state, State::kComplete) << request << r.error;
  return CheckTunnelRequestTarget(r.head, host, port);
}

TEST(TunnelRequestTest, HostMustNameTheConnectTarget) {
  EXPECT_TRUE(
      Check("GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", "a.test", 8080)
          .ok());
  // Names and literals compare normalized; no port means 80.
  EXPECT_TRUE(
      Check("GET / HTTP/1.1\r\nHost: A.Test.\r\n\r\n", "a.test", 80).ok());
  EXPECT_TRUE(
      Check("GET / HTTP/1.1\r\nHost: a.test:80\r\n\r\n", "a.test", 80).ok());
  EXPECT_TRUE(
      Check("GET / HTTP/1.1\r\nHost: 127.1:81\r\n\r\n", "127.0.0.1", 81).ok());
  EXPECT_TRUE(Check("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n",
                    "a.test", 80)
                  .ok());

  absl::Status s =
      Check("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "a.test", 80);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "host_header_mismatch evil.test");
  // Another port of the same host.
  s = Check("GET / HTTP/1.1\r\nHost: a.test:8081\r\n\r\n", "a.test", 8080);
  EXPECT_EQ(s.message(), "host_header_mismatch a.test:8081");
  // No port is 80, not the CONNECT port.
  s = Check("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "a.test", 8080);
  EXPECT_EQ(s.message(), "host_header_mismatch a.test");
  // A subdomain is another site.
  s = Check("GET / HTTP/1.1\r\nHost: x.a.test\r\n\r\n", "a.test", 80);
  EXPECT_EQ(s.message(), "host_header_mismatch x.a.test");
  // Absolute-form: the URL counts as much as the Host header.
  s = Check("GET http://evil.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", "a.test",
            80);
  EXPECT_EQ(s.message(), "request_target_mismatch evil.test:80");
}

// Found by //egress:http_request_fuzz: a read that ends between the request
// line's CR and its LF (TCP may split anywhere) was refused as a malformed
// request line instead of waiting for the LF.
TEST(RequestHeadTest, RequestLineSplitBetweenCrAndLfNeedsMore) {
  const std::string req =
      "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n";
  for (size_t n = 0; n < req.size(); ++n) {
    EXPECT_EQ(Parse(req.substr(0, n)).state, State::kNeedMore)
        << "prefix of " << n << " bytes";
  }
  ParseResult r = Parse(req);
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head_bytes, req.size());
  // A CR followed by anything but LF is still refused.
  EXPECT_EQ(Parse("CONNECT example.test:443 HTTP/1.1\rX").state, State::kError);
}

}  // namespace
}  // namespace jcs::egress
