// One conversation (spec §7, issue 12): the reducer over its signals and the
// agent loop that drives the model and the project's tools. Runs on the
// project's event loop; every event goes through the telemetry bus (counted,
// kept in the rings, streamed, journaled) with the payload
//   {project_id, conversation_id, correlation_id, event_type, source:
//    "conversation", signal_id, at, data, seq_in_conversation}.
//
// Ingest: a normalized signal (signal.h) is dropped when its (id,
// correlation id) was seen (the last kDedupWindow keys); refused with
// conversation.queue.overflow {reason: "queue_overflow", queue_size,
// max_queue_size, dropped_signal_id} when the queue holds
// conversation_max_queue_size signals (or kMaxQueuedBytes); else queued. The
// queue is the inbox plus the user messages waiting for the running turn plus
// the tool requests held while cancelled; cancel and resume count only the
// inbox, so a flood of messages never locks out the cancel that contains it.
// A drain pass on the loop handles at most conversation_max_drain_steps
// signals, then posts the next pass, so a flood never holds the loop.
//
// Agent loop: a user message opens a run with its correlation id (all of the
// run's events, tool calls, policy decisions and results carry it):
// llm.requested -> the adapter -> assistant.delta per streamed chunk ->
// either one tool.requested (only the first tool call of a turn is run) and
// llm.completed, the tool through the project's tool runtime (meta:
// conversation_id, correlation_id), its tool.completed / tool.failed and the
// result as a role-tool message, then the next turn; or assistant.message
// (non-blank text) and llm.completed, which ends the run. kMaxTurns (16)
// model turns per run: the 17th ends the run with llm.failed reason
// max_turns_reached. Adapter errors end the run with llm.failed {reason,
// error}; the conversation goes back to idle and stays usable.
//
// Cancel: the running turn is dropped, every running tool call of the
// conversation is killed (ToolRuntime::CancelConversation: whole process
// trees), one tool.cancelled {name, args, meta, call_id, reason} per pending
// call with the cancel's correlation id (reason conversation_cancelled unless
// data.reason), waiting messages are dropped, status cancelled; no late
// completion follows. While cancelled, user messages and tool requests are
// recorded but nothing runs (a tool request stays pending until the next
// cancel). Resume only from cancelled (else resume.rejected {reason:
// not_cancelled}).
//
// Memory is bounded: the in-memory timeline keeps the newest
// kMaxTimelineEntries / kMaxTimelineBytes, serialized so that the byte bound
// is what it costs (the journal keeps everything), the
// model context the newest kMaxContextMessages / kMaxContextBytes (always the
// last message), tool results in it are cut at kMaxToolResultChars.
#ifndef JCS_RUNTIME_CONVERSATION_CONVERSATION_H_
#define JCS_RUNTIME_CONVERSATION_CONVERSATION_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"
#include "runtime/conversation/llm_adapter.h"
#include "runtime/conversation/signal.h"
#include "runtime/tools/tool_runtime.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {

inline constexpr int kMaxTurns = 16;
inline constexpr size_t kDedupWindow = 4096;
inline constexpr size_t kMaxQueuedBytes = 4 << 20;
inline constexpr size_t kMaxTimelineEntries = 2000;
inline constexpr size_t kMaxTimelineBytes = 4 << 20;
inline constexpr size_t kMaxContextMessages = 200;
inline constexpr size_t kMaxContextBytes = 1 << 20;
inline constexpr size_t kMaxToolResultChars = 16 << 10;

// How a conversation reaches its project's tool runtime (a seam for tests).
struct ToolPort {
  std::function<void(ToolCallRequest, ToolRuntime::Respond)> run;
  // ToolRuntime::AwaitResult / RecentResult (async calls).
  std::function<bool(const std::string& call_id, ToolRuntime::Respond)>
      await_result;
  std::function<std::optional<nlohmann::json>(const std::string& call_id)>
      recent_result;
  std::function<int(const std::string& conversation_id,
                    const nlohmann::json& cancel_meta)>
      cancel_conversation;
  std::function<nlohmann::json()> list_tools;  // ToolRuntime::ListTools
};

struct ConversationConfig {
  std::string project_id;
  std::string conversation_id;
  EventLoop* loop = nullptr;
  telemetry::Bus* bus = nullptr;
  ToolPort tools;
  // The adapter, or why there is none (every turn then fails with it).
  std::unique_ptr<LlmAdapter> adapter;
  absl::Status adapter_status;
  std::string adapter_name;
  int64_t max_queue_size = 10000;
  int64_t max_drain_steps = 128;
  std::string model, system_prompt;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  int64_t llm_timeout_ms = 120000;
};

