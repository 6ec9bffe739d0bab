// Test helper: crafted TLS ClientHello records.
#ifndef JCS_EGRESS_TEST_CLIENT_HELLO_H_
#define JCS_EGRESS_TEST_CLIENT_HELLO_H_

#include <cstddef>
#include <string>
#include <vector>

namespace jcs::egress::testing {

struct HelloOptions {
  std::vector<std::string> server_names;  // host_name entries (none: no SNI)
  bool ech = false;                       // add an encrypted_client_hello
  size_t padding = 0;                     // bytes of a padding extension
  size_t record_size = 16384;             // split into records of this size
};

// A TLS 1.2-style ClientHello handshake message wrapped in records.
std::string BuildClientHello(const HelloOptions& options);

}  // namespace jcs::egress::testing

#endif  // JCS_EGRESS_TEST_CLIENT_HELLO_H_
