#include "telemetry/alerts/router.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace jcs::telemetry::alerts {
namespace {

using ::nlohmann::json;

// Polls `done` until it holds or `timeout` passes.
template <typename F>
bool Eventually(F done, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/jcs-alerts-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Event MakeEvent(const std::string& name, json payload) {
  Event e;
  e.name = name;
  e.project_id = payload.value("project_id", "");
  e.payload = std::move(payload);
  e.at = absl::FromUnixSeconds(1'800'000'000);
  return e;
}

TEST(NormalizeSignalEventsTest, TrimsLowercasesAndDeduplicates) {
  EXPECT_EQ(NormalizeSignalEvents({" Security.Sandbox_Violation ",
                                   "security.sandbox_violation", "", "  "}),
            std::set<std::string>({"security.sandbox_violation"}));
}

TEST(SeverityTest, DefaultsAreCriticalOthersWarningRulesSayTheirOwn) {
  EXPECT_EQ(SeverityOf("security.sandbox_violation", json::object()),
            "critical");
  EXPECT_EQ(SeverityOf("security.repeated_timeout_failures", json::object()),
            "critical");
  EXPECT_EQ(SeverityOf("security.network_denied", json::object()), "warning");
  EXPECT_EQ(SeverityOf("alert.tool_timeouts", {{"severity", "critical"}}),
            "critical");
  EXPECT_EQ(SeverityOf("alert.tool_failure_ratio", {{"severity", "warning"}}),
            "warning");
  // Only rule alerts choose their severity.
  EXPECT_EQ(SeverityOf("tool.failed", {{"severity", "critical"}}), "warning");
}

TEST(RouterTest, FileSinkAppendsOneRedactedJsonLinePerAlert) {
  TempDir dir;
  RouterConfig config;
  SinkConfig file;
  file.kind = SinkConfig::Kind::kFile;
  file.path = dir.Sub("alerts.jsonl");
  file.extra_args = {"team-a"};
  config.sinks = {file};
  Router router(config);
  router.Route(
      MakeEvent("security.sandbox_violation", {{"project_id", "p1"},
                                               {"path", "../etc/shadow"},
                                               {"api_token", "hunter2"}}));
  router.Route(MakeEvent("tool.completed", {{"project_id", "p1"}}));
  router.Route(
      MakeEvent("security.repeated_timeout_failures", {{"project_id", "p2"}}));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));

  std::istringstream lines(ReadAll(file.path));
  std::string line;
  std::vector<json> docs;
  while (std::getline(lines, line)) docs.push_back(json::parse(line));
  ASSERT_EQ(docs.size(), 2u) << ReadAll(file.path);
  EXPECT_EQ(docs[0]["event"], "security.sandbox_violation");
  EXPECT_EQ(docs[0]["payload"]["path"], "../etc/shadow");
  EXPECT_EQ(docs[0]["payload"]["api_token"], "[REDACTED]");
  EXPECT_EQ(docs[0]["metadata"]["alert_event"], "security.sandbox_violation");
  EXPECT_EQ(docs[0]["metadata"]["alert_severity"], "critical");
  EXPECT_EQ(docs[0]["metadata"]["event_name"], "security.sandbox_violation");
  EXPECT_EQ(docs[0]["metadata"]["emitted_at"], "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(docs[0]["extra_args"], json::array({"team-a"}));
  EXPECT_EQ(docs[1]["event"], "security.repeated_timeout_failures");
  EXPECT_EQ(ReadAll(file.path).find("hunter2"), std::string::npos);
  struct stat st;
  ASSERT_EQ(stat(file.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const json diag = router.Diagnostics();
  EXPECT_EQ(diag["routed"], 2);
  EXPECT_EQ(diag["delivered"], 2);
  EXPECT_EQ(diag["dropped"], 0);
}

TEST(RouterTest, QueuedAlertsAreDeliveredAtShutdown) {
  TempDir dir;
  RouterConfig config;
  SinkConfig file;
  file.kind = SinkConfig::Kind::kFile;
  file.path = dir.Sub("alerts.jsonl");
  config.sinks = {file};
  {
    Router router(config);
    for (int i = 0; i < 50; ++i) {
      router.Route(MakeEvent("security.sandbox_violation", {{"i", i}}));
    }
  }
  std::istringstream lines(ReadAll(file.path));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) ++n;
  EXPECT_EQ(n, 50);
}

TEST(RouterTest, ConfiguredEventsAreWarningsAndRuleAlertsAlwaysRoute) {
  std::vector<json> got;
  std::mutex mu;
  RouterConfig config;
  config.signal_events = {"security.network_denied"};
  SinkConfig cb;
  cb.kind = SinkConfig::Kind::kCallback;
  cb.extra_args = {"x", "y"};
  cb.callback = [&](const std::string& name, const json& payload,
                    const json& metadata,
                    const std::vector<std::string>& extra) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back({{"name", name},
                   {"payload", payload},
                   {"metadata", metadata},
                   {"extra", extra}});
  };
  config.sinks = {cb};
  Router router(config);
  router.Route(MakeEvent("security.sandbox_violation", json::object()));
  router.Route(MakeEvent("security.network_denied", {{"host", "evil.test"}}));
  router.Route(MakeEvent("alert.tool_timeouts", {{"severity", "critical"}}));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["name"], "security.network_denied");
  EXPECT_EQ(got[0]["payload"]["host"], "evil.test");
  EXPECT_EQ(got[0]["metadata"]["alert_severity"], "warning");
  EXPECT_EQ(got[0]["extra"], json::array({"x", "y"}));
  EXPECT_EQ(got[1]["name"], "alert.tool_timeouts");
  EXPECT_EQ(got[1]["metadata"]["alert_severity"], "critical");
}

// A hanging sink: Route() returns at once, the queue holds
// queue_capacity alerts, the rest are dropped and counted.
TEST(RouterTest, HangingSinkNeverBlocksRouteAndDropsAreCounted) {
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  RouterConfig config;
  config.queue_capacity = 4;
  SinkConfig cb;
  cb.kind = SinkConfig::Kind::kCallback;
  cb.callback = [&](const std::string&, const json&, const json&,
                    const std::vector<std::string>&) {
    entered = true;
    while (!release) absl::SleepFor(absl::Milliseconds(1));
  };
  config.sinks = {cb};
  Router router(config);
  const Event e = MakeEvent("security.sandbox_violation", json::object());
  router.Route(e);
  ASSERT_TRUE(Eventually([&] { return entered.load(); }));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) router.Route(e);
  // 100 enqueues that waited on the sink would take forever; these are
  // bounded by a lock and a copy each.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  json diag = router.Diagnostics();
  EXPECT_EQ(diag["queued"], 4);
  EXPECT_EQ(diag["dropped"], 96);
  EXPECT_EQ(diag["routed"], 101);
  release = true;
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  diag = router.Diagnostics();
  EXPECT_EQ(diag["delivered"], 5);
  EXPECT_EQ(diag["queued"], 0);
}

