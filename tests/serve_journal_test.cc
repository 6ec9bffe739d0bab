// The journal through the real daemon and CLI (issue 12): results of async
// calls reach the caller, nothing acknowledged is lost to kill -9, running
// projects come back, stored results are redacted, a full disk is reported
// and nothing written before is lost.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

using nlohmann::json;

// The state dir's small file system lives in this test's own mount namespace
// (set up before main, single-threaded), so it goes away with the test.
const bool kPrivateMounts = [] {
  return unshare(CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}();

class JournalTest : public ToolFixture {
 protected:
  json ToolResult(const std::string& project, const std::string& call_id,
                  bool wait, RunResult* raw = nullptr) {
    std::vector<std::string> args = {"tool", "result", project, call_id,
                                     "--json"};
    if (wait) args.push_back("--wait");
    RunResult r = Cli(args);
    if (raw != nullptr) *raw = r;
    return json::parse(r.out, nullptr, false);
  }

  // Polls until the journal has committed everything queued. A result reaches
  // its caller before its commit (no fsync on the call's path); only events
  // wait for durability.
  bool WaitJournalIdle(const std::string& project) {
    return WaitFor(
        [&] {
          const json d = Diagnostics(project);
          return d.contains("journal") && d["journal"]["pending"] == 0 &&
                 d["journal"]["durable_seq"] == d["journal"]["last_seq"];
        },
        10);
  }

  // Kills the daemon with SIGKILL and starts it again on the same config
  // and state directory.
  bool Kill9AndRestart() {
    daemon_.Signal(SIGKILL);
    daemon_.Wait(20);
    return daemon_.Start();
  }
};

TEST_F(JournalTest, AnAsyncCallsResultReachesTheCaller) {
  const std::string p = StartProject();
  const std::string marker = UniqueSleepMarker();
  const ToolResponse accepted =
      Tool(p, "exec",
           ExecArgs({"sh", "-c", "sleep " + marker + " & wait; echo done"}),
           {"--async"});
  ASSERT_EQ(accepted.status(), "accepted") << accepted.Describe();
  const std::string call_id = accepted.doc.value("call_id", "");
  ASSERT_FALSE(call_id.empty());
  // Still running: without --wait that is an error naming the flag.
  RunResult raw;
  ToolResult(p, call_id, false, &raw);
  EXPECT_EQ(raw.exit_code, 1) << raw.Describe();
  EXPECT_NE(raw.err.find("call_running"), std::string::npos) << raw.err;
  // --wait answers when it ends (the sleep is killed to end it quickly).
  std::thread killer([&] {
    WaitFor([&] { return CountProcessesWithArg(marker) == 1; }, 10);
    RunProgram({"/usr/bin/pkill", "-f", "^sleep " + marker + "$"});
  });
  const json waited = ToolResult(p, call_id, true);
  killer.join();
  ASSERT_TRUE(waited.is_object()) << waited;
  EXPECT_EQ(waited["status"], "ok") << waited;
  EXPECT_EQ(waited["correlation_id"], accepted.doc["correlation_id"]);
  EXPECT_EQ(waited["result"]["stdout"], "done\n") << waited;
  // And again later, from memory or the journal.
  EXPECT_EQ(ToolResult(p, call_id, false), waited);
  // Unknown ids are said to be unknown.
  ToolResult(p, "call-nope-1", false, &raw);
  EXPECT_NE(raw.err.find("call_not_found"), std::string::npos) << raw.err;
}

TEST_F(JournalTest, ResultsAndProjectsSurviveKill9) {
  const std::string p = StartProject({{"tool_timeout_ms", 7000}});
  const ToolResponse done =
      Tool(p, "exec", ExecArgs({"sh", "-c", "echo api_key=sekrit-value"}));
  ASSERT_TRUE(ExpectOk(done));
  // The caller got its own output as it was...
  EXPECT_EQ(done.result()["stdout"], "api_key=sekrit-value\n");
  const std::string call_id = done.doc.value("call_id", "");
  ASSERT_FALSE(call_id.empty()) << done.Describe();
  ASSERT_TRUE(WaitJournalIdle(p));

  ASSERT_TRUE(Kill9AndRestart()) << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("1 project(s) from the journal are back"),
            std::string::npos)
      << daemon_.Log();
  // The project is back under its id, root and options.
  const json d = Diagnostics(p);
  ASSERT_TRUE(d.is_object()) << d;
  EXPECT_EQ(d["root_path"], root_);
  EXPECT_EQ(d["runtime_opts"]["tool_timeout_ms"], 7000) << d["runtime_opts"];
  // ... and the journal kept it redacted, whoever reads it later.
  const json stored = ToolResult(p, call_id, false);
  ASSERT_TRUE(stored.is_object()) << stored;
  EXPECT_EQ(stored["result"]["stdout"], "api_key=[REDACTED]\n") << stored;
  // Tools work in the restored project.
  EXPECT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"true"}))));

  // A stopped project stays stopped across restarts.
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  ASSERT_TRUE(Kill9AndRestart()) << daemon_.Log();
  const RunResult list = Cli({"project", "list", "--json"});
  EXPECT_EQ(json::parse(list.out, nullptr, false), json::array()) << list.out;
}

