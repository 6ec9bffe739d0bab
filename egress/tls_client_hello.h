// Just enough of a TLS ClientHello parser to read server_name (SNI) from the
// first bytes a client sends into a CONNECT tunnel (issue 5, domain fronting
// at SNI level).
//
// Input: the bytes seen so far. The handshake message may be split over
// several TLS records (each up to 16 KiB + 2048, type 22, legacy version
// 3.x); records are reassembled until the whole ClientHello has arrived, up
// to kMaxClientHelloBytes of handshake data. Anything else than handshake
// records before the ClientHello is complete, a first handshake message that
// is not a ClientHello, or inconsistent lengths -> kMalformed. A first byte
// other than 22 -> kNotTls (the caller decides what a non-TLS tunnel is).
//
// server_name: the host_name entry of the server_name extension (type 0),
// downcased with one trailing dot dropped. Two server_name extensions, two
// host_name entries, an empty or non-printable name -> kMalformed; a name
// with an empty label (".", "a..", ".a", "a..b") -> kMalformed with error
// "empty_server_name_label". An
// encrypted_client_hello extension (0xfe0d) is reported (has_ech): its inner
// SNI is invisible to the proxy, so the proxy refuses it.
#ifndef JCS_EGRESS_TLS_CLIENT_HELLO_H_
#define JCS_EGRESS_TLS_CLIENT_HELLO_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace jcs::egress {

inline constexpr size_t kMaxClientHelloBytes = 32 * 1024;
// Bytes the proxy may have to buffer: the handshake data plus one record
// header per (minimal) record is bounded by this.
inline constexpr size_t kMaxClientHelloPeek = kMaxClientHelloBytes + 4096;

struct ClientHelloInfo {
  enum class State { kNeedMore, kNotTls, kMalformed, kComplete };
  State state = State::kNeedMore;
  std::string error;        // kMalformed
  bool has_sni = false;     // kComplete
  std::string server_name;  // kComplete, when has_sni
  bool has_ech = false;     // kComplete
  size_t consumed = 0;      // kComplete: bytes of the records read
};

ClientHelloInfo ParseClientHello(std::string_view data);

}  // namespace jcs::egress

#endif  // JCS_EGRESS_TLS_CLIENT_HELLO_H_
