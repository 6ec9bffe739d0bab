// MCP's view of jcs's tools: the Tool objects of tools/list and the
// CallToolResult of tools/call, from the documents the tool runtime produces
// (runtime/tools/tool_catalog.h ToolToJson, tool_runtime.h responses).
#ifndef JCS_PROTOCOL_MCP_TOOL_MAPPING_H_
#define JCS_PROTOCOL_MCP_TOOL_MAPPING_H_

#include "nlohmann/json.hpp"

namespace jcs::protocol::mcp {

// {name, title, description, inputSchema, annotations}. The hints come from
// the tool's kind and safety flags: the asset.* tools, fs.read and fs.list
// only read (readOnlyHint); fs.write overwrites and exec runs anything in
// the project root (destructiveHint); openWorldHint is the network_capable
// flag. A kind this table does not know gets the cautious hints (not read
// only, destructive, open world): hints are what a host shows a person
// before it lets a call run.
nlohmann::json McpTool(const nlohmann::json& jcs_tool);

// The CallToolResult of one response document: structuredContent is the
// document itself (status, result, call_id, duration_ms, risk_flags, ...),
// the text content its JSON. A document with status "error" is an isError
// result whose text starts with "<tool> failed: <reason>" and the detail.
nlohmann::json CallToolResult(const nlohmann::json& response);

}  // namespace jcs::protocol::mcp

#endif  // JCS_PROTOCOL_MCP_TOOL_MAPPING_H_
