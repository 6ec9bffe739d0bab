#include "runtime/conversation/incident_timeline.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "loop/event_loop.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {
namespace {

using journal::StoredEvent;
using ::nlohmann::json;

constexpr int64_t kT0 = 1700000000000;  // ms

// A journal row of a conversation-source event (conv_common.md's payload).
StoredEvent ConvRow(uint64_t seq, const std::string& name, int64_t at_ms,
                    const std::string& correlation, json data = json::object(),
                    const std::string& conversation = "c1") {
  StoredEvent row;
  row.seq = seq;
  row.project_id = "p1";
  row.name = name;
  row.at_ms = at_ms + 3;  // journaled a little after the signal's own time
  row.conversation_id = conversation;
  row.correlation_id = correlation;
  row.payload_json = json{
      {"project_id", "p1"},
      {"conversation_id", conversation},
      {"correlation_id", correlation},
      {"event_type", name},
      {"source", "conversation"},
      {"signal_id", absl::StrCat("sig-", seq)},
      {"at", telemetry::Rfc3339(absl::FromUnixMillis(at_ms))},
      {"data", std::move(data)},
      {"seq_in_conversation",
       seq}}.dump();
  return row;
}

// A journal row of a telemetry event about the conversation (the tool
// runtime's envelope).
StoredEvent TelRow(uint64_t seq, const std::string& name, int64_t at_ms,
                   const std::string& correlation, json extra = json::object(),
                   const std::string& conversation = "c1") {
  json payload = {{"project_id", "p1"},
                  {"tool", "asset.list"},
                  {"call_id", absl::StrCat("call-", seq)},
                  {"conversation_id", conversation},
                  {"correlation_id", correlation}};
  payload.update(extra);
  StoredEvent row;
  row.seq = seq;
  row.project_id = "p1";
  row.name = name;
  row.at_ms = at_ms;
  row.conversation_id = conversation;
  row.correlation_id = correlation;
  row.payload_json = payload.dump();
  return row;
}

json Build(const std::vector<StoredEvent>& rows, int64_t limit = 0,
           const std::string& correlation = "") {
  absl::StatusOr<json> timeline =
      BuildIncidentTimeline({"p1", "c1", correlation, limit}, rows);
  EXPECT_TRUE(timeline.ok()) << timeline.status();
  return timeline.ok() ? *timeline : json();
}

std::vector<std::string> Names(const json& timeline) {
  std::vector<std::string> names;
  for (const json& e : timeline["entries"]) names.push_back(e["event"]);
  return names;
}

// One user turn with a tool call, as the conversation runtime journals it,
// with the telemetry of the call interleaved: two correlation ids, 2 turns.
std::vector<StoredEvent> TwoTurns() {
  std::vector<StoredEvent> rows;
  uint64_t seq = 0;
  for (int turn = 0; turn < 2; ++turn) {
    const std::string corr = absl::StrCat("corr-", turn);
    const int64_t t = kT0 + turn * 1000;
    rows.push_back(ConvRow(++seq, "conversation.user.message", t, corr,
                           {{"content", "please list skills"}}));
    rows.push_back(TelRow(++seq, "conversation.event_ingested", t, corr));
    rows.push_back(ConvRow(++seq, "conversation.tool.requested", t + 10, corr,
                           {{"name", "asset.list"}}));
    rows.push_back(TelRow(++seq, "policy.allowed", t + 11, corr,
                          {{"tool_name", "asset.list"}}));
    rows.push_back(TelRow(++seq, "tool.started", t + 11, corr));
    rows.push_back(TelRow(++seq, "tool.completed", t + 20, corr));
    rows.push_back(ConvRow(++seq, "conversation.tool.completed", t + 21, corr,
                           {{"name", "asset.list"}}));
    rows.push_back(ConvRow(++seq, "conversation.assistant.message", t + 30,
                           corr, {{"content", "done"}}));
  }
  return rows;
}

TEST(IncidentTimelineTest, LimitIsNormalized) {
  EXPECT_EQ(NormalizeTimelineLimit(0), 100);
  EXPECT_EQ(NormalizeTimelineLimit(-7), 100);
  EXPECT_EQ(NormalizeTimelineLimit(1), 1);
  EXPECT_EQ(NormalizeTimelineLimit(500), 500);
  EXPECT_EQ(NormalizeTimelineLimit(501), 500);
  EXPECT_EQ(NormalizeTimelineLimit(INT64_MAX), 500);
}

TEST(IncidentTimelineTest, TimestampsFromIntegersAndRfc3339ElseMinusOne) {
  EXPECT_EQ(TimelineTimestampMs(json(kT0)), kT0);
  EXPECT_EQ(TimelineTimestampMs(json("2023-11-14T22:13:20.123Z")), kT0 + 123);
  EXPECT_EQ(TimelineTimestampMs(json("2023-11-14T23:13:20.5+01:00")),
            kT0 + 500);
  EXPECT_EQ(TimelineTimestampMs(json("yesterday")), -1);
  EXPECT_EQ(TimelineTimestampMs(json(1.5)), -1);
  EXPECT_EQ(TimelineTimestampMs(json()), -1);
  EXPECT_EQ(TimelineTimestampMs(json::object()), -1);
}

// §10.1 case 6: bounded, merged, filtered, no event_ingested.
TEST(IncidentTimelineTest, MergedBoundedAndFilteredByCorrelation) {
  std::vector<StoredEvent> rows = TwoTurns();
  // More of the second turn than the limit.
  for (int i = 0; i < 60; ++i) {
    rows.push_back(ConvRow(100 + i, "conversation.assistant.delta",
                           kT0 + 2000 + i, "corr-1", {{"delta", "x"}}));
  }
  const json t = Build(rows, 50, " corr-1 ");
  EXPECT_EQ(t["project_id"], "p1");
  EXPECT_EQ(t["conversation_id"], "c1");
  EXPECT_EQ(t["correlation_id"], "corr-1");
  EXPECT_EQ(t["limit"], 50);
  // 7 entries of turn 1 without the ingest event, plus 60 deltas.
  EXPECT_EQ(t["total_entries"], 67);
  ASSERT_EQ(t["entries"].size(), 50u);
  bool conversation = false, telemetry = false, completed = false;
  for (const json& e : t["entries"]) {
    EXPECT_EQ(e["conversation_id"], "c1") << e;
    EXPECT_EQ(e["correlation_id"], "corr-1") << e;
    EXPECT_FALSE(
        absl::EndsWith(e["event"].get<std::string>(), "event_ingested"))
        << e;
    conversation |= e["source"] == "conversation";
    telemetry |= e["source"] == "telemetry";
  }
  EXPECT_TRUE(conversation);
  // The last 50 are deltas only; the whole turn shows both sources.
  const json all = Build(rows, 500, "corr-1");
  for (const json& e : all["entries"]) {
    telemetry |= e["source"] == "telemetry";
    completed |= e["event"] == "tool.completed";
  }
  EXPECT_TRUE(telemetry);
  EXPECT_TRUE(completed);
  // The last `limit` are the newest: the final delta is last.
  EXPECT_EQ(t["entries"].back()["seq"], 159);
}

TEST(IncidentTimelineTest, StableSortConversationFirstWithinAMillisecond) {
  std::vector<StoredEvent> rows = {
      TelRow(1, "tool.started", kT0 + 5, "k"),
      ConvRow(2, "conversation.tool.requested", kT0 + 5, "k"),
      TelRow(3, "policy.allowed", kT0 + 5, "k"),
      ConvRow(4, "conversation.user.message", kT0 + 1, "k"),
      TelRow(5, "tool.completed", kT0 + 9, "k"),
      ConvRow(6, "conversation.assistant.message", kT0 + 5, "k"),
  };
  const json t = Build(rows);
  EXPECT_EQ(Names(t),
            (std::vector<std::string>{
                "conversation.user.message", "conversation.tool.requested",
                "conversation.assistant.message", "tool.started",
                "policy.allowed", "tool.completed"}));
  EXPECT_EQ(t["entries"][0]["at"], "2023-11-14T22:13:20.001Z");
  EXPECT_EQ(t["entries"][0]["at_ms"], kT0 + 1);
  EXPECT_EQ(t["correlation_id"], nullptr);
}

TEST(IncidentTimelineTest, UnparseableTimeSortsFirst) {
  StoredEvent odd = ConvRow(2, "conversation.user.message", kT0, "k");
  json payload = json::parse(odd.payload_json);
  payload["at"] = "not a time";
  odd.payload_json = payload.dump();
  const json t = Build({TelRow(1, "tool.started", kT0, "k"), odd});
  EXPECT_EQ(Names(t), (std::vector<std::string>{"conversation.user.message",
                                                "tool.started"}));
  EXPECT_EQ(t["entries"][0]["at_ms"], -1);
  EXPECT_EQ(t["entries"][0]["at"], nullptr);
}

// §10.1 case 7: the tool runtime's tool.failed of a call a conversation
// cancel ended.
TEST(IncidentTimelineTest, TelemetryToolFailedCancelledBecomesCancelled) {
  const json t = Build({
      TelRow(1, "tool.failed", kT0, "k",
             {{"reason", ":conversation_cancelled"}}),
      TelRow(2, "conversation.tool.failed", kT0 + 1, "k",
             {{"reason", "conversation_cancelled"}}),
      TelRow(3, "tool.failed", kT0 + 2, "k", {{"reason", "timeout"}}),
  });
  EXPECT_EQ(Names(t), (std::vector<std::string>{"conversation.tool.cancelled",
                                                "conversation.tool.cancelled",
                                                "tool.failed"}));
}

// §10.1 cases 8 and 9: history only (a stopped conversation), old conv.*
// names renamed, leftovers dropped, the correlation filter applied.
TEST(IncidentTimelineTest, CanonicalHistoryRenamesAndDropsConvNames) {
  const std::vector<StoredEvent> rows = {
      ConvRow(1, "conv.in.message.received", kT0, "a"),
      ConvRow(2, "conv.out.assistant.delta", kT0 + 1, "a"),
      ConvRow(3, "conv.out.assistant.completed", kT0 + 2, "a"),
      ConvRow(4, "conv.out.tool.status", kT0 + 3, "a",
              {{"status", "requested"}}),
      ConvRow(5, "conv.out.tool.status", kT0 + 4, "a",
              {{"status", "failed"}, {"reason", "conversation_cancelled"}}),
      ConvRow(6, "conv.out.tool.status", kT0 + 5, "a", {{"status", "odd"}}),
      ConvRow(7, "conv.internal.thing", kT0 + 6, "a"),
      ConvRow(8, "conversation.event_ingested", kT0 + 7, "a"),
      ConvRow(9, "conversation.user.message", kT0 + 8, "b"),
  };
  const json t = Build(rows);
  EXPECT_EQ(Names(t),
            (std::vector<std::string>{
                "conversation.user.message", "conversation.assistant.delta",
                "conversation.assistant.message", "conversation.tool.requested",
                "conversation.tool.cancelled", "conversation.tool.status",
                "conversation.user.message"}));
  for (const json& e : t["entries"]) {
    EXPECT_FALSE(absl::StartsWith(e["event"].get<std::string>(), "conv."));
  }
  EXPECT_EQ(t["total_entries"], 7);
  const json only_b = Build(rows, 0, "b");
  ASSERT_EQ(only_b["entries"].size(), 1u);
  EXPECT_EQ(only_b["entries"][0]["correlation_id"], "b");
  EXPECT_EQ(only_b["total_entries"], 1);
  // Blank is no filter.
  EXPECT_EQ(Build(rows, 0, "   ")["total_entries"], 7);
}

// §10.1 cases 10 and 11: an injected conversation.tool.failed whose reason
// is the atom, or whose message is the plain string.
TEST(IncidentTimelineTest, ConversationToolFailedCancelledReasonOrMessage) {
  const json t = Build({
      ConvRow(1, "conversation.tool.failed", kT0, "k",
              {{"name", "asset.list"}, {"reason", ":conversation_cancelled"}}),
      ConvRow(2, "conversation.tool.failed", kT0 + 1, "k",
              {{"name", "asset.list"}, {"message", "conversation_cancelled"}}),
      ConvRow(3, "conversation.tool.failed", kT0 + 2, "k",
              {{"name", "asset.list"}, {"reason", "conversation_cancelledX"}}),
  });
  EXPECT_EQ(Names(t), (std::vector<std::string>{"conversation.tool.cancelled",
                                                "conversation.tool.cancelled",
                                                "conversation.tool.failed"}));
  EXPECT_EQ(t["entries"][0]["payload"]["data"]["name"], "asset.list");
}

// §10.1 case 12, and rows of other conversations never leak in.
TEST(IncidentTimelineTest, UnknownConversationIsNotFound) {
  const std::vector<StoredEvent> rows = {
      ConvRow(1, "conversation.user.message", kT0, "k", json::object(),
              "other"),
      TelRow(2, "tool.completed", kT0, "k", json::object(), "other")};
  absl::StatusOr<json> t =
      BuildIncidentTimeline({"p1", "missing-c1", "", 0}, rows);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t.status().message(), "conversation_not_found: missing-c1");
  // Found, but everything filtered: an empty timeline, not an error.
  absl::StatusOr<json> other =
      BuildIncidentTimeline({"p1", "other", "nope", 0}, rows);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->at("total_entries"), 0);
  EXPECT_EQ(other->at("entries"), json::array());
}

