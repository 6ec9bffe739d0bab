#include "protocol/mcp/tool_mapping.h"

#include "gtest/gtest.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

TEST(McpToolTest, UnknownKindGetsTheCautiousHints) {
  const json tool = McpTool({{"name", "command.run.deploy"},
                             {"description", "d"},
                             {"input_schema", {{"type", "object"}}},
                             {"kind", "command_run"},
                             {"safety", {{"network_capable", false}}}});
  EXPECT_EQ(tool["annotations"]["readOnlyHint"], false);
  EXPECT_EQ(tool["annotations"]["destructiveHint"], true);
  EXPECT_EQ(tool["annotations"]["idempotentHint"], false);
  EXPECT_EQ(tool["annotations"]["openWorldHint"], true);
}

TEST(McpToolTest, MissingSafetyCountsAsNetworkCapable) {
  const json tool = McpTool({{"name", "exec"}, {"kind", "exec"}});
  EXPECT_EQ(tool["annotations"]["openWorldHint"], true);
}

TEST(McpToolTest, NonObjectSchemaIsReplaced) {
  for (const json& schema : {json("x"), json({{"type", "array"}}), json()}) {
    const json tool = McpTool({{"name", "t"}, {"input_schema", schema}});
    EXPECT_EQ(tool["inputSchema"], json({{"type", "object"}})) << schema;
  }
  EXPECT_EQ(McpTool(42)["name"], "");  // never throws
}

TEST(CallToolResultTest, ErrorTextNamesToolReasonAndDetail) {
  json result = CallToolResult({{"status", "error"},
                                {"tool", "exec"},
                                {"reason", "env_vars_not_allowed"},
                                {"detail", {{"denied_env_keys", {"AWS"}}}}});
  EXPECT_EQ(result["isError"], true);
  EXPECT_EQ(
      result["content"][0]["text"],
      "exec failed: env_vars_not_allowed: {\"denied_env_keys\":[\"AWS\"]}");
  result = CallToolResult(
      {{"status", "error"}, {"tool", "exec"}, {"reason", "cancelled"}});
  EXPECT_EQ(result["content"][0]["text"], "exec failed: cancelled");
}

TEST(CallToolResultTest, StructuredContentIsAlwaysAnObject) {
  const json result = CallToolResult(json::array({1}));
  EXPECT_TRUE(result["structuredContent"].is_object());
  EXPECT_EQ(result["isError"], false);
}

}  // namespace
}  // namespace jcs::protocol::mcp
