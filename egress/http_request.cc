#include "egress/http_request.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "egress/egress_policy.h"

namespace jcs::egress {
namespace {

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

ParseResult Error(int status, std::string error) {
  ParseResult r;
  r.state = ParseResult::State::kError;
  r.status = status;
  r.error = std::move(error);
  return r;
}

bool ValidTargetChar(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

// Splits comma-separated header values (Connection: a, b).
std::vector<std::string> CommaList(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    if (comma == std::string_view::npos) comma = v.size();
    std::string_view item = TrimOws(v.substr(start, comma - start));
    if (!item.empty()) out.push_back(Lower(item));
    start = comma + 1;
  }
  return out;
}

}  // namespace

bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

uint16_t DefaultPort(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "ftp") return 21;
  return 0;
}

std::optional<std::string> RequestHead::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

namespace {

// Checks a complete request line (without its CRLF) and sets h's method,
// target and version; an error result when it is not METHOD SP target SP
// HTTP/1.x.
std::optional<ParseResult> ParseRequestLine(std::string_view line,
                                            RequestHead* h) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? std::string_view::npos
                                                   : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Error(400, "malformed_request_line");
  }
  h->method = std::string(line.substr(0, sp1));
  h->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  h->version = std::string(line.substr(sp2 + 1));
  if (!IsToken(h->method)) return Error(400, "malformed_request_line");
  if (h->version != "HTTP/1.1" && h->version != "HTTP/1.0") {
    return Error(400, "unsupported_http_version");
  }
  if (h->target.empty()) return Error(400, "malformed_request_line");
  for (char c : h->target) {
    if (!ValidTargetChar(c)) return Error(400, "malformed_request_target");
  }
  return std::nullopt;
}

// Absolute-form: scheme "://" authority [path-abempty ["?" query]]; sets
// scheme, host, host_is_ip, port (the scheme's default when absent) and
// origin_form.
std::optional<ParseResult> ParseAbsoluteForm(RequestHead* h) {
  const size_t sep = h->target.find("://");
  if (sep == std::string::npos || sep == 0) {
    return Error(400, "not_absolute_form");
  }
  const std::string scheme = Lower(h->target.substr(0, sep));
  if (!absl::ascii_isalpha(static_cast<unsigned char>(scheme[0]))) {
    return Error(400, "malformed_scheme");
  }
  for (char c : scheme) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' &&
        c != '-' && c != '.') {
      return Error(400, "malformed_scheme");
    }
  }
  h->scheme = scheme;
  std::string_view rest = std::string_view(h->target).substr(sep + 3);
  const size_t auth_end = rest.find_first_of("/?#\\");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view path = auth_end == std::string_view::npos
                              ? std::string_view()
                              : rest.substr(auth_end);
  if (authority.find('@') != std::string_view::npos) {
    return Error(400, "userinfo_in_target");
  }
  if (path.find_first_of("#\\") != std::string_view::npos) {
    return Error(400, "malformed_request_target");
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(authority);
  if (!hp.ok()) return Error(400, "malformed_request_target");
  h->host = hp->host;
  h->host_is_ip = hp->is_ip;
  h->port = hp->port.has_value() ? *hp->port : DefaultPort(scheme);
  if (path.empty()) {
    h->origin_form = "/";
  } else if (path.front() == '?') {
    h->origin_form = "/" + std::string(path);
  } else {
    h->origin_form = std::string(path);
  }
  return std::nullopt;
}

// The target rules of a request inside a tunnel (see the header).
std::optional<ParseResult> ParseTunnelTarget(
    RequestHead* h, const std::vector<std::string_view>& transfer_codings) {
  if (h->method == "CONNECT") return Error(400, "connect_inside_tunnel");
  if (!h->host_header.has_value()) return Error(400, "missing_host_header");
  absl::StatusOr<HostPort> host = ParseHostPort(*h->host_header);
  if (!host.ok()) return Error(400, "invalid_host_header");
  if (!transfer_codings.empty() &&
      (transfer_codings.size() != 1 ||
       !EqualsIgnoreCase(transfer_codings[0], "chunked") ||
       h->version != "HTTP/1.1")) {
    return Error(501, "unsupported_transfer_encoding");
  }
  if (h->target.front() == '/') {
    if (h->target.find('#') != std::string::npos) {
      return Error(400, "malformed_request_target");
    }
    h->scheme = "http";
    h->host = host->host;
    h->host_is_ip = host->is_ip;
    h->port = host->port.value_or(DefaultPort("http"));
    h->origin_form = h->target;
    return std::nullopt;
  }
  if (std::optional<ParseResult> e = ParseAbsoluteForm(h)) return e;
  if (h->scheme != "http") return Error(400, "tunnel_request_scheme_not_http");
  return std::nullopt;
}

}  // namespace

