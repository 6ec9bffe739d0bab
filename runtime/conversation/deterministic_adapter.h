// The offline model (llm_adapter "deterministic", spec §7): every test and
// every project without a real model uses it.
//
// The directive comes from the triggering signal's data.llm, else meta.llm:
//   text            the answer
//   delta_chunks    streamed before the answer (conversation.assistant.delta)
//   tool_calls      [{name, args|arguments (object or JSON text), id?}]
//   error           fail the turn with this reason (llm.failed)
//   delay_ms        answer after this long; past the request's timeout_ms the
//                   turn fails with DeadlineExceeded (llm_timeout)
// Without a directive: "list skills" / "list workflows" in the content call
// asset.list {type: skill|workflow}; anything else is answered
// "Acknowledged: <content>". A turn that follows a tool result (the last
// message has role tool) answers "Tool <name> <completed|failed>." so an
// agent loop always ends.
//
// Answers are posted to the loop, never given inline: the caller's state is
// settled before any callback runs.
#ifndef JCS_RUNTIME_CONVERSATION_DETERMINISTIC_ADAPTER_H_
#define JCS_RUNTIME_CONVERSATION_DETERMINISTIC_ADAPTER_H_

#include <memory>

#include "loop/event_loop.h"
#include "runtime/conversation/llm_adapter.h"

namespace jcs::runtime::conversation {

class DeterministicAdapter : public LlmAdapter {
 public:
  explicit DeterministicAdapter(EventLoop* loop) : loop_(loop) {}
  ~DeterministicAdapter() override { CancelAll(); }

  void Complete(LlmRequest request,
                std::function<void(std::string delta)> on_delta,
                std::function<void(absl::StatusOr<LlmResponse>)> done) override;
  void CancelAll() override;

  // The answer for `request` (no timing): exposed for tests.
  static absl::StatusOr<LlmResponse> Answer(const LlmRequest& request);

 private:
  EventLoop* const loop_;
  // Replaced by CancelAll(): answers posted under the old token are dropped.
  std::shared_ptr<bool> token_ = std::make_shared<bool>(true);
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_DETERMINISTIC_ADAPTER_H_
