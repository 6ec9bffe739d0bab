// Conversations through the real daemon and the real `jcs conversation` CLI
// (issue 12; spec §7, §1.2), porting the original acceptance cases:
//   runtime_hardening 4: CorrelationIdIsPropagatedAcrossLlmToolAndPolicy
//   runtime_hardening 5: CorrelationIdIsGeneratedAndReused
//   runtime_hardening 6: IncidentTimelineMergesBothSourcesBoundedAndFiltered
//   runtime_hardening 7: CancelledRunningCallIsCancelledInTheIncidentTimeline
//   runtime_hardening 8, 9, 12:
//     IncidentTimelineOutlivesTheConversationAndProject
//   runtime_hardening 19: CancelEmitsToolCancelledForPendingCalls
//   runtime_hardening 20: AsyncToolRequestCompletesInTheBackground
//   runtime_hardening 53: InvalidAdapterFailsTurnsAndConversationStaysUsable
//   runtime_hardening 55: ConcurrentConversationsInManyProjectsStayIsolated
//   runtime_diagnostics 1: DiagnosticsExposeConversationsAndCounters
//   runtime_diagnostics 3: DeniedModelToolCallIsCountedWithoutDegradingHealth
//     (issue 13: health is degraded only while a runbook rule fires)
// jcs adaptations: `command.run.example_command` (case 3 of diagnostics) is
// fs.read, denied the same way by allow_tools; the async call of case 20 is
// an exec of /bin/sleep (jcs has no simulate_delay_ms).
// Beyond the originals: hostile input (oversized signals, forged types, a
// queue flood), cancel and stop leaving no process behind, watch.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"
#include "tests/tool_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

using json = nlohmann::json;

class ConversationTest : public ToolFixture {
 protected:
  // `jcs conversation ARGS...`; stdout parsed (discarded when not JSON).
  json Conv(std::vector<std::string> args, RunResult* raw = nullptr) {
    args.insert(args.begin(), "conversation");
    RunResult r = Cli(args);
    if (raw != nullptr) *raw = r;
    json doc = json::parse(r.out, nullptr, false);
    if (raw == nullptr) {
      EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    }
    return doc;
  }
  std::string StartConversation(const std::string& project,
                                const std::string& id = "") {
    std::vector<std::string> args = {"start", project};
    if (!id.empty()) {
      args.push_back("--id");
      args.push_back(id);
    }
    return Conv(args).value("conversation_id", "");
  }
  // `jcs timeline P C --json [EXTRA...]`: the incident timeline (§5.5),
  // read from the journal.
  json IncidentTimeline(const std::string& p, const std::string& c,
                        std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"timeline", p, c, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = Cli(args);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    return json::parse(r.out, nullptr, false);
  }
  static int CountEntries(const json& incident, const std::string& event,
                          const std::string& source = "") {
    int n = 0;
    for (const json& e : incident["entries"]) {
      n += e["event"] == event && (source.empty() || e["source"] == source);
    }
    return n;
  }
  json Timeline(const std::string& p, const std::string& c) {
    return Conv({"state", p, c, "--projection", "timeline"});
  }
  json Projection(const std::string& p, const std::string& c,
                  const std::string& key) {
    return Conv({"state", p, c, "--projection", key});
  }
  static std::vector<std::string> Types(const json& timeline) {
    std::vector<std::string> out;
    for (const json& e : timeline) out.push_back(e["event_type"]);
    return out;
  }
  static int CountType(const json& timeline, const std::string& type) {
    int n = 0;
    for (const json& e : timeline) n += e["event_type"] == type;
    return n;
  }
  static json Find(const json& timeline, const std::string& type) {
    for (const json& e : timeline) {
      if (e["event_type"] == type) return e;
    }
    return json();
  }
  // An error run: exit 1 and the reason on stderr.
  void ExpectFails(const std::vector<std::string>& args,
                   const std::string& reason) {
    RunResult r;
    Conv(args, &r);
    EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
    EXPECT_NE(r.err.find(reason), std::string::npos) << r.Describe();
  }
  std::unique_ptr<tools::ControlClient> Client() {
    auto client = tools::ControlClient::Connect(daemon_.socket_path());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }
  static std::string ToolRequest(const std::string& name, const json& args,
                                 const json& meta = json::object(),
                                 const std::string& correlation = "") {
    json signal = {{"type", "conversation.tool.requested"},
                   {"data", {{"name", name}, {"args", args}, {"meta", meta}}}};
    if (!correlation.empty()) {
      signal["meta"] = {{"correlation_id", correlation}};
    }
    return signal.dump();
  }
};

