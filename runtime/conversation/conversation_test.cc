// The conversation reducer and agent loop with a scripted tool port: the
// order and content of events, correlation ids, cancel, resume, dedup, the
// queue bound, drain passes, adapter failures and the turn limit.
#include "runtime/conversation/conversation.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "loop/event_loop.h"
#include "runtime/conversation/conversation_runtime.h"
#include "runtime/conversation/deterministic_adapter.h"
#include "runtime/conversation/openai_stub_server.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {
namespace {

using json = nlohmann::json;

// A tool runtime stand-in: records calls and answers them when told.
struct FakeTools {
  struct Call {
    ToolCallRequest request;
    ToolRuntime::Respond respond;
  };
  std::vector<Call> calls;
  std::vector<std::pair<std::string, json>> cancels;
  bool answer_at_once = true;

  ToolPort Port() {
    ToolPort port;
    port.run = [this](ToolCallRequest request, ToolRuntime::Respond respond) {
      calls.push_back({request, respond});
      if (answer_at_once) Answer(calls.size() - 1);
    };
    port.await_result = [](const std::string&, ToolRuntime::Respond) {
      return false;
    };
    port.recent_result = [](const std::string&) {
      return std::optional<json>();
    };
    port.cancel_conversation = [this](const std::string& id, const json& m) {
      cancels.push_back({id, m});
      return 0;
    };
    port.list_tools = [] {
      return json::array({{{"name", "asset.list"},
                           {"description", "lists"},
                           {"input_schema", json::object()}}});
    };
    return port;
  }
  void Answer(size_t i, std::string status = "ok") {
    calls[i].respond({{"status", status},
                      {"call_id", "rt-" + std::to_string(i)},
                      {"result", {{"items", json::array({"example_skill"})}}},
                      {"reason", status == "ok" ? "" : "tool_failed"}});
  }
};

// A model that asks for a tool on every turn.
class LoopingAdapter : public LlmAdapter {
 public:
  explicit LoopingAdapter(EventLoop* loop) : loop_(loop) {}
  void Complete(
      LlmRequest, std::function<void(std::string)>,
      std::function<void(absl::StatusOr<LlmResponse>)> done) override {
    (void)loop_->Post([done] {
      LlmResponse r;
      r.tool_calls.push_back({"c", "asset.list", {{"type", "skill"}}});
      r.finish_reason = "tool_calls";
      done(r);
    });
  }
  void CancelAll() override {}

 private:
  EventLoop* loop_;
};

class ConversationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    bus_.AddSink([this](const telemetry::Event& e) {
      if (e.name.rfind("conversation.", 0) == 0) events_.push_back(e.payload);
    });
  }
  void TearDown() override { runtime_.reset(); }

  void Make(std::function<void(ValidatedOptions&)> tweak = nullptr,
            AdapterFactory factory = MakeAdapter) {
    ConversationRuntimeConfig config;
    config.project_id = "p1";
    config.loop = loop_.get();
    config.bus = &bus_;
    if (tweak) tweak(config.options);
    config.tools = tools_.Port();
    config.adapter_factory = std::move(factory);
    runtime_ = std::make_unique<ConversationRuntime>(std::move(config));
    ASSERT_TRUE(runtime_->Start("c1").ok());
  }

  // Runs the loop until `done` holds (polled every millisecond) or 5 s.
  bool RunUntil(const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!done()) {
      if (absl::Now() > deadline) return false;
      (void)loop_->RunOnce(absl::Milliseconds(1));
    }
    return true;
  }

  json Call(const json& signal) {
    std::optional<absl::StatusOr<json>> result;
    runtime_->Call("c1", signal, absl::Seconds(5),
                   [&](absl::StatusOr<json> r) { result = std::move(r); });
    EXPECT_TRUE(RunUntil([&] { return result.has_value(); }));
    if (!result.has_value()) return json();
    if (!result->ok()) return json{{"error", result->status().message()}};
    return **result;
  }
  static json Message(const std::string& text, json extra = json::object()) {
    json s = {{"type", "conversation.user.message"},
              {"data", {{"content", text}}}};
    s.update(extra);
    return s;
  }
  json Proj(const std::string& key) const {
    absl::StatusOr<json> p = runtime_->Projection("c1", key);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : json();
  }
  std::vector<std::string> Types() const {
    std::vector<std::string> out;
    for (const json& e : Proj("timeline")) {
      out.push_back(e["event_type"]);
    }
    return out;
  }
  int CountEvents(const std::string& type) const {
    int n = 0;
    for (const json& e : events_) n += e["event_type"] == type;
    return n;
  }

  std::unique_ptr<EventLoop> loop_;
  telemetry::Bus bus_;
  FakeTools tools_;
  std::unique_ptr<ConversationRuntime> runtime_;
  std::vector<json> events_;
};