// Every event a subscriber got as durable is in the journal after kill -9.
TEST_F(JournalTest, EventsAreSentDurableAndSurviveKill9) {
  const std::string p = StartProject();
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
      tools::ControlClient::Connect(daemon_.socket_path());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Subscribe(p).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ExpectOk(
        Tool(p, "fs.write",
             {{"path", absl::StrCat("f", i, ".txt")}, {"content", "x"}})));
  }
  uint64_t last_seq = 0;
  int durable = 0;
  for (;;) {
    absl::StatusOr<proto::Event> event = (*client)->NextEvent(absl::Seconds(2));
    if (!event.ok()) break;
    EXPECT_TRUE(event->durable()) << event->name();
    EXPECT_GT(event->seq(), last_seq) << event->name();
    last_seq = event->seq();
    ++durable;
  }
  ASSERT_GE(durable, 10);  // started/completed per call at least
  ASSERT_TRUE(Kill9AndRestart()) << daemon_.Log();
  // The journal holds every one of them: the next event's seq continues
  // after them.
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> again =
      tools::ControlClient::Connect(daemon_.socket_path());
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Subscribe(p).ok());
  ASSERT_TRUE(ExpectOk(Tool(p, "fs.list", json::object())));
  absl::StatusOr<proto::Event> next = (*again)->NextEvent(absl::Seconds(5));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_GT(next->seq(), last_seq);
}

// A conversation the daemon answered is still there for the incident
// response after kill -9: its timeline comes from the journal, both sources.
TEST_F(JournalTest, ConversationTimelineSurvivesKill9) {
  const std::string p = StartProject();
  RunResult r = Cli({"conversation", "start", p, "--id", "c-kill9"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  r = Cli({"conversation", "send", p, "c-kill9", "--text", "please list skills",
           "--correlation-id", "corr-kill9"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  ASSERT_TRUE(WaitJournalIdle(p));
  ASSERT_TRUE(Kill9AndRestart()) << daemon_.Log();
  r = Cli({"timeline", p, "c-kill9", "--json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const json timeline = json::parse(r.out, nullptr, false);
  std::set<std::string> events, sources;
  for (const json& e : timeline["entries"]) {
    events.insert(e["event"].get<std::string>());
    sources.insert(e["source"].get<std::string>());
    EXPECT_EQ(e["conversation_id"], "c-kill9") << e;
  }
  EXPECT_TRUE(events.count("conversation.user.message")) << r.out;
  EXPECT_TRUE(events.count("conversation.assistant.message")) << r.out;
  EXPECT_TRUE(events.count("tool.completed")) << r.out;
  EXPECT_EQ(sources, (std::set<std::string>{"conversation", "telemetry"}));
}

TEST_F(JournalTest, AFullDiskIsReportedAndNothingWrittenBeforeIsLost) {
  // Restart on a 2 MiB state directory.
  daemon_.Signal(SIGKILL);
  daemon_.Wait(20);
  if (!kPrivateMounts || mount("tmpfs", daemon_.state_dir().c_str(), "tmpfs", 0,
                               "size=2m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
  const std::string p = StartProject();
  const ToolResponse before = Tool(p, "exec", ExecArgs({"echo", "before"}));
  ASSERT_TRUE(ExpectOk(before));
  const std::string before_id = before.doc.value("call_id", "");
  ASSERT_TRUE(WaitJournalIdle(p));
  {
    std::ofstream filler(daemon_.state_dir() + "/filler");
    const std::string block(64 << 10, 'f');
    while (filler.write(block.data(), block.size())) {
    }
  }
  for (int i = 0; i < 20; ++i) {
    Tool(p, "exec",
         ExecArgs({"sh", "-c", "head -c 3000 /dev/zero | tr '\\0' x"}));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return Diagnostics(p)["health"].value("journal", "") == "write_failed";
      },
      20))
      << Diagnostics(p).dump();
  const json d = Diagnostics(p);
  EXPECT_EQ(d["health"]["status"], "degraded");
  EXPECT_TRUE(d["journal"]["failing"].get<bool>());
  EXPECT_GT(d["journal"]["pending"].get<int>(), 0);
  EXPECT_NE(daemon_.Log().find("jcs: journal: write failed"),
            std::string::npos);
  // Space comes back: the queue drains, health recovers.
  ASSERT_EQ(unlink((daemon_.state_dir() + "/filler").c_str()), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        const json now = Diagnostics(p);
        return now["journal"]["pending"] == 0 && !now["journal"]["failing"];
      },
      20))
      << Diagnostics(p).dump();
  // What was written before the disk filled is intact after a kill -9.
  ASSERT_TRUE(Kill9AndRestart()) << daemon_.Log();
  EXPECT_EQ(ToolResult(p, before_id, false)["result"]["stdout"], "before\n");
  // The tmpfs goes with this process's mount namespace.
}

}  // namespace
}  // namespace jcs::serve_test
