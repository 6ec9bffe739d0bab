#include "runtime/tools/tool_catalog.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/tools/tool_schema.h"

namespace jcs::runtime {
namespace {

std::vector<std::string> VisibleNames(const ValidatedOptions& options) {
  std::vector<std::string> names;
  for (const ToolSpec& tool : BuiltinTools()) {
    if (ToolVisible(tool, options)) names.push_back(tool.name);
  }
  return names;
}

TEST(ToolCatalogTest, BuiltinsAreSortedAndFindable) {
  std::vector<std::string> names;
  for (const ToolSpec& tool : BuiltinTools()) names.push_back(tool.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "asset.get", "asset.list", "asset.search", "exec",
                       "exec.network", "fs.list", "fs.read", "fs.write"}));
  ASSERT_NE(FindTool("exec"), nullptr);
  EXPECT_TRUE(FindTool("exec")->sandboxed);
  EXPECT_FALSE(FindTool("exec")->network_capable);
  EXPECT_TRUE(FindTool("exec.network")->network_capable);
  EXPECT_FALSE(FindTool("fs.read")->sandboxed);
  EXPECT_EQ(FindTool("nope"), nullptr);
  EXPECT_EQ(FindTool(""), nullptr);
}

TEST(ToolCatalogTest, NetworkCapableToolsHiddenUnlessEgressAllowed) {
  ValidatedOptions options;
  std::vector<std::string> names = VisibleNames(options);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec.network"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec"), 1);
  options.network_egress_policy = EgressPolicy::kAllow;
  names = VisibleNames(options);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec.network"), 1);
}

TEST(ToolCatalogTest, AllowAndDenyToolsFilterByName) {
  ValidatedOptions options;
  options.allow_tools = std::vector<std::string>{"asset.list", "exec"};
  options.deny_tools = {"exec"};
  EXPECT_EQ(VisibleNames(options), std::vector<std::string>{"asset.list"});
  EXPECT_FALSE(ToolAllowedByName("exec", options));
  EXPECT_FALSE(ToolAllowedByName("fs.read", options));
  options.allow_tools = std::vector<std::string>{};
  EXPECT_TRUE(VisibleNames(options).empty());
}

TEST(ToolCatalogTest, SchemasValidateTheDocumentedArguments) {
  const nlohmann::json& exec = FindTool("exec")->input_schema;
  EXPECT_TRUE(ValidateToolArgs(exec, {{"argv", {"ls", "-l"}}}).ok());
  EXPECT_FALSE(ValidateToolArgs(exec, nlohmann::json::object()).ok());
  EXPECT_FALSE(ValidateToolArgs(exec, {{"argv", {"ls", 1}}}).ok());
  EXPECT_FALSE(ValidateToolArgs(exec, {{"argv", {"ls"}}, {"bogus", 1}}).ok());
  const nlohmann::json& search = FindTool("asset.search")->input_schema;
  absl::Status status = ValidateToolArgs(search, {{"type", "skill"}});
  EXPECT_NE(status.message().find("query"), std::string::npos) << status;
  const nlohmann::json json = ToolToJson(*FindTool("fs.write"));
  EXPECT_EQ(json["safety"]["sandboxed"], false);
  EXPECT_EQ(json["kind"], "fs_write");
  EXPECT_EQ(json["input_schema"]["required"],
            nlohmann::json({"path", "content"}));
}

}  // namespace
}  // namespace jcs::runtime