// runtime_hardening 4.
TEST_F(ConversationTest, CorrelationIdIsPropagatedAcrossLlmToolAndPolicy) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p, "conv-4");
  ASSERT_EQ(c, "conv-4");
  json snapshot = Conv({"send", p, c, "--text", "please list skills",
                        "--correlation-id", "corr-case-4"});
  EXPECT_EQ(snapshot["status"], "idle") << snapshot;
  EXPECT_EQ(snapshot["settled"], true);
  const json timeline = Timeline(p, c);
  std::set<std::string> ids;
  for (const json& e : timeline) ids.insert(e["correlation_id"]);
  EXPECT_EQ(ids, std::set<std::string>{"corr-case-4"}) << timeline;
  EXPECT_EQ(CountType(timeline, "conversation.tool.requested"), 1);
  const json completed = Find(timeline, "conversation.tool.completed");
  ASSERT_TRUE(completed.is_object()) << timeline;
  EXPECT_EQ(completed["data"]["result"]["correlation_id"], "corr-case-4");
  EXPECT_EQ(completed["data"]["result"]["conversation_id"], "conv-4");
  EXPECT_EQ(completed["data"]["name"], "asset.list");
  const std::string result = completed["data"]["result"].dump();
  EXPECT_NE(result.find("alpha"), std::string::npos) << result;
  EXPECT_EQ(Find(timeline, "conversation.assistant.message")["data"]["content"],
            "Tool asset.list completed.");
  // The policy decision is recorded with the same ids.
  bool decided = false;
  const json policy = Diagnostics(p)["policy"];
  for (const json& d : policy["recent_decisions"]) {
    decided = decided || (d.value("correlation_id", "") == "corr-case-4" &&
                          d.value("conversation_id", "") == "conv-4");
  }
  EXPECT_TRUE(decided) << policy;
}

// runtime_hardening 5.
TEST_F(ConversationTest, CorrelationIdIsGeneratedAndReused) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  EXPECT_EQ(c, "conversation_1");
  Conv({"send", p, c, "--text", "please list skills"});
  const json timeline = Timeline(p, c);
  std::set<std::string> ids;
  for (const json& e : timeline) ids.insert(e["correlation_id"]);
  ASSERT_EQ(ids.size(), 1u) << timeline;
  EXPECT_EQ(ids.begin()->rfind("corr-", 0), 0u);
  EXPECT_EQ(ids.begin()->size(), 25u);  // corr- + 20 hex
  EXPECT_EQ(CountType(timeline, "conversation.tool.completed"), 1);
}

// runtime_hardening 19.
TEST_F(ConversationTest, CancelEmitsToolCancelledForPendingCalls) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  json snapshot = Conv({"cancel", p, c});
  EXPECT_EQ(snapshot["status"], "cancelled");
  snapshot = Conv({"signal", p, c, "--signal",
                   ToolRequest("asset.list", {{"type", "skill"}})});
  ASSERT_EQ(snapshot["pending_tool_calls"].size(), 1u) << snapshot;
  snapshot = Conv({"cancel", p, c, "--correlation-id", "corr-cancel-19"});
  EXPECT_EQ(snapshot["pending_tool_calls"], json::array());
  const json cancelled = Find(Timeline(p, c), "conversation.tool.cancelled");
  ASSERT_TRUE(cancelled.is_object());
  EXPECT_EQ(cancelled["data"]["name"], "asset.list");
  EXPECT_EQ(cancelled["data"]["reason"], "conversation_cancelled");
  EXPECT_EQ(cancelled["correlation_id"], "corr-cancel-19");
  EXPECT_EQ(Projection(p, c, "pending_tool_calls"), json::array());
  EXPECT_GE(Count(p, "conversation.tool.cancelled"), 1);
}

