// A scripted chat-completions server for the adapter's tests: it listens on
// 127.0.0.1 only (an ephemeral port), answers each connection with the next
// queued reply and records every request it received (head and body), so a
// test can check what went over the wire. One connection at a time, on its
// own thread; the destructor stops it promptly (an eventfd, no timeouts).
#ifndef JCS_RUNTIME_CONVERSATION_OPENAI_STUB_SERVER_H_
#define JCS_RUNTIME_CONVERSATION_OPENAI_STUB_SERVER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace jcs::runtime::conversation {

class OpenAiStubServer {
 public:
  struct Reply {
    std::string raw;  // the bytes written back, head included
    // Then keep the connection open without writing until the client
    // closes it (a server that never answers).
    bool hang = false;
    // Then write `endless_chunk` again and again until the client closes.
    std::string endless_chunk;
    // Write `raw` as soon as the connection is accepted, without reading a
    // request (e.g. plain bytes to a client that expects TLS).
    bool immediate = false;
  };
  struct Received {
    std::string request_line;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string raw;  // everything read, head and body
  };

  static absl::StatusOr<std::unique_ptr<OpenAiStubServer>> Start();
  ~OpenAiStubServer();

  uint16_t port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:PORT/v1

  void Enqueue(Reply reply);
  void Enqueue(std::string raw) {
    Enqueue(Reply{std::move(raw), false, "", false});
  }
  void EnqueueImmediate(std::string raw) {
    Enqueue(Reply{std::move(raw), false, "", true});
  }
  void EnqueueHang(std::string raw) {
    Enqueue(Reply{std::move(raw), true, "", false});
  }
  void EnqueueEndless(std::string raw, std::string chunk) {
    Enqueue(Reply{std::move(raw), false, std::move(chunk), false});
  }
  std::vector<Received> received() const;
  // Connections the server has finished with (the client closed, or the
  // reply was written and the socket closed).
  int finished() const;

  // Replies.
  static std::string Json(int status, const std::string& body);
  // An event stream, chunked, one event per `data` entry (each written as
  // `data: <entry>\n\n`), in a chunk of its own.
  static std::string Sse(const std::vector<std::string>& data);
  // The head of a chunked event stream, for endless replies.
  static std::string SseHead();
  static std::string Chunk(const std::string& bytes);

 private:
  OpenAiStubServer() = default;
  void Serve();
  void Handle(int fd);

  UniqueFd listen_fd_;
  UniqueFd stop_fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::deque<Reply> replies_;       // guarded by mu_
  std::vector<Received> received_;  // guarded by mu_
  int finished_ = 0;                // guarded by mu_
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_OPENAI_STUB_SERVER_H_
