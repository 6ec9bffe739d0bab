// Fuzzes the MCP server (server.h) behind its JSON-RPC parser: what a hostile
// client sends after a good handshake, against a backend whose answers the
// input also picks. The parser alone (json_rpc_fuzz) never reached the
// handlers, where a parameter or an answer of an unexpected shape is read.
//
// Input: the first line is the backend's script, a JSON object; each later
// line goes to HandleLine after `initialize` and `notifications/initialized`.
// The backend answers ListTools with script["tools/list"] when that is an
// array (else the built-in tools), and RunTool(name) with script[name] when
// that is an object (else an ok document echoing the arguments): within
// ToolBackend's contract, with every member's type up to the fuzzer.
//
// Besides "no crash", every line the server writes is a JSON-RPC 2.0 object:
// a response has an id, and exactly one of result or error, the error with
// an integer code and a string message; and every tools/call request the
// client did not cancel is answered (within 5 s) before the server shuts
// down. Waiting for those answers matters: a call still running at
// Shutdown() is cancelled, and its backend answer would never be read.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "protocol/mcp/server.h"
#include "runtime/tools/tool_catalog.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::protocol::mcp::McpServer;
using jcs::protocol::mcp::ToolBackend;
using nlohmann::json;

constexpr size_t kMaxLines = 32;

class ScriptedBackend : public ToolBackend {
 public:
  explicit ScriptedBackend(json script) : script_(std::move(script)) {}

  absl::StatusOr<json> ListTools() override {
    const auto it = script_.find("tools/list");
    if (it != script_.end() && it->is_array()) return *it;
    json tools = json::array();
    for (const jcs::runtime::ToolSpec& tool : jcs::runtime::BuiltinTools()) {
      tools.push_back(jcs::runtime::ToolToJson(tool));
    }
    return tools;
  }

  absl::StatusOr<json> RunTool(
      const std::string& name, const json& args, const json& meta,
      const std::function<void(const std::string&)>& started) override {
    started("call-1");
    const auto it = script_.find(name);
    if (it != script_.end() && it->is_object()) return *it;
    return json{{"status", "ok"},
                {"tool", name},
                {"call_id", "call-1"},
                {"result", args},
                {"meta_seen", meta}};
  }

  absl::Status CancelTool(const std::string&) override {
    return absl::OkStatus();
  }

  absl::Status AuthorizeProtocol(const std::string&) override {
    return absl::OkStatus();
  }

 private:
  const json script_;
};

// The id key of a tools/call request the server must answer, or of the
// request a notifications/cancelled names ("" otherwise).
std::string CallIdKey(const json& message, const char* method, const json& id) {
  if (!message.is_object() || !message.contains("method") ||
      message["method"] != method) {
    return "";
  }
  return id.is_string() || id.is_number_integer() ? id.dump() : "";
}

void CheckLine(std::string_view line) {
  const json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(message.is_object());
  FUZZ_CHECK(message.contains("jsonrpc") && message["jsonrpc"] == "2.0");
  if (message.contains("method")) {
    FUZZ_CHECK(message["method"].is_string());
    return;
  }
  FUZZ_CHECK(message.contains("id"));
  FUZZ_CHECK(message.contains("result") != message.contains("error"));
  if (message.contains("error")) {
    const json& error = message["error"];
    FUZZ_CHECK(error.is_object());
    FUZZ_CHECK(error.contains("code") && error["code"].is_number_integer());
    FUZZ_CHECK(error.contains("message") && error["message"].is_string());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t first_end = input.find('\n');
  json script = json::parse(input.substr(0, first_end), nullptr, false);
  if (!script.is_object()) script = json::object();
  input = first_end == std::string_view::npos ? std::string_view()
                                              : input.substr(first_end + 1);

  ScriptedBackend backend(std::move(script));
  std::mutex mu;
  std::condition_variable written;
  std::vector<std::string> lines;
  std::set<std::string> unanswered;  // tools/call ids, by dump()
  {
    McpServer server(&backend, [&](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.emplace_back(line);
      const json message = json::parse(line, nullptr, false);
      if (message.is_object() && message.contains("id") &&
          !message.contains("method")) {
        unanswered.erase(message["id"].dump());
      }
      written.notify_all();
    });
    server.HandleLine(
        R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":)"
        R"({"protocolVersion":"2025-11-25","capabilities":{},)"
        R"("clientInfo":{"name":"fuzz","version":"1"}}})");
    server.HandleLine(
        R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    for (size_t n = 0; n < kMaxLines && !input.empty(); ++n) {
      const size_t end = input.find('\n');
      const std::string_view line = input.substr(0, end);
      const json message = json::parse(line, nullptr, false);
      const json& id = message.is_object() && message.contains("id")
                           ? message["id"]
                           : json();
      const json& params = message.is_object() && message.contains("params")
                               ? message["params"]
                               : json();
      const json& request_id =
          params.is_object() && params.contains("requestId")
              ? params["requestId"]
              : json();
      {
        std::lock_guard<std::mutex> lock(mu);
        if (std::string key = CallIdKey(message, "tools/call", id);
            !key.empty()) {
          unanswered.insert(std::move(key));
        }
        unanswered.erase(
            CallIdKey(message, "notifications/cancelled", request_id));
      }
      server.HandleLine(line);
      input = end == std::string_view::npos ? std::string_view()
                                            : input.substr(end + 1);
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      FUZZ_CHECK(written.wait_for(lock, std::chrono::seconds(5),
                                  [&] { return unanswered.empty(); }));
    }
    server.Shutdown();
  }
  for (const std::string& line : lines) CheckLine(line);
  return 0;
}