TEST_F(ConversationTest, UserMessageIsAcknowledgedWithOneCorrelationId) {
  Make();
  json snapshot = Call(Message("hello"));
  EXPECT_EQ(snapshot["status"], "idle") << snapshot;
  EXPECT_EQ(snapshot["settled"], true);
  EXPECT_EQ(Types(), (std::vector<std::string>{"conversation.user.message",
                                               "conversation.llm.requested",
                                               "conversation.assistant.message",
                                               "conversation.llm.completed"}));
  json timeline = Proj("timeline");
  EXPECT_EQ(timeline[2]["data"]["content"], "Acknowledged: hello");
  const std::string corr = timeline[0]["correlation_id"];
  EXPECT_EQ(corr.rfind("corr-", 0), 0u);
  int64_t seq = 0;
  for (const json& e : timeline) {
    EXPECT_EQ(e["correlation_id"], corr);
    EXPECT_EQ(e["source"], "conversation");
    EXPECT_EQ(e["conversation_id"], "c1");
    EXPECT_GT(e["seq_in_conversation"].get<int64_t>(), seq);
    seq = e["seq_in_conversation"];
  }
  EXPECT_EQ(CountEvents("conversation.event_ingested"), 1);
  EXPECT_EQ(CountEvents("conversation.started"), 1);
}

TEST_F(ConversationTest, ListSkillsRunsTheToolAndFeedsTheResultBack) {
  Make();
  json snapshot = Call(Message("please list skills",
                               {{"meta", {{"correlation_id", "corr-given"}}}}));
  EXPECT_EQ(snapshot["status"], "idle");
  EXPECT_EQ(
      Types(),
      (std::vector<std::string>{
          "conversation.user.message", "conversation.llm.requested",
          "conversation.tool.requested", "conversation.llm.completed",
          "conversation.tool.completed", "conversation.llm.requested",
          "conversation.assistant.message", "conversation.llm.completed"}));
  for (const json& e : Proj("timeline")) {
    EXPECT_EQ(e["correlation_id"], "corr-given") << e;
  }
  ASSERT_EQ(tools_.calls.size(), 1u);
  const ToolCallRequest& call = tools_.calls[0].request;
  EXPECT_EQ(call.name, "asset.list");
  EXPECT_EQ(call.args, json({{"type", "skill"}}));
  EXPECT_EQ(call.meta["conversation_id"], "c1");
  EXPECT_EQ(call.meta["correlation_id"], "corr-given");
  json context = Proj("llm_context")["messages"];
  ASSERT_EQ(context.size(), 4u) << context;
  EXPECT_EQ(context[1]["tool_calls"][0]["name"], "asset.list");
  EXPECT_EQ(context[2]["role"], "tool");
  EXPECT_NE(context[2]["content"].get<std::string>().find("example_skill"),
            std::string::npos);
  EXPECT_EQ(context[3]["content"], "Tool asset.list completed.");
  EXPECT_EQ(Proj("pending_tool_calls"), json::array());
}

