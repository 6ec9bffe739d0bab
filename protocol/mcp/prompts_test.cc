#include "protocol/mcp/prompts.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

json Asset(const std::string& content, json frontmatter = json::object()) {
  return {{"type", "command"},
          {"name", "fix"},
          {"path", ".jido/commands/fix.md"},
          {"content", content},
          {"frontmatter", std::move(frontmatter)}};
}

TEST(CommandPromptTest, NameDescriptionAndDeclaredArguments) {
  const json prompt = CommandPrompt(
      Asset("", {{"description", "Fixes a bug"},
                 {"jido",
                  {{"schema",
                    {{"issue", {{"type", "integer"}, {"required", true}}},
                     {"area", {{"description", "where"}}}}}}}}));
  EXPECT_EQ(
      prompt,
      json({{"name", "fix"},
            {"description", "Fixes a bug"},
            {"arguments",
             {{{"name", "area"}, {"required", false}, {"description", "where"}},
              {{"name", "issue"}, {"required", true}}}}}));
}

TEST(CommandPromptTest, WithoutFrontmatter) {
  const json prompt = CommandPrompt(Asset("Just text\n"));
  EXPECT_EQ(
      prompt,
      json({{"name", "fix"},
            {"description", "The command fix (.jido/commands/fix.md)."}}));
  // A schema that is not a mapping declares nothing.
  EXPECT_FALSE(CommandPrompt(Asset("", {{"jido", {{"schema", "x"}}}}))
                   .contains("arguments"));
}

TEST(GetCommandPromptTest, RendersTheBodyAfterTheFrontmatter) {
  const json asset = Asset(
      "---\njido:\n  schema:\n    who: {required: true}\n---\nHi {{who}}, "
      "{{ missing }} stays; {{n}}\n",
      {{"jido", {{"schema", {{"who", {{"required", true}}}}}}}});
  absl::StatusOr<json> got = GetCommandPrompt(asset, {{"who", "Ann"}});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["messages"][0]["role"], "user");
  EXPECT_EQ((*got)["messages"][0]["content"],
            json({{"type", "text"},
                  {"text", "Hi Ann, {{ missing }} stays; {{n}}\n"}}));
  // An argument's text is inserted once, never rendered again.
  got = GetCommandPrompt(asset, {{"who", "{{who}}"}});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["messages"][0]["content"]["text"],
            "Hi {{who}}, {{ missing }} stays; {{n}}\n");
}

TEST(GetCommandPromptTest, ArgumentErrorsNameTheField) {
  const json asset = Asset(
      "{{who}}", {{"jido", {{"schema", {{"who", {{"required", true}}}}}}}});
  for (const auto& [arguments, field] :
       std::vector<std::pair<json, std::string>>{
           {json(), "params.arguments.who: missing"},
           {json::object(), "params.arguments.who: missing"},
           {json{{"who", 1}}, "params.arguments.who: expected a string"},
           {json::array(), "params.arguments: expected an object"}}) {
    absl::StatusOr<json> got = GetCommandPrompt(asset, arguments);
    ASSERT_FALSE(got.ok()) << arguments;
    EXPECT_TRUE(absl::IsInvalidArgument(got.status()));
    EXPECT_NE(got.status().message().find(field), std::string::npos)
        << got.status();
  }
}

// Attack: a body of many placeholders and one long argument would render
// placeholders x argument bytes; refused before any rendering.
TEST(GetCommandPromptTest, RenderingIsBounded) {
  std::string body;
  for (int i = 0; i < 10000; ++i) body += "{{a}}";
  const json asset = Asset(body);
  absl::StatusOr<json> got =
      GetCommandPrompt(asset, {{"a", std::string(64 << 10, 'x')}});
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("could exceed"), std::string::npos);
  // Short arguments render.
  got = GetCommandPrompt(asset, {{"a", "x"}});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["messages"][0]["content"]["text"], std::string(10000, 'x'));
}

}  // namespace
}  // namespace jcs::protocol::mcp