// runtime_hardening 20.
TEST_F(ConversationTest, AsyncToolRequestCompletesInTheBackground) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  json snapshot = Conv({"signal", p, c, "--signal",
                        ToolRequest("exec", ExecArgs({"/bin/sleep", "0.3"}),
                                    {{"run_mode", "async"}}, "corr-async-20")});
  // Answered without waiting for the async call.
  EXPECT_EQ(snapshot["pending_tool_calls"].size(), 1u) << snapshot;
  EXPECT_EQ(CountType(Timeline(p, c), "conversation.tool.completed"), 0);
  json completed;
  ASSERT_TRUE(WaitFor(
      [&] {
        completed = Find(Timeline(p, c), "conversation.tool.completed");
        return completed.is_object();
      },
      30))
      << Timeline(p, c);
  EXPECT_EQ(completed["correlation_id"], "corr-async-20");
  EXPECT_EQ(completed["data"]["result"]["status"], "ok");
  EXPECT_EQ(Projection(p, c, "pending_tool_calls"), json::array());
}

// runtime_hardening 6: the incident timeline merges the conversation's events
// and the telemetry about it, bounded, filtered by correlation id.
TEST_F(ConversationTest, IncidentTimelineMergesBothSourcesBoundedAndFiltered) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p, "conv-6");
  Conv({"send", p, c, "--text", "please list skills", "--correlation-id",
        "corr-6"});
  Conv({"send", p, c, "--text", "please list skills", "--correlation-id",
        "corr-6-other"});
  const json incident = IncidentTimeline(
      p, c, {"--limit", "50", "--correlation-id", "  corr-6 "});
  EXPECT_EQ(incident["conversation_id"], "conv-6");
  EXPECT_EQ(incident["correlation_id"], "corr-6");
  EXPECT_EQ(incident["limit"], 50);
  const size_t entries = incident["entries"].size();
  EXPECT_GT(entries, 0u);
  EXPECT_LE(entries, 50u);
  EXPECT_GE(incident["total_entries"].get<size_t>(), entries);
  std::set<std::string> sources;
  for (const json& e : incident["entries"]) {
    EXPECT_EQ(e["conversation_id"], "conv-6") << e;
    EXPECT_EQ(e["correlation_id"], "corr-6") << e;
    EXPECT_EQ(e["event"].get<std::string>().find("event_ingested"),
              std::string::npos)
        << e;
    sources.insert(e["source"]);
  }
  EXPECT_EQ(sources, (std::set<std::string>{"conversation", "telemetry"}));
  EXPECT_EQ(CountEntries(incident, "conversation.tool.completed"), 1);
  EXPECT_EQ(CountEntries(incident, "tool.completed", "telemetry"), 1);
  // A limit keeps the newest entries.
  const json full = IncidentTimeline(p, c);
  const json two = IncidentTimeline(p, c, {"--limit", "2"});
  const size_t n = full["entries"].size();
  ASSERT_GT(n, 2u);
  ASSERT_EQ(two["entries"].size(), 2u);
  EXPECT_EQ(two["total_entries"], n);
  EXPECT_EQ(two["entries"][0], full["entries"][n - 2]);
  EXPECT_EQ(two["entries"][1], full["entries"][n - 1]);
  EXPECT_EQ(two["entries"][1]["correlation_id"], "corr-6-other");
}

