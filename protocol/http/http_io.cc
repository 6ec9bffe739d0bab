#include "protocol/http/http_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace jcs::protocol::http {
namespace {

std::string StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

struct HostPortAddress {
  int family = AF_INET;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

absl::StatusOr<HostPortAddress> ParseLoopback(const std::string& address) {
  std::string host;
  std::string port_text;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          "expected [IPV6]:PORT, e.g. [::1]:8765");
    }
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          "expected HOST:PORT, e.g. 127.0.0.1:8765");
    }
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  int port = -1;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port '", port_text, "': expected 0..65535"));
  }
  HostPortAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) {
      return absl::InvalidArgumentError(absl::StrCat(
          "host '", host,
          "' is not a loopback address: the gateway listens on "
          "127.0.0.0/8 or [::1] only (use a Unix socket for other local "
          "clients; put a reverse proxy with TLS in front for remote ones)"));
    }
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.family = AF_INET;
    out.len = sizeof(sockaddr_in);
    return out;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
      return absl::InvalidArgumentError(
          absl::StrCat("host '", host,
                       "' is not a loopback address: the gateway listens on "
                       "127.0.0.0/8 or [::1] only"));
    }
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.family = AF_INET6;
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "host '", host,
      "': expected a numeric loopback address (127.0.0.1 or [::1]); host "
      "names are refused, a resolver could map them elsewhere"));
}

}  // namespace

std::string Response(int status, const Headers& headers,
                     const std::string& body, bool keep_alive) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", StatusText(status),
                                 "\r\nContent-Length: ", body.size(), "\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, keep_alive ? "" : "Connection: close\r\n", "\r\n",
                  body);
  return out;
}

// Writes all of `data` within `timeout` of progress per write; false when the
// peer is gone or stopped reading.
bool WriteAll(int fd, std::string_view data, absl::Duration timeout) {
  while (!data.empty()) {
    pollfd p = {fd, POLLOUT, 0};
    const int ready = poll(&p, 1, absl::ToInt64Milliseconds(timeout));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || (p.revents & (POLLERR | POLLHUP)) != 0) return false;
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadSome(int fd, std::string& in, absl::Duration timeout) {
  return ReadSomeBefore(fd, in, absl::Now() + timeout);
}

bool ReadSomeBefore(int fd, std::string& in, absl::Time deadline) {
  char buffer[16 * 1024];
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p = {fd, POLLIN, 0};
    // Rounded up: a deadline 0.4 ms away still waits for it.
    const int ready = poll(&p, 1, absl::ToInt64Milliseconds(left) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    in.append(buffer, static_cast<size_t>(n));
    return true;
  }
}

// Constant-time comparison: the token's bytes must not leak through timing.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

bool IsLoopbackHost(const std::string& host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1" ||
      host == "[::1]") {
    return true;
  }
  in_addr v4;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 &&
         (ntohl(v4.s_addr) >> 24) == 127;
}

// An Origin header's host: "http://127.0.0.1:8080" -> "127.0.0.1".
std::optional<std::string> OriginHost(std::string_view origin) {
  const size_t scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  std::string_view rest = origin.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

bool ValidProjectId(std::string_view id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_' || c == '.';
  });
}

absl::Status CheckLoopbackAddress(const std::string& address) {
  return ParseLoopback(address).status();
}

absl::StatusOr<std::pair<int, uint16_t>> ListenLoopback(
    const std::string& address, const std::string& what) {
  absl::StatusOr<HostPortAddress> addr = ParseLoopback(address);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": address '", address, "': ", addr.status().message()));
  }
  const int fd = socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) !=
          0 ||
      listen(fd, 128) != 0) {
    const int saved = errno;
    if (fd >= 0) close(fd);
    return absl::ErrnoToStatus(saved,
                               absl::StrCat(what, ": listening on ", address));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const uint16_t port =
      ntohs(addr->family == AF_INET
                ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return std::make_pair(fd, port);
}

absl::StatusOr<int> ListenUnix(const std::string& path, mode_t mode,
                               const std::string& what) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": socket path longer than ",
                     sizeof(addr.sun_path) - 1, " bytes: ", path));
  }
  memcpy(addr.sun_path, path.c_str(), path.size());
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": ", path,
                       " exists and is not a socket; refusing to "
                       "replace it"));
    }
    unlink(path.c_str());
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      chmod(path.c_str(), mode) != 0 || listen(fd, 128) != 0) {
    const int saved = errno;
    if (fd >= 0) close(fd);
    return absl::ErrnoToStatus(saved,
                               absl::StrCat(what, ": listening on ", path));
  }
  return fd;
}

absl::StatusOr<Peer> UnixPeer(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::ErrnoToStatus(errno, "SO_PEERCRED");
  }
  Peer peer;
  peer.unix_socket = true;
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  gid_t groups[256];
  socklen_t glen = sizeof(groups);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
    peer.groups.assign(groups, groups + glen / sizeof(gid_t));
  }
  return peer;
}

bool PeerAllowed(const Peer& peer, const std::set<uid_t>& allowed_uids,
                 const std::set<gid_t>& allowed_gids) {
  bool ok = peer.uid == 0 || peer.uid == geteuid() ||
            allowed_uids.count(peer.uid) > 0 ||
            allowed_gids.count(peer.gid) > 0;
  for (gid_t g : peer.groups) ok = ok || allowed_gids.count(g) > 0;
  return ok;
}

}  // namespace jcs::protocol::http
