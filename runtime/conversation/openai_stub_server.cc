#include "runtime/conversation/openai_stub_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace jcs::runtime::conversation {
namespace {

// Waits for `events` on `fd` or the stop eventfd; false when stopping.
bool WaitFor(int fd, short events, int stop_fd) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
  }
}

// Writes all of `data`; false when the client is gone or the server stops.
bool SendAll(int fd, const std::string& data, int stop_fd) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += n;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLOUT, stop_fd)) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpenAiStubServer>> OpenAiStubServer::Start() {
  std::unique_ptr<OpenAiStubServer> server(new OpenAiStubServer());
  server->listen_fd_.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  server->stop_fd_.Reset(eventfd(0, EFD_CLOEXEC));
  if (!server->listen_fd_.valid() || !server->stop_fd_.valid()) {
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  }
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(server->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr),
           sizeof(addr)) != 0 ||
      listen(server->listen_fd_.get(), 16) != 0 ||
      getsockname(server->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr),
                  &len) != 0) {
    return absl::InternalError(absl::StrCat("bind: ", strerror(errno)));
  }
  server->port_ = ntohs(addr.sin_port);
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  return server;
}

OpenAiStubServer::~OpenAiStubServer() {
  uint64_t one = 1;
  (void)!write(stop_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

std::string OpenAiStubServer::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_, "/v1");
}

void OpenAiStubServer::Enqueue(Reply reply) {
  std::lock_guard<std::mutex> lock(mu_);
  replies_.push_back(std::move(reply));
}

std::vector<OpenAiStubServer::Received> OpenAiStubServer::received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

int OpenAiStubServer::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

std::string OpenAiStubServer::Json(int status, const std::string& body) {
  return absl::StrCat("HTTP/1.1 ", status,
                      " X\r\nContent-Type: application/json\r\n"
                      "Content-Length: ",
                      body.size(), "\r\n\r\n", body);
}

std::string OpenAiStubServer::SseHead() {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
         "Transfer-Encoding: chunked\r\n\r\n";
}

std::string OpenAiStubServer::Chunk(const std::string& bytes) {
  return absl::StrFormat("%x\r\n%s\r\n", bytes.size(), bytes);
}

std::string OpenAiStubServer::Sse(const std::vector<std::string>& data) {
  std::string out = SseHead();
  for (const std::string& d : data) out += Chunk("data: " + d + "\n\n");
  return out + "0\r\n\r\n";
}

void OpenAiStubServer::Serve() {
  for (;;) {
    if (!WaitFor(listen_fd_.get(), POLLIN, stop_fd_.get())) return;
    UniqueFd conn(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    Handle(conn.get());
    conn.Reset();
    std::lock_guard<std::mutex> lock(mu_);
    ++finished_;
  }
}

void OpenAiStubServer::Handle(int fd) {
  const int stop = stop_fd_.get();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!replies_.empty() && replies_.front().immediate) {
      Reply reply = std::move(replies_.front());
      replies_.pop_front();
      lock.unlock();
      SendAll(fd, reply.raw, stop);
      return;
    }
  }
  Received got;
  char buf[65536];
  size_t head_end = std::string::npos;
  size_t length = 0;
  // The head, then Content-Length bytes of body.
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = got.raw.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::vector<std::string> lines =
            absl::StrSplit(got.raw.substr(0, head_end), "\r\n");
        got.request_line = lines[0];
        for (size_t i = 1; i < lines.size(); ++i) {
          size_t colon = lines[i].find(':');
          if (colon == std::string::npos) continue;
          got.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
              std::string(
                  absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
        }
        (void)absl::SimpleAtoi(got.headers["content-length"], &length);
      }
    }
    if (head_end != std::string::npos &&
        got.raw.size() >= head_end + 4 + length) {
      break;
    }
    if (!WaitFor(fd, POLLIN, stop)) return;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    got.raw.append(buf, n);
  }
  got.body = got.raw.substr(head_end + 4, length);
  Reply reply;
  {
    std::lock_guard<std::mutex> lock(mu_);
    received_.push_back(got);
    if (replies_.empty()) {
      reply.raw = Json(500, R"({"error":{"message":"no scripted reply"}})");
    } else {
      reply = std::move(replies_.front());
      replies_.pop_front();
    }
  }
  if (!SendAll(fd, reply.raw, stop)) return;
  if (!reply.endless_chunk.empty()) {
    while (SendAll(fd, reply.endless_chunk, stop)) {
    }
    return;
  }
  if (reply.hang) {
    // Until the client closes (read returns 0 or fails) or the server stops.
    while (WaitFor(fd, POLLIN, stop)) {
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
    }
  }
}

}  // namespace jcs::runtime::conversation
