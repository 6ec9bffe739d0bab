// The jcs command line for people (issue 17, help and client commands),
// through the built binary: --help for every command (exit 0, every flag
// listed and accepted), version, option-key suggestions, start errors,
// inert options, tool list, --args from a file and stdin, JSON error
// positions, tool run/cancel output, project list times and `jcs events`.
#include <atomic>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct HelpCase {
  std::vector<std::string> command;
  std::vector<std::string> flags;
};

// Independent of the flag tables: what each command must offer.
const std::vector<HelpCase>& HelpCases() {
  static const auto* cases = new std::vector<HelpCase>{
      {{"project", "start"},
       {"--opt", "--options", "--project-id", "--data-dir", "--run-as",
        "--socket", "--json"}},
      {{"project", "stop"}, {"--socket", "--json"}},
      {{"project", "list"}, {"--socket", "--json"}},
      {{"tool", "list"}, {"--socket", "--json"}},
      {{"tool", "run"},
       {"--args", "--meta", "--conversation", "--correlation-id", "--async",
        "--timings", "--socket", "--json"}},
      {{"tool", "cancel"},
       {"--conversation", "--correlation-id", "--socket", "--json"}},
      {{"tool", "result"}, {"--wait", "--socket", "--json"}},
      {{"diagnostics"}, {"--socket", "--json"}},
      {{"conversation", "start"}, {"--id", "--socket", "--json"}},
      {{"conversation", "send"},
       {"--text", "--llm", "--correlation-id", "--signal-id", "--async",
        "--timeout-ms", "--socket", "--json"}},
      {{"conversation", "state"}, {"--projection", "--socket", "--json"}},
      {{"conversation", "watch"}, {"--max-events", "--socket", "--json"}},
      {{"timeline"}, {"--correlation-id", "--limit", "--socket", "--json"}},
      {{"events"}, {"--max-events", "--socket"}},
      {{"mcp"},
       {"--project", "--socket", "--root", "--opt", "--options", "--data-dir"}},
      {{"ping"}, {"--timeout", "--socket", "--json"}},
      {{"metrics"}, {"--socket"}},
      {{"version"}, {"--socket", "--json"}},
      {{"doctor"}, {"--path", "--json"}},
      {{"serve"}, {"--config", "--log-level"}},
      {{"run"}, {"--root", "--memory", "--pids", "--net", "--report"}},
  };
  return *cases;
}

std::vector<std::string> Plus(std::vector<std::string> a,
                              const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(ClientCliTest, EveryCommandAnswersHelp) {
  for (const HelpCase& c : HelpCases()) {
    for (const char* help : {"--help", "-h"}) {
      SCOPED_TRACE(absl::StrJoin(c.command, " ") + " " + help);
      const RunResult r = RunJcs(Plus(c.command, {help}));
      EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
      EXPECT_EQ(r.err, "");
      EXPECT_THAT(r.out, HasSubstr("usage: jcs " + c.command[0]));
      for (const std::string& flag : c.flags) {
        EXPECT_THAT(r.out, HasSubstr(flag)) << r.out;
      }
      for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
        EXPECT_LE(line.size(), 80u) << line;
      }
    }
  }
  // The groups list their subcommands' usage.
  for (const char* group : {"project", "tool", "conversation"}) {
    const RunResult r = RunJcs({group, "--help"});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("usage: jcs ", group)));
  }
}

// Every flag --help shows is one the parser takes, with the value --help
// says it needs (an unknown flag would exit 2 before --help is honoured).
TEST(ClientCliTest, EveryFlagInHelpIsAccepted) {
  const std::regex flag_line(R"(^  (--[a-z-]+)( [A-Z]\S*)?)");
  for (const HelpCase& c : HelpCases()) {
    if (c.command[0] == "run" || c.command[0] == "serve") continue;
    const RunResult help = RunJcs(Plus(c.command, {"--help"}));
    int seen = 0;
    for (absl::string_view line : absl::StrSplit(help.out, '\n')) {
      std::smatch m;
      const std::string text(line);
      if (!std::regex_search(text, m, flag_line)) continue;
      ++seen;
      std::vector<std::string> args = Plus(c.command, {m[1].str()});
      if (m[2].matched) args.push_back("1");
      args.push_back("--help");
      SCOPED_TRACE(absl::StrJoin(args, " "));
      const RunResult r = RunJcs(args);
      EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    }
    EXPECT_EQ(seen, static_cast<int>(c.flags.size()))
        << absl::StrJoin(c.command, " ") << "\n"
        << help.out;
  }
  const RunResult bogus = RunJcs({"project", "start", "--bogus", "--help"});
  EXPECT_TRUE(bogus.exited && bogus.exit_code == 2) << bogus.Describe();
  EXPECT_THAT(bogus.err, HasSubstr("unknown flag '--bogus'"));
}

