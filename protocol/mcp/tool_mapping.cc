#include "protocol/mcp/tool_mapping.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

constexpr auto kReplace = json::error_handler_t::replace;

std::string StringField(const json& doc, const char* key) {
  if (!doc.is_object()) return "";
  const auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

json McpTool(const json& jcs_tool) {
  const std::string kind = StringField(jcs_tool, "kind");
  const json safety = jcs_tool.is_object()
                          ? jcs_tool.value("safety", json::object())
                          : json::object();
  const bool network =
      !safety.is_object() || safety.value("network_capable", true) != false;
  const bool read_only = kind == "asset_list" || kind == "asset_search" ||
                         kind == "asset_get" || kind == "fs_read" ||
                         kind == "fs_list";
  const bool known = read_only || kind == "fs_write" || kind == "exec";
  json schema =
      jcs_tool.is_object() ? jcs_tool.value("input_schema", json()) : json();
  // MCP requires an object schema; every built-in has one, anything else is
  // replaced rather than passed on malformed.
  if (!schema.is_object() || schema.value("type", json()) != "object") {
    schema = {{"type", "object"}};
  }
  return {{"name", StringField(jcs_tool, "name")},
          {"description", StringField(jcs_tool, "description")},
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
  if (StringField(response, "status") != "error") {
    return {{"content", json::array({{{"type", "text"}, {"text", text}}})},
            {"structuredContent", response},
            {"isError", false}};
  }
  const std::string tool = StringField(response, "tool");
  const std::string reason = StringField(response, "reason");
  const json detail = response.value("detail", json::object());
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
