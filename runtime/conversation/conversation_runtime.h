// The conversations of one project (issue 12), beside its tool runtime and
// created and destroyed with it: start/stop, call (answers once the
// conversation settled, §1.2) and cast, state and projections, diagnostics.
// Runs on the project's event loop.
//
// Conversation ids: given ones are trimmed and must match
// [A-Za-z0-9._:-]{1,128} (invalid_conversation_id); otherwise
// "conversation_<n>". At most kMaxConversations run per project
// (conversation_limit_reached). Errors are statuses "<reason>: <detail>":
// conversation_not_found, conversation_already_started, projection_not_found,
// duplicate_signal (a call whose (id, correlation id) was already ingested),
// queue_overflow, and the signal errors of signal.h.
#ifndef JCS_RUNTIME_CONVERSATION_CONVERSATION_RUNTIME_H_
#define JCS_RUNTIME_CONVERSATION_CONVERSATION_RUNTIME_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"
#include "runtime/conversation/adapter_factory.h"
#include "runtime/conversation/conversation.h"
#include "runtime/project/runtime_options.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {

inline constexpr size_t kMaxConversations = 128;
inline constexpr size_t kMaxConversationIdBytes = 128;

struct ConversationRuntimeConfig {
  std::string project_id;
  EventLoop* loop = nullptr;
  telemetry::Bus* bus = nullptr;
  ValidatedOptions options;
  ToolPort tools;
  AdapterFactory adapter_factory = MakeAdapter;
};

class ConversationRuntime {
 public:
  using Answer = std::function<void(absl::StatusOr<nlohmann::json>)>;

  explicit ConversationRuntime(ConversationRuntimeConfig config);
  // Stops every conversation (stop_project): their calls are cancelled and
  // each emits conversation.stopped; waiting callers get
  // conversation_stopped.
  ~ConversationRuntime();
  ConversationRuntime(const ConversationRuntime&) = delete;
  ConversationRuntime& operator=(const ConversationRuntime&) = delete;

  // Emits conversation.started; returns the id.
  absl::StatusOr<std::string> Start(const std::string& requested_id);
  // Cancels its calls, emits conversation.stopped, forgets it.
  absl::Status Stop(const std::string& conversation_id);
  void StopAll(const std::string& reason);

  // Normalizes and ingests `signal`, emits conversation.event_ingested, then
  // answers with the snapshot (plus settled: true|false) once the
  // conversation settled or `timeout` passed. Errors are answered at once.
  void Call(const std::string& conversation_id, const nlohmann::json& signal,
            absl::Duration timeout, Answer answer);
  // The same without waiting: {signal_id, correlation_id, ingested:
  // queued|duplicate|overflow}.
  absl::StatusOr<nlohmann::json> Cast(const std::string& conversation_id,
                                      const nlohmann::json& signal);

  absl::StatusOr<nlohmann::json> State(const std::string& conversation_id);
  absl::StatusOr<nlohmann::json> Projection(const std::string& conversation_id,
                                            const std::string& key);
  // Every conversation's diagnostics, sorted by id.
  nlohmann::json Diagnostics() const;
  size_t count() const { return conversations_.size(); }

 private:
  struct Waiter {
    std::string conversation_id;
    Answer answer;
    OpId deadline = 0;
    bool has_deadline = false;
  };
  absl::StatusOr<Conversation*> Find(const std::string& conversation_id);
  absl::StatusOr<std::pair<Signal, Conversation::Ingested>> Ingest(
      Conversation* conversation, const nlohmann::json& raw);
  void CheckWaiters(const std::string& conversation_id, bool force);
  void Finish(uint64_t waiter_id, absl::StatusOr<nlohmann::json> result);

  ConversationRuntimeConfig config_;
  std::map<std::string, std::unique_ptr<Conversation>> conversations_;
  uint64_t next_generated_ = 1;
  std::map<uint64_t, Waiter> waiters_;
  uint64_t next_waiter_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_CONVERSATION_RUNTIME_H_