TEST(ClientCliTest, VersionWithAndWithoutADaemon) {
  TempDir dir;
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--version", "--socket", dir.Sub("none.sock")},
           {"version", "--socket", dir.Sub("none.sock")}}) {
    const RunResult r = RunJcs(args);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    EXPECT_EQ(r.out, "jcs 0.1.0\n");
  }
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const RunResult r = RunJcs({"version", "--socket", daemon.socket_path()});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.out, "jcs 0.1.0\ndaemon: jcs 0.1.0\n");
  const RunResult json =
      RunJcs({"version", "--json", "--socket", daemon.socket_path()});
  EXPECT_EQ(nlohmann::json::parse(json.out, nullptr, false),
            nlohmann::json({{"client", "jcs 0.1.0"}, {"daemon", "jcs 0.1.0"}}))
      << json.Describe();
  EXPECT_EQ(daemon.StopCleanly(), "");
}

class ClientCliDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
    root_ = dirs_.MakeOwnedDir("root");
  }
  void TearDown() override { EXPECT_EQ(daemon_.StopCleanly(), ""); }

  RunResult Cli(std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(daemon_.socket_path());
    return RunJcs(args, TimeoutAfter(30));
  }
  // `sh -c SCRIPT` with $JCS and $JCS_SOCKET set.
  RunResult Shell(const std::string& script) {
    RunOptions options;
    options.timeout_s = 30;
    options.extra_env = {"JCS=" + JcsBinary(),
                         "JCS_SOCKET=" + daemon_.socket_path()};
    return RunProgram({"/bin/sh", "-c", script}, options);
  }
  std::string Start(const std::string& root) {
    const RunResult r = Cli({"project", "start", root});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    std::string id = r.out;
    if (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }

  Daemon daemon_;
  TempDir dirs_;
  std::string root_;
};

