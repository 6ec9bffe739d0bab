// Picks a conversation's model adapter from the project's llm_adapter option:
// "deterministic" (the default) or "openai" (llm_openai.h: llm_base_url, the
// key from llm_api_key_file or the variable llm_api_key_env names; without a
// usable key or URL it fails with llm_adapter_unavailable naming the option);
// any other value (or a non-string) fails with invalid_llm_adapter. The failure
// is not fatal: the conversation starts, and each model turn ends in
// conversation.llm.failed carrying it (spec §10.1 case 53).
#ifndef JCS_RUNTIME_CONVERSATION_ADAPTER_FACTORY_H_
#define JCS_RUNTIME_CONVERSATION_ADAPTER_FACTORY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "loop/event_loop.h"
#include "runtime/conversation/llm_adapter.h"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime::conversation {

using AdapterFactory =
    std::function<absl::StatusOr<std::unique_ptr<LlmAdapter>>(
        EventLoop* loop, const ValidatedOptions& options)>;

absl::StatusOr<std::unique_ptr<LlmAdapter>> MakeAdapter(
    EventLoop* loop, const ValidatedOptions& options);

// The option's value as a name ("" when it is not a string).
std::string AdapterName(const ValidatedOptions& options);

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_ADAPTER_FACTORY_H_
