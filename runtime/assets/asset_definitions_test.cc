#include "runtime/assets/asset_definitions.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/assets/frontmatter.h"

namespace jcs::runtime::assets {
namespace {

using ::nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Asset MakeAsset(AssetType type, const std::string& name,
                const std::string& text) {
  Asset a;
  a.type = type;
  a.name = name;
  a.path = absl::StrCat(".jido/x/", name, ".md");
  a.body = text;
  absl::StatusOr<Frontmatter> f = ParseFrontmatter(text);
  if (f.ok()) {
    a.frontmatter = f->data;
  } else {
    a.frontmatter_error = std::string(f.status().message());
  }
  return a;
}

constexpr char kCommand[] =
    "---\n"
    "description: Greps\n"
    "jido:\n"
    "  schema:\n"
    "    query: {type: string, required: true, doc: what to find}\n"
    "    limit: {type: integer, default: 10}\n"
    "run: grep -rn -- \"$JCS_PARAM_QUERY\" .\n"
    "---\n"
    "Find {{query}} (at most {{ limit }}), {{unknown}}\n";

// tool_runtime_policy case 9: the definition-aware schema.
TEST(AssetDefinitionsTest, CommandSchemaNestsParams) {
  const Definition d =
      BuildDefinition(MakeAsset(AssetType::kCommand, "grep", kCommand));
  ASSERT_TRUE(d.valid) << d.invalid_reason;
  EXPECT_EQ(d.tool_name, "command.run.grep");
  EXPECT_EQ(d.description, "Greps");
  const json& s = d.input_schema;
  EXPECT_EQ(s["additionalProperties"], true);
  EXPECT_EQ(s["properties"]["query"],
            json({{"type", "string"}, {"description", "what to find"}}));
  EXPECT_EQ(s["properties"]["limit"],
            json({{"type", "integer"}, {"default", 10}}));
  EXPECT_EQ(s["properties"]["params"]["required"], json({"query"}));
  EXPECT_FALSE(s.contains("required"));
  EXPECT_THAT(d.argv,
              ElementsAre("/bin/sh", "-c", "grep -rn -- \"$JCS_PARAM_QUERY\" .",
                          "jcs-command"));
}

TEST(AssetDefinitionsTest, WorkflowSchemaNestsInputsAndStepsAreArguments) {
  const Definition d = BuildDefinition(MakeAsset(
      AssetType::kWorkflow, "review",
      "---\nname: review\nversion: 1\ninputs:\n"
      "  - {name: file_path, type: string, required: true, description: "
      "file}\n"
      "  - {name: max_findings, type: integer, default: 25}\n"
      "steps:\n  - {name: count, run: wc -l \"$JCS_PARAM_FILE_PATH\"}\n"
      "  - {run: echo done}\n---\n## Steps\n"));
  ASSERT_TRUE(d.valid) << d.invalid_reason;
  EXPECT_EQ(d.tool_name, "workflow.run.review");
  EXPECT_EQ(d.input_schema["properties"]["inputs"]["required"],
            json({"file_path"}));
  EXPECT_EQ(d.input_schema["properties"]["max_findings"]["default"], 25);
  ASSERT_EQ(d.argv.size(), 8u);
  EXPECT_EQ(d.argv[2], kWorkflowDriver);
  EXPECT_THAT(std::vector<std::string>(d.argv.begin() + 4, d.argv.end()),
              ElementsAre("count", "wc -l \"$JCS_PARAM_FILE_PATH\"", "step-2",
                          "echo done"));
}

TEST(AssetDefinitionsTest, InvalidDefinitionsSayWhy) {
  const struct {
    AssetType type;
    std::string text;
    std::string reason;
  } cases[] = {
      {AssetType::kCommand, "# Example Command\n", "missing_run"},
      {AssetType::kCommand, "---\nrun: [x\n---\n", "invalid_frontmatter"},
      {AssetType::kCommand, "---\nrun: x\nargv: [y]\n---\n",
       "both_run_and_argv"},
      {AssetType::kCommand, "---\nargv: []\n---\n", "invalid_argv"},
      {AssetType::kCommand,
       "---\nrun: x\njido: {schema: {q: {type: tuple}}}\n---\n",
       "unknown_param_type: q"},
      {AssetType::kCommand,
       "---\nrun: x\njido: {schema: {\"a-b\": {type: string}}}\n---\n",
       "invalid_param_name: a-b"},
      {AssetType::kWorkflow, "# Example Workflow\n", "missing_steps"},
      {AssetType::kWorkflow, "---\nenabled: false\nsteps: [{run: x}]\n---\n",
       "disabled"},
      {AssetType::kWorkflow, "---\nsteps: [{name: a}]\n---\n",
       "invalid_step: 0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const Definition d = BuildDefinition(MakeAsset(c.type, "x", c.text));
    EXPECT_FALSE(d.valid);
    EXPECT_THAT(d.invalid_reason, HasSubstr(c.reason));
    EXPECT_TRUE(d.argv.empty());
    EXPECT_EQ(d.input_schema, json({{"type", "object"},
                                    {"properties", json::object()},
                                    {"additionalProperties", true}}));
  }
}

// Hostile values reach the program only as data: environment variables and
// the JSON document on stdin, never program text.
TEST(AssetDefinitionsTest, InvocationPassesValuesAsDataOnly) {
  const Definition d =
      BuildDefinition(MakeAsset(AssetType::kCommand, "grep", kCommand));
  const std::string hostile = "$(touch /tmp/pwned); `id` ; rm -rf / \n'\"";
  absl::StatusOr<Invocation> inv = BuildInvocation(
      d, {{"params", {{"query", hostile}, {"limit", 3}, {"extra", true}}}},
      "corr-1");
  ASSERT_TRUE(inv.ok()) << inv.status();
  // Declared parameters only ("extra" is not), in name order.
  EXPECT_THAT(inv->env, ElementsAre(Pair("JCS_PARAM_LIMIT", "3"),
                                    Pair("JCS_PARAM_QUERY", hostile)));
  EXPECT_EQ(
      json::parse(inv->stdin_json),
      json({{"command", "grep"},
            {"params", {{"query", hostile}, {"limit", 3}, {"extra", true}}},
            {"correlation_id", "corr-1"}}));
  // The program is the definition's, whatever the values.
  EXPECT_EQ(d.argv[2], "grep -rn -- \"$JCS_PARAM_QUERY\" .");

  // Flat args (no params object): everything but params and env.
  inv = BuildInvocation(d, {{"query", "q"}, {"env", {{"A", "b"}}}}, "c");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->params, json({{"query", "q"}}));

  // NUL cannot be an environment variable: refused, not cut short.
  inv = BuildInvocation(d, {{"params", {{"query", std::string("a\0b", 3)}}}},
                        "c");
  EXPECT_THAT(inv.status().message(),
              HasSubstr("params.query: contains a NUL byte"));

  // 1 MiB: on stdin only, named in JCS_PARAMS_STDIN_ONLY.
  const std::string big(1 << 20, 'x');
  inv = BuildInvocation(d, {{"params", {{"query", big}}}}, "c");
  ASSERT_TRUE(inv.ok());
  EXPECT_THAT(inv->env, ElementsAre(Pair("JCS_PARAMS_STDIN_ONLY", "query")));
  EXPECT_EQ(json::parse(inv->stdin_json)["params"]["query"], big);
}

TEST(AssetDefinitionsTest, PromptIsRenderedAsText) {
  EXPECT_EQ(*RenderPrompt("Find {{query}} (at most {{ limit }}), {{unknown}}",
                          {{"query", "hello-world"}, {"limit", 3}}, 1024),
            "Find hello-world (at most 3), {{unknown}}");
  EXPECT_EQ(*RenderPrompt("{{a}}{{", {{"a", "{{a}}"}}, 1024), "{{a}}{{");
  // Exactly at the bound is fine.
  EXPECT_EQ(*RenderPrompt("ab{{x}}", {{"x", "cd"}}, 4), "abcd");
}

// The attack: a short body of many placeholders and one long parameter
// would render to body_placeholders x parameter bytes (here 40,000 x 64 KiB
// = 2.6 GB). It is refused once the bound is crossed, without building it.
TEST(AssetDefinitionsTest, PromptRenderingIsBounded) {
  std::string body;
  for (int i = 0; i < 40000; ++i) body += "{{p}}";
  const std::string param(64 << 10, 'x');
  absl::StatusOr<std::string> rendered =
      RenderPrompt(body, {{"p", param}}, 1 << 20);
  ASSERT_FALSE(rendered.ok());
  EXPECT_EQ(rendered.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(rendered.status().message(), HasSubstr("exceeds 1048576 bytes"));
  EXPECT_FALSE(RenderPrompt("abcde", json::object(), 4).ok());
  EXPECT_FALSE(RenderPrompt("ab{{x}}", {{"x", "cde"}}, 4).ok());
}

TEST(AssetDefinitionsTest, DefinitionsAreSortedByToolName) {
  AssetSnapshot s;
  s.assets[AssetType::kWorkflow].push_back(
      MakeAsset(AssetType::kWorkflow, "a", "x"));
  s.assets[AssetType::kCommand].push_back(
      MakeAsset(AssetType::kCommand, "z", "x"));
  std::vector<std::string> names;
  for (const Definition& d : BuildDefinitions(s)) names.push_back(d.tool_name);
  EXPECT_THAT(names, ElementsAre("command.run.z", "workflow.run.a"));
}

}  // namespace
}  // namespace jcs::runtime::assets
