#include "runtime/project/protocol_allowlist.h"

#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

TEST(ProtocolAllowlistTest, MatchesTrimmedAndCaseInsensitively) {
  EXPECT_TRUE(ProtocolAllowed({"mcp", "a2a"}, "mcp"));
  EXPECT_TRUE(ProtocolAllowed({"mcp", "a2a"}, "a2a"));
  EXPECT_TRUE(ProtocolAllowed({" MCP "}, "mcp"));
  EXPECT_TRUE(ProtocolAllowed({"*"}, "mcp"));
  EXPECT_TRUE(ProtocolAllowed({" * "}, "a2a"));
  EXPECT_FALSE(ProtocolAllowed({"a2a"}, "mcp"));
  EXPECT_FALSE(ProtocolAllowed({}, "mcp"));
  EXPECT_FALSE(ProtocolAllowed({"mcp2", "mc", "m*"}, "mcp"));
}

}  // namespace
}  // namespace jcs::runtime
