// Round trips per second of a socketpair ping-pong through the event loop,
// against plain blocking read/write loops:
//
//   ./bazelw run //loop:event_loop_bench -- --seconds=2 --size=64 --pairs=1
//
// Modes printed:
//   event loop        client and echo server are both loop operations on one
//                     thread (--pairs ping-pongs in flight at once);
//   blocking, 1 thread  write/read/write/read on one thread (no wake-ups:
//                     the floor of the syscall cost);
//   blocking, 2 threads a client thread and an echo thread blocking in
//                     read(2), i.e. thread-per-connection.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "loop/event_loop.h"
#include "loop/uring_setup.h"

namespace jcs::runtime {
namespace {

struct Flags {
  double seconds = 2;
  size_t size = 64;
  int pairs = 1;
};

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "event_loop_bench: %s\n", what.c_str());
  exit(1);
}

void SocketPair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    Die(std::string("socketpair: ") + strerror(errno));
  }
}

bool WriteFull(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, data, n);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadFull(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t r = read(fd, data, n);
    if (r <= 0) return false;
    data += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void Report(const char* mode, uint64_t round_trips, absl::Duration elapsed) {
  const double per_second =
      static_cast<double>(round_trips) / absl::ToDoubleSeconds(elapsed);
  printf("%-32s %10.0f round trips/s  (%.2f us each, %llu in %.2f s)\n", mode,
         per_second, 1e6 / per_second,
         static_cast<unsigned long long>(round_trips),  // NOLINT
         absl::ToDoubleSeconds(elapsed));
}

// One ping-pong through the loop: the client writes `size` bytes and reads
// the echo; the server reads and writes back whatever arrives.
class Pair {
 public:
  Pair(EventLoop* loop, size_t size, const bool* stopping)
      : loop_(loop),
        stopping_(stopping),
        message_(size, 'p'),
        client_buffer_(size),
        server_buffer_(size) {
    int fds[2];
    SocketPair(fds);
    client_ = fds[0];
    server_ = fds[1];
  }
  ~Pair() {
    close(client_);
    close(server_);
  }
  void Start() {
    ServerRead();
    ClientSend();
  }
  uint64_t round_trips() const { return round_trips_; }

 private:
  static void Check(const absl::StatusOr<OpId>& op) {
    if (!op.ok()) Die(std::string(op.status().message()));
  }
  void ClientSend() {
    received_ = 0;
    Check(loop_->WriteAll(client_, absl::MakeConstSpan(message_), [](int res) {
      if (res < 0) Die(std::string("client write: ") + strerror(-res));
    }));
    ClientRead();
  }
  void ClientRead() {
    Check(loop_->Read(client_,
                      absl::MakeSpan(client_buffer_.data() + received_,
                                     client_buffer_.size() - received_),
                      [this](int res) {
                        if (res <= 0) Die("client read failed");
                        received_ += static_cast<size_t>(res);
                        if (received_ < message_.size()) return ClientRead();
                        ++round_trips_;
                        if (!*stopping_) ClientSend();
                      }));
  }
  void ServerRead() {
    Check(loop_->Read(server_, absl::MakeSpan(server_buffer_), [this](int res) {
      if (res <= 0) Die("server read failed");
      Check(loop_->WriteAll(
          server_,
          absl::MakeConstSpan(server_buffer_.data(), static_cast<size_t>(res)),
          [](int res) {
            if (res < 0) Die("server write failed");
          }));
      ServerRead();
    }));
  }

  EventLoop* loop_;
  const bool* stopping_;
  int client_ = -1;
  int server_ = -1;
  std::string message_;
  std::vector<char> client_buffer_;
  std::vector<char> server_buffer_;
  size_t received_ = 0;
  uint64_t round_trips_ = 0;
};

void BenchLoop(const Flags& flags) {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) Die(loop.status().ToString());
  bool stopping = false;
  std::vector<std::unique_ptr<Pair>> pairs;
  for (int i = 0; i < flags.pairs; ++i) {
    pairs.push_back(std::make_unique<Pair>(loop->get(), flags.size, &stopping));
  }
  const absl::Duration duration = absl::Seconds(flags.seconds);
  if (!(*loop)
           ->Timeout(duration,
                     [&](int) {
                       stopping = true;
                       (*loop)->Stop();
                     })
           .ok()) {
    Die("timeout");
  }
  const absl::Time start = absl::Now();
  for (auto& pair : pairs) pair->Start();
  if (absl::Status s = (*loop)->Run(); !s.ok()) Die(s.ToString());
  const absl::Duration elapsed = absl::Now() - start;
  uint64_t total = 0;
  for (auto& pair : pairs) total += pair->round_trips();
  const std::string mode = "event loop (" + std::to_string(flags.pairs) +
                           (flags.pairs == 1 ? " pair)" : " pairs)");
  Report(mode.c_str(), total, elapsed);
  printf("  ring flags: %s\n",
         RingFlagsToString((*loop)->ring_flags()).c_str());
  (*loop).reset();  // cancels the operations still in flight
}

