// What a conversation's in-memory timeline really costs on the heap, against
// the bytes it accounts (kMaxTimelineBytes counts serialized bytes). Found by
// tools/journal_bench: with the timeline kept as parsed JSON, each ~500-byte
// event cost ~2.6 KB of heap, so 200 conversations at the 2,000-entry cap
// held a daemon at 1 GB, five times what the byte bound suggests.
#include <malloc.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "loop/event_loop.h"
#include "runtime/conversation/conversation.h"
#include "runtime/conversation/conversation_runtime.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {
namespace {

using json = nlohmann::json;

size_t HeapInUse() { return mallinfo2().uordblks; }

TEST(ConversationMemoryTest, TimelineHeapStaysNearItsAccountedBytes) {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  telemetry::Bus bus;
  ConversationRuntimeConfig config;
  config.project_id = "p1";
  config.loop = loop->get();
  config.bus = &bus;
  config.tools.cancel_conversation = [](const std::string&, const json&) {
    return 0;
  };
  config.tools.list_tools = [] { return json::array(); };
  auto runtime = std::make_unique<ConversationRuntime>(std::move(config));
  ASSERT_TRUE(runtime->Start("c0").ok());
  ASSERT_TRUE(runtime->Start("c1").ok());

  // The deterministic model answers each message with the given text: four
  // timeline entries per message, no tool.
  int sent = 0;
  auto send = [&](const std::string& id, int n) {
    for (int i = 0; i < n; ++i, ++sent) {
      json signal = {
          {"type", "conversation.user.message"},
          {"data",
           {{"content", absl::StrCat("please look at item ", sent)},
            {"llm", {{"text", absl::StrCat("item ", sent, " is fine")}}}}}};
      ASSERT_TRUE(runtime->Cast(id, signal).ok());
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    for (;;) {
      absl::StatusOr<json> d = runtime->Projection(id, "diagnostics");
      ASSERT_TRUE(d.ok());
      if ((*d)["queue_size"] == 0 && (*d)["status"] == "idle" &&
          (*d)["active_run"].is_null()) {
        break;
      }
      ASSERT_LT(absl::Now(), deadline) << *d;
      (void)(*loop)->RunOnce(absl::Milliseconds(1));
    }
  };
  // Warm up in another conversation of the project (the bus's rings fill,
  // maps and loop buffers settle), then fill c1's timeline from empty to
  // past its entry cap.
  send("c0", 300);
  const size_t before = HeapInUse();
  send("c1", kMaxTimelineEntries / 4 + 200);
  const size_t after = HeapInUse();

  absl::StatusOr<json> timeline = runtime->Projection("c1", "timeline");
  ASSERT_TRUE(timeline.ok());
  ASSERT_EQ(timeline->size(), kMaxTimelineEntries);
  size_t accounted = 0;
  for (const json& e : *timeline) accounted += e.dump().size();
  const size_t grown = after > before ? after - before : 0;
  // c1's timeline is new; a growth below half of it means this allocator does
  // not report through mallinfo2 (the sanitizers bring their own).
  if (grown < accounted / 2) {
    GTEST_SKIP() << "the heap grew " << grown << " bytes for " << accounted
                 << " bytes of timeline: mallinfo2 does not see this "
                    "allocator";
  }
  printf("the heap grew %zu bytes for %zu accounted bytes of timeline\n", grown,
         accounted);
  // What else grew meanwhile (dedup keys, the model context) is small next to
  // the timeline; the timeline itself may cost its bytes plus a string and
  // deque slot per entry, not the several-fold of a parsed JSON tree.
  EXPECT_LE(grown, 2 * accounted)
      << "the heap grew " << grown << " bytes for " << accounted
      << " accounted bytes of timeline (" << kMaxTimelineEntries << " entries)";
}

}  // namespace
}  // namespace jcs::runtime::conversation