// runtime_hardening 7: a running call killed by the conversation's cancel
// shows up as cancelled, never as failed.
TEST_F(ConversationTest, CancelledRunningCallIsCancelledInTheIncidentTimeline) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  Conv({"signal", p, c, "--signal",
        ToolRequest("exec", ExecArgs({"/bin/sleep", "30"}),
                    {{"run_mode", "async"}}, "corr-7")});
  ASSERT_TRUE(WaitFor([&] { return Count(p, "tool.started") >= 1; }, 30));
  Conv({"cancel", p, c, "--correlation-id", "corr-7-cancel"});
  const json incident = IncidentTimeline(p, c);
  EXPECT_EQ(CountEntries(incident, "conversation.tool.cancelled"), 1)
      << incident;
  EXPECT_EQ(CountEntries(incident, "conversation.tool.failed"), 0);
  EXPECT_EQ(CountEntries(incident, "tool.failed"), 0);
  EXPECT_EQ(CountEntries(incident, "tool.cancelled", "telemetry"), 1);
}

// runtime_hardening 8 and 9: after the conversation and its project stop, the
// timeline is served from the journal, correlation filter included.
TEST_F(ConversationTest, IncidentTimelineOutlivesTheConversationAndProject) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p, "conv-8");
  Conv({"send", p, c, "--text", "please list skills", "--correlation-id",
        "corr-8"});
  Conv({"send", p, c, "--text", "hello", "--correlation-id", "corr-9"});
  Conv({"stop", p, c});
  RunResult stopped = Cli({"project", "stop", p});
  ASSERT_TRUE(stopped.exited && stopped.exit_code == 0) << stopped.Describe();
  const json all = IncidentTimeline(p, c);
  EXPECT_GE(CountEntries(all, "conversation.user.message", "conversation"), 2);
  EXPECT_EQ(CountEntries(all, "conversation.stopped", "conversation"), 1);
  for (const json& e : all["entries"]) {
    EXPECT_NE(e["event"].get<std::string>().rfind("conv.", 0), 0u) << e;
  }
  const json filtered = IncidentTimeline(p, c, {"--correlation-id", "corr-9"});
  ASSERT_FALSE(filtered["entries"].empty());
  for (const json& e : filtered["entries"]) {
    EXPECT_EQ(e["correlation_id"], "corr-9") << e;
  }
  EXPECT_EQ(CountEntries(filtered, "conversation.user.message"), 1);
  // runtime_hardening 12.
  RunResult missing = Cli({"timeline", p, "missing-c1"});
  EXPECT_TRUE(missing.exited && missing.exit_code == 1) << missing.Describe();
  EXPECT_NE(missing.err.find("conversation_not_found: missing-c1"),
            std::string::npos)
      << missing.Describe();
}

// runtime_hardening 53.
TEST_F(ConversationTest, InvalidAdapterFailsTurnsAndConversationStaysUsable) {
  const std::string p = StartProject({{"llm_adapter", "missing_adapter"}});
  const std::string c = StartConversation(p);
  for (const char* text : {"one", "two"}) {
    json snapshot = Conv({"send", p, c, "--text", text});
    EXPECT_EQ(snapshot["status"], "idle") << snapshot;
  }
  const json timeline = Timeline(p, c);
  EXPECT_GE(CountType(timeline, "conversation.llm.failed"), 2);
  EXPECT_EQ(Find(timeline, "conversation.llm.failed")["data"]["reason"],
            "invalid_llm_adapter");
  EXPECT_EQ(Conv({"state", p, c})["domain"]["status"], "idle");
}