void BenchBlockingOneThread(const Flags& flags) {
  int fds[2];
  SocketPair(fds);
  std::string message(flags.size, 'p');
  std::vector<char> buffer(flags.size);
  uint64_t round_trips = 0;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(flags.seconds);
  while (absl::Now() < end) {
    for (int i = 0; i < 256; ++i) {
      if (!WriteFull(fds[0], message.data(), message.size()) ||
          !ReadFull(fds[1], buffer.data(), buffer.size()) ||
          !WriteFull(fds[1], buffer.data(), buffer.size()) ||
          !ReadFull(fds[0], buffer.data(), buffer.size())) {
        Die("blocking round trip failed");
      }
      ++round_trips;
    }
  }
  Report("blocking read/write, 1 thread", round_trips, absl::Now() - start);
  close(fds[0]);
  close(fds[1]);
}

void BenchBlockingTwoThreads(const Flags& flags) {
  int fds[2];
  SocketPair(fds);
  std::thread echo([&] {
    std::vector<char> buffer(flags.size);
    while (ReadFull(fds[1], buffer.data(), buffer.size()) &&
           WriteFull(fds[1], buffer.data(), buffer.size())) {
    }
  });
  std::string message(flags.size, 'p');
  std::vector<char> buffer(flags.size);
  uint64_t round_trips = 0;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(flags.seconds);
  while (absl::Now() < end) {
    for (int i = 0; i < 64; ++i) {
      if (!WriteFull(fds[0], message.data(), message.size()) ||
          !ReadFull(fds[0], buffer.data(), buffer.size())) {
        Die("blocking round trip failed");
      }
      ++round_trips;
    }
  }
  const absl::Duration elapsed = absl::Now() - start;
  shutdown(fds[0], SHUT_WR);  // the echo thread sees EOF and ends
  echo.join();
  Report("blocking read/write, 2 threads", round_trips, elapsed);
  close(fds[0]);
  close(fds[1]);
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = false;
    if (name == "--seconds") {
      ok = absl::SimpleAtod(value, &flags.seconds) && flags.seconds > 0;
    } else if (name == "--size") {
      ok = absl::SimpleAtoi(value, &flags.size) && flags.size > 0;
    } else if (name == "--pairs") {
      ok = absl::SimpleAtoi(value, &flags.pairs) && flags.pairs > 0 &&
           flags.pairs <= 1000;
    }
    if (!ok) {
      Die("usage: event_loop_bench [--seconds=S] [--size=BYTES] "
          "[--pairs=1..1000]; bad argument: " +
          arg);
    }
  }
  return flags;
}

}  // namespace
}  // namespace jcs::runtime

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const jcs::runtime::Flags flags = jcs::runtime::ParseFlags(argc, argv);
  printf("socketpair ping-pong, %zu-byte messages, %.1f s per mode\n",
         flags.size, flags.seconds);
  jcs::runtime::BenchLoop(flags);
  jcs::runtime::BenchBlockingOneThread(flags);
  jcs::runtime::BenchBlockingTwoThreads(flags);
  return 0;
}
