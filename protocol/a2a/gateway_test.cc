#include "protocol/a2a/gateway.h"

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

// Events the fake publishes, shared with its subscriptions (a stream reads
// them on its thread while the turn runs on another).
struct EventQueue {
  std::mutex mu;
  std::deque<json> events;
};

class FakeSubscription : public Subscription {
 public:
  explicit FakeSubscription(std::shared_ptr<EventQueue> queue)
      : queue_(std::move(queue)) {}
  std::optional<json> Next(absl::Duration) override {
    std::lock_guard<std::mutex> lock(queue_->mu);
    if (queue_->events.empty()) return std::nullopt;
    json e = queue_->events.front();
    queue_->events.pop_front();
    return e;
  }

 private:
  std::shared_ptr<EventQueue> queue_;
};

// A project with conversations whose turns answer "Acknowledged: <text>" at
// once; `running` conversations stay running until cancelled.
class FakeBackend : public Backend {
 public:
  absl::Status Authorize(const std::string& operation) override {
    asked.push_back(operation);
    if (denied.count(operation) > 0) {
      return absl::PermissionDeniedError("a2a is not in protocol_allowlist");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<json> Tools() override {
    return json::array({{{"name", "fs.read"},
                         {"description", "Reads a file"},
                         {"input_schema", {{"type", "object"}}}}});
  }
  absl::StatusOr<json> AssetCounts() override {
    return json{{"skills", 2}, {"commands", 1}, {"workflows", 0}};
  }
  absl::Status StartConversation(const std::string& id) override {
    if (status.count(id) > 0) return absl::AlreadyExistsError(id);
    status[id] = "idle";
    timeline[id] = json::array();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Status(const std::string& id) override {
    if (status.count(id) == 0) return absl::NotFoundError(id);
    return status[id];
  }
  absl::StatusOr<json> Timeline(const std::string& id) override {
    if (timeline.count(id) == 0) return absl::NotFoundError(id);
    return timeline[id];
  }
  absl::Status Call(const std::string& id, const json& signal) override {
    signals.push_back(signal);
    Apply(id, signal);
    return absl::OkStatus();
  }
  absl::Status Cast(const std::string& id, const json& signal) override {
    signals.push_back(signal);
    casts.push_back(signal);
    return absl::OkStatus();
  }
  std::unique_ptr<Subscription> Subscribe(const std::string& id) override {
    subscribed.push_back(id);
    return std::make_unique<FakeSubscription>(queue);
  }

  // The turn: the user message and the answer in the timeline, stamped with
  // the turn's correlation id; published as events too unless
  // `publish_late` (the daemon publishes when the journal made them
  // durable, possibly after the turn settled).
  void Apply(const std::string& id, const json& signal) {
    if (signal["type"] == "conversation.cancel") {
      status[id] = "cancelled";
      return;
    }
    const std::string correlation = signal["meta"]["correlation_id"];
    const int seq = static_cast<int>(timeline[id].size()) + 1;
    const json user = {{"event_type", "conversation.user.message"},
                       {"seq_in_conversation", seq},
                       {"correlation_id", correlation},
                       {"data", signal["data"]}};
    const json delta = {{"event_type", "conversation.assistant.delta"},
                        {"correlation_id", correlation}};
    const json answer = {
        {"event_type", "conversation.assistant.message"},
        {"seq_in_conversation", seq + 1},
        {"correlation_id", correlation},
        {"data",
         {{"content",
           "Acknowledged: " + signal["data"]["content"].get<std::string>()}}}};
    timeline[id].push_back(user);
    timeline[id].push_back(answer);
    if (!publish_late) {
      std::lock_guard<std::mutex> lock(queue->mu);
      for (const json& e : {user, delta, answer}) queue->events.push_back(e);
    }
  }

  std::set<std::string> denied;
  std::vector<std::string> asked;
  std::map<std::string, std::string> status;
  std::map<std::string, json> timeline;
  std::vector<json> signals;
  std::vector<json> casts;
  std::vector<std::string> subscribed;
  std::shared_ptr<EventQueue> queue = std::make_shared<EventQueue>();
  bool publish_late = false;
};

Request Parse(const json& doc) {
  ParseResult parsed = ParseRequest(doc.dump());
  EXPECT_TRUE(parsed.request.has_value())
      << (parsed.error ? parsed.error->message : "");
  return parsed.request.value_or(Request{});
}

json SendDoc(const std::string& method, const std::string& text,
             std::optional<std::string> task = std::nullopt) {
  json message = {{"kind", "message"},
                  {"messageId", "m-" + text},
                  {"role", "user"},
                  {"parts", json::array({{{"kind", "text"}, {"text", text}}})}};
  if (task.has_value()) message["taskId"] = *task;
  return {{"jsonrpc", "2.0"},
          {"id", 7},
          {"method", method},
          {"params", {{"message", message}}}};
}

std::vector<json> Handle(const Gateway& gateway, FakeBackend& backend,
                         const json& doc) {
  std::vector<json> out;
  gateway.Handle(Parse(doc), backend, [&](const json& d) {
    out.push_back(d);
    return true;
  });
  return out;
}

TEST(GatewayTest, MessageSendCreatesATaskThatIsTheConversation) {
  Gateway gateway;
  FakeBackend backend;
  std::vector<json> out =
      Handle(gateway, backend, SendDoc("message/send", "hi"));
  ASSERT_EQ(out.size(), 1u);
  const json& task = out[0]["result"];
  EXPECT_EQ(out[0]["id"], 7);
  EXPECT_EQ(task["kind"], "task");
  const std::string id = task["id"];
  EXPECT_EQ(id.rfind("a2a-", 0), 0u);
  EXPECT_EQ(task["contextId"], id);
  EXPECT_EQ(backend.status.count(id), 1u);
  EXPECT_EQ(task["status"]["state"], "completed");
  ASSERT_EQ(task["history"].size(), 2u);
  EXPECT_EQ(task["history"][0]["role"], "user");
  EXPECT_EQ(task["history"][0]["messageId"], "m-hi");
  EXPECT_EQ(task["history"][1]["role"], "agent");
  EXPECT_EQ(task["history"][1]["parts"][0]["text"], "Acknowledged: hi");
  ASSERT_EQ(backend.signals.size(), 1u);
  EXPECT_EQ(backend.signals[0]["type"], "conversation.user.message");
  EXPECT_EQ(backend.signals[0]["source"], "a2a.message.send");
  EXPECT_EQ(backend.signals[0]["data"]["content"], "hi");
  EXPECT_EQ(backend.asked,
            (std::vector<std::string>{"task.create", "message.send"}));

  // A second message continues the same conversation.
  out = Handle(gateway, backend, SendDoc("message/send", "again", id));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["result"]["history"].size(), 4u);
  EXPECT_EQ(backend.status.size(), 1u);
}

TEST(GatewayTest, UnknownTaskIsTaskNotFound) {
  Gateway gateway;
  FakeBackend backend;
  std::vector<json> out =
      Handle(gateway, backend, SendDoc("message/send", "x", "nosuch"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["error"]["code"], kTaskNotFound);
  out = Handle(gateway, backend,
               {{"jsonrpc", "2.0"},
                {"id", 1},
                {"method", "tasks/get"},
                {"params", {{"id", "nosuch"}}}});
  EXPECT_EQ(out[0]["error"]["code"], kTaskNotFound);
  EXPECT_TRUE(backend.signals.empty());
}

TEST(GatewayTest, CancelOnlyAWorkingTask) {
  Gateway gateway;
  FakeBackend backend;
  ASSERT_TRUE(backend.StartConversation("t1").ok());
  backend.status["t1"] = "running";
  const json cancel = {{"jsonrpc", "2.0"},
                       {"id", 2},
                       {"method", "tasks/cancel"},
                       {"params", {{"id", "t1"}}}};
  std::vector<json> out = Handle(gateway, backend, cancel);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["result"]["status"]["state"], "canceled");
  ASSERT_EQ(backend.signals.size(), 1u);
  EXPECT_EQ(backend.signals[0]["type"], "conversation.cancel");
  // Canceled now: not cancelable again, and it takes no more messages.
  out = Handle(gateway, backend, cancel);
  EXPECT_EQ(out[0]["error"]["code"], kTaskNotCancelable);
  out = Handle(gateway, backend, SendDoc("message/send", "more", "t1"));
  EXPECT_EQ(out[0]["error"]["code"], kInvalidParams);
  EXPECT_EQ(backend.signals.size(), 1u);
}

void ExpectOneTurnStream(const std::vector<json>& out,
                         const std::string& text) {
  ASSERT_EQ(out.size(), 4u) << json(out);
  EXPECT_EQ(out[0]["result"]["kind"], "task");
  EXPECT_EQ(out[1]["result"]["kind"], "status-update");
  EXPECT_EQ(out[1]["result"]["status"]["state"], "working");
  EXPECT_EQ(out[2]["result"]["kind"], "artifact-update");
  EXPECT_EQ(out[2]["result"]["artifact"]["parts"][0]["text"],
            "Acknowledged: " + text);
  EXPECT_EQ(out[3]["result"]["kind"], "status-update");
  EXPECT_EQ(out[3]["result"]["status"]["state"], "completed");
  EXPECT_EQ(out[3]["result"]["final"], true);
  for (const json& d : out) EXPECT_EQ(d["id"], 7);
}

TEST(GatewayTest, StreamRelaysTheTurnAndEndsWithTheFinalState) {
  Gateway gateway;
  FakeBackend backend;
  ExpectOneTurnStream(Handle(gateway, backend, SendDoc("message/stream", "s")),
                      "s");
  EXPECT_EQ(backend.subscribed.size(), 1u);
}

// The turn's events published only after it settled: read from the
// timeline, each once.
TEST(GatewayTest, StreamCatchesUpWithLateEvents) {
  Gateway gateway;
  FakeBackend backend;
  backend.publish_late = true;
  ExpectOneTurnStream(Handle(gateway, backend, SendDoc("message/stream", "l")),
                      "l");
}

// An earlier turn's events arriving late are not this stream's.
TEST(GatewayTest, StreamIgnoresAnEarlierTurnsEvents) {
  Gateway gateway;
  FakeBackend backend;
  std::vector<json> out =
      Handle(gateway, backend, SendDoc("message/send", "a"));
  const std::string id = out[0]["result"]["id"];
  // Still queued from turn "a" (published after its send returned).
  EXPECT_FALSE(backend.queue->events.empty());
  ExpectOneTurnStream(
      Handle(gateway, backend, SendDoc("message/stream", "b", id)), "b");
}

TEST(GatewayTest, NonBlockingSendCastsAndReportsWorking) {
  Gateway gateway;
  FakeBackend backend;
  json doc = SendDoc("message/send", "nb");
  doc["params"]["configuration"] = {{"blocking", false}};
  std::vector<json> out = Handle(gateway, backend, doc);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["result"]["status"]["state"], "working");
  EXPECT_EQ(backend.casts.size(), 1u);
}

// Every operation asks the project's protocol_allowlist first; a denial is
// kProtocolDenied and nothing reaches the conversation.
TEST(GatewayTest, EachOperationDeniedDoesNothing) {
  struct Case {
    std::string operation;
    json doc;
  };
  const std::vector<Case> cases = {
      {"task.create", SendDoc("message/send", "x")},
      {"message.send", SendDoc("message/send", "x", "t1")},
      {"message.send", SendDoc("message/stream", "x", "t1")},
      {"task.subscribe", SendDoc("message/stream", "x", "t1")},
      {"task.get",
       {{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tasks/get"},
        {"params", {{"id", "t1"}}}}},
      {"task.cancel",
       {{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tasks/cancel"},
        {"params", {{"id", "t1"}}}}},
      {"task.subscribe",
       {{"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "tasks/resubscribe"},
        {"params", {{"id", "t1"}}}}},
  };
  for (const Case& c : cases) {
    Gateway gateway;
    FakeBackend backend;
    ASSERT_TRUE(backend.StartConversation("t1").ok());
    backend.status["t1"] = "running";
    backend.denied = {c.operation};
    std::vector<json> out = Handle(gateway, backend, c.doc);
    ASSERT_EQ(out.size(), 1u) << c.operation;
    EXPECT_EQ(out[0]["error"]["code"], kProtocolDenied) << c.operation;
    EXPECT_TRUE(backend.signals.empty()) << c.operation;
    EXPECT_TRUE(backend.casts.empty()) << c.operation;
    EXPECT_TRUE(backend.subscribed.empty()) << c.operation;
    EXPECT_EQ(backend.status.size(), 1u) << c.operation;  // none created
  }
  FakeBackend backend;
  backend.denied = {"agent.card"};
  absl::StatusOr<json> card = Gateway().Card(backend, AgentInfo{});
  EXPECT_TRUE(absl::IsPermissionDenied(card.status()));
}

TEST(GatewayTest, CardCarriesToolsAndTheOriginalCard) {
  FakeBackend backend;
  AgentInfo info;
  info.project_id = "p1";
  info.url = "http://127.0.0.1:1/projects/p1/a2a";
  info.version = "0.1.0";
  absl::StatusOr<json> card = Gateway().Card(backend, info);
  ASSERT_TRUE(card.ok());
  EXPECT_EQ((*card)["skills"][0]["id"], "fs.read");
  const json& original = (*card)["capabilities"]["extensions"][0]["params"];
  EXPECT_EQ(original["agent_id"], "jidocodeserver:p1");
  EXPECT_EQ(original["capabilities"]["tool_count"], 1);
  EXPECT_EQ(original["capabilities"]["asset_counts"]["skills"], 2);
  EXPECT_EQ(backend.asked, std::vector<std::string>{"agent.card"});
}

}  // namespace
}  // namespace jcs::protocol::a2a