// runtime_hardening 55: 3 projects x 4 conversations, 12 at once.
TEST_F(ConversationTest, ConcurrentConversationsInManyProjectsStayIsolated) {
  std::vector<std::string> projects;
  for (int i = 0; i < 3; ++i) {
    const std::string root =
        dir_.MakeOwnedDir(absl::StrCat("p", i), kProjectUid, kProjectGid);
    RunResult r = Cli({"project", "start", root});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    projects.push_back(std::string(absl::StripAsciiWhitespace(r.out)));
  }
  struct Job {
    std::string project, conversation, text;
  };
  std::vector<Job> jobs;
  for (const std::string& p : projects) {
    for (int k = 0; k < 4; ++k) {
      jobs.push_back({p, StartConversation(p), absl::StrCat(p, "-msg-", k)});
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (const Job& job : jobs) {
    threads.emplace_back([&, job] {
      RunResult r = Cli({"conversation", "send", job.project, job.conversation,
                         "--text", job.text});
      if (r.exited && r.exit_code == 0) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 12);
  for (const Job& job : jobs) {
    const json timeline = Timeline(job.project, job.conversation);
    std::vector<json> messages;
    for (const json& e : timeline) {
      EXPECT_EQ(e["conversation_id"], job.conversation);
      EXPECT_EQ(e["project_id"], job.project);
      if (e["event_type"] == "conversation.user.message" ||
          e["event_type"] == "conversation.assistant.message") {
        messages.push_back(e);
      }
    }
    ASSERT_EQ(messages.size(), 2u) << timeline;
    EXPECT_EQ(messages[0]["data"]["content"], job.text);
    EXPECT_EQ(messages[1]["data"]["content"], "Acknowledged: " + job.text);
  }
}

// runtime_diagnostics 1.
TEST_F(ConversationTest, DiagnosticsExposeConversationsAndCounters) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p, "diag");
  Conv({"send", p, c, "--text", "hello"});
  const json d = Diagnostics(p);
  EXPECT_EQ(d["health"]["status"], "ok") << d["health"];
  EXPECT_EQ(d["health"]["conversation_count"], 1);
  EXPECT_EQ(d["policy"]["project_id"], p);
  EXPECT_GE(Count(d, "project.started"), 1);
  EXPECT_EQ(Count(d, "conversation.started"), 1);
  EXPECT_GE(Count(d, "conversation.event_ingested"), 1);
  ASSERT_EQ(d["conversations"].size(), 1u);
  const json& conv = d["conversations"][0];
  EXPECT_EQ(conv["conversation_id"], "diag");
  EXPECT_GE(conv["event_count"].get<int>(), 1);
  EXPECT_EQ(conv["pending_tool_call_count"], 0);
  const json direct = Projection(p, c, "diagnostics");
  EXPECT_EQ(direct["status"], "idle");
  for (const char* key :
       {"mode", "mode_state", "active_run", "run_history_count",
        "pending_step_count", "event_count", "queue_size",
        "pending_tool_call_count", "pending_subagent_count", "last_signal_type",
        "drain_iteration", "max_queue_size", "max_drain_steps"}) {
    EXPECT_TRUE(direct.contains(key)) << key;
  }
  // Sorted by id.
  StartConversation(p, "a-first");
  const json two = Diagnostics(p)["conversations"];
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0]["conversation_id"], "a-first");
}

// runtime_diagnostics 3, with issue 13's health: the failure is counted and
// in recent_errors, but one expected denial crosses no runbook threshold, so
// the project stays "ok" (health.status is degraded only while a rule fires).
TEST_F(ConversationTest, DeniedModelToolCallIsCountedWithoutDegradingHealth) {
  const std::string p = StartProject({{"allow_tools", {"asset.list"}}});
  const std::string c = StartConversation(p);
  Conv({"send", p, c, "--text", "read it", "--llm",
        json({{"tool_calls",
               {{{"name", "fs.read"}, {"args", {{"path", "README.md"}}}}}}})
            .dump()});
  const json failed = Find(Timeline(p, c), "conversation.tool.failed");
  ASSERT_TRUE(failed.is_object()) << Timeline(p, c);
  EXPECT_EQ(failed["data"]["reason"], "denied");
  const json d = Diagnostics(p);
  EXPECT_EQ(d["health"]["status"], "ok") << d["health"];
  EXPECT_GE(d["health"]["error_count"].get<int>(), 1) << d["health"];
  EXPECT_EQ(d["health"]["firing_rules"], json::array()) << d["health"];
  EXPECT_GE(Count(d, "tool.failed"), 1);
  EXPECT_FALSE(d["telemetry"]["recent_errors"].empty());
}