TEST(IncidentTimelineTest, CorrelationFallsBackToMetaExtensionsAndMetadata) {
  std::vector<StoredEvent> rows;
  const std::vector<json> shapes = {
      {{"meta", {{"correlation_id", "m"}}}},
      {{"extensions", {{"correlation_id", "m"}}}},
      {{"data", {{"metadata", {{"correlation_id", "m"}}}}}}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    StoredEvent row = ConvRow(i + 1, "conversation.user.message", kT0 + i, "");
    json payload = json::parse(row.payload_json);
    payload.erase("correlation_id");
    payload.update(shapes[i]);
    row.payload_json = payload.dump();
    rows.push_back(row);
  }
  const json t = Build(rows, 0, "m");
  EXPECT_EQ(t["total_entries"], 3) << t;
}

// Trimming page by page gives exactly what sorting everything once gives,
// also when later rows are older than kept ones.
TEST(IncidentTimelineTest, IncrementalTrimMatchesOneShot) {
  std::vector<StoredEvent> rows;
  srand(7);
  for (uint64_t seq = 1; seq <= 6000; ++seq) {
    const int64_t at = kT0 + rand() % 3000;
    rows.push_back(seq % 2 == 0
                       ? ConvRow(seq, "conversation.assistant.delta", at, "k")
                       : TelRow(seq, "tool.started", at, "k"));
  }
  const json t = Build(rows, 37);
  ASSERT_EQ(t["entries"].size(), 37u);
  EXPECT_EQ(t["total_entries"], 6000);
  // The reference: a stable sort of every entry.
  std::vector<std::tuple<int64_t, int, uint64_t>> keys;
  for (const StoredEvent& row : rows) {
    const bool conv = row.name == "conversation.assistant.delta";
    keys.emplace_back(conv ? row.at_ms - 3 : row.at_ms, conv ? 0 : 1, row.seq);
  }
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b));
  });
  for (size_t i = 0; i < 37; ++i) {
    EXPECT_EQ(t["entries"][i]["seq"], std::get<2>(keys[keys.size() - 37 + i]))
        << i;
  }
}

