#include "loop/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

using ::testing::HasSubstr;

// An fd closed at scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) : fd_(other.release()) {}
  Fd& operator=(Fd&& other) {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

struct FdPair {
  Fd a, b;  // pipe: a = read end, b = write end
};

FdPair MakePipe() {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0) << strerror(errno);
  return {Fd(fds[0]), Fd(fds[1])};
}

FdPair MakeSocketPair() {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0)
      << strerror(errno);
  return {Fd(fds[0]), Fd(fds[1])};
}

void WriteString(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()))
      << strerror(errno);
}

// A listening unix socket with a fresh abstract address (no path-length or
// cleanup concerns); connect with Connect().
class Listener {
 public:
  Listener() {
    name_ = absl::StrCat("jcs-event-loop-test-", getpid(), "-", counter_++);
    fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_GE(fd_.get(), 0);
    socklen_t len;
    sockaddr_un addr = Address(&len);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len), 0)
        << strerror(errno);
    EXPECT_EQ(listen(fd_.get(), 64), 0);
  }
  int fd() const { return fd_.get(); }
  Fd Connect() const {
    Fd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len;
    sockaddr_un addr = Address(&len);
    EXPECT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&addr), len), 0)
        << strerror(errno);
    return client;
  }

 private:
  sockaddr_un Address(socklen_t* len) const {
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path + 1, name_.data(), name_.size());  // abstract
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                  name_.size());
    return addr;
  }
  static inline int counter_ = 0;
  std::string name_;
  Fd fd_;
};

// Ring configurations every loop test runs on: the best this kernel has, and
// the fallbacks older kernels get.
struct RingVariant {
  const char* name;
  unsigned allowed_flags;
};
constexpr RingVariant kVariants[] = {
    {"best", ~0u},
    {"coop_taskrun", ~(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                       IORING_SETUP_R_DISABLED)},
    // No optional flag at all, and the default (small) completion queue, so
    // the many-operations test overflows it.
    {"plain", 0},
};

void PrintTo(const RingVariant& variant, std::ostream* os) {
  *os << variant.name;
}

class EventLoopTest : public ::testing::TestWithParam<RingVariant> {
 protected:
  void SetUp() override { loop_ = NewLoop(EventLoop::Options()); }

  std::unique_ptr<EventLoop> NewLoop(EventLoop::Options options) {
    options.allowed_ring_flags = GetParam().allowed_flags;
    absl::StatusOr<std::unique_ptr<EventLoop>> loop =
        EventLoop::Create(options);
    EXPECT_TRUE(loop.ok()) << loop.status();
    return loop.ok() ? std::move(*loop) : nullptr;
  }

  // Runs the loop until `done()` or `limit` passes; returns done().
  bool RunUntil(const std::function<bool()>& done,
                absl::Duration limit = absl::Seconds(10)) {
    return RunUntil(*loop_, done, limit);
  }
  static bool RunUntil(EventLoop& loop, const std::function<bool()>& done,
                       absl::Duration limit = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + limit;
    while (!done()) {
      if (absl::Now() >= deadline) return false;
      absl::StatusOr<int> ran = loop.RunOnce(absl::Milliseconds(20));
      EXPECT_TRUE(ran.ok()) << ran.status();
      if (!ran.ok()) return false;
    }
    return true;
  }
  // Runs the loop for about `d`, whatever happens.
  void RunFor(absl::Duration d) {
    const absl::Time deadline = absl::Now() + d;
    while (absl::Now() < deadline) {
      ASSERT_TRUE(loop_->RunOnce(absl::Milliseconds(5)).ok());
    }
  }

  std::unique_ptr<EventLoop> loop_;
};

TEST_P(EventLoopTest, CreateUsesAllowedFlags) {
  ASSERT_NE(loop_, nullptr);
  EXPECT_EQ(loop_->ring_flags() & ~GetParam().allowed_flags, 0u);
  EXPECT_EQ(loop_->in_flight(), 0u);
  EXPECT_TRUE(loop_->IsLoopThread());
}