TEST_F(ConversationTest,
       CancelEmitsOneCancelledPerPendingCallAndDropsLateResults) {
  Make();
  tools_.answer_at_once = false;
  ASSERT_TRUE(
      runtime_
          ->Cast(
              "c1",
              Message(
                  "x",
                  {{"data",
                    {{"content", "x"},
                     {"llm",
                      {{"tool_calls",
                        json::array({{{"name", "asset.list"},
                                      {"args", {{"type", "skill"}}}}})}}}}}}))
          .ok());
  // The call runs (synchronous) and never answers by itself.
  ASSERT_TRUE(RunUntil([&] { return tools_.calls.size() == 1; }));
  EXPECT_EQ(Proj("pending_tool_calls").size(), 1u);
  json snapshot = Call({{"type", "conversation.cancel"},
                        {"meta", {{"correlation_id", "corr-cancel"}}}});
  EXPECT_EQ(snapshot["status"], "cancelled") << snapshot;
  ASSERT_EQ(tools_.cancels.size(), 1u);
  EXPECT_EQ(tools_.cancels[0].first, "c1");
  EXPECT_EQ(tools_.cancels[0].second["correlation_id"], "corr-cancel");
  EXPECT_EQ(CountEvents("conversation.tool.cancelled"), 1);
  json cancelled;
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.tool.cancelled") cancelled = e;
  }
  EXPECT_EQ(cancelled["correlation_id"], "corr-cancel");
  EXPECT_EQ(cancelled["data"]["name"], "asset.list");
  EXPECT_EQ(cancelled["data"]["reason"], "conversation_cancelled");
  // The tool answers late: nothing follows.
  tools_.Answer(0);
  const size_t before = events_.size();
  for (int i = 0; i < 20; ++i) (void)loop_->RunOnce(absl::Milliseconds(1));
  EXPECT_EQ(events_.size(), before);
  EXPECT_EQ(CountEvents("conversation.tool.completed"), 0);
}

TEST_F(ConversationTest, ToolRequestedWhileCancelledStaysPendingUntilCancel) {
  Make();
  Call({{"type", "conversation.cancel"}});
  json snapshot =
      Call({{"type", "conversation.tool.requested"},
            {"data", {{"name", "asset.list"}, {"args", {{"type", "skill"}}}}}});
  EXPECT_EQ(snapshot["pending_tool_calls"].size(), 1u) << snapshot;
  EXPECT_TRUE(tools_.calls.empty());  // nothing runs while cancelled
  snapshot = Call({{"type", "conversation.cancel"},
                   {"data", {{"reason", "operator_stop"}}},
                   {"meta", {{"correlation_id", "corr-2"}}}});
  EXPECT_EQ(snapshot["pending_tool_calls"], json::array());
  json cancelled;
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.tool.cancelled") cancelled = e;
  }
  EXPECT_EQ(cancelled["data"]["reason"], "operator_stop");
  EXPECT_EQ(cancelled["correlation_id"], "corr-2");
}

// Tool requests held while cancelled count against the queue's bounds (count
// and bytes): a client cannot grow a cancelled conversation without limit by
// sending it tool requests, and the cancel that clears them still gets in.
json HeldToolRequest(const std::string& correlation_id, json args) {
  return {{"type", "conversation.tool.requested"},
          {"meta", {{"correlation_id", correlation_id}}},
          {"data", {{"name", "asset.list"}, {"args", std::move(args)}}}};
}

TEST_F(ConversationTest, ToolRequestsHeldWhileCancelledAreBoundedInCount) {
  Make([](ValidatedOptions& o) { o.conversation_max_queue_size = 3; });
  Call({{"type", "conversation.cancel"}});
  int overflow = 0;
  for (int i = 0; i < 10; ++i) {
    const json r =
        Call(HeldToolRequest(absl::StrCat("corr-", i), json::object()));
    overflow += r.contains("error");
  }
  EXPECT_EQ(overflow, 7);
  EXPECT_EQ(CountEvents("conversation.queue.overflow"), 7);
  EXPECT_EQ(Proj("pending_tool_calls").size(), 3u);
  // The cancel still gets in and clears them; the bound is free again.
  Call({{"type", "conversation.cancel"}});
  EXPECT_EQ(Proj("pending_tool_calls"), json::array());
  EXPECT_EQ(CountEvents("conversation.tool.cancelled"), 3);
  Call(HeldToolRequest("corr-again", json::object()));
  EXPECT_EQ(Proj("pending_tool_calls").size(), 1u);
}

