#include "protocol/mcp/resources.h"

#include "gtest/gtest.h"

namespace jcs::protocol::mcp {
namespace {

TEST(AssetUriTest, EncodesAndRoundTrips) {
  EXPECT_EQ(AssetUri("skill", "deploy-app_1.x"),
            "jcs://assets/skill/deploy-app_1.x");
  EXPECT_EQ(AssetUri("command", "a b%c"), "jcs://assets/command/a%20b%25c");
  EXPECT_EQ(AssetUri("skill_graph", "nodes/index"),
            "jcs://assets/skill_graph/nodes/index");
  for (const auto& [type, name] :
       std::vector<std::pair<std::string, std::string>>{
           {"skill", "a b%c"},
           {"workflow", "\xc3\xa9t\xc3\xa9"},
           {"skill_graph", "nodes/index"},
           {"command", "..x"}}) {
    const auto parsed = ParseAssetUri(AssetUri(type, name));
    ASSERT_TRUE(parsed.has_value()) << AssetUri(type, name);
    EXPECT_EQ(parsed->first, type);
    EXPECT_EQ(parsed->second, name);
  }
}

TEST(AssetUriTest, RefusesWhatIsNoAsset) {
  for (const char* uri : {
           "file:///etc/passwd",
           "jcs://assets/secret/x",            // unknown type
           "jcs://assets/skill",               // no name
           "jcs://assets/skill/",              // empty name
           "jcs://assets/skill/a/b",           // nested outside skill_graph
           "jcs://assets/skill/%2e%2e",        // ".."
           "jcs://assets/skill_graph/a/../b",  // a ".." segment
           "jcs://assets/skill_graph/a//b",    // an empty segment
           "jcs://assets/skill/a%2Fb",         // an encoded separator
           "jcs://assets/skill/a%00",          // NUL
           "jcs://assets/skill/a%4",           // truncated escape
           "jcs://assets/skill/a%zz",
       }) {
    EXPECT_FALSE(ParseAssetUri(uri).has_value()) << uri;
  }
}

TEST(AssetResourceTest, Shape) {
  const nlohmann::json r = AssetResource({{"type", "skill"},
                                          {"name", "greet"},
                                          {"path", ".jido/skills/greet.md"}});
  EXPECT_EQ(r["uri"], "jcs://assets/skill/greet");
  EXPECT_EQ(r["name"], "skill/greet");
  EXPECT_EQ(r["mimeType"], "text/markdown");
  EXPECT_NE(r["description"].get<std::string>().find(".jido/skills/greet.md"),
            std::string::npos);
  EXPECT_EQ(AssetResource(5)["uri"], "jcs://assets//");  // never throws
}

}  // namespace
}  // namespace jcs::protocol::mcp
