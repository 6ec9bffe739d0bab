#include "runtime/conversation/http_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"
#include "runtime/conversation/http_chunked.h"
#include "runtime/conversation/llm_error.h"

namespace jcs::runtime::conversation {
namespace {

// Debian's Abseil 20220623 has no StrContainsIgnoreCase.
bool ContainsIgnoreCase(absl::string_view haystack, absl::string_view needle) {
  return absl::StrContains(absl::AsciiStrToLower(haystack),
                           absl::AsciiStrToLower(needle));
}

constexpr size_t kMaxHeadBytes = 64 << 10;

absl::Status Timeout(const HttpUrl& url) {
  return LlmError(
      absl::StatusCode::kDeadlineExceeded, kLlmTimeout,
      absl::StrCat("no complete answer from ", url.host, ":", url.port,
                   " within the timeout (llm_timeout_ms)"));
}

absl::Status ConnectionFailed(absl::string_view what) {
  return LlmError(absl::StatusCode::kUnavailable, kLlmConnectionFailed, what);
}

absl::Status Malformed(absl::string_view what) {
  return LlmError(absl::StatusCode::kDataLoss, kLlmMalformedResponse, what);
}

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

// The process-wide client context: TLS 1.2+, peer verification on, the
// system CA store. Built once (loading the store costs milliseconds).
SSL_CTX* ClientContext() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c == nullptr) return c;
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_default_verify_paths(c);
    // A close without close_notify reads as end of file; the body framing
    // (Content-Length, chunked, [DONE]) tells a cut answer.
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(
        c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return c;
  }();
  return ctx;
}

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

class Connection {
 public:
  explicit Connection(const HttpCall& call) : call_(call) {}

  absl::Status Open();
  absl::Status WriteAll(absl::string_view data);
  // Bytes read (0: end of stream).
  absl::StatusOr<size_t> Read(char* buffer, size_t size);

 private:
  // Waits until `fd_` has `events`, the deadline passes or the call is
  // cancelled.
  absl::Status Wait(short events);
  absl::Status Connect();
  absl::Status Handshake();
  // Maps an SSL_ERROR_WANT_* to a wait; other SSL errors to a status.
  absl::Status SslWait(int rc, absl::string_view what);

  const HttpCall& call_;
  UniqueFd fd_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

absl::Status Connection::Wait(short events) {
  for (;;) {
    absl::Duration left = call_.deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return Timeout(call_.url);
    pollfd fds[2] = {{fd_.get(), events, 0}, {call_.cancel_fd, POLLIN, 0}};
    int64_t ms =
        absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
    int rc = poll(fds, call_.cancel_fd >= 0 ? 2 : 1,
                  static_cast<int>(std::min<int64_t>(ms, 60000)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0)
      return absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
    if (call_.cancel_fd >= 0 && fds[1].revents != 0) {
      return absl::CancelledError("llm request cancelled");
    }
    if (fds[0].revents != 0) return absl::OkStatus();
  }
}

absl::Status Connection::Connect() {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = absl::StrCat(call_.url.port);
  // getaddrinfo cannot be bounded by the deadline; it runs on the adapter's
  // thread, never the loop, and the deadline is checked right after it.
  int rc = getaddrinfo(call_.url.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return ConnectionFailed(absl::StrCat("cannot resolve ", call_.url.host,
                                         ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    fd_.Reset(socket(ai->ai_family,
                     ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     ai->ai_protocol));
    if (!fd_.valid()) {
      last_error = strerror(errno);
      continue;
    }
    char address[INET6_ADDRSTRLEN] = "?";
    const void* raw =
        ai->ai_family == AF_INET6
            ? static_cast<const void*>(
                  &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
            : &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, raw, address, sizeof(address));
    if (connect(fd_.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last_error = absl::StrCat(address, ": ", strerror(errno));
        continue;
      }
      if (absl::Status s = Wait(POLLOUT); !s.ok()) return s;
      int error = 0;
      socklen_t len = sizeof(error);
      getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &len);
      if (error != 0) {
        last_error = absl::StrCat(address, ": ", strerror(error));
        continue;
      }
    }
    return absl::OkStatus();
  }
  fd_.Reset();
  return ConnectionFailed(absl::StrCat("cannot connect to ", call_.url.host,
                                       " port ", call_.url.port, " (",
                                       last_error, ")"));
}

absl::Status Connection::SslWait(int rc, absl::string_view what) {
  int error = SSL_get_error(ssl_.get(), rc);
  if (error == SSL_ERROR_WANT_READ) return Wait(POLLIN);
  if (error == SSL_ERROR_WANT_WRITE) return Wait(POLLOUT);
  std::string detail = error == SSL_ERROR_SYSCALL && errno != 0
                           ? std::string(strerror(errno))
                           : OpenSslErrors();
  if (error == SSL_ERROR_SSL) {
    long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK) {
      detail = absl::StrCat("certificate verification failed: ",
                            X509_verify_cert_error_string(verify));
    }
  }
  return LlmError(absl::StatusCode::kUnavailable, kLlmTlsError,
                  absl::StrCat(what, " with ", call_.url.host, ": ", detail));
}

absl::Status Connection::Handshake() {
  SSL_CTX* ctx = ClientContext();
  if (ctx == nullptr) {
    return LlmError(absl::StatusCode::kInternal, kLlmTlsError,
                    absl::StrCat("cannot set up TLS: ", OpenSslErrors()));
  }
  ssl_.reset(SSL_new(ctx));
  if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1 ||
      SSL_set1_host(ssl_.get(), call_.url.host.c_str()) != 1) {
    return LlmError(absl::StatusCode::kInternal, kLlmTlsError,
                    absl::StrCat("cannot set up TLS: ", OpenSslErrors()));
  }
  // SNI only for names: RFC 6066 forbids IP literals there.
  in6_addr ignored;
  if (inet_pton(AF_INET, call_.url.host.c_str(), &ignored) != 1 &&
      inet_pton(AF_INET6, call_.url.host.c_str(), &ignored) != 1) {
    SSL_set_tlsext_host_name(ssl_.get(), call_.url.host.c_str());
  }
  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(ssl_.get());
    if (rc == 1) return absl::OkStatus();
    if (absl::Status s = SslWait(rc, "TLS handshake"); !s.ok()) return s;
  }
}

