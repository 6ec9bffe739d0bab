#include "protocol/mcp/tool_mapping.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/json_fields.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

constexpr auto kReplace = json::error_handler_t::replace;

}  // namespace

json McpTool(const json& jcs_tool) {
  const std::string kind = json_fields::String(jcs_tool, "kind");
  const json safety = json_fields::Object(jcs_tool, "safety");
  const bool network = json_fields::Bool(safety, "network_capable", true);
  const bool read_only = kind == "asset_list" || kind == "asset_search" ||
                         kind == "asset_get" || kind == "fs_read" ||
                         kind == "fs_list";
  const bool known = read_only || kind == "fs_write" || kind == "exec";
  json schema = json_fields::Member(jcs_tool, "input_schema");
  // MCP requires an object schema; every built-in has one, anything else is
  // replaced rather than passed on malformed.
  if (!schema.is_object() || json_fields::String(schema, "type") != "object") {
    schema = {{"type", "object"}};
  }
  return {{"name", json_fields::String(jcs_tool, "name")},
          {"description", json_fields::String(jcs_tool, "description")},
          {"inputSchema", std::move(schema)},
          {"annotations",
           {{"readOnlyHint", read_only},
            {"destructiveHint", !read_only},
            // fs.write of the same content twice leaves the same file.
            {"idempotentHint", read_only || kind == "fs_write"},
            {"openWorldHint", !known || network}}}};
}

json CallToolResult(const json& document) {
  // structuredContent must be an object; the runtime's documents are.
  const json response =
      document.is_object() ? document : json{{"value", document}};
  const std::string text = response.dump(-1, ' ', false, kReplace);
  if (json_fields::String(response, "status") != "error") {
    return {{"content", json::array({{{"type", "text"}, {"text", text}}})},
            {"structuredContent", response},
            {"isError", false}};
  }
  const std::string tool = json_fields::String(response, "tool");
  const std::string reason = json_fields::String(response, "reason");
  const json detail = json_fields::Object(response, "detail");
  std::string line =
      absl::StrCat(tool.empty() ? "tool call" : tool,
                   " failed: ", reason.empty() ? "error" : reason);
  if (!(detail.is_object() && detail.empty()) && !detail.is_null()) {
    absl::StrAppend(&line, ": ", detail.dump(-1, ' ', false, kReplace));
  }
  return {{"content", json::array({{{"type", "text"}, {"text", line}}})},
          {"structuredContent", response},
          {"isError", true}};
}

}  // namespace jcs::protocol::mcp
