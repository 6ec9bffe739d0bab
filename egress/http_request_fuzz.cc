// Fuzzes the egress proxy's HTTP request-head parser in both contexts (sent to
// the proxy, sent inside a tunnel) and what the proxy does with a parsed head
// (the upstream head, the tunnel target check). Invariants checked beyond "no
// crash": a complete head ends with CRLFCRLF inside the input, the same head
// parses identically when only its own bytes are given, and a strict prefix of
// it is never a verdict (the proxy reads heads as TCP delivers them).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "egress/http_request.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::egress::HeadContext;
using jcs::egress::ParseRequestHead;
using jcs::egress::ParseResult;
using State = ParseResult::State;

// Small enough that the fuzzer reaches the 431 path.
constexpr size_t kMaxHead = 2048;

void CheckOne(std::string_view in, HeadContext context) {
  const ParseResult r = ParseRequestHead(in, kMaxHead, context);
  switch (r.state) {
    case State::kNeedMore:
      FUZZ_CHECK(in.size() < kMaxHead);
      return;
    case State::kError:
      FUZZ_CHECK(r.status == 400 || r.status == 431 || r.status == 501);
      FUZZ_CHECK(!r.error.empty());
      return;
    case State::kComplete:
      break;
  }
  FUZZ_CHECK(r.head_bytes >= 4 && r.head_bytes <= in.size());
  FUZZ_CHECK(r.head_bytes <= kMaxHead);
  FUZZ_CHECK(in.substr(r.head_bytes - 4, 4) == "\r\n\r\n");
  const std::string_view own = in.substr(0, r.head_bytes);
  const ParseResult again = ParseRequestHead(own, kMaxHead, context);
  FUZZ_CHECK(again.state == State::kComplete);
  FUZZ_CHECK(again.head_bytes == r.head_bytes);
  FUZZ_CHECK(again.head.host == r.head.host && again.head.port == r.head.port);
  // Prefixes: all of them for short heads, a sample otherwise.
  const size_t stride = own.size() <= 256 ? 1 : own.size() / 64;
  for (size_t n = 0; n < own.size(); n += stride) {
    const ParseResult part =
        ParseRequestHead(own.substr(0, n), kMaxHead, context);
    FUZZ_CHECK(part.state == State::kNeedMore);
  }
  (void)jcs::egress::BuildUpstreamHead(r.head);
  (void)r.head.Header("host");
  if (context == HeadContext::kTunnel) {
    (void)jcs::egress::CheckTunnelRequestTarget(r.head, r.head.host,
                                                r.head.port);
    (void)jcs::egress::CheckTunnelRequestTarget(r.head, "example.test", 80);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckOne(in, HeadContext::kProxy);
  CheckOne(in, HeadContext::kTunnel);
  return 0;
}