TEST_P(EventLoopTest, CreateRejectsInvalidOptions) {
  EventLoop::Options options;
  options.max_in_flight = 0;
  EXPECT_EQ(EventLoop::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = EventLoop::Options();
  options.sq_entries = 0;
  EXPECT_EQ(EventLoop::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = EventLoop::Options();
  options.max_posted = 0;
  EXPECT_EQ(EventLoop::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(EventLoopTest, ReadWriteRoundTrip) {
  FdPair s = MakeSocketPair();
  const std::string message = "hello through io_uring";
  std::array<char, 64> buffer{};
  int write_res = 1, read_res = 1, writes = 0, reads = 0;
  ASSERT_TRUE(loop_
                  ->Write(s.a.get(), absl::MakeConstSpan(message),
                          [&](int res) {
                            write_res = res;
                            ++writes;
                          })
                  .ok());
  absl::StatusOr<OpId> read =
      loop_->Read(s.b.get(), absl::MakeSpan(buffer), [&](int res) {
        read_res = res;
        ++reads;
      });
  ASSERT_TRUE(read.ok());
  EXPECT_NE(*read, 0u);
  EXPECT_EQ(loop_->in_flight(), 2u);
  ASSERT_TRUE(RunUntil([&] { return writes == 1 && reads == 1; }));
  EXPECT_EQ(write_res, static_cast<int>(message.size()));
  ASSERT_EQ(read_res, static_cast<int>(message.size()));
  EXPECT_EQ(std::string(buffer.data(), read_res), message);
  EXPECT_EQ(loop_->in_flight(), 0u);
  RunFor(absl::Milliseconds(20));
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(reads, 1);
}

TEST_P(EventLoopTest, SubmitQueuedSendsAWriteBeforeTheLoopWaits) {
  FdPair s = MakeSocketPair();
  const std::string message = "the reply";
  int writes = 0;
  ASSERT_TRUE(loop_
                  ->Write(s.a.get(), absl::MakeConstSpan(message),
                          [&](int) { ++writes; })
                  .ok());
  // Only queued: nothing reached the peer yet.
  std::array<char, 64> buffer{};
  EXPECT_EQ(recv(s.b.get(), buffer.data(), buffer.size(), MSG_DONTWAIT), -1);
  ASSERT_TRUE(loop_->SubmitQueued().ok());
  // Submitted: the peer reads it without the loop having run.
  pollfd readable = {s.b.get(), POLLIN, 0};
  ASSERT_EQ(poll(&readable, 1, 2000), 1);
  ASSERT_EQ(recv(s.b.get(), buffer.data(), buffer.size(), MSG_DONTWAIT),
            static_cast<ssize_t>(message.size()));
  EXPECT_EQ(std::string(buffer.data(), message.size()), message);
  // The callback is still the loop's to run, once.
  EXPECT_EQ(writes, 0);
  ASSERT_TRUE(RunUntil([&] { return writes == 1; }));
  // Nothing queued: a no-op.
  EXPECT_TRUE(loop_->SubmitQueued().ok());
  RunFor(absl::Milliseconds(10));
  EXPECT_EQ(writes, 1);
}

// Sends `data` on `sock` with `fd` attached as SCM_RIGHTS.
bool SendWithFd(int sock, const std::string& data, int fd) {
  iovec iov = {const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  return sendmsg(sock, &msg, 0) == static_cast<ssize_t>(data.size());
}

TEST_P(EventLoopTest, RecvMsgReceivesBytesAndDescriptors) {
  FdPair s = MakeSocketPair();
  FdPair p = MakePipe();
  ASSERT_TRUE(SendWithFd(s.a.get(), "fd!", p.b.get()));
  std::array<char, 16> buffer{};
  iovec iov = {buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  int res = 1;
  ASSERT_TRUE(loop_->RecvMsg(s.b.get(), &msg, [&](int r) { res = r; }).ok());
  ASSERT_TRUE(RunUntil([&] { return res != 1; }));
  ASSERT_EQ(res, 3);
  EXPECT_EQ(std::string(buffer.data(), 3), "fd!");
  EXPECT_EQ(msg.msg_flags & MSG_CTRUNC, 0);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(cmsg, nullptr);
  ASSERT_EQ(cmsg->cmsg_type, SCM_RIGHTS);
  int received = -1;
  memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
  ASSERT_GE(received, 0);
  // Close-on-exec (MSG_CMSG_CLOEXEC), and the pipe's write end.
  EXPECT_EQ(fcntl(received, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(write(received, "x", 1), 1);
  char got = 0;
  EXPECT_EQ(read(p.a.get(), &got, 1), 1);
  EXPECT_EQ(got, 'x');
  close(received);
}

TEST_P(EventLoopTest, RecvMsgWithoutRoomForDescriptorsDropsThem) {
  FdPair s = MakeSocketPair();
  FdPair p = MakePipe();
  ASSERT_TRUE(SendWithFd(s.a.get(), "fd!", p.b.get()));
  p.b.reset();  // the only write end left is the one in flight
  std::array<char, 16> buffer{};
  iovec iov = {buffer.data(), buffer.size()};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  int res = 1;
  ASSERT_TRUE(loop_->RecvMsg(s.b.get(), &msg, [&](int r) { res = r; }).ok());
  ASSERT_TRUE(RunUntil([&] { return res != 1; }));
  EXPECT_EQ(res, 3);
  EXPECT_NE(msg.msg_flags & MSG_CTRUNC, 0);
  // The kernel closed the descriptor that found no room: the pipe has no
  // writer left.
  char got = 0;
  EXPECT_EQ(read(p.a.get(), &got, 1), 0);
}

TEST_P(EventLoopTest, ReadReportsEndOfFileAndErrors) {
  FdPair p = MakePipe();
  p.b.reset();
  std::array<char, 8> buffer{};
  int eof_res = 1, bad_res = 1;
  ASSERT_TRUE(loop_
                  ->Read(p.a.get(), absl::MakeSpan(buffer),
                         [&](int res) { eof_res = res; })
                  .ok());
  ASSERT_TRUE(
      loop_->Read(-1, absl::MakeSpan(buffer), [&](int res) { bad_res = res; })
          .ok());
  ASSERT_TRUE(RunUntil([&] { return eof_res != 1 && bad_res != 1; }));
  EXPECT_EQ(eof_res, 0);
  EXPECT_EQ(bad_res, -EBADF);
}

TEST_P(EventLoopTest, WriteAllContinuesAfterShortWrites) {
  FdPair p = MakePipe();
  // A one-page pipe: every write of the 1 MiB payload is short.
  ASSERT_GT(fcntl(p.b.get(), F_SETPIPE_SZ, 4096), 0);
  std::string payload(1 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = 'a' + i % 23;
  int write_res = 1, writes = 0;
  ASSERT_TRUE(loop_
                  ->WriteAll(p.b.get(), absl::MakeConstSpan(payload),
                             [&](int res) {
                               write_res = res;
                               ++writes;
                             })
                  .ok());
  std::string received;
  std::array<char, 8192> chunk;
  bool reader_done = false;
  std::function<void()> read_more = [&] {
    ASSERT_TRUE(loop_
                    ->Read(p.a.get(), absl::MakeSpan(chunk),
                           [&](int res) {
                             ASSERT_GE(res, 0);
                             received.append(chunk.data(), res);
                             if (received.size() < payload.size()) {
                               read_more();
                             } else {
                               reader_done = true;
                             }
                           })
                    .ok());
  };
  read_more();
  ASSERT_TRUE(RunUntil([&] { return writes == 1 && reader_done; }));
  EXPECT_EQ(write_res, static_cast<int>(payload.size()));
  EXPECT_TRUE(received == payload);

  // Empty data completes with 0 through the loop, not inline.
  int empty_res = 1;
  ASSERT_TRUE(loop_
                  ->WriteAll(p.b.get(), absl::Span<const char>(),
                             [&](int res) { empty_res = res; })
                  .ok());
  EXPECT_EQ(empty_res, 1);
  ASSERT_TRUE(RunUntil([&] { return empty_res != 1; }));
  EXPECT_EQ(empty_res, 0);
}

TEST_P(EventLoopTest, WriteAllReportsErrors) {
  signal(SIGPIPE, SIG_IGN);
  FdPair p = MakePipe();
  p.a.reset();
  int res_seen = 1;
  const std::string data = "nobody reads this";
  ASSERT_TRUE(loop_
                  ->WriteAll(p.b.get(), absl::MakeConstSpan(data),
                             [&](int res) { res_seen = res; })
                  .ok());
  ASSERT_TRUE(RunUntil([&] { return res_seen != 1; }));
  EXPECT_EQ(res_seen, -EPIPE);
}

TEST_P(EventLoopTest, AcceptOnUnixSocket) {
  Listener listener;
  int accepted = -1, calls = 0;
  ASSERT_TRUE(loop_
                  ->Accept(listener.fd(),
                           [&](int res) {
                             accepted = res;
                             ++calls;
                           })
                  .ok());
  RunFor(absl::Milliseconds(20));
  EXPECT_EQ(calls, 0);  // nobody connected yet
  Fd client = listener.Connect();
  ASSERT_TRUE(RunUntil([&] { return calls == 1; }));
  ASSERT_GE(accepted, 0) << strerror(-accepted);
  Fd server(accepted);
  EXPECT_EQ(fcntl(server.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  WriteString(client.get(), "ping");
  char buffer[4];
  ASSERT_EQ(read(server.get(), buffer, sizeof(buffer)), 4);
  EXPECT_EQ(std::string(buffer, 4), "ping");
}

TEST_P(EventLoopTest, AcceptMultishotAcceptsUntilCancelled) {
  Listener listener;
  std::vector<Fd> accepted;
  int final_res = 1, finals = 0;
  absl::StatusOr<OpId> id =
      loop_->AcceptMultishot(listener.fd(), [&](int res, bool more) {
        if (more) {
          ASSERT_GE(res, 0) << strerror(-res);
          accepted.emplace_back(res);
        } else {
          final_res = res;
          ++finals;
        }
      });
  ASSERT_TRUE(id.ok()) << id.status();
  std::vector<Fd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(listener.Connect());
    ASSERT_TRUE(RunUntil([&] { return accepted.size() == size_t(i) + 1; }));
  }
  ASSERT_TRUE(loop_->Cancel(*id).ok());
  ASSERT_TRUE(RunUntil([&] { return finals == 1; }));
  EXPECT_EQ(final_res, -ECANCELED);
  EXPECT_EQ(loop_->in_flight(), 0u);
  // No longer accepting: a new client waits in the backlog.
  clients.push_back(listener.Connect());
  RunFor(absl::Milliseconds(30));
  EXPECT_EQ(accepted.size(), 3u);
  EXPECT_EQ(finals, 1);
}

TEST_P(EventLoopTest, PollReportsReadiness) {
  FdPair p = MakePipe();
  int revents = -1, calls = 0;
  ASSERT_TRUE(loop_
                  ->Poll(p.a.get(), POLLIN,
                         [&](int res) {
                           revents = res;
                           ++calls;
                         })
                  .ok());
  RunFor(absl::Milliseconds(30));
  EXPECT_EQ(calls, 0);
  WriteString(p.b.get(), "x");
  ASSERT_TRUE(RunUntil([&] { return calls == 1; }));
  EXPECT_TRUE(revents & POLLIN) << revents;
  // A writable pipe is ready at once.
  int out_events = -1;
  ASSERT_TRUE(
      loop_->Poll(p.b.get(), POLLOUT, [&](int res) { out_events = res; }).ok());
  ASSERT_TRUE(RunUntil([&] { return out_events != -1; }));
  EXPECT_TRUE(out_events & POLLOUT);
}

TEST_P(EventLoopTest, PollMultishotFiresRepeatedlyUntilCancelled) {
  Fd efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ASSERT_GE(efd.get(), 0);
  int fired = 0, finals = 0, final_res = 1;
  absl::StatusOr<OpId> id =
      loop_->PollMultishot(efd.get(), POLLIN, [&](int res, bool more) {
        if (!more) {
          final_res = res;
          ++finals;
          return;
        }
        EXPECT_TRUE(res & POLLIN);
        uint64_t value;
        EXPECT_EQ(read(efd.get(), &value, sizeof(value)), 8);
        ++fired;
      });
  ASSERT_TRUE(id.ok());
  const uint64_t one = 1;
  for (int i = 1; i <= 4; ++i) {
    ASSERT_EQ(write(efd.get(), &one, sizeof(one)), 8);
    ASSERT_TRUE(RunUntil([&] { return fired == i; })) << "wake-up " << i;
  }
  EXPECT_EQ(loop_->in_flight(), 1u);
  ASSERT_TRUE(loop_->Cancel(*id).ok());
  ASSERT_TRUE(RunUntil([&] { return finals == 1; }));
  EXPECT_EQ(final_res, -ECANCELED);
  ASSERT_EQ(write(efd.get(), &one, sizeof(one)), 8);
  RunFor(absl::Milliseconds(30));
  EXPECT_EQ(fired, 4);
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(loop_->Cancel(*id).code(), absl::StatusCode::kNotFound);
}

TEST_P(EventLoopTest, TimeoutFiresAfterItsDeadline) {
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration elapsed{};
  int res_seen = 1;
  ASSERT_TRUE(loop_
                  ->Timeout(absl::Milliseconds(20),
                            [&](int res) {
                              res_seen = res;
                              elapsed =
                                  std::chrono::steady_clock::now() - start;
                            })
                  .ok());
  ASSERT_TRUE(RunUntil([&] { return res_seen != 1; }));
  EXPECT_EQ(res_seen, 0);
  EXPECT_GE(elapsed, std::chrono::milliseconds(20));
  EXPECT_LT(elapsed, std::chrono::milliseconds(200));
}

TEST_P(EventLoopTest, TimeoutsFireInDeadlineOrder) {
  std::vector<int> order;
  ASSERT_TRUE(
      loop_->Timeout(absl::Milliseconds(60), [&](int) { order.push_back(60); })
          .ok());
  ASSERT_TRUE(
      loop_->Timeout(absl::Milliseconds(10), [&](int) { order.push_back(10); })
          .ok());
  ASSERT_TRUE(
      loop_->Timeout(absl::Milliseconds(-5), [&](int) { order.push_back(0); })
          .ok());
  ASSERT_TRUE(RunUntil([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{0, 10, 60}));
  EXPECT_EQ(
      loop_->Timeout(absl::InfiniteDuration(), [](int) {}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_P(EventLoopTest, TimeoutDeadlineIsTakenWhenRequested) {
  // The deadline counts from the Timeout() call, not from the (later)
  // submission when the loop next runs.
  int res_seen = 1;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      loop_->Timeout(absl::Milliseconds(30), [&](int res) { res_seen = res; })
          .ok());
  absl::SleepFor(absl::Milliseconds(40));
  ASSERT_TRUE(RunUntil([&] { return res_seen != 1; }));
  EXPECT_EQ(res_seen, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(70 + 100));
}

TEST_P(EventLoopTest, CancelPendingReadGivesCanceledOnceAndLeavesBuffer) {
  FdPair p = MakePipe();
  std::array<char, 16> buffer;
  buffer.fill('x');
  int calls = 0, res_seen = 1;
  absl::StatusOr<OpId> id =
      loop_->Read(p.a.get(), absl::MakeSpan(buffer), [&](int res) {
        res_seen = res;
        ++calls;
      });
  ASSERT_TRUE(id.ok());
  RunFor(absl::Milliseconds(10));  // submitted and waiting for data
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(loop_->Cancel(*id).ok());
  ASSERT_TRUE(loop_->Cancel(*id).ok());  // twice is harmless
  ASSERT_TRUE(RunUntil([&] { return calls > 0; }));
  EXPECT_EQ(res_seen, -ECANCELED);
  EXPECT_EQ(loop_->in_flight(), 0u);
  // The kernel no longer owns the buffer: new data stays in the pipe.
  WriteString(p.b.get(), "late data");
  RunFor(absl::Milliseconds(30));
  EXPECT_EQ(calls, 1);
  for (char c : buffer) ASSERT_EQ(c, 'x');
  char out[16];
  ASSERT_EQ(read(p.a.get(), out, sizeof(out)), 9);
  EXPECT_EQ(std::string(out, 9), "late data");
  EXPECT_EQ(loop_->Cancel(*id).code(), absl::StatusCode::kNotFound);
}

TEST_P(EventLoopTest, CancelBeforeSubmission) {
  FdPair p = MakePipe();
  std::array<char, 16> buffer;
  int res_seen = 1, calls = 0;
  absl::StatusOr<OpId> id =
      loop_->Read(p.a.get(), absl::MakeSpan(buffer), [&](int res) {
        res_seen = res;
        ++calls;
      });
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(loop_->Cancel(*id).ok());
  ASSERT_TRUE(RunUntil([&] { return calls > 0; }));
  EXPECT_EQ(res_seen, -ECANCELED);
  RunFor(absl::Milliseconds(10));
  EXPECT_EQ(calls, 1);
}

TEST_P(EventLoopTest, CancelTimeoutAndUnknownIds) {
  int res_seen = 1, calls = 0;
  absl::StatusOr<OpId> id = loop_->Timeout(absl::Seconds(30), [&](int res) {
    res_seen = res;
    ++calls;
  });
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(loop_->Cancel(*id).ok());
  ASSERT_TRUE(RunUntil([&] { return calls > 0; }, absl::Seconds(5)));
  EXPECT_EQ(res_seen, -ECANCELED);
  EXPECT_EQ(loop_->Cancel(*id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loop_->Cancel(0).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loop_->Cancel(~OpId{0}).code(), absl::StatusCode::kNotFound);
  // A stale id does not cancel the operation that reuses its slot.
  int second_res = 1;
  absl::StatusOr<OpId> second = loop_->Timeout(
      absl::Milliseconds(10), [&](int res) { second_res = res; });
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*second, *id);
  EXPECT_EQ(loop_->Cancel(*id).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(RunUntil([&] { return second_res != 1; }));
  EXPECT_EQ(second_res, 0);
}

TEST_P(EventLoopTest, CancelledWriteAllStopsBetweenWrites) {
  FdPair p = MakePipe();
  ASSERT_GT(fcntl(p.b.get(), F_SETPIPE_SZ, 4096), 0);
  const std::string payload(64 * 1024, 'z');
  int res_seen = 1, calls = 0;
  absl::StatusOr<OpId> id =
      loop_->WriteAll(p.b.get(), absl::MakeConstSpan(payload), [&](int res) {
        res_seen = res;
        ++calls;
      });
  ASSERT_TRUE(id.ok());
  RunFor(absl::Milliseconds(10));  // the first page is written, then it waits
  ASSERT_TRUE(loop_->Cancel(*id).ok());
  ASSERT_TRUE(RunUntil([&] { return calls > 0; }));
  EXPECT_EQ(res_seen, -ECANCELED);
  // Drain the pipe: nothing beyond what was written before the cancel.
  char sink[65536];
  const ssize_t n = read(p.a.get(), sink, sizeof(sink));
  EXPECT_GT(n, 0);
  EXPECT_LT(n, static_cast<ssize_t>(payload.size()));
  RunFor(absl::Milliseconds(20));
  EXPECT_EQ(calls, 1);
}

TEST_P(EventLoopTest, WaitPidFiresWhenTheChildExitsAndNotBefore) {
  FdPair gate = MakePipe();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    // Blocks until the parent releases it (or dies: EOF).
    const ssize_t n = read(gate.a.get(), &c, 1);
    _exit(n == 1 ? 7 : 9);
  }
  // glibc 2.36's <sys/pidfd.h> lacks extern "C": call the syscall.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_GE(pidfd.get(), 0) << strerror(errno);
  int res_seen = 0, calls = 0;
  ASSERT_TRUE(loop_
                  ->WaitPid(pidfd.get(),
                            [&](int res) {
                              res_seen = res;
                              ++calls;
                            })
                  .ok());
  RunFor(absl::Milliseconds(100));
  EXPECT_EQ(calls, 0) << "fired while the child was still blocked";
  WriteString(gate.b.get(), "go");
  ASSERT_TRUE(RunUntil([&] { return calls > 0; }));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(res_seen & POLLIN) << res_seen;
  siginfo_t info = {};
  ASSERT_EQ(waitid(P_PIDFD, pidfd.get(), &info, WEXITED | WNOHANG), 0)
      << strerror(errno);
  EXPECT_EQ(info.si_pid, pid);  // it had exited: WNOHANG reaped it
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_status, 7);
}

TEST_P(EventLoopTest, PostFromFourThreadsRunsEachTaskOnceOnTheLoopThread) {
  constexpr int kThreads = 4;
  constexpr int kPosts = 1000;
  std::vector<std::vector<int>> seen(kThreads, std::vector<int>(kPosts, 0));
  int total = 0, wrong_thread = 0;
  const std::thread::id loop_thread = std::this_thread::get_id();
  // Bind the loop to this thread before the posters start.
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        absl::Status s = loop_->Post([&, t, i] {
          if (std::this_thread::get_id() != loop_thread) ++wrong_thread;
          ++seen[t][i];
          if (++total == kThreads * kPosts) loop_->Stop();
        });
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  bool timed_out = false;
  ASSERT_TRUE(loop_
                  ->Timeout(absl::Seconds(10),
                            [&](int res) {
                              if (res == 0) {
                                timed_out = true;
                                loop_->Stop();
                              }
                            })
                  .ok());
  ASSERT_TRUE(loop_->Run().ok());
  for (std::thread& t : posters) t.join();
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(total, kThreads * kPosts);
  EXPECT_EQ(wrong_thread, 0);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPosts; ++i) {
      ASSERT_EQ(seen[t][i], 1) << "thread " << t << " post " << i;
    }
  }
}

TEST_P(EventLoopTest, PostFromTheLoopThreadRunsLater) {
  std::vector<int> order;
  ASSERT_TRUE(loop_
                  ->Post([&] {
                    order.push_back(1);
                    ASSERT_TRUE(loop_->Post([&] { order.push_back(3); }).ok());
                    order.push_back(2);
                  })
                  .ok());
  EXPECT_TRUE(order.empty());
  ASSERT_TRUE(RunUntil([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(loop_->Post(nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(EventLoopTest, PostQueueIsCapped) {
  EventLoop::Options options;
  options.max_posted = 3;
  std::unique_ptr<EventLoop> loop = NewLoop(options);
  int ran = 0;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(loop->Post([&] { ++ran; }).ok());
  const absl::Status full = loop->Post([&] { ++ran; });
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(RunUntil(*loop, [&] { return ran == 3; }));
  EXPECT_TRUE(loop->Post([&] { ++ran; }).ok());
  ASSERT_TRUE(RunUntil(*loop, [&] { return ran == 4; }));
}

TEST_P(EventLoopTest, StopFromACallback) {
  int fired = 0;
  ASSERT_TRUE(loop_
                  ->Timeout(absl::Milliseconds(1),
                            [&](int) {
                              ++fired;
                              loop_->Stop();
                            })
                  .ok());
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_EQ(fired, 1);
  // The loop can run again after a stop.
  ASSERT_TRUE(loop_
                  ->Timeout(absl::Milliseconds(1),
                            [&](int) {
                              ++fired;
                              loop_->Stop();
                            })
                  .ok());
  ASSERT_TRUE(loop_->Run().ok());
  EXPECT_EQ(fired, 2);
}

TEST_P(EventLoopTest, StopFromAnotherThread) {
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());  // bind
  std::atomic<bool> stop_called{false};
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(30));
    stop_called = true;
    loop_->Stop();
  });
  const absl::Time start = absl::Now();
  const absl::Status run = loop_->Run();
  EXPECT_TRUE(stop_called) << "Run returned before Stop";
  stopper.join();
  EXPECT_TRUE(run.ok()) << run;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(EventLoopTest, StopThroughPostFromAnotherThread) {
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());  // bind
  bool ran_on_loop = false;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(20));
    ASSERT_TRUE(loop_
                    ->Post([&] {
                      ran_on_loop = std::this_thread::get_id() == loop_thread;
                      loop_->Stop();
                    })
                    .ok());
  });
  EXPECT_TRUE(loop_->Run().ok());
  stopper.join();
  EXPECT_TRUE(ran_on_loop);
}

TEST_P(EventLoopTest, LoopBelongsToTheFirstThreadThatUsesIt) {
  // Created here, run on another thread: that thread becomes the loop thread.
  FdPair s = MakeSocketPair();
  std::array<char, 8> buffer{};
  int read_res = 1;
  std::thread runner([&] {
    ASSERT_TRUE(loop_
                    ->Read(s.a.get(), absl::MakeSpan(buffer),
                           [&](int res) {
                             read_res = res;
                             loop_->Stop();
                           })
                    .ok());
    ASSERT_TRUE(loop_->Run().ok());
  });
  // Wait until the runner owns the loop, then misuse it from here.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (loop_->IsLoopThread() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_FALSE(loop_->IsLoopThread());
  const absl::StatusOr<OpId> wrong =
      loop_->Timeout(absl::Milliseconds(1), [](int) {});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(wrong.status().message(), HasSubstr("thread"));
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  WriteString(s.b.get(), "go");
  runner.join();
  EXPECT_EQ(read_res, 2);
  EXPECT_EQ(loop_->in_flight(), 0u);
}

TEST_P(EventLoopTest, RunOnceIsNotReentrant) {
  absl::Status nested = absl::OkStatus();
  ASSERT_TRUE(loop_
                  ->Post([&] {
                    nested = loop_->RunOnce(absl::ZeroDuration()).status();
                  })
                  .ok());
  ASSERT_TRUE(RunUntil([&] { return !nested.ok(); }));
  EXPECT_EQ(nested.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(EventLoopTest, InFlightCapIsEnforced) {
  EventLoop::Options options;
  options.max_in_flight = 3;
  std::unique_ptr<EventLoop> loop = NewLoop(options);
  FdPair p = MakePipe();
  std::array<char, 4> b1, b2;
  int done = 0;
  ASSERT_TRUE(
      loop->Read(p.a.get(), absl::MakeSpan(b1), [&](int) { ++done; }).ok());
  ASSERT_TRUE(
      loop->Read(p.a.get(), absl::MakeSpan(b2), [&](int) { ++done; }).ok());
  absl::StatusOr<OpId> timer =
      loop->Timeout(absl::Seconds(30), [&](int) { ++done; });
  ASSERT_TRUE(timer.ok());
  EXPECT_EQ(loop->in_flight(), 3u);
  const absl::StatusOr<OpId> over =
      loop->Poll(p.a.get(), POLLIN, [&](int) { ++done; });
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.status().message(), HasSubstr("max_in_flight"));
  EXPECT_EQ(loop->in_flight(), 3u);
  // Completing one frees its place.
  ASSERT_TRUE(loop->Cancel(*timer).ok());
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 1; }));
  EXPECT_EQ(loop->in_flight(), 2u);
  EXPECT_TRUE(loop->Timeout(absl::Milliseconds(1), [&](int) { ++done; }).ok());
  ASSERT_TRUE(RunUntil(*loop, [&] { return done == 2; }));
}

TEST_P(EventLoopTest, ManyConcurrentEchoesAllComplete) {
  constexpr int kPairs = 500;
  rlimit nofile;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &nofile), 0);
  if (nofile.rlim_cur < 2 * kPairs + 64) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 4 * kPairs + 64);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &nofile), 0);
  }
  ASSERT_GE(nofile.rlim_cur, 2 * kPairs + 64u) << "RLIMIT_NOFILE too low";
  struct Pair {
    FdPair fds;
    std::string request;
    std::array<char, 64> server_buffer;
    std::array<char, 64> client_buffer;
    int echoed = -1;
    int replies = 0;
  };
  std::vector<Pair> pairs(kPairs);
  int completed = 0, failures = 0;
  for (int i = 0; i < kPairs; ++i) {
    Pair& pair = pairs[i];
    pair.fds = MakeSocketPair();
    pair.request = absl::StrCat("request number ", i, " of ", kPairs);
    // Server side: read the request, write it back.
    ASSERT_TRUE(
        loop_
            ->Read(pair.fds.b.get(), absl::MakeSpan(pair.server_buffer),
                   [&, i](int res) {
                     Pair& p = pairs[i];
                     if (res <= 0) {
                       ++failures;
                       return;
                     }
                     absl::StatusOr<OpId> w = loop_->WriteAll(
                         p.fds.b.get(),
                         absl::MakeConstSpan(p.server_buffer.data(), res),
                         [&](int res) { failures += res < 0; });
                     failures += !w.ok();
                   })
            .ok());
    // Client side: send, then read the echo.
    ASSERT_TRUE(loop_
                    ->WriteAll(pair.fds.a.get(),
                               absl::MakeConstSpan(pair.request),
                               [&](int res) { failures += res < 0; })
                    .ok());
    ASSERT_TRUE(loop_
                    ->Read(pair.fds.a.get(), absl::MakeSpan(pair.client_buffer),
                           [&, i](int res) {
                             Pair& p = pairs[i];
                             p.echoed = res;
                             ++p.replies;
                             ++completed;
                           })
                    .ok());
  }
  EXPECT_EQ(loop_->in_flight(), 3u * kPairs);
  ASSERT_TRUE(RunUntil([&] { return completed == kPairs; }, absl::Seconds(30)))
      << completed << " of " << kPairs;
  EXPECT_EQ(failures, 0);
  for (const Pair& pair : pairs) {
    ASSERT_EQ(pair.replies, 1);
    ASSERT_EQ(pair.echoed, static_cast<int>(pair.request.size()));
    ASSERT_EQ(std::string(pair.client_buffer.data(), pair.echoed),
              pair.request);
  }
  ASSERT_TRUE(RunUntil([&] { return loop_->in_flight() == 0; }));
}

TEST_P(EventLoopTest, DestroyingTheLoopCancelsWithoutCallbacks) {
  FdPair p = MakePipe();
  Listener listener;
  auto buffer = std::make_unique<std::array<char, 16>>();
  buffer->fill('x');
  int calls = 0;
  ASSERT_TRUE(
      loop_->Read(p.a.get(), absl::MakeSpan(*buffer), [&](int) { ++calls; })
          .ok());
  ASSERT_TRUE(loop_->Timeout(absl::Seconds(30), [&](int) { ++calls; }).ok());
  ASSERT_TRUE(
      loop_->AcceptMultishot(listener.fd(), [&](int, bool) { ++calls; }).ok());
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());
  ASSERT_TRUE(loop_->Post([&] { ++calls; }).ok());  // never runs
  loop_.reset();
  EXPECT_EQ(calls, 0);
  // The buffer may now be reused: the kernel no longer writes to it.
  WriteString(p.b.get(), "after");
  absl::SleepFor(absl::Milliseconds(20));
  for (char c : *buffer) ASSERT_EQ(c, 'x');
  char out[8];
  ASSERT_EQ(read(p.a.get(), out, sizeof(out)), 5);
}

