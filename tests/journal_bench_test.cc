// Keeps tools/journal_bench from rotting: runs both of its parts with tiny
// numbers (a real `jcs serve` for the daemon part) and checks that its JSON
// parses and that the figures are consistent with what was asked: every
// offered event committed and counted once, latencies ordered, the daemon's
// memory read, every conversation settled and its timeline the size its
// diagnostics report. Bad flags fail with the flag's name.
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

using json = nlohmann::json;

std::string BenchBinary() {
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    const char* dir = getenv(var);
    if (dir == nullptr || dir[0] == '\0') continue;
    return std::string(dir) + "/jcs/tools/journal_bench";
  }
  return "bazel-bin/tools/journal_bench";
}

RunResult Bench(std::vector<std::string> args) {
  args.insert(args.begin(), BenchBinary());
  return RunProgram(args, TimeoutAfter(120));
}

TEST(JournalBenchTest, BothPartsReportConsistentFigures) {
  // /tmp like the daemon tests: the project roots must be reachable by the
  // uid the tools would run as.
  const RunResult r = Bench({"--mode",     "all",        "--json",
                             "--dir",      "/tmp",       "--jcs",
                             JcsBinary(),  "--events",   "3000",
                             "--window",   "500",        "--rates",
                             "0,400",      "--seconds",  "0.5",
                             "--projects", "2",          "--conversations",
                             "3",          "--messages", "6",
                             "--phases",   "2",          "--rounds",
                             "2"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const json doc = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;

  const json& ingest = doc["ingest"];
  ASSERT_TRUE(ingest.is_array());
  ASSERT_EQ(ingest.size(), 2u) << ingest.dump();
  for (const json& row : ingest) {
    SCOPED_TRACE(row.dump());
    EXPECT_FALSE(row.contains("error"));
    const uint64_t events = row["events"];
    EXPECT_EQ(events, row["offered_rate"] == 0 ? 3000u : 200u);
    EXPECT_GT(row["events_per_s"].get<double>(), 0);
    const json& latency = row["commit_latency_ms"];
    EXPECT_GT(latency["p50"].get<double>(), 0);
    EXPECT_LE(latency["p50"].get<double>(), latency["p99"].get<double>());
    EXPECT_LE(latency["p99"].get<double>(), latency["max"].get<double>());
    // Every event was committed in exactly one batch.
    const uint64_t commits = row["commits"];
    ASSERT_GT(commits, 0u);
    EXPECT_NEAR(row["batch"]["mean"].get<double>() * commits, events, 0.5);
    EXPECT_LE(row["batch"]["p50"].get<uint64_t>(),
              row["batch"]["max"].get<uint64_t>());
    EXPECT_EQ(row["dropped"], 0);
    // The payloads are the 300-800 byte events the benchmark claims.
    EXPECT_GE(row["payload_bytes_mean"].get<double>(), 300);
    EXPECT_LE(row["payload_bytes_mean"].get<double>(), 800);
  }
  // The unthrottled run never had more than --window events waiting.
  EXPECT_LE(ingest[0]["batch"]["max"].get<uint64_t>(), 500u);

  const json& daemon = doc["daemon"];
  SCOPED_TRACE(daemon.dump());
  ASSERT_TRUE(daemon.is_object());
  EXPECT_FALSE(daemon.contains("error"));
  EXPECT_EQ(daemon["messages"], 2 * 3 * 6);
  // A message makes event_ingested, user.message, llm.requested,
  // assistant.message and llm.completed.
  EXPECT_GE(daemon["events"].get<uint64_t>(), 5u * 2 * 3 * 6);
  EXPECT_GT(daemon["events_per_s"].get<double>(), 0);
  ASSERT_EQ(daemon["phases"].size(), 2u);
  EXPECT_EQ(daemon["phases"][1]["messages_per_conversation"], 6);
  const uint64_t hwm = daemon["vm_hwm_kib"];
  EXPECT_GT(daemon["vm_rss_kib"]["idle"].get<uint64_t>(), 0u);
  EXPECT_GE(hwm, daemon["vm_rss_kib"]["end"].get<uint64_t>());
  EXPECT_GE(daemon["vm_rss_kib"]["end"].get<uint64_t>(), 1u);
  ASSERT_EQ(daemon["bounds"].size(), 4u);
  for (const json& b : daemon["bounds"]) {
    EXPECT_EQ(b["status"], "idle");
    EXPECT_EQ(b["queue_size"], 0);
    EXPECT_EQ(b["timeline_entries"], b["timeline_size"]);
    EXPECT_EQ(b["timeline_entries"], 4 * 6);  // the four per message above
    EXPECT_EQ(b["timeline_dropped"], 0);
    EXPECT_GE(b["llm_context_entries"].get<uint64_t>(), 2u * 6);
  }
  EXPECT_EQ(daemon["journal"]["pending"], 0);
  EXPECT_EQ(daemon["journal"]["dropped"], 0);
  EXPECT_EQ(daemon["journal"]["durable_seq"], daemon["journal"]["last_seq"]);
  EXPECT_LE(daemon["telemetry_rings"]["recent_events"].get<uint64_t>(), 200u);
  // The second round ran the same workload on fresh projects.
  ASSERT_EQ(daemon["rounds"].size(), 2u);
  EXPECT_EQ(daemon["rounds"][1]["round"], 1);
  EXPECT_EQ(daemon["rounds"][1]["events"], daemon["events"]);
  EXPECT_GT(daemon["rounds"][1]["vm_rss_after_stop_kib"].get<uint64_t>(), 0u);
}

TEST(JournalBenchTest, BadFlagsNameTheFlag) {
  for (const auto& [args, want] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--rates", "fast"}, "--rates: expected a list"},
           {{"--events", "0"}, "--events: expected N > 0"},
           {{"--mode", "daemon"}, "--jcs: required"},
           {{"--bogus"}, "unknown flag --bogus"}}) {
    const RunResult r = Bench(args);
    EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
    EXPECT_NE(r.err.find(want), std::string::npos) << r.Describe();
  }
}

}  // namespace
}  // namespace jcs::serve_test