TEST_F(ConversationTest, HostileSignalsAreRefusedWithSpecificErrors) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  // A 1 MiB message (past any argv: through the client library): refused
  // before it is parsed, nothing kept.
  auto client = Client();
  ASSERT_NE(client, nullptr);
  for (size_t size : {size_t{300} << 10, size_t{1} << 20}) {
    absl::StatusOr<std::string> r = client->ConversationCall(
        p, c,
        json({{"type", "conversation.user.message"},
              {"data", {{"content", std::string(size, 'x')}}}})
            .dump());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message().substr(0, 17), "signal_too_large:")
        << r.status();
  }
  ExpectFails(
      {"signal", p, c, "--signal",
       json({{"type", "conversation.tool.completed"}, {"data", json::object()}})
           .dump()},
      "external_type_not_allowed: conversation.tool.completed");
  ExpectFails({"signal", p, c, "--signal",
               json({{"type", "conversation.cmd.ingest"}}).dump()},
              "reserved_type");
  ExpectFails(
      {"signal", p, c, "--signal",
       json({{"type", "conversation.user.message"}, {"content", "flat"}})
           .dump()},
      "missing_data_envelope");
  ExpectFails({"send", p, "nope", "--text", "x"},
              "conversation_not_found: nope");
  ExpectFails({"state", p, c, "--projection", "secrets"},
              "projection_not_found");
  ExpectFails({"start", p, "--id", "../../etc"}, "invalid_conversation_id");
  ExpectFails({"start", p, "--id", c}, "conversation_already_started");
  EXPECT_EQ(Timeline(p, c), json::array());
}

TEST_F(ConversationTest, SecretsAreRedactedInWhatClientsSee) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  Conv({"send", p, c, "--text", "my key is sk-abcdefghijklmnopqrstuvwx"});
  const std::string timeline = Timeline(p, c).dump();
  EXPECT_EQ(timeline.find("sk-abcdefghijklmnopqrstuvwx"), std::string::npos);
  EXPECT_NE(timeline.find("[REDACTED]"), std::string::npos);
}

// A flood of messages while a run holds the conversation: overflow events,
// a bounded queue; then cancel kills the running tool's process tree and no
// late completion follows.
TEST_F(ConversationTest, QueueFloodOverflowsAndCancelLeavesNoProcess) {
  const std::string p = StartProject({{"conversation_max_queue_size", 4}});
  const std::string c = StartConversation(p);
  const std::string marker = UniqueSleepMarker();
  const json directive = {
      {"tool_calls",
       {{{"name", "exec"}, {"args", ExecArgs({"/bin/sleep", marker})}}}}};
  json receipt = Conv(
      {"send", p, c, "--text", "hold", "--llm", directive.dump(), "--async"});
  EXPECT_EQ(receipt["ingested"], "queued");
  ASSERT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) > 0; }, 30));
  auto client = Client();
  ASSERT_NE(client, nullptr);
  int overflow = 0;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::string> r = client->ConversationCast(
        p, c,
        json({{"type", "conversation.user.message"},
              {"data", {{"content", std::string(1000, 'f')}}}})
            .dump());
    ASSERT_TRUE(r.ok()) << r.status();
    overflow += json::parse(*r)["ingested"] == "overflow";
  }
  EXPECT_EQ(overflow, 196);
  json diag = Projection(p, c, "diagnostics");
  EXPECT_EQ(diag["queue_size"], 4);
  EXPECT_EQ(Count(p, "conversation.queue.overflow"), 196);
  json snapshot = Conv({"cancel", p, c, "--correlation-id", "corr-flood"});
  EXPECT_EQ(snapshot["status"], "cancelled");
  EXPECT_EQ(snapshot["queue_size"], 0);
  // The cancel answers once the whole tree is dead.
  EXPECT_EQ(CountProcessesWithArg(marker), 0);
  const json timeline = Timeline(p, c);
  const json cancelled = Find(timeline, "conversation.tool.cancelled");
  EXPECT_EQ(cancelled["correlation_id"], "corr-flood");
  EXPECT_EQ(cancelled["data"]["name"], "exec");
  EXPECT_GE(Count(p, "tool.cancelled"), 1);
  EXPECT_EQ(CountType(timeline, "conversation.tool.completed"), 0);
  EXPECT_EQ(CountType(timeline, "conversation.tool.failed"), 0);
  // Still usable after resume.
  Conv({"resume", p, c});
  EXPECT_EQ(Conv({"send", p, c, "--text", "after"})["status"], "idle");
}

