#include "telemetry/bus.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::telemetry {
namespace {

TEST(BusTest, CountsPerProjectAndName) {
  Bus bus;
  bus.Emit("tool.started", {{"project_id", "p1"}, {"tool", "exec"}});
  bus.Emit("tool.started", {{"project_id", "p1"}});
  bus.Emit("tool.started", {{"project_id", "p2"}});
  bus.Emit("supervisor.started", nlohmann::json::object());
  EXPECT_EQ(bus.Count("p1", "tool.started"), 2u);
  EXPECT_EQ(bus.Count("p2", "tool.started"), 1u);
  EXPECT_EQ(bus.Count("p1", "tool.completed"), 0u);
  EXPECT_EQ(bus.Count("nope", "tool.started"), 0u);
  EXPECT_EQ(bus.Count("", "supervisor.started"), 1u);
  const nlohmann::json snap = bus.Snapshot("p1");
  EXPECT_EQ(snap["project_id"], "p1");
  EXPECT_EQ(snap["total_events"], 2);
  EXPECT_EQ(snap["event_counts"]["tool.started"], 2);
  EXPECT_TRUE(bus.Snapshot("")["project_id"].is_null());
}

TEST(BusTest, RecentEventsAreNewestFirstAndBounded) {
  Bus::Options options;
  options.recent_events_cap = 3;
  Bus bus(options);
  for (int i = 0; i < 5; ++i) {
    bus.Emit("tool.completed", {{"project_id", "p"},
                                {"correlation_id", "c" + std::to_string(i)},
                                {"tool", "exec"}});
  }
  const nlohmann::json recent = bus.Snapshot("p")["recent_events"];
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0]["correlation_id"], "c4");
  EXPECT_EQ(recent[2]["correlation_id"], "c2");
  EXPECT_EQ(recent[0]["event"], "tool.completed");
  EXPECT_EQ(recent[0]["tool"], "exec");
  EXPECT_TRUE(recent[0]["conversation_id"].is_null());
  EXPECT_EQ(bus.Snapshot("p")["total_events"], 5);
}

TEST(BusTest, FailedEventsAndErrorPayloadsAreRecentErrors) {
  Bus::Options options;
  options.recent_errors_cap = 2;
  Bus bus(options);
  bus.Emit("tool.completed", {{"project_id", "p"}});
  bus.Emit("tool.failed", {{"project_id", "p"}, {"reason", "timeout"}});
  bus.Emit("policy.denied", {{"project_id", "p"}, {"error", "x"}});
  nlohmann::json errors = bus.Snapshot("p")["recent_errors"];
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["event"], "policy.denied");
  EXPECT_EQ(errors[0]["error"], "x");
  EXPECT_EQ(errors[1]["reason"], "timeout");
  bus.Emit("x.failed", {{"project_id", "p"}});
  errors = bus.Snapshot("p")["recent_errors"];
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["event"], "x.failed");
  EXPECT_EQ(errors[1]["event"], "policy.denied");
}

TEST(BusTest, SinksSeeEveryEventInOrderWithProjectAndTime) {
  Bus::Options options;
  options.clock = [] { return absl::FromUnixSeconds(1795000000); };
  Bus bus(options);
  std::vector<std::string> seen;
  bus.AddSink([&](const Event& e) {
    seen.push_back(e.name + "@" + e.project_id + "@" + Rfc3339(e.at));
  });
  bus.Emit("a", {{"project_id", "p"}});
  bus.Emit("b", nlohmann::json("not an object"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "a@p@2026-11-18T11:06:40.000Z");
  EXPECT_EQ(seen[1], "b@@2026-11-18T11:06:40.000Z");
}

TEST(BusTest, HeldEventsWaitForTheLastHoldAndKeepTheirTimeAndOrder) {
  int64_t now = 1795000000;
  Bus::Options options;
  options.clock = [&now] { return absl::FromUnixSeconds(now); };
  Bus bus(options);
  std::vector<std::string> seen;
  std::string payload_a;
  bus.AddSink([&](const Event& e) {
    seen.push_back(e.name + "@" + Rfc3339(e.at));
    if (e.name == "a") payload_a = e.payload.dump();
    // A sink that emits (an alert rule) is served in place, as without a
    // hold.
    if (e.name == "b") bus.Emit("alert.b", {{"project_id", "p"}});
  });
  {
    Bus::Held outer = bus.Hold();
    bus.Emit("a", {{"project_id", "p"}, {"token", "sk-live-0123456789abcdef"}});
    {
      Bus::Held inner = bus.Hold();
      ++now;
      bus.Emit("b", {{"project_id", "p"}});
    }
    // The inner hold's end releases nothing: the outer still holds.
    EXPECT_TRUE(seen.empty());
    EXPECT_EQ(bus.Count("p", "a"), 0u);
    ++now;
    bus.Emit("c", {{"project_id", "p"}});
  }
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], "a@2026-11-18T11:06:40.000Z");
  EXPECT_EQ(seen[1], "b@2026-11-18T11:06:41.000Z");
  EXPECT_EQ(seen[2], "alert.b@2026-11-18T11:06:42.000Z");
  EXPECT_EQ(seen[3], "c@2026-11-18T11:06:42.000Z");
  EXPECT_EQ(bus.Count("p", "a"), 1u);
  // Released events are redacted like any other.
  EXPECT_NE(payload_a.find("token"), std::string::npos);
  EXPECT_EQ(payload_a.find("sk-live-0123456789abcdef"), std::string::npos);
  // Without a hold, events are processed at once again.
  bus.Emit("d", {{"project_id", "p"}});
  EXPECT_EQ(seen.size(), 5u);
}

