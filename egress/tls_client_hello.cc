#include "egress/tls_client_hello.h"

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"

namespace jcs::egress {
namespace {

constexpr uint8_t kHandshake = 22;
constexpr uint8_t kClientHello = 1;
constexpr size_t kMaxRecord = 16384 + 2048;
constexpr uint16_t kServerNameExt = 0;
constexpr uint16_t kEchExt = 0xfe0d;

ClientHelloInfo Malformed(std::string error) {
  ClientHelloInfo info;
  info.state = ClientHelloInfo::State::kMalformed;
  info.error = std::move(error);
  return info;
}

// A bounds-checked reader over the reassembled handshake message.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool U16(uint16_t* v) {
    if (data_.size() < 2) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(data_[0]) << 8) |
                               static_cast<uint8_t>(data_[1]));
    data_.remove_prefix(2);
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (data_.size() < n) return false;
    *out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool Skip(size_t n) {
    std::string_view ignored;
    return Bytes(n, &ignored);
  }
  bool empty() const { return data_.empty(); }

 private:
  std::string_view data_;
};

ClientHelloInfo ParseBody(std::string_view body, size_t consumed) {
  Reader r(body);
  uint16_t version;
  uint8_t len8;
  uint16_t len16;
  if (!r.U16(&version) || !r.Skip(32)) return Malformed("short_client_hello");
  if (!r.U8(&len8) || len8 > 32 || !r.Skip(len8)) {
    return Malformed("bad_session_id");
  }
  if (!r.U16(&len16) || len16 < 2 || len16 % 2 != 0 || !r.Skip(len16)) {
    return Malformed("bad_cipher_suites");
  }
  if (!r.U8(&len8) || len8 < 1 || !r.Skip(len8)) {
    return Malformed("bad_compression_methods");
  }
  ClientHelloInfo info;
  info.state = ClientHelloInfo::State::kComplete;
  info.consumed = consumed;
  if (r.empty()) return info;  // no extensions
  std::string_view exts;
  if (!r.U16(&len16) || !r.Bytes(len16, &exts) || !r.empty()) {
    return Malformed("bad_extensions");
  }
  Reader e(exts);
  bool seen_sni = false;
  while (!e.empty()) {
    uint16_t type, len;
    std::string_view ext;
    if (!e.U16(&type) || !e.U16(&len) || !e.Bytes(len, &ext)) {
      return Malformed("bad_extension");
    }
    if (type == kEchExt) info.has_ech = true;
    if (type != kServerNameExt) continue;
    if (seen_sni) return Malformed("duplicate_server_name_extension");
    seen_sni = true;
    Reader s(ext);
    std::string_view list;
    uint16_t list_len;
    if (!s.U16(&list_len) || !s.Bytes(list_len, &list) || !s.empty()) {
      return Malformed("bad_server_name_list");
    }
    Reader l(list);
    while (!l.empty()) {
      uint8_t name_type;
      uint16_t name_len;
      std::string_view name;
      if (!l.U8(&name_type) || !l.U16(&name_len) || !l.Bytes(name_len, &name)) {
        return Malformed("bad_server_name");
      }
      if (name_type != 0) continue;  // only host_name (0) is defined
      if (info.has_sni) return Malformed("duplicate_host_name");
      if (name.empty() || name.size() > 255) {
        return Malformed("bad_server_name");
      }
      for (char c : name) {
        const unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) return Malformed("bad_server_name");
      }
      // One trailing dot is the DNS root and is dropped. Any other empty
      // label ("a..", ".a", "a..b", ".") names no host: no rule can match
      // it, and normalising it (say "a.." to "a.") would let the proxy's
      // view of the name differ from the server's, so it is refused.
      if (name.back() == '.') name.remove_suffix(1);
      if (name.empty() || name.front() == '.' || name.back() == '.' ||
          name.find("..") != std::string_view::npos) {
        return Malformed("empty_server_name_label");
      }
      info.has_sni = true;
      info.server_name.assign(name.data(), name.size());
      for (char& c : info.server_name) {
        c = absl::ascii_tolower(static_cast<unsigned char>(c));
      }
    }
  }
  return info;
}

}  // namespace

ClientHelloInfo ParseClientHello(std::string_view data) {
  if (data.empty()) return ClientHelloInfo{};
  if (static_cast<uint8_t>(data[0]) != kHandshake) {
    ClientHelloInfo info;
    info.state = ClientHelloInfo::State::kNotTls;
    return info;
  }
  std::string message;  // reassembled handshake bytes
  size_t pos = 0;
  for (;;) {
    if (data.size() - pos < 5) return ClientHelloInfo{};
    const uint8_t type = static_cast<uint8_t>(data[pos]);
    const uint8_t major = static_cast<uint8_t>(data[pos + 1]);
    const size_t len =
        (static_cast<size_t>(static_cast<uint8_t>(data[pos + 3])) << 8) |
        static_cast<uint8_t>(data[pos + 4]);
    if (type != kHandshake) return Malformed("unexpected_record_type");
    if (major != 3) return Malformed("bad_record_version");
    if (len == 0 || len > kMaxRecord) return Malformed("bad_record_length");
    if (data.size() - pos - 5 < len) return ClientHelloInfo{};
    message.append(data.substr(pos + 5, len));
    pos += 5 + len;
    if (message.size() > kMaxClientHelloBytes + 4) {
      return Malformed("client_hello_too_large");
    }
    if (message.size() >= 4) {
      if (static_cast<uint8_t>(message[0]) != kClientHello) {
        return Malformed("not_a_client_hello");
      }
      const size_t body_len =
          (static_cast<size_t>(static_cast<uint8_t>(message[1])) << 16) |
          (static_cast<size_t>(static_cast<uint8_t>(message[2])) << 8) |
          static_cast<uint8_t>(message[3]);
      if (body_len > kMaxClientHelloBytes) {
        return Malformed("client_hello_too_large");
      }
      if (message.size() >= 4 + body_len) {
        // Bytes past the ClientHello in the same record belong to later
        // handshake messages, which a ClientHello is never followed by.
        if (message.size() != 4 + body_len) {
          return Malformed("trailing_handshake_data");
        }
        return ParseBody(std::string_view(message).substr(4, body_len), pos);
      }
    }
    if (pos >= data.size()) return ClientHelloInfo{};
  }
}

}  // namespace jcs::egress
