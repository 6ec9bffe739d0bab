#include "tools/reference.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<CommandGroup> Table() {
  return {
      {"thing",
       "do the thing",
       {{"thing",
         "ARG",
         "Does the thing. Twice.",
         {{"--name", "NAME", "bob", "who\\it is"},
          {"--mode", "fast|slow", "fast", "how: quickly [or not]"},
          {"--tag", "T", "", "a tag", true},
          {"--dry-run", "", "off", ".only pretend"}}}},
       false},
      {"group",
       "start|stop things",
       {{"group start", "", "Starts. More.", {{"--id", "ID", "", "an id"}}},
        {"group stop", "ID", "Stops.", {}}},
       true},
  };
}

TEST(ReferenceTest, CommandListHasEveryCommandWithin80Columns) {
  const std::string list = FormatCommandList(Table());
  EXPECT_THAT(list, HasSubstr("  thing         do the thing\n"));
  EXPECT_THAT(list, HasSubstr("  group         start|stop things\n"));
}

TEST(ReferenceTest, ManPageHasEverySubcommandFlagAndDefaultEscaped) {
  const std::string man = ManPage(Table(), "jcs 9.9");
  EXPECT_THAT(man, HasSubstr(".TH JCS 1 \"\" \"jcs 9.9\""));
  EXPECT_THAT(man, HasSubstr(".SS \"jcs thing ARG [FLAGS]\"\n"));
  EXPECT_THAT(man, HasSubstr(".SS \"jcs group start [FLAGS]\"\n"));
  EXPECT_THAT(man, HasSubstr(".SS \"jcs group stop ID\"\n"));
  // Backslashes escaped; a leading '.' cannot become a request.
  EXPECT_THAT(man, HasSubstr(".TP\n\\fB\\-\\-name\\fR \\fINAME\\fR\n"
                             "\\&who\\eit is [default: bob]\n"));
  EXPECT_THAT(man, HasSubstr("\\&.only pretend [default: off]\n"));
  EXPECT_THAT(man, HasSubstr("\\&a tag (repeatable)\n"));
}

TEST(ReferenceTest, BashCompletionListsCommandsSubcommandsFlagsChoices) {
  const std::string bash = BashCompletion(Table());
  EXPECT_THAT(bash, HasSubstr("compgen -W 'thing group'"));
  EXPECT_THAT(bash, HasSubstr("compgen -W 'start stop'"));
  EXPECT_THAT(bash, HasSubstr("flags='--name --mode --tag --dry-run --help'"));
  EXPECT_THAT(bash, HasSubstr("compgen -W 'fast slow'"));
  EXPECT_THAT(bash, HasSubstr("complete -o default -F _jcs jcs\n"));
}

TEST(ReferenceTest, ZshCompletionEscapesDescriptions) {
  const std::string zsh = ZshCompletion(Table());
  EXPECT_THAT(zsh, HasSubstr("#compdef jcs\n"));
  EXPECT_THAT(zsh, HasSubstr("'--mode[how\\: quickly \\[or not\\]]:fast|slow:"
                             "(fast slow)'"));
  EXPECT_THAT(zsh, HasSubstr("'*--tag[a tag]:T:_files'"));
  EXPECT_THAT(zsh, HasSubstr("'start:Starts'"));
}

TEST(ReferenceTest, FlagsFromUsageTextReadsRunStyleTables) {
  const std::string usage =
      "usage: jcs run [flags] -- PROGRAM [ARGS...]\n\n"
      "Runs PROGRAM in a jail.\nEvery flag sets a field.\n\nflags:\n"
      "  --root DIR                         project root (default: cwd)\n"
      "  --net none|loopback|egress         network\n"
      "  --allow-host HOST[:PORT]           a destination\n"
      "                                     with subdomains\n"
      "  --allow-host-root                  allow uid 0 (risky)\n"
      "  -q, --quiet                        no jcs: lines\n"
      "  --cpus FLOAT                       CPU quota [default: none]\n"
      "  --landlock best-effort|required|off Landlock\n"
      "\nexit status: the program's.\n";
  const std::vector<FlagSpec> flags = FlagsFromUsageText(usage);
  std::vector<std::string> names, values, helps;
  for (const FlagSpec& f : flags) {
    names.push_back(f.name);
    values.push_back(f.value_name);
    helps.push_back(f.help);
  }
  EXPECT_THAT(
      names, ElementsAre("--root", "--net", "--allow-host", "--allow-host-root",
                         "--quiet", "--cpus", "--landlock"));
  EXPECT_THAT(values, ElementsAre("DIR", "none|loopback|egress", "HOST[:PORT]",
                                  "", "", "FLOAT", "best-effort|required|off"));
  EXPECT_EQ(helps[2], "a destination with subdomains");
  EXPECT_EQ(helps[5], "CPU quota");
  // "[default: X]" moves to default_text (the man page appends it again).
  EXPECT_EQ(flags[5].default_text, "none");
  EXPECT_EQ(flags[0].default_text, "");
  EXPECT_EQ(helps[0], "project root (default: cwd)");
  EXPECT_EQ(SynopsisFromUsageText(usage, "run"),
            "[flags] -- PROGRAM [ARGS...]");
  EXPECT_EQ(SummaryFromUsageText(usage),
            "Runs PROGRAM in a jail. Every flag sets a field.\n\n"
            "exit status: the program's.");
  EXPECT_THAT(SummaryFromUsageText(usage), Not(HasSubstr("--root")));
}

}  // namespace
}  // namespace jcs::tools