class Conversation {
 public:
  enum class Ingested { kQueued, kDuplicate, kOverflow };

  explicit Conversation(ConversationConfig config);
  ~Conversation();
  Conversation(const Conversation&) = delete;
  Conversation& operator=(const Conversation&) = delete;

  const std::string& id() const { return config_.conversation_id; }

  Ingested Ingest(Signal signal);
  // Stop (stop_conversation, stop_project): cancels like a cancel with
  // reason `reason`, then emits conversation.stopped. Nothing runs after.
  void Stop(const std::string& reason);
  // Emits a conversation event outside the timeline (started,
  // event_ingested).
  void EmitTelemetry(const std::string& type, nlohmann::json data,
                     const std::string& correlation_id,
                     const std::string& signal_id);

  // §1.2: nothing queued, no turn running, no synchronous tool running
  // (settled at once while an async call runs), status idle or cancelled.
  bool Settled() const;
  // Called after every change (the runtime answers settle waiters).
  void set_on_change(std::function<void()> on_change) {
    on_change_ = std::move(on_change);
  }

  std::string status() const;
  nlohmann::json Snapshot() const;
  nlohmann::json State() const;
  // timeline, llm_context, pending_tool_calls, diagnostics; nullopt else.
  std::optional<nlohmann::json> Projection(const std::string& key) const;
  nlohmann::json Diagnostics() const;

 private:
  enum class Status { kIdle, kRunning, kCancelled };
  struct Pending {
    uint64_t key = 0;
    std::string name;
    nlohmann::json args, meta;
    std::string call_id;          // the model's (or the request's) id
    std::string runtime_call_id;  // the tool runtime's, once accepted
    std::string correlation_id;
    std::string signal_id;
    bool dispatched = false;
    bool async = false;
  };
  struct Run {
    // User-provided: clang cannot default-construct a nested struct with
    // member initializers through the enclosing class's std::optional.
    Run() {}
    uint64_t id = 0;
    std::string correlation_id;
    std::string signal_id;
    int turns = 0;
    bool llm_in_flight = false;
    uint64_t awaiting_tool = 0;  // Pending::key, 0 when none
  };

  nlohmann::json Emit(const std::string& type, nlohmann::json data,
                      const std::string& correlation_id,
                      const std::string& signal_id, bool timeline = true);
  void AppendTimeline(const nlohmann::json& payload);
  void AppendContext(LlmMessage message);
  void ScheduleDrain();
  void Drain();
  void Process(Signal signal);
  void MaybeStartRun();
  void StartTurn(nlohmann::json source_event);
  void OnLlmDone(uint64_t run_id, absl::StatusOr<LlmResponse> response);
  void EndRun();
  // `signal_bytes`: the size of the tool.requested signal (0 for a model
  // turn's request), counted while the request is held (cancelled).
  void RequestTool(const nlohmann::json& data,
                   const std::string& correlation_id,
                   const std::string& signal_id, bool from_run,
                   size_t signal_bytes = 0);
  void Dispatch(Pending& pending);
  void OnToolResponse(uint64_t key, nlohmann::json response);
  void CancelAll(const std::string& reason, const std::string& correlation_id,
                 const std::string& signal_id);
  void UpdateIdle();
  void Changed();
  size_t queue_size() const { return inbox_.size() + waiting_.size(); }
  nlohmann::json PendingJson() const;
  nlohmann::json ActiveRunJson() const;

  ConversationConfig config_;
  Status status_ = Status::kIdle;
  bool stopped_ = false;
  std::deque<Signal> inbox_;
  std::deque<Signal> waiting_;  // user messages waiting for the running run
  size_t queued_bytes_ = 0;
  bool drain_scheduled_ = false;
  uint64_t drain_iteration_ = 0;
  std::deque<std::string> dedup_order_;
  std::set<std::string> dedup_;
  std::optional<Run> run_;
  uint64_t next_run_ = 1;
  uint64_t run_history_ = 0;
  std::vector<Pending> pending_;
  uint64_t next_pending_ = 1;
  // The pending entries held while cancelled, and their bytes.
  size_t held_count_ = 0;
  size_t held_bytes_ = 0;
  std::deque<std::string> timeline_;  // serialized entries
  size_t timeline_bytes_ = 0;
  uint64_t timeline_dropped_ = 0;
  std::deque<LlmMessage> context_;
  size_t context_bytes_ = 0;
  uint64_t seq_ = 0;
  uint64_t event_count_ = 0;
  std::string last_signal_type_;
  std::function<void()> on_change_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_CONVERSATION_H_