// The glue: the journal's rows, paged (more than one page), including
// events not yet committed when the query starts.
TEST(IncidentTimelineTest, QueryReadsEveryPageOfTheJournal) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/tlXXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  journal::JournalOptions options;
  options.path = dir + "/journal.db";
  auto opened = journal::Journal::Open(loop->get(), options, {});
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<journal::Journal> journal = *std::move(opened);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < 2500; ++i) {
    const bool conv = i % 2 == 0;
    json payload = {{"project_id", "p1"},
                    {"conversation_id", i % 5 == 4 ? "c2" : "c1"},
                    {"correlation_id", "k"},
                    {"n", i}};
    if (conv) payload["source"] = "conversation";
    journal->Append({conv ? "conversation.assistant.delta" : "tool.started",
                     "p1", payload, t0 + absl::Milliseconds(i)});
  }
  const auto run = [&](TimelineQuery query) {
    std::optional<absl::StatusOr<json>> answer;
    QueryIncidentTimeline(journal.get(), std::move(query),
                          [&](absl::StatusOr<json> t) { answer = t; });
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!answer.has_value() && absl::Now() < deadline) {
      EXPECT_TRUE((*loop)->RunOnce(absl::Milliseconds(10)).ok());
    }
    EXPECT_TRUE(answer.has_value());
    return answer.value_or(absl::DeadlineExceededError("no answer"));
  };
  absl::StatusOr<json> t = run({"p1", "c1", "", 500});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->at("total_entries"), 2000);
  ASSERT_EQ(t->at("entries").size(), 500u);
  EXPECT_EQ(t->at("entries").back()["payload"]["n"], 2498);
  EXPECT_EQ(t->at("entries").front()["payload"]["n"], 1875);
  absl::StatusOr<json> missing = run({"p1", "nope", "", 0});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<json> empty_id = run({"p1", "", "", 0});
  EXPECT_EQ(empty_id.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace jcs::runtime::conversation