TEST(RouterTest, ThrowingCallbackIsCountedAndTheRouterGoesOn) {
  std::atomic<int> calls{0};
  RouterConfig config;
  SinkConfig cb;
  cb.kind = SinkConfig::Kind::kCallback;
  cb.callback = [&](const std::string&, const json&, const json&,
                    const std::vector<std::string>&) {
    if (calls++ == 0) throw std::runtime_error("sink bug");
  };
  config.sinks = {cb};
  Router router(config);
  const Event e = MakeEvent("security.sandbox_violation", json::object());
  router.Route(e);
  router.Route(e);
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  const json diag = router.Diagnostics();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(diag["sink_failures"], 1);
  EXPECT_EQ(diag["delivered"], 1);
  EXPECT_EQ(diag["last_error"], "callback threw: sink bug");
}

TEST(RouterTest, UnixSocketSinkWritesOneJsonLinePerConnection) {
  TempDir dir;
  const std::string path = dir.Sub("alerts.sock");
  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  ASSERT_EQ(listen(listener, 4), 0);
  std::string received;
  std::thread reader([&] {
    const int fd = accept(listener, nullptr, nullptr);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) received.append(buf, n);
    close(fd);
  });
  RouterConfig config;
  SinkConfig sock;
  sock.kind = SinkConfig::Kind::kUnixSocket;
  sock.path = path;
  config.sinks = {sock};
  Router router(config);
  router.Route(MakeEvent("security.sandbox_violation", {{"project_id", "p"}}));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  reader.join();
  close(listener);
  ASSERT_FALSE(received.empty());
  EXPECT_EQ(received.back(), '\n');
  const json doc = json::parse(received);
  EXPECT_EQ(doc["event"], "security.sandbox_violation");
  EXPECT_EQ(doc["payload"]["project_id"], "p");
  EXPECT_EQ(router.Diagnostics()["delivered"], 1);
}

