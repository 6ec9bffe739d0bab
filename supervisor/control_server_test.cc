#include "supervisor/control_server.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "loop/event_loop.h"
#include "supervisor/framing.h"

namespace jcs::supervisor {
namespace {

// Answers every ping.
class PingHandler : public RequestHandler {
 public:
  void Handle(const proto::Request& request, const PeerCredentials&,
              Respond respond) override {
    proto::Response response;
    response.set_id(request.id());
    response.mutable_ping()->set_version("test");
    respond(std::move(response));
  }
};

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/control_server_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    auto loop = runtime::EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }
  void TearDown() override {
    server_.reset();
    loop_.reset();
    unlink((dir_ + "/c.sock").c_str());
    unlink((dir_ + "/c.sock.lock").c_str());
    rmdir(dir_.c_str());
  }

  void StartServer(absl::Duration frame_timeout) {
    ControlServerOptions options;
    options.socket_path = dir_ + "/c.sock";
    options.frame_timeout = frame_timeout;
    auto server = ControlServer::Start(loop_.get(), options, &handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  int Connect() {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    const std::string path = dir_ + "/c.sock";
    memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  // Runs the loop until `fd` has a whole response frame, the peer closed
  // (nullopt), or `limit` passed (nullopt).
  std::optional<proto::Response> Receive(int fd, absl::Duration limit) {
    const absl::Time deadline = absl::Now() + limit;
    while (absl::Now() < deadline) {
      (void)loop_->RunOnce(absl::Milliseconds(10));
      char chunk[4096];
      const ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (n == 0) {
        closed_ = true;
        return std::nullopt;
      }
      if (n > 0) {
        EXPECT_TRUE(decoder_.Append(std::string(chunk, n)).ok());
      }
      if (std::optional<std::string> frame = decoder_.Next()) {
        proto::Response response;
        EXPECT_TRUE(response.ParseFromString(*frame));
        return response;
      }
    }
    return std::nullopt;
  }

  void RunFor(absl::Duration d) {
    const absl::Time end = absl::Now() + d;
    while (absl::Now() < end) (void)loop_->RunOnce(absl::Milliseconds(10));
  }

  static std::string PingFrame(uint64_t id) {
    proto::Request request;
    request.set_id(id);
    request.mutable_ping();
    return EncodeFrame(request.SerializeAsString());
  }

  std::string dir_;
  std::unique_ptr<runtime::EventLoop> loop_;
  PingHandler handler_;
  std::unique_ptr<ControlServer> server_;
  FrameDecoder decoder_;
  bool closed_ = false;
};

class StalledFrameTest : public ControlServerTest,
                         public ::testing::WithParamInterface<int> {};

// A client that sends part of a frame, then nothing: its one-byte length
// header only (GetParam() 1), or the header and part of the payload.
TEST_P(StalledFrameTest, IsAnsweredAndDisconnected) {
  StartServer(absl::Milliseconds(300));
  const int fd = Connect();
  RunFor(absl::Milliseconds(50));
  ASSERT_EQ(server_->client_count(), 1u);
  std::string frame = PingFrame(7);
  frame.resize(GetParam() == 1 ? 1 : frame.size() / 2);
  ASSERT_GT(PingFrame(7).size(), frame.size() + 1);
  ASSERT_EQ(send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frame.size()));
  const absl::Time sent = absl::Now();
  std::optional<proto::Response> answer = Receive(fd, absl::Seconds(5));
  ASSERT_TRUE(answer.has_value()) << "no answer: the stalled frame was kept";
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(250));
  ASSERT_TRUE(answer->has_error());
  EXPECT_EQ(answer->error().reason(), "frame_timeout");
  EXPECT_NE(answer->error().message().find("300ms"), std::string::npos)
      << answer->error().message();
  EXPECT_FALSE(Receive(fd, absl::Seconds(2)).has_value());
  EXPECT_TRUE(closed_) << "the connection was not closed";
  EXPECT_EQ(server_->client_count(), 0u);
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(HeaderOrPayload, StalledFrameTest,
                         ::testing::Values(1, 2));

TEST_F(ControlServerTest, EachFramesDeadlineRunsFromItsOwnFirstByte) {
  StartServer(absl::Milliseconds(1000));
  const int fd = Connect();
  const std::string eight = PingFrame(8);
  const std::string nine = PingFrame(9);
  // t=0: a byte of ping 8. t=600: the rest of it and a byte of ping 9.
  // t=1200: the rest of ping 9, 1200 ms after ping 8 began but 600 ms after
  // ping 9 did: both are served (400 ms of margin either way for a loaded
  // host).
  ASSERT_EQ(send(fd, eight.data(), 1, MSG_NOSIGNAL), 1);
  RunFor(absl::Milliseconds(600));
  const std::string middle = eight.substr(1) + nine.substr(0, 1);
  ASSERT_EQ(send(fd, middle.data(), middle.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(middle.size()));
  std::optional<proto::Response> one = Receive(fd, absl::Seconds(2));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->id(), 8u);
  EXPECT_TRUE(one->has_ping());
  RunFor(absl::Milliseconds(600));
  ASSERT_EQ(send(fd, nine.data() + 1, nine.size() - 1, MSG_NOSIGNAL),
            static_cast<ssize_t>(nine.size() - 1));
  std::optional<proto::Response> two = Receive(fd, absl::Seconds(2));
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->id(), 9u);
  EXPECT_TRUE(two->has_ping()) << two->DebugString();
  close(fd);
}

TEST_F(ControlServerTest, AnIdleConnectionIsNeverTimedOut) {
  StartServer(absl::Milliseconds(100));
  const int fd = Connect();
  const std::string frame = PingFrame(1);
  ASSERT_EQ(send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frame.size()));
  ASSERT_TRUE(Receive(fd, absl::Seconds(2)).has_value());
  // Idle (no partial frame) for 5x the frame deadline: still open and
  // served.
  EXPECT_FALSE(Receive(fd, absl::Milliseconds(500)).has_value());
  EXPECT_FALSE(closed_);
  EXPECT_EQ(server_->client_count(), 1u);
  const std::string again = PingFrame(2);
  ASSERT_EQ(send(fd, again.data(), again.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(again.size()));
  std::optional<proto::Response> answer = Receive(fd, absl::Seconds(2));
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->id(), 2u);
  close(fd);
}

}  // namespace
}  // namespace jcs::supervisor
