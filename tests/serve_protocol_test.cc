// The control protocol of `jcs serve` through the client library and raw
// sockets: pipelining, malformed / truncated / oversized / empty / unknown
// frames, half-closed and unauthorized peers, bounded send queues for clients
// that do not read, subscriptions, client limits and 100 concurrent clients.
// In every bad-input case the daemon must keep serving everyone else.
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <latch>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/control.pb.h"
#include "runtime/project/value.h"
#include "tests/serve_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

constexpr uid_t kStrangerUid = 12345;
constexpr gid_t kStrangerGid = 12345;

proto::Request Ping(uint64_t id) {
  proto::Request request;
  request.set_id(id);
  request.mutable_ping();
  return request;
}

// A raw connection, closed on destruction.
class RawConn {
 public:
  explicit RawConn(const std::string& socket) : fd_(ConnectUnix(socket)) {}
  ~RawConn() {
    if (fd_ >= 0) close(fd_);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  int fd() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  bool Send(const std::string& bytes) { return SendAll(fd_, bytes); }
  bool Send(const proto::Request& request) {
    return SendAll(fd_, RequestFrame(request));
  }
  // True when the daemon closed its end (even with unread data queued).
  bool PeerClosed(int timeout_ms = 0) {
    struct pollfd p = {fd_, POLLRDHUP, 0};
    return poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::unique_ptr<tools::ControlClient> MustConnect(const std::string& socket) {
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
      tools::ControlClient::Connect(socket, absl::Seconds(20));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// One error response with id 0 and `reason`, then the connection closed.
void ExpectErrorThenClose(RawConn& conn, const std::set<std::string>& reasons,
                          double timeout_s = 10) {
  const ReadResult r = ReadUntilClosed(conn.fd(), timeout_s);
  EXPECT_FALSE(r.timed_out)
      << "the daemon kept the connection open: " << r.Describe();
  EXPECT_TRUE(r.eof || r.reset) << r.Describe();
  ASSERT_EQ(r.responses.size(), 1u) << r.Describe();
  EXPECT_EQ(r.responses[0].id(), 0u) << r.Describe();
  ASSERT_TRUE(r.responses[0].has_error()) << r.Describe();
  EXPECT_EQ(reasons.count(r.responses[0].error().reason()), 1u) << r.Describe();
}

// ---- pipelining ----

TEST(ServeProtocolTest, PipelinedRequestsGetResponsesWithMatchingIds) {
  TempDir roots;
  const std::string root = roots.MakeOwnedDir("p");
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  // Non-sequential ids, five request kinds, all written at once.
  std::map<uint64_t, proto::Response::BodyCase> expected;
  std::string batch;
  for (int i = 0; i < 300; ++i) {
    proto::Request request;
    request.set_id(1000 + 7 * static_cast<uint64_t>(300 - i));
    const std::string project = absl::StrCat("pipe-", i / 5);
    switch (i % 5) {
      case 0:
        // One root per project: roots never overlap.
        request.mutable_start_project()->set_root(
            roots.MakeOwnedDir("p/" + project));
        request.mutable_start_project()->set_project_id(project);
        expected[request.id()] = proto::Response::kStartProject;
        break;
      case 1:
        request.mutable_list_projects();
        expected[request.id()] = proto::Response::kListProjects;
        break;
      case 2:
        request.mutable_ping();
        expected[request.id()] = proto::Response::kPing;
        break;
      case 3:
        request.mutable_diagnostics()->set_project_id(project);
        expected[request.id()] = proto::Response::kDiagnostics;
        break;
      case 4:
        request.mutable_stop_project()->set_project_id(project);
        expected[request.id()] = proto::Response::kStopProject;
        break;
    }
    batch += RequestFrame(request);
  }
  ASSERT_TRUE(conn.Send(batch));
  const ReadResult r = ReadResponses(conn.fd(), expected.size(), 20);
  ASSERT_EQ(r.responses.size(), expected.size()) << r.Describe();
  std::set<uint64_t> seen;
  for (const proto::Response& response : r.responses) {
    EXPECT_TRUE(seen.insert(response.id()).second)
        << "duplicate id " << response.id();
    ASSERT_EQ(expected.count(response.id()), 1u)
        << "unexpected id " << response.ShortDebugString();
    // Requests on one connection are handled in order, so a project's
    // diagnostics and stop find it started.
    EXPECT_EQ(response.body_case(), expected[response.id()])
        << response.ShortDebugString();
  }
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// With a small max_frame_bytes, many small pipelined frames that arrive in
// one read are still ordinary traffic (each is far below the limit).
TEST(ServeProtocolTest, PipelinedSmallFramesWithASmallFrameLimit) {
  Daemon daemon("max_frame_bytes: 4096\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  std::string batch;
  constexpr int kCount = 1000;  // ~6 KB of frames of 4 to 6 bytes
  for (int i = 1; i <= kCount; ++i) batch += RequestFrame(Ping(i));
  ASSERT_GT(batch.size(), 4096u);
  ASSERT_TRUE(conn.Send(batch));
  const ReadResult r = ReadResponses(conn.fd(), kCount, 20);
  EXPECT_EQ(r.responses.size(), static_cast<size_t>(kCount)) << r.Describe();
  for (const proto::Response& response : r.responses) {
    EXPECT_TRUE(response.has_ping()) << response.ShortDebugString();
  }
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// ---- bad frames ----

TEST(ServeProtocolTest, MalformedPayloadGetsAnErrorAndOthersAreServed) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  std::unique_ptr<tools::ControlClient> bystander =
      MustConnect(daemon.socket_path());
  ASSERT_NE(bystander, nullptr);
  ASSERT_TRUE(bystander->ListProjects().ok());

  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  // A valid length, then bytes that are no protobuf message.
  ASSERT_TRUE(
      conn.Send(Varint(6) + std::string("\xff\xff\xff\xff\xff\xff", 6)));
  ExpectErrorThenClose(conn, {"malformed_request"});

  EXPECT_TRUE(bystander->ListProjects().ok());
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, MalformedLengthPrefixGetsAnErrorAndOthersAreServed) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  // A length varint that never ends.
  ASSERT_TRUE(conn.Send(std::string(12, '\xff')));
  ExpectErrorThenClose(conn, {"malformed_frame", "malformed_request"});
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, TruncatedFramesNeitherHangNorHurtOthers) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  // A partial frame from a client that stays connected does not hold up
  // anybody else.
  RawConn stalled(daemon.socket_path());
  ASSERT_TRUE(stalled.ok());
  ASSERT_TRUE(stalled.Send(Varint(100) + "abc"));
  EXPECT_EQ(PingError(daemon.socket_path()), "");

  // Truncated, then half-closed: the daemon ends the connection.
  RawConn half(daemon.socket_path());
  ASSERT_TRUE(half.ok());
  ASSERT_TRUE(half.Send(Varint(100) + "abc"));
  ASSERT_EQ(shutdown(half.fd(), SHUT_WR), 0);
  const ReadResult r = ReadUntilClosed(half.fd(), 10);
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_FALSE(r.malformed) << r.Describe();
  for (const proto::Response& response : r.responses) {
    EXPECT_TRUE(response.has_error()) << response.ShortDebugString();
  }

  // Truncated, then fully closed (also mid-header).
  for (const std::string& bytes : {Varint(100) + "abc", std::string("\x80")}) {
    RawConn gone(daemon.socket_path());
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(gone.Send(bytes));
    gone.Close();
  }
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  stalled.Close();
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, OversizedFrameGetsFrameTooLargeAndOthersAreServed) {
  Daemon daemon("max_frame_bytes: 4096\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  {
    RawConn conn(daemon.socket_path());
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(conn.Send(Varint(1 << 20)));
    // The header alone is refused: the daemon does not wait for a megabyte.
    ExpectErrorThenClose(conn, {"frame_too_large"});
  }
  {
    RawConn conn(daemon.socket_path());
    ASSERT_TRUE(conn.ok());
    // Header plus a stream of bytes; the daemon must not buffer them.
    (void)conn.Send(Varint(4097) + std::string(4097, 'x'));
    ExpectErrorThenClose(conn, {"frame_too_large"});
  }
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, FrameExactlyAtTheLimitIsServed) {
  Daemon daemon("max_frame_bytes: 4096\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  // A StartProject whose serialized Request is exactly `size` bytes (its root
  // does not exist, so the daemon answers invalid_root_path).
  auto request_of_size = [](size_t size) {
    proto::Request request;
    request.set_id(77);
    std::string root = "/nonexistent-";
    request.mutable_start_project()->set_root(root);
    while (request.ByteSizeLong() < size) {
      root.push_back('a');
      request.mutable_start_project()->set_root(root);
    }
    return request;
  };
  const proto::Request at_limit = request_of_size(4096);
  ASSERT_EQ(at_limit.ByteSizeLong(), 4096u);
  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(conn.Send(at_limit));
  const ReadResult ok = ReadResponses(conn.fd(), 1, 10);
  ASSERT_EQ(ok.responses.size(), 1u) << ok.Describe();
  EXPECT_EQ(ok.responses[0].id(), 77u);
  EXPECT_EQ(ok.responses[0].error().reason(), "invalid_root_path")
      << ok.Describe();

  const proto::Request over = request_of_size(4097);
  ASSERT_EQ(over.ByteSizeLong(), 4097u);
  ASSERT_TRUE(conn.Send(over));
  ExpectErrorThenClose(conn, {"frame_too_large"});
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, EmptyAndUnknownRequestsGetUnknownRequest) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  // A Request with an id and no body.
  proto::Request empty;
  empty.set_id(7);
  ASSERT_TRUE(conn.Send(empty));
  // A Request carrying a field this daemon does not know (a newer request
  // type, field 99) as its only body.
  proto::Request id_only;
  id_only.set_id(8);
  std::string unknown = id_only.SerializeAsString();
  unknown += std::string("\x9a\x06\x00", 3);  // field 99, length 0
  ASSERT_TRUE(conn.Send(Varint(unknown.size()) + unknown));
  ASSERT_TRUE(conn.Send(Ping(9)));
  const ReadResult r = ReadResponses(conn.fd(), 3, 10);
  ASSERT_EQ(r.responses.size(), 3u) << r.Describe();
  std::map<uint64_t, proto::Response> by_id;
  for (const proto::Response& response : r.responses) {
    by_id[response.id()] = response;
  }
  EXPECT_EQ(by_id[7].error().reason(), "unknown_request") << r.Describe();
  EXPECT_EQ(by_id[8].error().reason(), "unknown_request") << r.Describe();
  EXPECT_TRUE(by_id[9].has_ping()) << r.Describe();
  // A zero-length frame is an empty Request too; the connection stays
  // usable after it.
  ASSERT_TRUE(conn.Send(std::string("\x00", 1)));
  ASSERT_TRUE(conn.Send(Ping(10)));
  const ReadResult more = ReadResponses(conn.fd(), 2, 10);
  ASSERT_EQ(more.responses.size(), 2u) << more.Describe();
  EXPECT_EQ(more.responses[0].error().reason(), "unknown_request")
      << more.Describe();
  EXPECT_TRUE(more.responses[1].has_ping()) << more.Describe();
  EXPECT_FALSE(conn.PeerClosed());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, HalfClosedClientStillGetsItsResponses) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  RawConn conn(daemon.socket_path());
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(conn.Send(RequestFrame(Ping(1)) + RequestFrame(Ping(2))));
  ASSERT_EQ(shutdown(conn.fd(), SHUT_WR), 0);
  const ReadResult r = ReadUntilClosed(conn.fd(), 10);
  EXPECT_TRUE(r.eof) << r.Describe();
  ASSERT_EQ(r.responses.size(), 2u) << r.Describe();
  EXPECT_TRUE(r.responses[0].has_ping() && r.responses[1].has_ping())
      << r.Describe();
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// ---- peers ----

struct PeerOutcome {
  int child_status = -1;  // 0: connected and read until EOF or deadline
  bool eof = false;
  std::string bytes;
};

// Connects from a forked child that dropped to uid/gid, sends a Ping and
// reads for at most two seconds (or until the daemon closes).
PeerOutcome ConnectAs(uid_t uid, gid_t gid, const std::string& socket) {
  PeerOutcome outcome;
  const std::string ping = RequestFrame(Ping(1));
  int out[2];
  if (pipe(out) != 0) return outcome;
  const pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(11);
    }
    const int fd = ConnectUnix(socket);
    if (fd < 0) _exit(12);
    // A refused peer may find the connection closed before it writes.
    (void)SendAll(fd, ping);
    // Read until EOF, or until 500 ms after the first bytes (a refused peer
    // sees the EOF right behind its error), or two seconds in all.
    char eof_flag = 0;
    char buf[4096];
    long limit_ms = 2000;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (true) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      const long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 +
                              (now.tv_nsec - start.tv_nsec) / 1000000;
      if (elapsed_ms >= limit_ms) break;
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(limit_ms - elapsed_ms)) <= 0) continue;
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) {  // EOF, or ECONNRESET after a close
        eof_flag = 1;
        break;
      }
      if (write(out[1], buf, static_cast<size_t>(n)) != n) _exit(14);
      if (limit_ms == 2000) limit_ms = elapsed_ms + 500;
    }
    // The last byte written is the EOF flag.
    if (write(out[1], &eof_flag, 1) != 1) _exit(14);
    _exit(0);
  }
  close(out[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) {
    outcome.bytes.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  outcome.child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  if (!outcome.bytes.empty()) {
    outcome.eof = outcome.bytes.back() == 1;
    outcome.bytes.pop_back();
  }
  return outcome;
}

TEST(ServeProtocolTest, UnauthorizedPeerGetsUnauthorizedThenEof) {
  Daemon daemon("socket_mode: 0666\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const PeerOutcome stranger =
      ConnectAs(kStrangerUid, kStrangerGid, daemon.socket_path());
  ASSERT_EQ(stranger.child_status, 0) << "the child could not connect";
  EXPECT_TRUE(stranger.eof) << "the daemon kept an unauthorized peer";
  const ReadResult r = DecodeResponses(stranger.bytes);
  ASSERT_EQ(r.responses.size(), 1u) << r.Describe();
  EXPECT_EQ(r.responses[0].error().reason(), "unauthorized") << r.Describe();
  EXPECT_FALSE(r.responses[0].has_ping());
  EXPECT_NE(r.responses[0].error().message().find("12345"), std::string::npos)
      << r.Describe();
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, AllowedUidsAndGidsLetPeersIn) {
  Daemon daemon(absl::StrCat("socket_mode: 0666\nallowed_uids: ", kStrangerUid,
                             "\nallowed_gids: 23456\n"));
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  struct Case {
    uid_t uid;
    gid_t gid;
    bool allowed;
  };
  for (const Case& c : {Case{kStrangerUid, kStrangerGid, true},
                        Case{kStrangerUid + 1, 23456, true},
                        Case{kStrangerUid + 1, kStrangerGid, false}}) {
    SCOPED_TRACE(absl::StrCat("uid ", c.uid, " gid ", c.gid));
    const PeerOutcome peer = ConnectAs(c.uid, c.gid, daemon.socket_path());
    ASSERT_EQ(peer.child_status, 0);
    const ReadResult r = DecodeResponses(peer.bytes);
    ASSERT_EQ(r.responses.size(), 1u) << r.Describe();
    if (c.allowed) {
      EXPECT_TRUE(r.responses[0].has_ping()) << r.Describe();
      EXPECT_FALSE(peer.eof) << "an allowed peer was disconnected";
    } else {
      EXPECT_EQ(r.responses[0].error().reason(), "unauthorized")
          << r.Describe();
      EXPECT_TRUE(peer.eof);
    }
  }
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, MaxClientsRefusesExtraConnections) {
  Daemon daemon("max_clients: 2\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  std::unique_ptr<tools::ControlClient> a = MustConnect(daemon.socket_path());
  std::unique_ptr<tools::ControlClient> b = MustConnect(daemon.socket_path());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->ListProjects().ok());
  ASSERT_TRUE(b->ListProjects().ok());
  {
    RawConn third(daemon.socket_path());
    ASSERT_TRUE(third.ok());
    ExpectErrorThenClose(third, {"too_many_clients"});
  }
  EXPECT_TRUE(a->ListProjects().ok());
  a.reset();  // frees a slot once the daemon sees the close
  const double deadline = NowSeconds() + 10;
  std::string error = "not tried";
  while (NowSeconds() < deadline && !error.empty()) {
    error = PingError(daemon.socket_path());
    if (!error.empty()) usleep(10000);
  }
  EXPECT_EQ(error, "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// ---- bounded send queues ----

TEST(ServeProtocolTest, StuckSubscriberIsDisconnectedAndTheDaemonStaysUp) {
  TempDir roots;
  const std::string root = roots.MakeOwnedDir("p");
  Daemon daemon("max_frame_bytes: 1024\nmax_send_queue_bytes: 1024\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  RawConn stuck(daemon.socket_path());
  ASSERT_TRUE(stuck.ok());
  proto::Request subscribe;
  subscribe.set_id(5);
  subscribe.mutable_subscribe();
  ASSERT_TRUE(stuck.Send(subscribe));
  const ReadResult ack = ReadResponses(stuck.fd(), 1, 10);
  ASSERT_EQ(ack.responses.size(), 1u) << ack.Describe();
  ASSERT_TRUE(ack.responses[0].has_subscribe()) << ack.Describe();

  // Generate events and never read them. The kernel buffers a couple of
  // hundred KB; after that the daemon's queue for this client fills up.
  std::unique_ptr<tools::ControlClient> driver =
      MustConnect(daemon.socket_path());
  ASSERT_NE(driver, nullptr);
  const double deadline = NowSeconds() + 60;
  int pairs = 0;
  bool disconnected = false;
  while (!disconnected && pairs < 5000 && NowSeconds() < deadline) {
    const std::string id = absl::StrCat("ev-", pairs++);
    absl::StatusOr<std::string> started = driver->StartProject(root, {}, id);
    ASSERT_TRUE(started.ok()) << started.status();
    absl::Status stopped = driver->StopProject(id);
    ASSERT_TRUE(stopped.ok()) << stopped;
    disconnected = stuck.PeerClosed();
  }
  EXPECT_TRUE(disconnected) << "a subscriber that never reads was kept after "
                            << pairs << " start/stop pairs";
  // Responsive all along (every driver call above succeeded) and after.
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  // What was buffered can still be read, then EOF.
  const ReadResult rest = ReadUntilClosed(stuck.fd(), 10);
  EXPECT_FALSE(rest.timed_out) << rest.Describe();
  // Each pair emits project.started, project.assets_loaded and
  // project.stopped.
  EXPECT_LT(rest.responses.size(), static_cast<size_t>(3 * pairs));
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeProtocolTest, ClientThatNeverReadsResponsesIsDisconnected) {
  TempDir roots;
  const std::string root = roots.MakeOwnedDir("p");
  // A frame limit above the 64 KiB read size keeps the request decoder out of
  // the way; the send queue is what must give.
  Daemon daemon("max_frame_bytes: 131072\nmax_send_queue_bytes: 131072\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  std::unique_ptr<tools::ControlClient> setup =
      MustConnect(daemon.socket_path());
  ASSERT_NE(setup, nullptr);
  for (int i = 0; i < 40; ++i) {  // ~4 KB per list response
    const std::string id = absl::StrCat("big-", i);
    ASSERT_TRUE(
        setup->StartProject(roots.MakeOwnedDir("p/" + id), {}, id).ok());
  }
  RawConn greedy(daemon.socket_path());
  ASSERT_TRUE(greedy.ok());
  proto::Request list;
  list.mutable_list_projects();
  std::string frames;
  for (int i = 1; i <= 64; ++i) {
    list.set_id(i);
    frames += RequestFrame(list);
  }
  const double deadline = NowSeconds() + 60;
  bool disconnected = false;
  int batches = 0;
  while (!disconnected && NowSeconds() < deadline) {
    struct pollfd p = {greedy.fd(), POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 100);
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      disconnected = true;
      break;
    }
    if ((p.revents & POLLOUT) == 0) continue;
    const ssize_t n = send(greedy.fd(), frames.data(), frames.size(),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      disconnected = true;
    } else if (n > 0) {
      ++batches;
      // Keep frames whole: finish a partial batch before the next.
      if (static_cast<size_t>(n) < frames.size()) {
        (void)SendAll(greedy.fd(), frames.substr(static_cast<size_t>(n)));
      }
    }
  }
  EXPECT_TRUE(disconnected) << "a client that never reads its responses was "
                               "kept after "
                            << batches * 64 << " requests";
  EXPECT_EQ(PingError(daemon.socket_path()), "");
  EXPECT_TRUE(setup->ListProjects().ok());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// More pending connections than the daemon has file descriptors for (the
// default max_clients of 1024 is above the usual soft RLIMIT_NOFILE of 1024):
// accept() fails with EMFILE. The daemon must not spin on it, must keep
// serving the clients it has, and must recover once descriptors free up.
TEST(ServeProtocolTest, RunningOutOfDescriptorsNeitherSpinsNorStalls) {
  DaemonOptions options;
  options.child_setup = [] {
    const struct rlimit limit = {64, 64};
    return setrlimit(RLIMIT_NOFILE, &limit) == 0;
  };
  Daemon daemon(options);
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < 100; ++i) {
    conns.push_back(std::make_unique<RawConn>(daemon.socket_path()));
    ASSERT_TRUE(conns.back()->ok())
        << "connect " << i << ": " << strerror(errno);
  }
  // The first connection was accepted before the descriptors ran out.
  ASSERT_TRUE(conns[0]->Send(Ping(1)));
  ReadResult first = ReadResponses(conns[0]->fd(), 1, 10);
  ASSERT_EQ(first.responses.size(), 1u) << first.Describe();

  const auto cpu_ticks = [&] {
    // /proc/PID/stat fields after "(comm)" start at 3 (state); utime and
    // stime are 14 and 15.
    const std::string text =
        ReadFileOrEmpty(absl::StrCat("/proc/", daemon.pid(), "/stat"));
    std::istringstream rest(text.substr(text.rfind(')') + 2));
    std::string field;
    long ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stol(field);  // utime, stime
    }
    return ticks;
  };
  const long before = cpu_ticks();
  const double start = NowSeconds();
  usleep(1000000);
  const double ticks_per_s =
      static_cast<double>(cpu_ticks() - before) / (NowSeconds() - start);
  const long hz = sysconf(_SC_CLK_TCK);
  EXPECT_LT(ticks_per_s, 0.2 * static_cast<double>(hz))
      << "the daemon burns " << 100.0 * ticks_per_s / static_cast<double>(hz)
      << "% of a CPU while accept() fails with EMFILE";

  // Existing clients are still served.
  ASSERT_TRUE(conns[0]->Send(Ping(2)));
  first = ReadResponses(conns[0]->fd(), 1, 10);
  EXPECT_EQ(first.responses.size(), 1u) << first.Describe();

  // Recovery: once the clients go away, new ones get in.
  conns.clear();
  const double deadline = NowSeconds() + 10;
  std::string error = "not tried";
  while (NowSeconds() < deadline && !error.empty()) {
    error = PingError(daemon.socket_path(), 2);
    if (!error.empty()) usleep(10000);
  }
  EXPECT_EQ(error, "");
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// ---- subscriptions ----

TEST(ServeProtocolTest, SubscribersReceiveProjectEvents) {
  TempDir roots;
  const std::string root = roots.MakeOwnedDir("p");
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  std::unique_ptr<tools::ControlClient> all = MustConnect(daemon.socket_path());
  std::unique_ptr<tools::ControlClient> only_a =
      MustConnect(daemon.socket_path());
  std::unique_ptr<tools::ControlClient> driver =
      MustConnect(daemon.socket_path());
  ASSERT_TRUE(all && only_a && driver);
  ASSERT_TRUE(all->Subscribe("").ok());
  ASSERT_TRUE(only_a->Subscribe("evt-a").ok());
  RawConn raw(daemon.socket_path());
  ASSERT_TRUE(raw.ok());
  proto::Request subscribe;
  subscribe.set_id(4242);
  subscribe.mutable_subscribe()->set_project_id("evt-b");
  ASSERT_TRUE(raw.Send(subscribe));
  ASSERT_EQ(ReadResponses(raw.fd(), 1, 10).responses.size(), 1u);

  ASSERT_TRUE(driver->StartProject(root, {}, "evt-a").ok());
  const std::string root_b = roots.MakeOwnedDir("b");
  ASSERT_TRUE(driver
                  ->StartProject(root_b,
                                 {{"watcher", runtime::Value::Bool(true)}},
                                 "evt-b", "data-b")
                  .ok());
  // A failed start emits nothing.
  ASSERT_FALSE(driver->StartProject(root, {}, "evt-a").ok());
  ASSERT_TRUE(driver->StopProject("evt-a").ok());
  ASSERT_TRUE(driver->StopProject("evt-b").ok());

  const std::vector<std::pair<std::string, std::string>> expected = {
      {"project.started", "evt-a"},
      {"project.started", "evt-b"},
      {"project.stopped", "evt-a"},
      {"project.stopped", "evt-b"}};
  // The lifecycle events, in order; the asset and watcher events of each
  // project (project.assets_loaded, project.watcher_*) come between them.
  std::vector<std::string> asset_events;
  const auto next_lifecycle = [&asset_events](tools::ControlClient& client,
                                              absl::Duration timeout) {
    while (true) {
      absl::StatusOr<proto::Event> event = client.NextEvent(timeout);
      if (!event.ok() ||
          (!absl::StartsWith(event->name(), "project.assets_") &&
           !absl::StartsWith(event->name(), "project.watcher_"))) {
        return event;
      }
      asset_events.push_back(
          absl::StrCat(event->name(), " ", event->project_id()));
    }
  };
  for (const auto& [name, project] : expected) {
    absl::StatusOr<proto::Event> event =
        next_lifecycle(*all, absl::Seconds(10));
    ASSERT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(event->name(), name);
    EXPECT_EQ(event->project_id(), project);
    EXPECT_FALSE(event->at().empty());
    nlohmann::json payload =
        nlohmann::json::parse(event->payload_json(), nullptr, false);
    ASSERT_TRUE(payload.is_object()) << event->payload_json();
    EXPECT_EQ(payload["project_id"], project) << event->payload_json();
    if (name == "project.started") {
      EXPECT_EQ(payload["root_path"], project == "evt-b" ? root_b : root)
          << event->payload_json();
      EXPECT_EQ(payload["data_dir"], project == "evt-b" ? "data-b" : ".jido")
          << event->payload_json();
    }
  }
  EXPECT_FALSE(next_lifecycle(*all, absl::Milliseconds(200)).ok())
      << "an extra event (the failed start?)";
  EXPECT_THAT(asset_events,
              ::testing::IsSupersetOf({"project.assets_loaded evt-a",
                                       "project.assets_loaded evt-b",
                                       "project.watcher_started evt-b"}));

  for (const char* name : {"project.started", "project.stopped"}) {
    absl::StatusOr<proto::Event> event =
        next_lifecycle(*only_a, absl::Seconds(10));
    ASSERT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(event->name(), name);
    EXPECT_EQ(event->project_id(), "evt-a");
  }
  // Whatever else arrives is evt-a's own.
  while (true) {
    absl::StatusOr<proto::Event> event =
        only_a->NextEvent(absl::Milliseconds(200));
    if (!event.ok()) break;
    EXPECT_EQ(event->project_id(), "evt-a")
        << "a filtered subscription received another project's event";
  }

  // Raw: events carry the Subscribe request's id.
  // (project.started and project.stopped, and evt-b's asset and watcher
  // events.)
  const ReadResult r = ReadResponses(raw.fd(), 2, 10);
  ASSERT_GE(r.responses.size(), 2u) << r.Describe();
  for (const proto::Response& response : r.responses) {
    EXPECT_EQ(response.id(), 4242u);
    EXPECT_EQ(response.event().project_id(), "evt-b");
  }
  // A subscribed client can still make calls.
  EXPECT_TRUE(all->ListProjects().ok());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// ---- concurrency ----

TEST(ServeProtocolTest, HundredConcurrentClients) {
  constexpr int kClients = 100;
  TempDir roots;
  const std::string root = roots.MakeOwnedDir("p");
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  std::mutex mu;
  std::vector<std::string> failures;
  std::atomic<int> succeeded{0};
  std::latch connected(kClients);
  std::vector<std::string> client_roots;  // one each: roots never overlap
  for (int i = 0; i < kClients; ++i) {
    client_roots.push_back(roots.MakeOwnedDir(absl::StrCat("p/client-", i)));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto fail = [&](const std::string& what) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(absl::StrCat("client ", i, ": ", what));
      };
      absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
          tools::ControlClient::Connect(daemon.socket_path(),
                                        absl::Seconds(30));
      connected.arrive_and_wait();  // all 100 connections open at once
      if (!client.ok()) return fail(client.status().ToString());
      const std::string id = absl::StrCat("client-", i);
      absl::StatusOr<std::string> started = (*client)->StartProject(
          client_roots[i], {{"tool_timeout_ms", runtime::Value::Int(i + 1)}},
          id);
      if (!started.ok()) return fail(started.status().ToString());
      if (*started != id) return fail("started " + *started);
      absl::StatusOr<std::vector<proto::ProjectSummary>> list =
          (*client)->ListProjects();
      if (!list.ok()) return fail(list.status().ToString());
      bool found = false;
      for (const proto::ProjectSummary& p : *list)
        found |= p.project_id() == id;
      if (!found) return fail("own project missing from list");
      absl::StatusOr<std::string> diag = (*client)->Diagnostics(id);
      if (!diag.ok()) return fail(diag.status().ToString());
      nlohmann::json doc = nlohmann::json::parse(*diag, nullptr, false);
      if (!doc.is_object() || doc["runtime_opts"]["tool_timeout_ms"] != i + 1) {
        return fail("diagnostics: " + *diag);
      }
      absl::Status stopped = (*client)->StopProject(id);
      if (!stopped.ok()) return fail(stopped.ToString());
      ++succeeded;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(succeeded.load(), kClients);
  for (const std::string& f : failures) ADD_FAILURE() << f;
  std::unique_ptr<tools::ControlClient> check =
      MustConnect(daemon.socket_path());
  ASSERT_NE(check, nullptr);
  absl::StatusOr<std::vector<proto::ProjectSummary>> list =
      check->ListProjects();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
