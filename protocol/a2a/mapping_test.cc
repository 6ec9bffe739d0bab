#include "protocol/a2a/mapping.h"

#include "gtest/gtest.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

json Entry(const std::string& type, int seq, json data = json::object()) {
  return {{"event_type", type},
          {"seq_in_conversation", seq},
          {"data", std::move(data)}};
}

TEST(MappingTest, StateFollowsTheConversation) {
  const json none = json::array();
  const json answered =
      json::array({Entry("conversation.user.message", 1, {{"content", "a"}}),
                   Entry("conversation.assistant.message", 2)});
  const json failed = json::array({Entry("conversation.user.message", 1),
                                   Entry("conversation.llm.failed", 2)});
  json recovered = failed;
  recovered.push_back(Entry("conversation.user.message", 3));
  EXPECT_EQ(TaskState("running", answered), "working");
  EXPECT_EQ(TaskState("cancelled", answered), "canceled");
  EXPECT_EQ(TaskState("stopped", none), "canceled");
  EXPECT_EQ(TaskState("idle", none), "submitted");
  EXPECT_EQ(TaskState("idle", answered), "completed");
  EXPECT_EQ(TaskState("idle", failed), "failed");
  EXPECT_EQ(TaskState("idle", recovered), "completed");
  EXPECT_TRUE(TerminalState("completed"));
  EXPECT_FALSE(TerminalState("working"));
}

TEST(MappingTest, TaskHistoryAndArtifacts) {
  const json timeline = json::array(
      {Entry("conversation.user.message", 1,
             {{"content", "q1"}, {"a2a_message_id", "client-1"}}),
       Entry("conversation.llm.completed", 2),
       Entry("conversation.assistant.message", 3, {{"content", "a1"}}),
       Entry("conversation.user.message", 4, {{"content", "q2"}}),
       Entry("conversation.assistant.message", 5, {{"content", "a2"}})});
  json task = Task("t", "idle", timeline, std::nullopt);
  EXPECT_EQ(task["id"], "t");
  EXPECT_EQ(task["contextId"], "t");
  ASSERT_EQ(task["history"].size(), 4u);
  EXPECT_EQ(task["history"][0]["messageId"], "client-1");
  EXPECT_EQ(task["history"][1]["messageId"], "t-3");
  EXPECT_EQ(task["history"][3]["parts"][0]["text"], "a2");
  EXPECT_EQ(task["artifacts"].size(), 2u);
  EXPECT_EQ(task["status"]["message"]["parts"][0]["text"], "a2");
  task = Task("t", "idle", timeline, 1);
  ASSERT_EQ(task["history"].size(), 1u);
  EXPECT_EQ(task["history"][0]["parts"][0]["text"], "a2");
  EXPECT_EQ(Task("t", "idle", timeline, 0)["history"].size(), 0u);
}

TEST(MappingTest, StreamEvents) {
  EXPECT_FALSE(
      StreamEvent("t", Entry("conversation.assistant.delta", 1)).has_value());
  EXPECT_FALSE(StreamEvent("t", json("x")).has_value());
  std::optional<json> working =
      StreamEvent("t", Entry("conversation.tool.requested", 1));
  ASSERT_TRUE(working.has_value());
  EXPECT_EQ((*working)["status"]["state"], "working");
  EXPECT_EQ((*working)["final"], false);
  std::optional<json> answer = StreamEvent(
      "t", Entry("conversation.assistant.message", 7, {{"content", "hi"}}));
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ((*answer)["kind"], "artifact-update");
  EXPECT_EQ((*answer)["artifact"]["artifactId"], "answer-7");
  json end = FinalStatusEvent("t", "completed");
  EXPECT_EQ(end["final"], true);
  EXPECT_EQ(end["taskId"], "t");
}

TEST(MappingTest, CardIsAnA2aAgentCard) {
  AgentInfo info;
  info.project_id = "p";
  info.url = "http://127.0.0.1:9/projects/p/a2a";
  info.version = "1";
  info.bearer = true;
  info.tools = json::array({{{"name", "exec"}, {"description", "Runs"}}});
  const json card = AgentCard(info);
  for (const char* key :
       {"protocolVersion", "name", "description", "url", "version",
        "capabilities", "defaultInputModes", "defaultOutputModes", "skills"}) {
    EXPECT_TRUE(card.contains(key)) << key;
  }
  EXPECT_EQ(card["protocolVersion"], "0.3.0");
  EXPECT_EQ(card["capabilities"]["streaming"], true);
  EXPECT_EQ(card["skills"][0]["tags"], json::array({"tool"}));
  EXPECT_EQ(card["security"][0].count("bearer"), 1u);
  const json& original = card["capabilities"]["extensions"][0];
  EXPECT_EQ(original["uri"], kJcsCardExtension);
  EXPECT_EQ(original["params"]["protocols"], json::array({"a2a"}));
  EXPECT_EQ(original["params"]["capabilities"]["asset_counts"]["workflows"], 0);
  info.bearer = false;
  EXPECT_FALSE(AgentCard(info).contains("security"));
}

}  // namespace
}  // namespace jcs::protocol::a2a
