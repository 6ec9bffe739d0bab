#include "runtime/project/runtime_options_reference.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/project/runtime_options.h"
#include "runtime/project/value.h"

namespace jcs::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(RuntimeOptionsReferenceTest, DocumentsExactlyTheValidatorsKeys) {
  std::vector<std::string> documented;
  for (const RuntimeOptionDoc& doc : RuntimeOptionDocs()) {
    documented.emplace_back(doc.key);
    EXPECT_FALSE(doc.type.empty()) << doc.key;
    EXPECT_FALSE(doc.meaning.empty()) << doc.key;
  }
  // Same keys, same order: a key added to the validator needs its entry.
  EXPECT_EQ(documented, RuntimeOptionKeys());
}

TEST(RuntimeOptionsReferenceTest, CheckedInDocumentIsCurrent) {
  std::ifstream in("docs/runtime-options.md");
  ASSERT_TRUE(in) << "docs/runtime-options.md missing from runfiles";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), RuntimeOptionsMarkdown())
      << "docs/runtime-options.md is stale: bazel run "
         "//runtime/project:runtime_options_doc > docs/runtime-options.md";
}

TEST(RuntimeOptionsReferenceTest, DefaultsComeFromTheValidator) {
  const std::string doc = RuntimeOptionsMarkdown();
  EXPECT_THAT(doc, HasSubstr("| `tool_timeout_ms` | integer > 0 | `30000` |"));
  EXPECT_THAT(doc,
              HasSubstr("| `network_egress_policy` | \"allow\" \\| \"deny\" | "
                        "`\"deny\"` |"));
  EXPECT_THAT(doc, HasSubstr("| `subagent_ttl_ms` | integer > 0 | `300000` | "
                             "*inert*: "));
}

TEST(RuntimeOptionsReferenceTest, InertOptionsListsOnlyExplicitInertKeys) {
  absl::StatusOr<ValidatedOptions> none = ValidateRuntimeOptions({});
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(InertOptions(*none), IsEmpty());
  absl::StatusOr<ValidatedOptions> some =
      ValidateRuntimeOptions({{"tool_timeout_ms", Value::Int(5)},
                              {"watcher", Value::Bool(true)},
                              {"subagent_max_children", Value::Int(2)},
                              {"subagent_ttl_ms", Value::Int(9)},
                              {"llm_adapter", Value::String("deterministic")}});
  ASSERT_TRUE(some.ok());
  EXPECT_THAT(InertOptions(*some),
              ElementsAre("subagent_max_children", "subagent_ttl_ms"));
}

TEST(RuntimeOptionsReferenceTest, NearestKeySuggestions) {
  EXPECT_EQ(NearestRuntimeOption("tool_timeout"), "tool_timeout_ms");
  EXPECT_EQ(NearestRuntimeOption("Tool_Timeout_MS"), "tool_timeout_ms");
  EXPECT_EQ(NearestRuntimeOption("jail_memroy"), "jail_memory");
  EXPECT_EQ(NearestRuntimeOption("deny_tool"), "deny_tools");
  EXPECT_EQ(NearestRuntimeOption("bogus"), std::nullopt);
  EXPECT_EQ(NearestRuntimeOption("no_such_option"), std::nullopt);
  EXPECT_EQ(NearestRuntimeOption(std::string(4096, 'a')), std::nullopt);
}

}  // namespace
}  // namespace jcs::runtime
