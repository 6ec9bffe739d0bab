#include "supervisor/a2a_http.h"

#include <thread>

#include "gtest/gtest.h"

namespace jcs::supervisor {
namespace {

proto::Event ConversationEvent(const std::string& project,
                               const std::string& conversation, int n) {
  proto::Event event;
  event.set_name("conversation.user.message");
  event.set_project_id(project);
  event.set_payload_json(nlohmann::json{
      {"conversation_id", conversation},
      {"event_type", "conversation.user.message"},
      {"n", n}}.dump());
  return event;
}

// A stream sees its own conversation's events only: not another project's
// conversation of the same id, not another conversation, not other events.
TEST(A2aEventHubTest, DeliversOnlyTheSubscribedConversation) {
  A2aEventHub hub;
  std::unique_ptr<protocol::a2a::Subscription> sub = hub.Subscribe("p", "c");
  hub.Publish(ConversationEvent("other", "c", 1));
  hub.Publish(ConversationEvent("p", "d", 2));
  proto::Event not_conversation = ConversationEvent("p", "c", 3);
  not_conversation.set_name("security.protocol_denied");
  hub.Publish(not_conversation);
  hub.Publish(ConversationEvent("p", "c", 4));
  std::optional<nlohmann::json> got = sub->Next(absl::Seconds(1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)["n"], 4);
  EXPECT_FALSE(sub->Next(absl::Milliseconds(10)).has_value());
}

TEST(A2aEventHubTest, BoundedAndUnsubscribedOnDestruction) {
  A2aEventHub hub(/*max_queued=*/3);
  std::unique_ptr<protocol::a2a::Subscription> sub = hub.Subscribe("p", "c");
  for (int i = 0; i < 10; ++i) hub.Publish(ConversationEvent("p", "c", i));
  for (int want : {7, 8, 9}) {
    std::optional<nlohmann::json> got = sub->Next(absl::ZeroDuration());
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ((*got)["n"], want);
  }
  EXPECT_FALSE(sub->Next(absl::ZeroDuration()).has_value());
  sub.reset();
  hub.Publish(ConversationEvent("p", "c", 11));  // nobody left: no crash
}

// Publish runs on the event loop while streams wait on their own threads.
TEST(A2aEventHubTest, WakesAWaitingStream) {
  A2aEventHub hub;
  std::unique_ptr<protocol::a2a::Subscription> sub = hub.Subscribe("p", "c");
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(20));
    hub.Publish(ConversationEvent("p", "c", 1));
  });
  std::optional<nlohmann::json> got = sub->Next(absl::Seconds(10));
  publisher.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)["n"], 1);
}

}  // namespace
}  // namespace jcs::supervisor