TEST_F(ConversationTest, ToolRequestsHeldWhileCancelledAreBoundedInBytes) {
  Make();
  Call({{"type", "conversation.cancel"}});
  // 3 MiB is held; a second does not fit in kMaxQueuedBytes (4 MiB).
  const std::string big(3 << 20, 'x');
  Call(HeldToolRequest("big-1", {{"blob", big}}));
  const json second = Call(HeldToolRequest("big-2", {{"blob", big}}));
  EXPECT_TRUE(second.contains("error")) << second.dump().substr(0, 200);
  EXPECT_EQ(Proj("pending_tool_calls").size(), 1u);
  EXPECT_EQ(CountEvents("conversation.queue.overflow"), 1);
  Call({{"type", "conversation.cancel"}});
  Call(HeldToolRequest("big-3", {{"blob", big}}));
  EXPECT_EQ(Proj("pending_tool_calls").size(), 1u);
}

TEST_F(ConversationTest, ResumeOnlyFromCancelled) {
  Make();
  Call({{"type", "conversation.resume"}});
  ASSERT_EQ(CountEvents("conversation.resume.rejected"), 1);
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.resume.rejected") {
      EXPECT_EQ(e["data"]["reason"], "not_cancelled");
    }
  }
  Call({{"type", "conversation.cancel"}});
  // While cancelled, a message is recorded but does not run.
  json snapshot = Call(Message("ignored"));
  EXPECT_EQ(CountEvents("conversation.llm.requested"), 0);
  snapshot = Call({{"type", "conversation.resume"}});
  EXPECT_EQ(snapshot["status"], "idle");
  EXPECT_EQ(CountEvents("conversation.resume.rejected"), 1);
  Call(Message("again"));
  EXPECT_EQ(CountEvents("conversation.assistant.message"), 1);
}

TEST_F(ConversationTest, DuplicateSignalsAreIgnored) {
  Make();
  json s = Message(
      "once", {{"id", "sig-fixed"}, {"meta", {{"correlation_id", "corr-x"}}}});
  Call(s);
  json again = Call(s);
  EXPECT_NE(again.value("error", "").find("duplicate_signal"),
            std::string::npos)
      << again;
  // The same id under another correlation id is another signal.
  s["meta"]["correlation_id"] = "corr-y";
  Call(s);
  EXPECT_EQ(CountEvents("conversation.user.message"), 2);
}

TEST_F(ConversationTest, QueueIsBoundedAndOverflowIsReported) {
  Make([](ValidatedOptions& o) { o.conversation_max_queue_size = 3; });
  tools_.answer_at_once = false;
  // A run that holds the conversation: its tool never answers.
  ASSERT_TRUE(runtime_->Cast("c1", Message("list skills")).ok());
  ASSERT_TRUE(RunUntil([&] { return tools_.calls.size() == 1; }));
  int overflow = 0;
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<json> r = runtime_->Cast("c1", Message("m"));
    ASSERT_TRUE(r.ok());
    overflow += (*r)["ingested"] == "overflow";
  }
  EXPECT_EQ(overflow, 47);
  EXPECT_EQ(CountEvents("conversation.queue.overflow"), 47);
  json diag = Proj("diagnostics");
  EXPECT_EQ(diag["queue_size"], 3);
  EXPECT_EQ(diag["max_queue_size"], 3);
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.queue.overflow") {
      EXPECT_EQ(e["data"]["reason"], "queue_overflow");
      EXPECT_EQ(e["data"]["max_queue_size"], 3);
      EXPECT_TRUE(e["data"]["dropped_signal_id"].is_string());
    }
  }
}

TEST_F(ConversationTest, DrainIsBoundedPerPass) {
  Make([](ValidatedOptions& o) { o.conversation_max_drain_steps = 2; });
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(runtime_->Cast("c1", {{"type", "conversation.resume"}}).ok());
  }
  ASSERT_TRUE(
      RunUntil([&] { return CountEvents("conversation.resume") == 6; }));
  json diag = Proj("diagnostics");
  EXPECT_GE(diag["drain_iteration"].get<int>(), 3) << diag;
  EXPECT_EQ(diag["max_drain_steps"], 2);
}

TEST_F(ConversationTest, AdapterFailureEmitsLlmFailedAndStaysUsable) {
  Make([](ValidatedOptions& o) {
    o.llm_adapter = Value::String("missing_adapter");
  });
  for (int i = 0; i < 2; ++i) {
    json snapshot = Call(Message("hi"));
    EXPECT_EQ(snapshot["status"], "idle");
  }
  EXPECT_EQ(CountEvents("conversation.llm.failed"), 2);
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.llm.failed") {
      EXPECT_EQ(e["data"]["reason"], "invalid_llm_adapter");
    }
  }
}