// A listener that never accepts (its backlog full): the delivery gives up
// at the sink's timeout instead of holding the router.
TEST(RouterTest, SocketSinkThatNeverAcceptsTimesOut) {
  TempDir dir;
  const std::string path = dir.Sub("stuck.sock");
  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  ASSERT_EQ(listen(listener, 0), 0);
  std::vector<int> fillers;
  while (fillers.size() < 64) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  ASSERT_LT(fillers.size(), 64u) << "the backlog never filled";
  RouterConfig config;
  SinkConfig sock;
  sock.kind = SinkConfig::Kind::kUnixSocket;
  sock.path = path;
  sock.timeout = absl::Milliseconds(200);
  config.sinks = {sock};
  Router router(config);
  const absl::Time start = absl::Now();
  router.Route(MakeEvent("security.sandbox_violation", json::object()));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  const json diag = router.Diagnostics();
  EXPECT_EQ(diag["sink_failures"], 1) << diag;
  EXPECT_EQ(diag["delivered"], 0) << diag;
  EXPECT_NE(diag["last_error"].get<std::string>().find("not accepting"),
            std::string::npos)
      << diag;
  for (int fd : fillers) close(fd);
  close(listener);
}

TEST(RouterTest, UnreachableSinksFailFastWithTheReason) {
  TempDir dir;
  ASSERT_EQ(mkfifo(dir.Sub("fifo").c_str(), 0600), 0);
  ASSERT_EQ(symlink(dir.Sub("target").c_str(), dir.Sub("link").c_str()), 0);
  RouterConfig config;
  SinkConfig sock;
  sock.kind = SinkConfig::Kind::kUnixSocket;
  sock.path = dir.Sub("nobody-listens.sock");
  SinkConfig fifo;
  fifo.kind = SinkConfig::Kind::kFile;
  fifo.path = dir.Sub("fifo");  // a FIFO with no reader would block open()
  SinkConfig link;
  link.kind = SinkConfig::Kind::kFile;
  link.path = dir.Sub("link");  // a planted symlink is not followed
  config.sinks = {sock, fifo, link};
  Router router(config);
  router.Route(MakeEvent("security.sandbox_violation", json::object()));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  const json diag = router.Diagnostics();
  EXPECT_EQ(diag["sink_failures"], 3);
  EXPECT_EQ(diag["delivered"], 0);
  EXPECT_NE(diag["last_error"].get<std::string>().find("link"),
            std::string::npos);
  struct stat st;
  EXPECT_NE(lstat(dir.Sub("target").c_str(), &st), 0);
}

TEST(RouterTest, ReconfigureSwapsSignalsAndSinks) {
  TempDir dir;
  RouterConfig config;
  SinkConfig a;
  a.kind = SinkConfig::Kind::kFile;
  a.path = dir.Sub("a.jsonl");
  config.sinks = {a};
  Router router(config);
  router.Route(MakeEvent("security.network_denied", json::object()));
  RouterConfig next;
  next.signal_events = {"security.network_denied"};
  SinkConfig b = a;
  b.path = dir.Sub("b.jsonl");
  next.sinks = {b};
  router.Reconfigure(next);
  router.Route(MakeEvent("security.network_denied", json::object()));
  router.Route(MakeEvent("security.sandbox_violation", json::object()));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(ReadAll(a.path), "");
  const std::string b_text = ReadAll(b.path);
  EXPECT_NE(b_text.find("security.network_denied"), std::string::npos);
  EXPECT_EQ(b_text.find("security.sandbox_violation"), std::string::npos);
  EXPECT_EQ(router.Diagnostics()["signal_events"],
            json::array({"security.network_denied"}));
}

}  // namespace
}  // namespace jcs::telemetry::alerts

