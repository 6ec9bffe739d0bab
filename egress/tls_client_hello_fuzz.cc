// Fuzzes the egress proxy's TLS ClientHello (SNI) parser. Invariants beyond
// "no crash": a complete hello consumed bytes of the input only, reads the
// same from exactly those bytes, every strict prefix of it asks for more (a
// client's hello may arrive in any number of TCP segments), and the server
// name is downcased printable ASCII with no empty label (one trailing dot,
// the root, is dropped; any other empty label makes the hello malformed).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "egress/tls_client_hello.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::egress::ClientHelloInfo;
using jcs::egress::ParseClientHello;
using State = ClientHelloInfo::State;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const ClientHelloInfo info = ParseClientHello(in);
  if (info.state == State::kMalformed) FUZZ_CHECK(!info.error.empty());
  if (info.state != State::kComplete) return 0;
  FUZZ_CHECK(info.consumed > 0 && info.consumed <= in.size());
  if (info.has_sni) {
    FUZZ_CHECK(!info.server_name.empty());
    FUZZ_CHECK(info.server_name.front() != '.');
    FUZZ_CHECK(info.server_name.back() != '.');
    FUZZ_CHECK(info.server_name.find("..") == std::string::npos);
    for (char c : info.server_name) {
      FUZZ_CHECK(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
    }
  } else {
    FUZZ_CHECK(info.server_name.empty());
  }
  const std::string_view own = in.substr(0, info.consumed);
  const ClientHelloInfo again = ParseClientHello(own);
  FUZZ_CHECK(again.state == State::kComplete);
  FUZZ_CHECK(again.consumed == info.consumed);
  FUZZ_CHECK(again.has_sni == info.has_sni && again.has_ech == info.has_ech);
  FUZZ_CHECK(again.server_name == info.server_name);
  const size_t stride = own.size() <= 512 ? 1 : own.size() / 128;
  for (size_t n = 1; n < own.size(); n += stride) {
    FUZZ_CHECK(ParseClientHello(own.substr(0, n)).state == State::kNeedMore);
  }
  return 0;
}