TEST_F(ConversationTest, OpenAiWithoutAKeyFailsEachTurnNamingWhereItLooked) {
  Make([](ValidatedOptions& o) {
    o.llm_adapter = Value::String("openai");
    o.llm_base_url = "https://api.example.com/v1";
    o.llm_api_key_env = "JCS_TEST_UNSET_KEY_VARIABLE";
  });
  Call(Message("hi"));
  Call(Message("again"));
  EXPECT_EQ(CountEvents("conversation.llm.failed"), 2);
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.llm.failed") {
      EXPECT_EQ(e["data"]["reason"], "llm_adapter_unavailable");
      EXPECT_NE(e["data"]["error"].get<std::string>().find(
                    "JCS_TEST_UNSET_KEY_VARIABLE"),
                std::string::npos)
          << e;
    }
  }
}

// The whole loop against an OpenAI-compatible server on loopback: the model
// asks for a tool by its API name, the conversation runs the catalog's tool,
// and the second turn's answer ends the run.
TEST_F(ConversationTest, OpenAiAdapterDrivesToolCallsThroughTheConversation) {
  auto stub = OpenAiStubServer::Start();
  ASSERT_TRUE(stub.ok()) << stub.status();
  (*stub)->Enqueue(OpenAiStubServer::Json(200, R"({"id": "r1", "choices": [
      {"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": null, "tool_calls": [
          {"id": "call_1", "type": "function", "function": {
            "name": "asset_list", "arguments": "{\"type\":\"skill\"}"}}]}}]})"));
  (*stub)->Enqueue(OpenAiStubServer::Json(200, R"({"id": "r2", "choices": [
      {"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "One skill: example_skill."}}]})"));
  const std::string base_url = (*stub)->base_url();
  Make([&](ValidatedOptions& o) {
    o.llm_adapter = Value::String("openai");
    o.llm_base_url = base_url;
    o.llm_stream = false;
    o.llm_model = "gpt-test";
    o.llm_api_key_env = "JCS_TEST_UNSET_KEY_VARIABLE";  // loopback: no key
  });
  json snapshot = Call(Message("list skills"));
  EXPECT_EQ(snapshot["status"], "idle") << snapshot;
  ASSERT_EQ(tools_.calls.size(), 1u) << json(events_).dump();
  EXPECT_EQ(tools_.calls[0].request.name, "asset.list");
  EXPECT_EQ(tools_.calls[0].request.args, json({{"type", "skill"}}));
  bool answered = false;
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.assistant.message") {
      EXPECT_EQ(e["data"]["content"], "One skill: example_skill.");
      answered = true;
    }
  }
  EXPECT_TRUE(answered);
  EXPECT_EQ(CountEvents("conversation.llm.failed"), 0);
  std::vector<OpenAiStubServer::Received> got = (*stub)->received();
  ASSERT_EQ(got.size(), 2u);
  // The second request carries the tool's result back to the model.
  EXPECT_NE(got[1].body.find("example_skill"), std::string::npos)
      << got[1].body;
}

TEST_F(ConversationTest, DirectiveErrorsDeltasAndTimeouts) {
  Make([](ValidatedOptions& o) { o.llm_timeout_ms = 50; });
  Call(Message(
      "x",
      {{"data",
        {{"content", "x"},
         {"llm",
          {{"text", "ab"}, {"delta_chunks", json::array({"a", "b"})}}}}}}));
  EXPECT_EQ(CountEvents("conversation.assistant.delta"), 2);
  Call(Message(
      "x",
      {{"data", {{"content", "x"}, {"llm", {{"error", "provider_down"}}}}}}));
  Call(Message("x",
               {{"data", {{"content", "x"}, {"llm", {{"delay_ms", 5000}}}}}}));
  std::vector<std::string> reasons;
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.llm.failed") {
      reasons.push_back(e["data"]["reason"]);
    }
  }
  EXPECT_EQ(reasons,
            (std::vector<std::string>{"provider_down", "llm_timeout"}));
  EXPECT_EQ(Call(Message("y"))["status"], "idle");
}

