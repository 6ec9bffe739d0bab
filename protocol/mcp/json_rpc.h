// JSON-RPC 2.0 over stdio for the MCP server (issue 15): newline-delimited
// messages (MCP's stdio transport: one JSON object per line, no embedded
// newlines), each line bounded, parsed into a request, a notification or a
// response, or into the error the peer must get back:
//   -32700 parse error      the line is not JSON (or nests deeper than
//                           kMaxJsonDepth); answered with id null
//   -32600 invalid request  not a JSON-RPC 2.0 object (jsonrpc != "2.0", a
//                           batch array, a non-string method, an id that is
//                           neither a string nor an integer, a line over the
//                           size bound)
//   -32601 method not found (the server's answer to an unknown method)
//   -32602 invalid params   params present but not an object (MCP's methods
//                           all take named params), or wrong fields
// Batches (JSON arrays) are refused with -32600: MCP 2025-06-18 removed them,
// and answering each element separately would break JSON-RPC's batch reply.
#ifndef JCS_PROTOCOL_MCP_JSON_RPC_H_
#define JCS_PROTOCOL_MCP_JSON_RPC_H_

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace jcs::protocol::mcp {

inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// MCP's code for resources/read of a resource that does not exist.
inline constexpr int kResourceNotFound = -32002;
// jcs's: the project's protocol_allowlist does not allow MCP. A server error
// (JSON-RPC reserves -32000..-32099 for them), not -32600: the request is
// well-formed, the project refuses the protocol. -32000 and -32001 are the
// TypeScript SDK's ConnectionClosed and RequestTimeout, -32002 MCP's.
inline constexpr int kProtocolDenied = -32003;

// One message's line, without its newline. Tool arguments (a file's content
// for fs.write) are the large ones; the control API's frame cap is the same.
inline constexpr size_t kMaxMessageBytes = 4 << 20;
// Nothing MCP sends nests this deep; the bound keeps a hostile line from
// building a deep tree that later code would walk recursively.
inline constexpr int kMaxJsonDepth = 64;

struct RpcError {
  int code = kInternalError;
  std::string message;
};

struct Message {
  enum class Kind { kRequest, kNotification, kResponse };
  Kind kind = Kind::kRequest;
  // Requests and responses: a string or an integer.
  nlohmann::json id;
  // Requests and notifications.
  std::string method;
  // An object, or null when absent.
  nlohmann::json params;
};

// A parsed line: the message, or the error to answer with `error_id` (the
// request's id when it could be read, else null).
struct ParseResult {
  std::optional<Message> message;
  std::optional<RpcError> error;
  nlohmann::json error_id;
};

ParseResult ParseMessage(std::string_view line);

// Response and notification documents.
nlohmann::json ResultResponse(const nlohmann::json& id, nlohmann::json result);
nlohmann::json ErrorResponse(const nlohmann::json& id, const RpcError& error);
nlohmann::json Notification(std::string_view method, nlohmann::json params);

// One line of the wire: compact JSON (invalid UTF-8 replaced, so a tool's
// binary output cannot break the stream) and "\n". JSON escapes every
// control character inside strings, so the line holds exactly one newline.
std::string SerializeLine(const nlohmann::json& message);

// Splits a byte stream into lines of at most `max_bytes` (without the "\n";
// a trailing "\r" is dropped; blank lines are skipped). A line over the
// bound is reported once, as soon as it passes the bound, and its bytes up
// to the next newline are discarded without being kept. The items do not
// depend on how the stream was split into Feed calls.
class LineReader {
 public:
  explicit LineReader(size_t max_bytes = kMaxMessageBytes)
      : max_bytes_(max_bytes) {}

  struct Item {
    bool oversized = false;
    std::string line;  // empty when oversized
  };

  void Feed(std::string_view bytes);
  // The next complete item, oldest first.
  std::optional<Item> Next();
  // Bytes held for the current partial line (at most max_bytes + 1: its
  // "\r" may follow).
  size_t buffered() const { return partial_.size(); }

 private:
  void EndLine();

  const size_t max_bytes_;
  std::string partial_;
  bool discarding_ = false;
  std::deque<Item> ready_;
};

}  // namespace jcs::protocol::mcp

#endif  // JCS_PROTOCOL_MCP_JSON_RPC_H_