TEST_F(ConversationTest, StopConversationAndStopProjectKillRunningCalls) {
  const std::string p = StartProject();
  const std::string c1 = StartConversation(p);
  const std::string c2 = StartConversation(p);
  const std::string m1 = UniqueSleepMarker();
  const std::string m2 = UniqueSleepMarker();
  for (const auto& [c, m] : {std::pair{c1, m1}, std::pair{c2, m2}}) {
    Conv({"signal", p, c, "--signal",
          ToolRequest("exec", ExecArgs({"/bin/sleep", m}),
                      {{"run_mode", "async"}})});
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return CountProcessesWithArg(m1) > 0 && CountProcessesWithArg(m2) > 0;
      },
      30));
  auto watcher = Client();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(watcher->Subscribe(p).ok());
  Conv({"stop", p, c1});
  EXPECT_EQ(CountProcessesWithArg(m1), 0);
  EXPECT_GT(CountProcessesWithArg(m2), 0);
  ExpectFails({"state", p, c1}, "conversation_not_found");
  RunResult r = Cli({"project", "stop", p});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(CountProcessesWithArg(m2), 0);
  std::set<std::string> stopped;
  bool project_stopped = false;
  while (!project_stopped) {
    absl::StatusOr<proto::Event> e = watcher->NextEvent(absl::Seconds(10));
    ASSERT_TRUE(e.ok()) << e.status();
    if (e->name() == "conversation.stopped") {
      stopped.insert(json::parse(e->payload_json())["conversation_id"]);
    }
    project_stopped = e->name() == "project.stopped";
  }
  EXPECT_EQ(stopped, (std::set<std::string>{c1, c2}));
}

TEST_F(ConversationTest, WatchPrintsTheConversationsEventsAsJsonLines) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  const std::string other = StartConversation(p);
  RunResult watch;
  std::atomic<bool> done{false};
  std::thread t([&] {
    watch = Cli({"conversation", "watch", p, c, "--max-events", "6"});
    done = true;
  });
  // The watch subscribes at some point after it starts: send until it has
  // seen enough (bounded by the deadline).
  int sent = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        if (done) return true;
        Conv({"send", p, other, "--text", "not mine"});
        Conv({"send", p, c, "--text", absl::StrCat("mine ", sent++)});
        return done.load();
      },
      30));
  t.join();
  ASSERT_TRUE(watch.exited && watch.exit_code == 0) << watch.Describe();
  std::vector<std::string> lines =
      absl::StrSplit(watch.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << watch.out;
  for (const std::string& line : lines) {
    const json e = json::parse(line, nullptr, false);
    ASSERT_TRUE(e.is_object()) << line;
    EXPECT_EQ(e["payload"]["conversation_id"], c);
    EXPECT_EQ(e["name"], e["payload"]["event_type"]);
  }
}

