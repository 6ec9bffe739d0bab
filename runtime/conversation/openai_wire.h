// The OpenAI chat-completions wire format (POST {base}/chat/completions):
// the request body built from an LlmRequest, and the two response forms, a
// JSON body and a stream of server-sent events. No I/O here: the parsers are
// fed bytes, which keeps them fuzzable (openai_wire_fuzz.cc).
//
// Every parser is bounded: an SSE line longer than kMaxSseLineBytes, more than
// kMaxToolCalls tool calls, or a tool-call index beyond it is an error, so a
// hostile or broken server cannot make the daemon allocate without limit
// (the HTTP layer caps the whole body, see llm_openai.h).
#ifndef JCS_RUNTIME_CONVERSATION_OPENAI_WIRE_H_
#define JCS_RUNTIME_CONVERSATION_OPENAI_WIRE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/conversation/llm_adapter.h"
#include "runtime/conversation/openai_tool_names.h"

namespace jcs::runtime::conversation {

inline constexpr size_t kMaxSseLineBytes = 1 << 20;
inline constexpr size_t kMaxToolCalls = 128;

// The JSON body of a chat-completions request. `request.model` must be set;
// the system prompt (when not empty) becomes the first message; tools are
// sent as function specs under their API names (`names`). Fails with an
// llm_bad_request error naming the message or tool at fault.
absl::StatusOr<nlohmann::json> BuildChatRequestBody(const LlmRequest& request,
                                                    const ToolNameMap& names,
                                                    bool stream);

// A complete (non-streamed) response body.
absl::StatusOr<LlmResponse> ParseChatCompletion(absl::string_view body,
                                                const ToolNameMap& names);

// The error message a provider put in a 4xx/5xx body ({"error": {"message"}}),
// or the start of the body when it has none; at most 512 bytes, printable
// ASCII only. Not redacted: the caller does.
std::string ProviderErrorMessage(absl::string_view body);

// Splits a text/event-stream into events (WHATWG server-sent events: `data:`
// lines joined with '\n', dispatched at a blank line; comments and other
// fields ignored). Bytes may arrive split anywhere.
class SseDecoder {
 public:
  using EventFn = std::function<absl::Status(std::string data)>;
  explicit SseDecoder(EventFn on_event) : on_event_(std::move(on_event)) {}
  // Stops at the first error of the decoder or of `on_event`.
  absl::Status Feed(absl::string_view bytes);

 private:
  absl::Status Line(absl::string_view line);

  EventFn on_event_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool skip_lf_ = false;  // the last byte was a '\r' ending a line
};

// Assembles the streamed chunks (`data` of each event) into a response:
// content deltas are passed to `on_delta` and concatenated, tool-call
// fragments are joined by their index, `[DONE]` ends the stream.
class StreamAssembler {
 public:
  using DeltaFn = std::function<void(std::string delta)>;
  StreamAssembler(const ToolNameMap& names, DeltaFn on_delta)
      : names_(names), on_delta_(std::move(on_delta)) {}
  absl::Status OnEvent(const std::string& data);
  bool done() const { return done_; }
  // The response; llm_stream_truncated when [DONE] never came.
  absl::StatusOr<LlmResponse> Finish();

 private:
  struct PartialCall {
    std::string id, name, arguments;
  };
  const ToolNameMap& names_;
  DeltaFn on_delta_;
  LlmResponse response_;
  std::vector<PartialCall> calls_;
  bool done_ = false;
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_OPENAI_WIRE_H_