TEST_F(ClientCliDaemonTest, UnknownOptionSuggestsTheNearestKey) {
  RunResult r = Cli({"project", "start", root_, "--opt", "tool_timeout=5000"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("unknown_option"));
  EXPECT_THAT(r.err, HasSubstr("(did you mean tool_timeout_ms?)"));
  r = Cli({"project", "start", root_, "--opt", "bogus=1"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("unknown_option"));
  EXPECT_THAT(r.err, Not(HasSubstr("did you mean")));
}

TEST_F(ClientCliDaemonTest, StartErrorsNameThePathAndTheRuleAndKeepIds) {
  RunResult r = Cli({"project", "start", "/nonexistent-jcs-root"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("invalid_root_path: /nonexistent-jcs-root "
                               "does not exist (enoent)"));
  r = Cli({"project", "start", root_, "--data-dir", "/abs"});
  EXPECT_THAT(r.err, HasSubstr("invalid_data_dir: /abs: must be relative to "
                               "the project root (must_be_relative)"));
  r = Cli({"project", "start", root_, "--opt", "bogus=1"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  // None of the failed starts took an id.
  EXPECT_EQ(Start(root_), "project_1");
}

TEST_F(ClientCliDaemonTest, InertOptionsAreReported) {
  const RunResult r = Cli(
      {"project", "start", root_, "--opt", "subagent_max_children=2", "--opt",
       "subagent_ttl_ms=5", "--opt", "tool_timeout_ms=5000", "--json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(doc["inert_options"],
            nlohmann::json({"subagent_max_children", "subagent_ttl_ms"}))
      << r.out;
  EXPECT_THAT(r.err, HasSubstr("accepted but not acted on yet: "
                               "subagent_max_children, subagent_ttl_ms"));
  const RunResult diag =
      Cli({"diagnostics", doc.value("project_id", ""), "--json"});
  EXPECT_EQ(nlohmann::json::parse(diag.out, nullptr, false)["inert_options"],
            nlohmann::json({"subagent_max_children", "subagent_ttl_ms"}))
      << diag.out;
  // Nothing inert set: nothing said.
  const RunResult plain = Cli({"project", "start", dirs_.MakeOwnedDir("r2")});
  EXPECT_TRUE(plain.exited && plain.exit_code == 0) << plain.Describe();
  EXPECT_EQ(plain.err, "");
}

TEST_F(ClientCliDaemonTest, ToolListShowsDescriptionsAndArguments) {
  const std::string p = Start(root_);
  const RunResult r = Cli({"tool", "list", p});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("fs.read  (fs_read, in-process)"));
  EXPECT_THAT(r.out, HasSubstr("Reads a file below the project root."));
  EXPECT_THAT(r.out, HasSubstr("path (string, required)"));
  EXPECT_THAT(r.out, HasSubstr("argv (array of string, required): the "
                               "program and its arguments"));
}

TEST_F(ClientCliDaemonTest, ArgsFromAFileAndStdinAndJsonErrorPositions) {
  const std::string p = Start(root_);
  dirs_.WriteFile("root/hello.txt", "hi there");
  const std::string args =
      dirs_.WriteFile("args.json", "{\"path\": \"hello.txt\"}");
  RunResult r =
      Cli({"tool", "run", p, "fs.read", "--args", "@" + args, "--json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hi there"));

  r = Shell("printf '{\"path\": \"hello.txt\"}' | \"$JCS\" tool run " + p +
            " fs.read --args - --json");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hi there"));

  r = Cli({"tool", "run", p, "fs.read", "--args", "{\"path\": }"});
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("--args: invalid JSON at line 1, column 10: "));
  const std::string bad =
      dirs_.WriteFile("bad.json", "{\n  \"path\": \"x\",\n  oops\n}\n");
  r = Cli({"tool", "run", p, "fs.read", "--args", "@" + bad});
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("--args: invalid JSON at line 3, column 3: "));
  r = Cli({"tool", "run", p, "fs.read", "--args", "@" + dirs_.Sub("none")});
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("--args: cannot read " + dirs_.Sub("none")));
}

TEST_F(ClientCliDaemonTest, RunShowsTheResultAndTimingsOnlyOnRequest) {
  const std::string p = Start(root_);
  const std::string args = nlohmann::json({{"argv", {"true"}}}).dump();
  RunResult r = Cli({"tool", "run", p, "exec", "--args", args, "--json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  // The daemon measured the jailed call...
  ASSERT_TRUE(
      nlohmann::json::parse(r.out, nullptr, false).contains("timing_us"))
      << r.out;
  // ...the default output leaves it out, --timings shows it.
  r = Cli({"tool", "run", p, "exec", "--args", args});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(doc.value("status", ""), "ok") << r.out;
  EXPECT_TRUE(doc.contains("result")) << r.out;
  EXPECT_FALSE(doc.contains("timing_us")) << r.out;
  r = Cli({"tool", "run", p, "exec", "--args", args, "--timings"});
  doc = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(doc.contains("timing_us")) << r.out;
}

TEST_F(ClientCliDaemonTest, CancelSaysWhatItCancelled) {
  const std::string p = Start(root_);
  const RunResult r = Cli({"tool", "cancel", p, "--conversation", "conv-x"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.out,
            "nothing to cancel: no running call of conversation "
            "conv-x in project " +
                p + "\n");
}

TEST_F(ClientCliDaemonTest, ProjectListShowsIsoTimesAndConversations) {
  const std::string p = Start(root_);
  const RunResult conv = Cli({"conversation", "start", p, "--id", "c1"});
  ASSERT_TRUE(conv.exited && conv.exit_code == 0) << conv.Describe();
  const RunResult r = Cli({"project", "list"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(p + R"( +1 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +)" +
                        root_ + " \\(\\.jido\\)")))
      << r.out;
}

// `jcs events` prints the project's events as JSON lines and stops after
// --max-events; tool calls are made until it has seen enough (no fixed
// sleep: the subscription may start after the first call).
TEST_F(ClientCliDaemonTest, EventsStreamsJsonLines) {
  const std::string p = Start(root_);
  const std::string other = Start(dirs_.MakeOwnedDir("other"));
  std::atomic<bool> done{false};
  RunResult events;
  std::thread watcher([&] {
    events = Cli({"events", p, "--max-events", "3"});
    done = true;
  });
  const double deadline = NowSeconds() + 20;
  while (!done && NowSeconds() < deadline) {
    Cli({"tool", "run", other, "fs.list", "--args", "{}"});
    Cli({"tool", "run", p, "fs.list", "--args", "{}"});
  }
  watcher.join();
  ASSERT_TRUE(events.exited && events.exit_code == 0) << events.Describe();
  int lines = 0;
  for (absl::string_view line :
       absl::StrSplit(events.out, '\n', absl::SkipEmpty())) {
    ++lines;
    const nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(e.is_object()) << line;
    EXPECT_EQ(e.value("project_id", ""), p) << line;  // never `other`'s
    // tool.* and policy.* of the calls.
    EXPECT_THAT(e.value("name", ""),
                ::testing::AnyOf(HasSubstr("tool."), HasSubstr("policy.")))
        << line;
    EXPECT_TRUE(e["payload"].is_object()) << line;
  }
  EXPECT_EQ(lines, 3) << events.out;
}

}  // namespace
}  // namespace jcs::serve_test
