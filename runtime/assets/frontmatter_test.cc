#include "runtime/assets/frontmatter.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime::assets {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

TEST(FrontmatterTest, TextWithoutFrontmatterIsAllBody) {
  absl::StatusOr<Frontmatter> f = ParseFrontmatter("# Title\n---\nx: 1\n---\n");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->present);
  EXPECT_EQ(f->data, json::object());
  EXPECT_EQ(f->body, "# Title\n---\nx: 1\n---\n");
}

TEST(FrontmatterTest, ScalarsSequencesAndMappingsBecomeJson) {
  absl::StatusOr<Frontmatter> f = ParseFrontmatter(
      "---\r\n"
      "name: grep\n"
      "count: 10\n"
      "ratio: 0.5\n"
      "on: true\n"
      "quoted: \"10\"\n"
      "nothing: ~\n"
      "tags: [a, b]\n"
      "jido:\n"
      "  schema:\n"
      "    query: {type: string, required: true}\n"
      "---\n"
      "Body {{query}}\n");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->present);
  EXPECT_EQ(f->data["name"], "grep");
  EXPECT_EQ(f->data["count"], 10);
  EXPECT_EQ(f->data["ratio"], 0.5);
  EXPECT_EQ(f->data["on"], true);
  EXPECT_EQ(f->data["quoted"], "10");
  EXPECT_TRUE(f->data["nothing"].is_null());
  EXPECT_EQ(f->data["tags"], json({"a", "b"}));
  EXPECT_EQ(f->data["jido"]["schema"]["query"],
            json({{"type", "string"}, {"required", true}}));
  EXPECT_EQ(f->body, "Body {{query}}\n");
}

TEST(FrontmatterTest, EmptyFrontmatterIsAnEmptyObject) {
  absl::StatusOr<Frontmatter> f = ParseFrontmatter("---\n---\nbody");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->present);
  EXPECT_EQ(f->data, json::object());
  EXPECT_EQ(f->body, "body");
}

TEST(FrontmatterTest, ErrorsNameTheProblemAndTheLine) {
  absl::StatusOr<Frontmatter> unterminated = ParseFrontmatter("---\na: 1\n");
  EXPECT_THAT(unterminated.status().message(), HasSubstr("unterminated"));

  absl::StatusOr<Frontmatter> syntax =
      ParseFrontmatter("---\na: 1\nb: [unclosed\n---\n");
  ASSERT_FALSE(syntax.ok());
  EXPECT_THAT(syntax.status().message(), HasSubstr("line "));

  absl::StatusOr<Frontmatter> list = ParseFrontmatter("---\n- a\n- b\n---\n");
  EXPECT_THAT(list.status().message(), HasSubstr("not a mapping"));

  absl::StatusOr<Frontmatter> key = ParseFrontmatter("---\n? [a]\n: 1\n---\n");
  EXPECT_THAT(key.status().message(), HasSubstr("not a scalar"));
}

// "Billion laughs": nine levels of aliases, each repeating the one before
// nine times, describe 9^9 nodes in a few hundred bytes. The conversion must
// stop at the node bound instead of expanding them.
TEST(FrontmatterTest, AliasBombStopsAtTheNodeBound) {
  std::string yaml = "---\na0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string refs;
    for (int k = 0; k < 9; ++k) {
      absl::StrAppend(&refs, k == 0 ? "" : ", ", "*a", i - 1);
    }
    absl::StrAppend(&yaml, "a", i, ": &a", i, " [", refs, "]\n");
  }
  yaml += "---\n";
  absl::StatusOr<Frontmatter> f = ParseFrontmatter(yaml);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("more than 10000 nodes"));
}

// Found by frontmatter_fuzz: yaml-cpp turned a quoted scalar holding a NUL
// (or an escape such as "\\xA0") into bytes that are not UTF-8, and
// serializing the JSON then threw.
TEST(FrontmatterTest, NulAndNonUtf8ScalarsAreErrors) {
  absl::StatusOr<Frontmatter> nul = ParseFrontmatter(
      std::string("---\nrun: echo \"$JCS\0_PARAM_Q\"\n---\n", 34));
  EXPECT_THAT(nul.status().message(), HasSubstr("NUL byte"));
  absl::StatusOr<Frontmatter> escaped =
      ParseFrontmatter("---\nrun: \"a\\xA0b\"\n---\n");
  if (escaped.ok()) {
    (void)escaped->data.dump();  // must not throw
  } else {
    EXPECT_THAT(escaped.status().message(), HasSubstr("UTF-8"));
  }
  absl::StatusOr<Frontmatter> key =
      ParseFrontmatter("---\n\"k\\x80\": 1\n---\n");
  if (key.ok()) (void)key->data.dump();
}

TEST(FrontmatterTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = absl::StrCat("---\na: ", std::string(40, '['),
                                        std::string(40, ']'), "\n---\n");
  absl::StatusOr<Frontmatter> f = ParseFrontmatter(deep);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("nested deeper"));
  // Past yaml-cpp's own parser bound (2000) too.
  const std::string deeper = absl::StrCat("---\na: ", std::string(5000, '['),
                                          std::string(5000, ']'), "\n---\n");
  EXPECT_FALSE(ParseFrontmatter(deeper).ok());
}

}  // namespace
}  // namespace jcs::runtime::assets