namespace jcs::telemetry::alerts {
namespace {

// The exec sink hands the runner the sink's argv then its extra_args, the
// alert's JSON line as the document and the sink's timeout; a non-zero
// exit (an error from the runner) is a counted sink failure.
TEST(RouterExecTest, RunnerGetsArgvExtraArgsAndTheDocument) {
  std::mutex mu;
  std::vector<std::vector<std::string>> argvs;
  std::vector<std::string> docs;
  std::vector<absl::Duration> timeouts;
  RouterConfig config;
  config.exec_runner = [&](const std::vector<std::string>& argv,
                           const std::string& document, absl::Duration timeout,
                           const std::function<bool()>&) {
    std::lock_guard<std::mutex> lock(mu);
    argvs.push_back(argv);
    docs.push_back(document);
    timeouts.push_back(timeout);
    return argvs.size() == 1 ? absl::OkStatus()
                             : absl::UnavailableError("exited with status 3");
  };
  SinkConfig exec;
  exec.kind = SinkConfig::Kind::kExec;
  exec.argv = {"/usr/local/bin/page", "--team"};
  exec.extra_args = {"db", "eu-1"};
  exec.timeout = absl::Seconds(5);
  config.sinks = {exec};
  Router router(config);
  router.Route(MakeEvent("security.sandbox_violation", {{"project_id", "p"}}));
  router.Route(MakeEvent("security.sandbox_violation", {{"project_id", "q"}}));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(argvs.size(), 2u);
  EXPECT_EQ(argvs[0], (std::vector<std::string>{"/usr/local/bin/page", "--team",
                                                "db", "eu-1"}));
  EXPECT_EQ(timeouts[0], absl::Seconds(5));
  ASSERT_EQ(docs[0].back(), '\n');
  const json doc = json::parse(docs[0]);
  EXPECT_EQ(doc["event"], "security.sandbox_violation");
  EXPECT_EQ(doc["payload"]["project_id"], "p");
  EXPECT_EQ(doc["metadata"]["alert_severity"], "critical");
  EXPECT_EQ(doc["metadata"]["alert_event"], "security.sandbox_violation");
  EXPECT_EQ(doc["extra_args"], json::array({"db", "eu-1"}));
  const json diag = router.Diagnostics();
  EXPECT_EQ(diag["delivered"], 1);
  EXPECT_EQ(diag["sink_failures"], 1);
  EXPECT_EQ(diag["last_error"], "exited with status 3");
  EXPECT_EQ(diag["sinks"][0]["kind"], "exec");
  EXPECT_EQ(diag["sinks"][0]["timeout_ms"], 5000);
}

// No runner, no program: an exec sink without one fails closed.
TEST(RouterExecTest, WithoutARunnerNothingRuns) {
  RouterConfig config;
  SinkConfig exec;
  exec.kind = SinkConfig::Kind::kExec;
  exec.argv = {"/bin/true"};
  config.sinks = {exec};
  Router router(config);
  router.Route(MakeEvent("security.sandbox_violation", json::object()));
  ASSERT_TRUE(router.WaitIdle(absl::Seconds(5)));
  const json diag = router.Diagnostics();
  EXPECT_EQ(diag["delivered"], 0);
  EXPECT_EQ(diag["sink_failures"], 1);
  EXPECT_NE(diag["last_error"].get<std::string>().find("no jailed runner"),
            std::string::npos)
      << diag;
}

// A run that never ends by itself (a sink that ignores its timeout) is
// cancelled when the router goes away: the destructor returns within its
// bound and the runner saw the cancellation.
TEST(RouterExecTest, ShutdownCancelsAHangingRun) {
  std::atomic<bool> entered{false};
  std::atomic<bool> saw_cancel{false};
  RouterConfig config;
  config.exec_runner = [&](const std::vector<std::string>&, const std::string&,
                           absl::Duration,
                           const std::function<bool()>& cancelled) {
    entered = true;
    while (!cancelled()) absl::SleepFor(absl::Milliseconds(5));
    saw_cancel = true;
    return absl::CancelledError("killed at shutdown");
  };
  SinkConfig exec;
  exec.kind = SinkConfig::Kind::kExec;
  exec.argv = {"/bin/sleep", "infinity"};
  exec.timeout = absl::Seconds(60);
  config.sinks = {exec};
  absl::Time start;
  {
    Router router(config);
    router.Route(MakeEvent("security.sandbox_violation", json::object()));
    ASSERT_TRUE(Eventually([&] { return entered.load(); }));
    start = absl::Now();
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(Eventually([&] { return saw_cancel.load(); }));
}

}  // namespace
}  // namespace jcs::telemetry::alerts