// Another client may not start, drive, read or watch the conversations of a
// project it did not start.
TEST_F(ConversationTest, OtherClientsCannotUseAProjectsConversations) {
  constexpr uid_t kOther = 1000;
  Daemon daemon(
      absl::StrCat("socket_mode: 0666\nallowed_uids: ", kOther, "\n"));
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const auto as_root = [&](std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(daemon.socket_path());
    return RunJcs(args, TimeoutAfter(60));
  };
  // The CLI as uid 1000: the runfiles sit under root's home, so a copy.
  TempDir bin;
  const std::string copy = bin.Sub("jcs");
  std::filesystem::copy_file(JcsBinary(), copy);
  ASSERT_EQ(chmod(copy.c_str(), 0755), 0);
  const auto as_other = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     "--reuid",
                                     std::to_string(kOther),
                                     "--regid",
                                     std::to_string(kOther),
                                     "--clear-groups",
                                     "--",
                                     copy,
                                     "conversation"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--socket");
    argv.push_back(daemon.socket_path());
    return RunProgram(argv, TimeoutAfter(60));
  };
  RunResult r = as_root({"project", "start", root_});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const std::string p(absl::StripAsciiWhitespace(r.out));
  r = as_root({"conversation", "start", p, "--id", "victim"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  r = as_root({"conversation", "send", p, "victim", "--text", "private"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"start", p, "--id", "mine"},
           {"send", p, "victim", "--text", "injected"},
           {"cancel", p, "victim"},
           {"state", p, "victim", "--projection", "timeline"},
           {"state", p, "victim"},
           {"stop", p, "victim"},
           {"watch", p, "victim", "--max-events", "1"}}) {
    const RunResult denied = as_other(args);
    EXPECT_TRUE(denied.exited && denied.exit_code == 1) << denied.Describe();
    EXPECT_NE(denied.err.find("unauthorized"), std::string::npos)
        << denied.Describe();
    EXPECT_EQ(denied.out.find("private"), std::string::npos);
  }
  r = as_root(
      {"conversation", "state", p, "victim", "--projection", "timeline"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.out.find("injected"), std::string::npos);
  EXPECT_EQ(CountType(json::parse(r.out), "conversation.user.message"), 1);
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// A deeply nested signal (well under the size cap) must not take the daemon
// down by recursion: refused with the depth named, the daemon still answers.
TEST_F(ConversationTest, DeeplyNestedSignalIsRefusedAndTheDaemonLives) {
  const std::string p = StartProject();
  const std::string c = StartConversation(p);
  auto client = Client();
  ASSERT_NE(client, nullptr);
  const int depth = 100000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  for (const std::string& signal :
       {absl::StrCat(R"({"type":"conversation.user.message","data":)",
                     R"({"content":"x","llm":{"x":)", nested, "}}}"),
        absl::StrCat(R"({"type":"conversation.user.message","data":)",
                     R"({"content":"x"},"meta":{"x":)", nested, "}}")}) {
    absl::StatusOr<std::string> r = client->ConversationCall(p, c, signal);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("nested deeper than 64"),
              std::string::npos)
        << r.status();
  }
  EXPECT_EQ(PingError(daemon_.socket_path()), "");
  EXPECT_EQ(Conv({"send", p, c, "--text", "still here"})["status"], "idle");
}

// The same for a tool call's args and meta: the daemon answers (a schema
// error or a result) and lives.
TEST_F(ConversationTest, DeeplyNestedToolArgsDoNotTakeTheDaemonDown) {
  const std::string p = StartProject();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  const int depth = 100000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  absl::StatusOr<std::string> r = client->RunTool(
      p, "asset.list", absl::StrCat(R"({"type":)", nested, "}"), "{}");
  EXPECT_TRUE(r.ok()) << r.status();
  r = client->RunTool(p, "asset.list", R"({"type":"skill"})",
                      absl::StrCat(R"({"x":)", nested, "}"));
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(PingError(daemon_.socket_path()), "");
}

}  // namespace
}  // namespace jcs::serve_test