// This process's open fds.
std::set<int> OpenFds() {
  std::set<int> fds;
  for (int fd = 0; fd < 65536; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) fds.insert(fd);
  }
  return fds;
}

TEST_P(EventLoopTest, DestroyingTheLoopClosesConnectionsItAccepted) {
  Listener listener;
  int calls = 0;
  ASSERT_TRUE(loop_
                  ->AcceptMultishot(listener.fd(),
                                    [&](int res, bool) {
                                      ++calls;
                                      if (res >= 0) close(res);
                                    })
                  .ok());
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());
  std::set<int> expected = OpenFds();
  // Connections whose accept completion the loop has not processed yet.
  Fd c1 = listener.Connect();
  Fd c2 = listener.Connect();
  expected.insert(c1.get());
  expected.insert(c2.get());
  loop_.reset();
  EXPECT_EQ(calls, 0);
  // Nothing but the clients is new (the loop's own fds are gone).
  for (int fd : OpenFds())
    EXPECT_TRUE(expected.count(fd)) << "leaked fd " << fd;
}

// A Cancel issued by an earlier completion of the same batch, for a WriteAll
// whose short write is already completed but not yet processed: the kernel
// has nothing to cancel, and the WriteAll must not continue.
TEST_P(EventLoopTest, CancelWriteAllWhoseShortWriteIsPending) {
  FdPair other = MakePipe();
  FdPair p = MakePipe();
  ASSERT_GT(fcntl(p.b.get(), F_SETPIPE_SZ, 4096), 0);
  const std::string payload(3 * 4096, 'w');
  OpId write_all = 0;
  int res_seen = 1, calls = 0;
  bool cancelled = false;
  // Completes at submission, before the WriteAll's first (short) write.
  ASSERT_TRUE(loop_
                  ->Write(other.b.get(), absl::MakeConstSpan("x", 1),
                          [&](int res) {
                            EXPECT_EQ(res, 1);
                            cancelled = loop_->Cancel(write_all).ok();
                          })
                  .ok());
  absl::StatusOr<OpId> id =
      loop_->WriteAll(p.b.get(), absl::MakeConstSpan(payload), [&](int res) {
        res_seen = res;
        ++calls;
      });
  ASSERT_TRUE(id.ok());
  write_all = *id;
  ASSERT_TRUE(RunUntil([&] { return calls > 0; }, absl::Seconds(3)))
      << "the WriteAll went on after Cancel";
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(res_seen, -ECANCELED);
}

