#include "tools/flags.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/client_common.h"

namespace jcs::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const CommandSpec kSpec = {"thing do",
                           "ARG",
                           "Does the thing.",
                           {{"--name", "NAME", "bob", "who"},
                            {"--tag", "T", "", "a tag", true},
                            {"--dry-run", "", "off", "only pretend"}}};

TEST(FlagsTest, ParsesValuesSwitchesAndPositionals) {
  absl::StatusOr<ParsedFlags> p =
      ParseCommandFlags(kSpec, {"a", "--name", "x", "--tag=1", "--tag", "2",
                                "--dry-run", "-", "--", "--name"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Get("--name"), "x");
  EXPECT_THAT(p->All("--tag"), ElementsAre("1", "2"));
  EXPECT_TRUE(p->Has("--dry-run"));
  EXPECT_FALSE(p->help);
  // "-" is stdin, and everything after "--" is positional.
  EXPECT_THAT(p->positional, ElementsAre("a", "-", "--name"));
  EXPECT_EQ(p->Get("--missing", "fallback"), "fallback");
}

TEST(FlagsTest, LastValueOfANonRepeatableFlagWins) {
  absl::StatusOr<ParsedFlags> p =
      ParseCommandFlags(kSpec, {"--name", "a", "--name=b"});
  ASSERT_TRUE(p.ok());
  EXPECT_THAT(p->All("--name"), ElementsAre("b"));
}

TEST(FlagsTest, ErrorsNameTheFlag) {
  EXPECT_EQ(ParseCommandFlags(kSpec, {"--nmae", "x"}).status().message(),
            "unknown flag '--nmae'");
  EXPECT_EQ(ParseCommandFlags(kSpec, {"-q"}).status().message(),
            "unknown flag '-q'");
  EXPECT_EQ(ParseCommandFlags(kSpec, {"--name"}).status().message(),
            "--name: missing value (expected NAME)");
  EXPECT_EQ(ParseCommandFlags(kSpec, {"--dry-run=yes"}).status().message(),
            "--dry-run takes no value");
}

TEST(FlagsTest, HelpAnywhere) {
  EXPECT_TRUE(ParseCommandFlags(kSpec, {"a", "-h"})->help);
  EXPECT_TRUE(ParseCommandFlags(kSpec, {"--dry-run", "--help", "x"})->help);
  EXPECT_FALSE(ParseCommandFlags(kSpec, {"a"})->help);
}

TEST(FlagsTest, UsageListsEveryFlagWithItsDefaultWithin80Columns) {
  const std::string usage = FormatUsage(kSpec);
  EXPECT_THAT(usage, HasSubstr("usage: jcs thing do ARG [FLAGS]"));
  EXPECT_THAT(usage, HasSubstr("--name NAME"));
  EXPECT_THAT(usage, HasSubstr("[default: bob]"));
  EXPECT_THAT(usage, HasSubstr("--tag T"));
  EXPECT_THAT(usage, HasSubstr("(repeatable)"));
  EXPECT_THAT(usage, HasSubstr("--dry-run"));
  EXPECT_THAT(usage, HasSubstr("[default: off]"));
  EXPECT_THAT(usage, HasSubstr("-h, --help"));
  std::istringstream lines(usage);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

TEST(FlagsTest, WrapBreaksAtWordsAndIndents) {
  EXPECT_EQ(Wrap("aaa bbb ccc", 7, 2), "aaa bbb\n  ccc");
  EXPECT_EQ(Wrap("short", 80, 4), "short");
}

TEST(FlagsTest, WrapUsageLinesContinuesUnderTheTextColumn) {
  const std::string text =
      "title\n  --flag V   one two three four five six\nend\n";
  // "  --flag V   " is 13 columns: the continuation starts there.
  EXPECT_EQ(WrapUsageLines(text, 30),
            "title\n  --flag V   one two three\n"
            "             four five six\nend\n");
  EXPECT_EQ(WrapUsageLines("short\n", 30), "short\n");
}

// A long line at column 0 keeps its first letter (it lost it: "xit status").
TEST(FlagsTest, WrapUsageLinesKeepsAnUnindentedLongLineWhole) {
  EXPECT_EQ(WrapUsageLines("Exit status: the program's own, or 125", 20),
            "Exit status: the\nprogram's own, or\n125");
}

TEST(ClientCommonTest, JsonErrorsGiveLineAndColumn) {
  absl::StatusOr<nlohmann::json> bad =
      ParseJsonText("--args", "{\n  \"a\": 1,\n  \"b\" 2\n}");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("--args: invalid JSON at line 3, column 7: "));
  absl::StatusOr<nlohmann::json> first = ParseJsonText("--args", "x");
  ASSERT_FALSE(first.ok());
  EXPECT_THAT(first.status().message(), HasSubstr("at line 1, column 1: "));
  EXPECT_TRUE(ParseJsonText("--args", "{\"a\": [1]}").ok());
}

}  // namespace
}  // namespace jcs::tools