TEST_F(ConversationTest, RunEndsAfterMaxTurns) {
  Make(nullptr,
       [](EventLoop* loop, const ValidatedOptions&)
           -> absl::StatusOr<std::unique_ptr<LlmAdapter>> {
         return std::make_unique<LoopingAdapter>(loop);
       });
  json snapshot = Call(Message("loop forever"));
  EXPECT_EQ(snapshot["status"], "idle") << snapshot;
  EXPECT_EQ(CountEvents("conversation.llm.requested"), kMaxTurns);
  EXPECT_EQ(tools_.calls.size(), static_cast<size_t>(kMaxTurns));
  json failed;
  for (const json& e : events_) {
    if (e["event_type"] == "conversation.llm.failed") failed = e;
  }
  EXPECT_EQ(failed["data"]["reason"], "max_turns_reached");
}

TEST_F(ConversationTest, StopCancelsAndReportsStopped) {
  Make();
  tools_.answer_at_once = false;
  ASSERT_TRUE(runtime_->Cast("c1", Message("list skills")).ok());
  ASSERT_TRUE(RunUntil([&] { return tools_.calls.size() == 1; }));
  ASSERT_TRUE(runtime_->Stop("c1").ok());
  EXPECT_EQ(tools_.cancels.size(), 1u);
  EXPECT_EQ(CountEvents("conversation.tool.cancelled"), 1);
  EXPECT_EQ(CountEvents("conversation.stopped"), 1);
  EXPECT_EQ(runtime_->Projection("c1", "timeline").status().message(),
            "conversation_not_found: c1");
  tools_.Answer(0);
  for (int i = 0; i < 10; ++i) (void)loop_->RunOnce(absl::Milliseconds(1));
  EXPECT_EQ(CountEvents("conversation.tool.completed"), 0);
}

TEST_F(ConversationTest, RuntimeErrors) {
  Make();
  EXPECT_EQ(runtime_->Start("c1").status().message(),
            "conversation_already_started: c1");
  EXPECT_EQ(runtime_->Start("bad id").status().message(),
            "invalid_conversation_id: expected [A-Za-z0-9._:-]{1,128}");
  EXPECT_EQ(*runtime_->Start(""), "conversation_1");
  EXPECT_EQ(runtime_->Projection("c1", "nope").status().message(),
            "projection_not_found: nope (known: timeline, llm_context, "
            "pending_tool_calls, diagnostics)");
  EXPECT_EQ(runtime_->Cast("zz", Message("x")).status().message(),
            "conversation_not_found: zz");
  json diag = runtime_->Diagnostics();
  ASSERT_EQ(diag.size(), 2u);
  EXPECT_EQ(diag[0]["conversation_id"], "c1");
  EXPECT_EQ(diag[1]["conversation_id"], "conversation_1");
  // A bounded number per project.
  while (runtime_->count() < kMaxConversations) {
    ASSERT_TRUE(runtime_->Start("").ok());
  }
  EXPECT_EQ(runtime_->Start("").status().message(),
            "conversation_limit_reached: 128 conversations run in this "
            "project; stop one first");
  ASSERT_TRUE(runtime_->Stop("c1").ok());
  EXPECT_TRUE(runtime_->Start("c1").ok());
}

TEST_F(ConversationTest, MemoryIsBoundedUnderLargeMessages) {
  Make();
  const std::string big(200 << 10, 'b');
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(Call(Message(big))["status"], "idle");
  }
  json diag = Proj("diagnostics");
  EXPECT_GT(diag["timeline_dropped"].get<int>(), 0) << diag;
  size_t timeline_bytes = 0;
  for (const json& e : Proj("timeline")) timeline_bytes += e.dump().size();
  EXPECT_LE(timeline_bytes, kMaxTimelineBytes);
  size_t context_bytes = 0;
  json messages = Proj("llm_context")["messages"];
  for (const json& m : messages) {
    context_bytes += m["content"].get<std::string>().size();
  }
  EXPECT_LE(context_bytes, kMaxContextBytes);
  EXPECT_GE(messages.size(), 2u);
  // The newest exchange is kept.
  EXPECT_EQ(messages.back()["content"], "Acknowledged: " + big);
}

}  // namespace
}  // namespace jcs::runtime::conversation