TEST_P(EventLoopTest, EmptyCallbacksAreRejected) {
  FdPair p = MakePipe();
  std::array<char, 4> buffer;
  EXPECT_EQ(
      loop_->Read(p.a.get(), absl::MakeSpan(buffer), nullptr).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loop_->PollMultishot(p.a.get(), POLLIN, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loop_->in_flight(), 0u);
}

TEST_P(EventLoopTest, StatsMeasureEachRoundsCpuAndWallTime) {
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());  // bind
  const EventLoop::Stats before = loop_->stats();
  // A task that burns 20 ms of CPU: one round in the [16, 32) ms CPU bucket.
  ASSERT_TRUE(loop_
                  ->Post([] {
                    timespec start, now;
                    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
                    do {
                      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
                    } while ((now.tv_sec - start.tv_sec) * 1000000000L +
                                 (now.tv_nsec - start.tv_nsec) <
                             20000000L);
                  })
                  .ok());
  ASSERT_GT(loop_->RunOnce(absl::Seconds(5)).value(), 0);
  const EventLoop::Stats burnt = loop_->stats();
  EXPECT_EQ(burnt.rounds, before.rounds + 1);
  EXPECT_GE(burnt.max_cpu_us, 20000u);
  EXPECT_LT(burnt.max_cpu_us, 32768u);
  EXPECT_GE(burnt.max_wall_us, 20000u);
  EXPECT_EQ(burnt.cpu_us_log2[14], before.cpu_us_log2[14] + 1);  // [16, 32) ms

  // A task that blocks 20 ms without computing: the wall clock sees the
  // stall, the CPU clock does not.
  ASSERT_TRUE(loop_->Post([] { usleep(20000); }).ok());
  ASSERT_GT(loop_->RunOnce(absl::Seconds(5)).value(), 0);
  const EventLoop::Stats slept = loop_->stats();
  EXPECT_EQ(slept.rounds, burnt.rounds + 1);
  uint64_t wall_over_16ms = 0, cpu_under_4ms = 0;
  for (int i = 0; i < EventLoop::Stats::kBuckets; ++i) {
    const uint64_t wall = slept.wall_us_log2[i] - burnt.wall_us_log2[i];
    const uint64_t cpu = slept.cpu_us_log2[i] - burnt.cpu_us_log2[i];
    if (i >= 14) wall_over_16ms += wall;
    if (i < 12) cpu_under_4ms += cpu;
  }
  EXPECT_EQ(wall_over_16ms, 1u);
  EXPECT_EQ(cpu_under_4ms, 1u);

  // A round with nothing to do is not counted.
  ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok());
  EXPECT_EQ(loop_->stats().rounds, slept.rounds);
}

INSTANTIATE_TEST_SUITE_P(Rings, EventLoopTest, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<RingVariant>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace jcs::runtime
