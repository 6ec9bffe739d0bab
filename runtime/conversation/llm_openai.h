// The OpenAI-compatible model adapter (issue 12): POST {llm_base_url}/
// chat/completions with the conversation, the project's tools as function
// specs (names mapped to the API's pattern and back, openai_tool_names.h)
// and, by default, `stream: true` (server-sent events: content deltas go to
// on_delta as they arrive, tool-call fragments are assembled).
//
// Threads. Complete() is called on the event loop and returns at once: each
// request runs on its own thread (http_client.h: name resolution and TLS
// block), which hands deltas and the result back with EventLoop::Post. Not
// the shared WorkerPool: a model answer takes up to llm_timeout_ms (minutes),
// and would hold a pool thread that tool calls' file work needs. At most
// `max_concurrent` requests run; more fail at once with llm_overloaded.
// The adapter must be destroyed on the loop thread before the loop; its
// destructor cancels what runs and joins the threads.
//
// The API key is read once at Create and is only ever written into the
// Authorization header: it is in no status message (error texts from the
// provider are scrubbed of it and redacted, telemetry/redact.h), nor in
// Describe(), so no event or journal row can carry it.
#ifndef JCS_RUNTIME_CONVERSATION_LLM_OPENAI_H_
#define JCS_RUNTIME_CONVERSATION_LLM_OPENAI_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"
#include "runtime/conversation/http_client.h"
#include "runtime/conversation/llm_adapter.h"
#include "runtime/conversation/openai_tool_names.h"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime::conversation {

struct OpenAiOptions {
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;        // "": no Authorization header (loopback only)
  std::string default_model;  // used when LlmRequest::model is empty
  bool stream = true;
  size_t max_response_bytes = 8 << 20;  // body or stream, decoded
  int max_concurrent = 16;
};

// The adapter's options from a project's runtime options: llm_base_url,
// llm_stream, llm_model, and the key from llm_api_key_file (a regular file,
// at most 4 KiB, surrounding whitespace trimmed) or else the daemon's
// environment variable named by llm_api_key_env. `getenv_fn` is getenv in
// the daemon (a parameter for tests). Fails when no key is found and the
// base URL is not loopback, or when the key is not one line of printable
// ASCII (it goes into an HTTP header); errors name the option, never the key.
absl::StatusOr<OpenAiOptions> OpenAiOptionsFromRuntime(
    const ValidatedOptions& options,
    const std::function<const char*(const char*)>& getenv_fn);

class OpenAiAdapter : public LlmAdapter {
 public:
  static absl::StatusOr<std::unique_ptr<OpenAiAdapter>> Create(
      EventLoop* loop, OpenAiOptions options);
  ~OpenAiAdapter() override;

  void Complete(LlmRequest request,
                std::function<void(std::string delta)> on_delta,
                std::function<void(absl::StatusOr<LlmResponse>)> done) override;
  void CancelAll() override;

  // For llm.requested events and diagnostics: provider, base URL, stream,
  // whether a key is set. Never the key.
  nlohmann::json Describe() const;

  // Requests started and not yet finished (loop thread).
  size_t running() const;

 private:
  struct Call;
  struct Core;
  OpenAiAdapter(EventLoop* loop, OpenAiOptions options, HttpUrl url);
  // The request's thread body.
  static void Run(std::shared_ptr<Core> core, std::shared_ptr<Call> call,
                  HttpCall http, bool stream,
                  std::shared_ptr<ToolNameMap> names, std::string api_key);

  const OpenAiOptions options_;
  const HttpUrl url_;
  std::shared_ptr<Core> core_;
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_LLM_OPENAI_H_