// Acceptance case runtime_hardening 44: redacted before anything keeps it.
TEST(BusTest, SecretsAreRedactedBeforeTheRingsAndTheSinks) {
  Bus bus;
  std::string sunk;
  bus.AddSink([&](const Event& e) { sunk = e.payload.dump(); });
  bus.Emit("tool.failed",
           {{"project_id", "p"},
            {"reason", "upstream said authorization=Bearer dont-log-this"},
            {"error",
             {{"api_key", "dont-log-this"},
              {"authorization", "dont-log-this"},
              {"nested", {{"token", "dont-log-this"}}}}}});
  const nlohmann::json error = bus.Snapshot("p")["recent_errors"][0];
  EXPECT_EQ(error["error"]["api_key"], "[REDACTED]");
  EXPECT_EQ(error["error"]["authorization"], "[REDACTED]");
  EXPECT_EQ(error["error"]["nested"]["token"], "[REDACTED]");
  EXPECT_NE(error["reason"].get<std::string>().find("[REDACTED]"),
            std::string::npos);
  EXPECT_EQ(bus.Snapshot("p").dump().find("dont-log-this"), std::string::npos);
  EXPECT_FALSE(sunk.empty());
  EXPECT_EQ(sunk.find("dont-log-this"), std::string::npos) << sunk;
}

// Issue 12: each entry says what failed (the tool runtime's shapes: the
// triage fields in `detail`, policy decisions naming the tool tool_name).
TEST(BusTest, RecentEntriesKeepWhatTriageNeeds) {
  Bus bus;
  bus.Emit("tool.failed",
           {{"project_id", "p"},
            {"tool", "fs.read"},
            {"call_id", "call-1"},
            {"reason", "outside_root"},
            {"detail", {{"path", "link/x"}, {"resolved_path", "/etc/x"}}}});
  bus.Emit("tool.failed",
           {{"project_id", "p"},
            {"tool", "fs.read"},
            {"reason", "not_found"},
            {"detail", {{"path", "gone"}, {"errno", "ENOENT"}}}});
  bus.Emit("security.network_denied", {{"project_id", "p"},
                                       {"tool_name", "exec.network"},
                                       {"reason", "network_endpoint_denied"},
                                       {"host", "evil.test"},
                                       {"port", 443}});
  bus.Emit("tool.failed", {{"project_id", "p"},
                           {"tool", "exec"},
                           {"reason", "timeout"},
                           {"detail", {{"timeout_ms", 200}}}});
  const nlohmann::json snap = bus.Snapshot("p");
  const nlohmann::json& errors = snap["recent_errors"];
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0]["tool"], "exec");
  EXPECT_EQ(errors[0]["reason"], "timeout");
  EXPECT_EQ(errors[0]["timeout_ms"], 200);
  EXPECT_EQ(errors[1]["path"], "gone");
  EXPECT_EQ(errors[1]["errno"], "ENOENT");
  EXPECT_EQ(errors[2]["tool"], "fs.read");
  EXPECT_EQ(errors[2]["call_id"], "call-1");
  EXPECT_EQ(errors[2]["path"], "link/x");
  EXPECT_EQ(errors[2]["resolved_path"], "/etc/x");
  EXPECT_FALSE(errors[2].contains("host"));
  const nlohmann::json& network = snap["recent_events"][1];
  EXPECT_EQ(network["event"], "security.network_denied");
  EXPECT_EQ(network["tool"], "exec.network");
  EXPECT_EQ(network["host"], "evil.test");
  EXPECT_EQ(network["port"], 443);
  EXPECT_EQ(network["reason"], "network_endpoint_denied");
  EXPECT_EQ(snap["recent_events"][0]["timeout_ms"], 200);
}

// The rings are kept serialized: a field that is not valid UTF-8 (a tool's
// output, a path) is kept with U+FFFD in place of the bad bytes, never
// thrown on.
TEST(BusTest, RingEntriesWithInvalidUtf8AreKept) {
  Bus bus;
  const std::string bad = "notes\xff\xfe.txt";
  bus.Emit("tool.failed", {{"project_id", "p"},
                           {"correlation_id", bad},
                           {"detail", {{"path", bad}}}});
  const nlohmann::json snap = bus.Snapshot("p");
  ASSERT_EQ(snap["recent_events"].size(), 1u);
  ASSERT_EQ(snap["recent_errors"].size(), 1u);
  const std::string kept = snap["recent_events"][0]["correlation_id"];
  EXPECT_EQ(kept, "notes\xef\xbf\xbd\xef\xbf\xbd.txt");
  EXPECT_EQ(snap["recent_errors"][0]["correlation_id"], kept);
  EXPECT_EQ(snap["recent_events"][0]["event"], "tool.failed");
}

TEST(BusTest, NonStringProjectIdCountsAsGlobal) {
  Bus bus;
  bus.Emit("a", {{"project_id", 42}});
  EXPECT_EQ(bus.Count("", "a"), 1u);
}

TEST(BusTest, ForgetDropsAProjectsState) {
  Bus bus;
  bus.Emit("a", {{"project_id", "p"}});
  bus.Forget("p");
  EXPECT_EQ(bus.Count("p", "a"), 0u);
  EXPECT_EQ(bus.Snapshot("p")["total_events"], 0);
}

}  // namespace
}  // namespace jcs::telemetry
