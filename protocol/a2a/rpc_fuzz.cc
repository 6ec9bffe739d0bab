// Fuzzes the A2A gateway's JSON-RPC request parser (rpc.h) with what a
// hostile or broken client could POST. Besides "no crash", it checks the
// documented invariants: exactly one of a request or an error; an error
// carries a JSON-RPC code and an id that is null, a string or an integer; a
// request's task ids are valid conversation ids and its message text is
// bounded and not blank.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/strings/ascii.h"
#include "protocol/a2a/rpc.h"
#include "sanitizers/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace a2a = jcs::protocol::a2a;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const a2a::ParseResult parsed = a2a::ParseRequest(body);
  FUZZ_CHECK(parsed.request.has_value() != parsed.error.has_value());
  if (parsed.error.has_value()) {
    FUZZ_CHECK(parsed.error->code <= -32000 && parsed.error->code >= -32768);
    FUZZ_CHECK(!parsed.error->message.empty());
    FUZZ_CHECK(parsed.error_id.is_null() || parsed.error_id.is_string() ||
               parsed.error_id.is_number_integer());
    return 0;
  }
  const a2a::Request& request = *parsed.request;
  FUZZ_CHECK(request.id.is_string() || request.id.is_number_integer());
  if (request.method == a2a::Method::kMessageSend ||
      request.method == a2a::Method::kMessageStream) {
    FUZZ_CHECK(request.send.text.size() <= a2a::kMaxMessageTextBytes);
    FUZZ_CHECK(!absl::StripAsciiWhitespace(request.send.text).empty());
    FUZZ_CHECK(!request.send.message_id.empty());
    FUZZ_CHECK(!request.send.task_id.has_value() ||
               a2a::ValidTaskId(*request.send.task_id));
    FUZZ_CHECK(request.send.llm.is_null() || request.send.llm.is_object());
  } else {
    FUZZ_CHECK(a2a::ValidTaskId(request.task_id));
  }
  // The id and the documents the gateway builds from the request serialize.
  (void)request.id.dump(-1, ' ', false,
                        nlohmann::json::error_handler_t::replace);
  return 0;
}
