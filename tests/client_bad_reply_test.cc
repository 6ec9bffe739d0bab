// The jcs client commands read the daemon's JSON replies without trusting
// their types: a reply whose members have unexpected types (a daemon of
// another version, a socket that is not a jcs daemon) is printed or refused,
// never an abort. nlohmann's value() threw type_error on such a member and
// the client died with SIGABRT ("terminate called after throwing").
//
// The daemon here is a fake on a Unix socket that answers every control
// request with the reply its test scripts, in the real framing.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/control.pb.h"
#include "supervisor/framing.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

using ::testing::HasSubstr;

// Serves one connection at a time until destroyed; `answer` fills the
// response to each request (the id is copied over).
class FakeDaemon {
 public:
  using Answer = std::function<void(const proto::Request&, proto::Response*)>;

  FakeDaemon(const std::string& path, Answer answer)
      : answer_(std::move(answer)) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = listen_fd_ >= 0 &&
          bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
              0 &&
          listen(listen_fd_, 4) == 0;
    if (ok_) thread_ = std::thread([this] { Serve(); });
  }

  ~FakeDaemon() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(listen_fd_);
  }

  bool ok() const { return ok_; }

 private:
  void Serve() {
    while (!stop_) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      supervisor::FrameDecoder decoder;
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        if (!decoder.Append(absl::string_view(buffer, static_cast<size_t>(n)))
                 .ok())
          break;
        while (std::optional<std::string> frame = decoder.Next()) {
          proto::Request request;
          if (!request.ParseFromString(*frame)) continue;
          proto::Response response;
          answer_(request, &response);
          response.set_id(request.id());
          const std::string out =
              supervisor::EncodeFrame(response.SerializeAsString());
          if (write(fd, out.data(), out.size()) !=
              static_cast<ssize_t>(out.size())) {
            break;
          }
        }
      }
      close(fd);
    }
  }

  Answer answer_;
  int listen_fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(ClientBadReplyTest, ToolListWithMembersOfTheWrongTypesIsPrinted) {
  TempDir dir;
  const std::string socket = dir.Sub("fake.sock");
  FakeDaemon daemon(socket, [](const proto::Request&, proto::Response* r) {
    r->mutable_list_tools()->set_tools_json(
        R"([{"name": 5, "kind": [], "description": {"a": 1},)"
        R"( "safety": {"sandboxed": "yes", "network_capable": 1},)"
        R"( "input_schema": {"properties": 7, "required": {"x": 1}}},)"
        R"( {"name": "ok", "kind": "exec", "safety": [],)"
        R"( "input_schema": {"properties": {"cmd": 3}, "required": [4]}},)"
        R"( 3, null])");
  });
  ASSERT_TRUE(daemon.ok());
  const RunResult r = RunJcs({"tool", "list", "p", "--socket", socket});
  ASSERT_TRUE(r.exited) << r.Describe();
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("ok  (exec, in-process)")) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(ClientBadReplyTest, ToolRunErrorWithAnObjectReasonIsAFailureNotAnAbort) {
  TempDir dir;
  const std::string socket = dir.Sub("fake.sock");
  FakeDaemon daemon(socket, [](const proto::Request&, proto::Response* r) {
    r->mutable_run_tool()->set_json(
        R"({"status": "error", "reason": {"nested": true}, "detail": 5})");
  });
  ASSERT_TRUE(daemon.ok());
  const RunResult r = RunJcs({"tool", "run", "p", "exec", "--socket", socket,
                              "--args", R"({"command": "/bin/true"})"});
  ASSERT_TRUE(r.exited) << r.Describe();
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  // The reason is not a string: reported as the generic "error", with the
  // detail kept.
  EXPECT_THAT(r.err, HasSubstr("jcs tool: error: 5")) << r.err;
}

}  // namespace
}  // namespace jcs::serve_test