ParseResult ParseRequestHead(std::string_view data, size_t max_header_bytes,
                             HeadContext context) {
  // Catch binary garbage (a TLS record sent to the proxy, another protocol
  // inside a tunnel, ...) early instead of waiting for the size limit: the
  // request line is printable ASCII, its method a token, and it is checked
  // whole as soon as its CRLF is there.
  const size_t first_eol = data.find("\r\n");
  std::string_view first_line =
      data.substr(0, std::min(first_eol, max_header_bytes));
  // Before its CRLF has arrived, a final CR may be the first half of it (a
  // read can end between CR and LF): wait for the next byte to decide.
  if (first_eol == std::string_view::npos && !first_line.empty() &&
      first_line.back() == '\r') {
    first_line.remove_suffix(1);
  }
  for (char c : first_line) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return Error(400, "malformed_request_line");
  }
  if (!IsToken(first_line.substr(0, first_line.find(' '))) &&
      !first_line.empty()) {
    return Error(400, "malformed_request_line");
  }
  if (first_eol != std::string_view::npos && first_eol < max_header_bytes) {
    RequestHead line_only;
    if (std::optional<ParseResult> e =
            ParseRequestLine(data.substr(0, first_eol), &line_only)) {
      return *std::move(e);
    }
  }
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > max_header_bytes) {
    if (data.size() >= max_header_bytes) {
      return Error(431, "request_header_fields_too_large");
    }
    return ParseResult{};
  }
  const size_t head_bytes = end + 4;
  std::string_view head = data.substr(0, end + 2);  // keep the last CRLF

  // Split into lines; every line must end with CRLF and hold no CR/LF/NUL.
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < head.size()) {
    const size_t crlf = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, crlf - pos);
    for (char c : line) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u == '\r' || u == '\n' || u == 0 || u == 0x7f ||
          (u < 0x20 && u != '\t')) {
        return Error(400, "malformed_request (control character)");
      }
    }
    lines.push_back(line);
    pos = crlf + 2;
  }
  if (lines.empty()) return Error(400, "malformed_request (empty)");
  if (lines.size() - 1 > kMaxHeaderLines) {
    return Error(431, "request_header_fields_too_large (too many lines)");
  }

  ParseResult r;
  RequestHead& h = r.head;
  if (std::optional<ParseResult> e = ParseRequestLine(lines[0], &h)) {
    return *std::move(e);
  }

  // Headers.
  bool saw_host = false;
  std::optional<uint64_t> content_length;
  std::vector<std::string_view> transfer_codings;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) return Error(400, "malformed_header");
    if (line.front() == ' ' || line.front() == '\t') {
      return Error(400, "obsolete_line_folding");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Error(400, "malformed_header");
    std::string_view name = line.substr(0, colon);
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsToken(name)) return Error(400, "malformed_header_name");
    if (EqualsIgnoreCase(name, "host")) {
      if (saw_host) return Error(400, "duplicate_host_header");
      saw_host = true;
      h.host_header = std::string(value);
    } else if (EqualsIgnoreCase(name, "content-length")) {
      if (value.empty() || value.size() > 18) {
        return Error(400, "invalid_content_length");
      }
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return Error(400, "invalid_content_length");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (content_length.has_value() && *content_length != n) {
        return Error(400, "conflicting_content_length");
      }
      content_length = n;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      h.has_transfer_encoding = true;
      for (size_t start = 0; start <= value.size();) {
        size_t comma = value.find(',', start);
        if (comma == std::string_view::npos) comma = value.size();
        transfer_codings.push_back(TrimOws(value.substr(start, comma - start)));
        start = comma + 1;
      }
    }
    h.headers.emplace_back(std::string(name), std::string(value));
  }
  if (content_length.has_value() && h.has_transfer_encoding) {
    return Error(400, "content_length_with_transfer_encoding");
  }
  h.content_length = content_length;

  // Target.
  if (context == HeadContext::kTunnel) {
    if (std::optional<ParseResult> e =
            ParseTunnelTarget(&h, transfer_codings)) {
      return *std::move(e);
    }
  } else if (h.method == "CONNECT") {
    h.is_connect = true;
    if (h.target.find_first_of("/@?#") != std::string::npos) {
      return Error(400, "malformed_connect_target");
    }
    absl::StatusOr<HostPort> hp = ParseHostPort(h.target);
    if (!hp.ok() || !hp->port.has_value()) {
      return Error(400, "malformed_connect_target");
    }
    h.host = hp->host;
    h.host_is_ip = hp->is_ip;
    h.port = *hp->port;
  } else if (std::optional<ParseResult> e = ParseAbsoluteForm(&h)) {
    return *std::move(e);
  }

  r.state = ParseResult::State::kComplete;
  r.head_bytes = head_bytes;
  return r;
}

absl::Status CheckTunnelRequestTarget(const RequestHead& head,
                                      std::string_view connect_host,
                                      uint16_t connect_port) {
  // The Host header was validated by the kTunnel parse.
  absl::StatusOr<HostPort> host = ParseHostPort(head.host_header.value_or(""));
  if (!host.ok() || host->host != connect_host ||
      host->port.value_or(DefaultPort("http")) != connect_port) {
    return absl::PermissionDeniedError(
        absl::StrCat("host_header_mismatch ", head.host_header.value_or("")));
  }
  if (head.host != connect_host || head.port != connect_port) {
    return absl::PermissionDeniedError(
        absl::StrCat("request_target_mismatch ", head.host, ":", head.port));
  }
  return absl::OkStatus();
}

std::string BuildUpstreamHead(const RequestHead& head) {
  std::vector<std::string> drop = {"connection", "proxy-connection",
                                   "keep-alive", "te",
                                   "trailer",    "upgrade"};
  if (std::optional<std::string> c = head.Header("connection")) {
    for (std::string& n : CommaList(*c)) drop.push_back(std::move(n));
  }
  std::string out =
      absl::StrCat(head.method, " ", head.origin_form, " HTTP/1.1\r\n");
  if (!head.host_header.has_value()) {
    const bool v6 = head.host.find(':') != std::string::npos;
    const std::string host = v6 ? absl::StrCat("[", head.host, "]") : head.host;
    if (head.port == DefaultPort(head.scheme)) {
      absl::StrAppend(&out, "Host: ", host, "\r\n");
    } else {
      absl::StrAppend(&out, "Host: ", host, ":", head.port, "\r\n");
    }
  }
  for (const auto& [name, value] : head.headers) {
    const std::string lower = Lower(name);
    bool skip = lower.rfind("proxy-", 0) == 0;
    for (const std::string& d : drop) skip = skip || lower == d;
    if (skip) continue;
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "Connection: close\r\n\r\n");
  return out;
}

}  // namespace jcs::egress
