// A small blocking HTTP/1.1 client for the model adapter (llm_openai.h): one
// request per connection ("Connection: close"), plain TCP or TLS (OpenSSL,
// certificate and host name verified against the system's CA store), with an
// absolute deadline over everything after name resolution and a cancel
// descriptor that ends the exchange at once.
//
// Why our own and not libcurl: jcs links its libraries statically and
// Debian's libcurl is only a shared library with dozens of protocols we do
// not want in a supervisor; the adapter needs one POST with a streamed
// answer, which is this file. It runs on a worker thread of the adapter,
// never on the event loop: TLS and getaddrinfo block.
//
// Bounded: the response head may not exceed 64 KiB, and the decoded body may
// not exceed `max_body_bytes` (llm_response_too_large).
#ifndef JCS_RUNTIME_CONVERSATION_HTTP_CLIENT_H_
#define JCS_RUNTIME_CONVERSATION_HTTP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jcs::runtime::conversation {

struct HttpUrl {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  std::string path;  // without a trailing '/', "" for the root
};

// Parses an http(s) base URL. Rejected, with the reason: other schemes,
// user info ("user:pass@": it would end up in diagnostics), a query or
// fragment, and plain http to anything but a loopback host (the request
// carries the API key and the conversation).
absl::StatusOr<HttpUrl> ParseBaseUrl(absl::string_view url);

// localhost, 127.0.0.0/8 or ::1.
bool IsLoopbackHost(absl::string_view host);

struct HttpResponseHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower
  // The first header of that (lower-case) name, or "".
  std::string Header(absl::string_view name) const;
};

struct HttpCall {
  HttpUrl url;
  std::string target;  // the request target, e.g. "/v1/chat/completions"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with POST
  absl::Time deadline = absl::InfiniteFuture();
  int cancel_fd = -1;  // readable: stop now (CANCELLED)
  size_t max_body_bytes = 8 << 20;
};

// Sends `call` and reads the response: `on_head` once, then `on_body` with
// the decoded body as it arrives. A callback's error ends the exchange with
// that error. Errors: llm_timeout (DEADLINE_EXCEEDED), llm_connection_failed
// (UNAVAILABLE: resolution, refused, reset), llm_tls_error (UNAVAILABLE),
// llm_malformed_response (DATA_LOSS: bad head or framing, body cut short),
// llm_response_too_large (RESOURCE_EXHAUSTED), CANCELLED.
absl::Status HttpExchange(
    const HttpCall& call,
    const std::function<absl::Status(const HttpResponseHead&)>& on_head,
    const std::function<absl::Status(absl::string_view)>& on_body);

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_HTTP_CLIENT_H_