absl::Status Connection::Open() {
  if (absl::Status s = Connect(); !s.ok()) return s;
  if (absl::Now() >= call_.deadline) return Timeout(call_.url);
  return call_.url.tls ? Handshake() : absl::OkStatus();
}

absl::Status Connection::WriteAll(absl::string_view data) {
  while (!data.empty()) {
    if (ssl_) {
      ERR_clear_error();
      int rc =
          SSL_write(ssl_.get(), data.data(),
                    static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
      if (rc > 0) {
        data.remove_prefix(rc);
      } else if (absl::Status s = SslWait(rc, "TLS write"); !s.ok()) {
        return s;
      }
      continue;
    }
    ssize_t n = send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (absl::Status s = Wait(POLLOUT); !s.ok()) return s;
    } else {
      return ConnectionFailed(absl::StrCat(
          "sending the request to ", call_.url.host, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Connection::Read(char* buffer, size_t size) {
  for (;;) {
    if (ssl_) {
      ERR_clear_error();
      int rc = SSL_read(ssl_.get(), buffer, static_cast<int>(size));
      if (rc > 0) return static_cast<size_t>(rc);
      int error = SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_ZERO_RETURN) return 0;
      if (error == SSL_ERROR_SYSCALL && errno == 0) return 0;
      if (absl::Status s = SslWait(rc, "TLS read"); !s.ok()) return s;
      continue;
    }
    ssize_t n = recv(fd_.get(), buffer, size, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EINTR) {
      if (absl::Status s = Wait(POLLIN); !s.ok()) return s;
      continue;
    }
    return ConnectionFailed(absl::StrCat(
        "reading the answer from ", call_.url.host, ": ", strerror(errno)));
  }
}

absl::StatusOr<HttpResponseHead> ParseHead(absl::string_view head) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(head, absl::ByString("\r\n"));
  HttpResponseHead out;
  absl::string_view status = lines.empty() ? "" : lines[0];
  // "HTTP/1.1 200 OK"
  if (!absl::StartsWith(status, "HTTP/1.") || status.size() < 12 ||
      status[8] != ' ' || !absl::SimpleAtoi(status.substr(9, 3), &out.status) ||
      out.status < 100 || out.status > 599) {
    return Malformed("the answer does not start with an HTTP/1.x status line");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    size_t colon = lines[i].find(':');
    if (colon == 0 || colon == absl::string_view::npos) {
      return Malformed("a response header line without a name");
    }
    out.headers.emplace_back(
        absl::AsciiStrToLower(lines[i].substr(0, colon)),
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
  }
  return out;
}

}  // namespace

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  in_addr v4;
  std::string text(host);
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 &&
         (ntohl(v4.s_addr) >> 24) == 127;
}

absl::StatusOr<HttpUrl> ParseBaseUrl(absl::string_view url) {
  auto bad = [url](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("llm_base_url \"", url, "\": ", why));
  };
  HttpUrl out;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.tls = true;
    out.port = 443;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    out.port = 80;
  } else {
    return bad("expected an http:// or https:// URL");
  }
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return bad("a query or fragment is not allowed");
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  out.path =
      slash == absl::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  if (authority.find('@') != absl::string_view::npos) {
    return bad(
        "user info is not allowed: give the key with llm_api_key_file "
        "or llm_api_key_env");
  }
  absl::string_view host = authority, port;
  if (absl::ConsumePrefix(&host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos)
      return bad("unclosed '[' in the host");
    absl::string_view after = host.substr(close + 1);
    host = host.substr(0, close);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return bad("garbage after the IPv6 address");
    }
    port = after;
  } else if (size_t colon = host.find(':'); colon != absl::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return bad("no host");
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != ':' && c != '_') {
      return bad("the host has a character outside [A-Za-z0-9.:_-]");
    }
  }
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return bad("the path has a space or control character");
    }
  }
  if (!port.empty()) {
    int value = 0;
    if (!absl::SimpleAtoi(port, &value) || value < 1 || value > 65535) {
      return bad("the port is not a number in 1..65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  out.host = std::string(host);
  if (!out.tls && !IsLoopbackHost(out.host)) {
    return bad(
        "plain http is only allowed to a loopback host (the request "
        "carries the API key and the conversation): use https://");
  }
  return out;
}

std::string HttpResponseHead::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

absl::Status HttpExchange(
    const HttpCall& call,
    const std::function<absl::Status(const HttpResponseHead&)>& on_head,
    const std::function<absl::Status(absl::string_view)>& on_body) {
  Connection conn(call);
  if (absl::Status s = conn.Open(); !s.ok()) return s;

  std::string host = call.url.host.find(':') != std::string::npos
                         ? absl::StrCat("[", call.url.host, "]")
                         : call.url.host;
  if (call.url.port != (call.url.tls ? 443 : 80)) {
    absl::StrAppend(&host, ":", call.url.port);
  }
  std::string request =
      absl::StrCat("POST ", call.target, " HTTP/1.1\r\nHost: ", host,
                   "\r\nConnection: close\r\n",
                   "Content-Length: ", call.body.size(), "\r\n");
  for (const auto& [name, value] : call.headers) {
    absl::StrAppend(&request, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&request, "\r\n", call.body);
  if (absl::Status s = conn.WriteAll(request); !s.ok()) return s;

  // The head, skipping interim 1xx answers.
  std::string buffer;
  HttpResponseHead head;
  char chunk[16384];
  for (;;) {
    size_t end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      absl::StatusOr<HttpResponseHead> parsed =
          ParseHead(absl::string_view(buffer).substr(0, end));
      if (!parsed.ok()) return parsed.status();
      buffer.erase(0, end + 4);
      if (parsed->status >= 200) {
        head = *std::move(parsed);
        break;
      }
      continue;
    }
    if (buffer.size() > kMaxHeadBytes) {
      return LlmError(absl::StatusCode::kResourceExhausted,
                      kLlmResponseTooLarge,
                      "the response head is larger than 64 KiB");
    }
    absl::StatusOr<size_t> n = conn.Read(chunk, sizeof(chunk));
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return Malformed(buffer.empty()
                           ? "the server closed the connection without "
                             "answering"
                           : "the connection closed inside the response head");
    }
    buffer.append(chunk, *n);
  }
  if (absl::Status s = on_head(head); !s.ok()) return s;

  const bool chunked =
      ContainsIgnoreCase(head.Header("transfer-encoding"), "chunked");
  std::string length_text = head.Header("content-length");
  int64_t length = -1;
  if (!chunked && !length_text.empty() &&
      (!absl::SimpleAtoi(length_text, &length) || length < 0)) {
    return Malformed("Content-Length is not a non-negative number");
  }
  auto too_large = [&call] {
    return LlmError(
        absl::StatusCode::kResourceExhausted, kLlmResponseTooLarge,
        absl::StrCat("the response body is larger than ", call.max_body_bytes,
                     " bytes (the adapter's cap)"));
  };
  if (length > static_cast<int64_t>(call.max_body_bytes)) return too_large();

  ChunkedDecoder decoder;
  size_t delivered = 0;
  std::string decoded;
  // Hands `raw` (body bytes off the wire) to on_body, decoded and counted.
  auto deliver = [&](absl::string_view raw) -> absl::Status {
    absl::string_view out = raw;
    if (chunked) {
      decoded.clear();
      if (absl::Status s = decoder.Feed(raw, &decoded); !s.ok()) return s;
      out = decoded;
    } else if (length >= 0) {
      out = out.substr(0, static_cast<size_t>(length) - delivered);
    }
    delivered += out.size();
    if (delivered > call.max_body_bytes) return too_large();
    return out.empty() ? absl::OkStatus() : on_body(out);
  };
  auto complete = [&] {
    return chunked ? decoder.done()
                   : length >= 0 && delivered >= static_cast<size_t>(length);
  };
  if (absl::Status s = deliver(buffer); !s.ok()) return s;
  while (!complete()) {
    absl::StatusOr<size_t> n = conn.Read(chunk, sizeof(chunk));
    if (!n.ok()) return n.status();
    if (*n == 0) {
      if (!chunked && length < 0) return absl::OkStatus();  // close-delimited
      return Malformed("the connection closed before the end of the body");
    }
    if (absl::Status s = deliver(absl::string_view(chunk, *n)); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace jcs::runtime::conversation
