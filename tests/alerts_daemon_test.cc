// Issue 13 "Alert router" and "Health from the rules", through a real
// `jcs serve` and real tool calls:
//   - one expected policy denial leaves the project healthy (it used to turn
//     it degraded until the error ring rotated): error_count counts it,
//     firing_rules is empty;
//   - SIGHUP loads an alert_router file sink without a restart; a refused
//     reload (an exec sink with a relative program) keeps the running config;
//   - an exec sink gets the alert document on stdin, jailed; one that hangs
//     never delays tool calls, the queue fills and the rest are dropped and
//     counted, and the daemon's stop kills it;
//   - a sandbox violation through fs.read reaches the JSONL sink twice (the
//     routed security.sandbox_violation and the sandbox_violation rule's
//     alert), redacted, and makes health degraded naming the rule.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(json::parse(line, nullptr, false));
  }
  return out;
}

class AlertsDaemonTest : public ToolFixture {
 protected:
  // Rewrites the daemon's config with `extra` appended and sends SIGHUP;
  // true once the daemon logged `expect`.
  bool Reload(const std::string& extra, const std::string& expect) {
    if (base_config_.empty())
      base_config_ = ReadFileOrEmpty(daemon_.config_path());
    const size_t before = Occurrences(expect);
    daemon_.WriteConfig(base_config_ + "\n" + extra + "\n");
    daemon_.Signal(SIGHUP);
    return WaitFor([&] { return Occurrences(expect) > before; }, 10);
  }
  size_t Occurrences(const std::string& needle) const {
    const std::string log = daemon_.Log();
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos;
         at = log.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

  std::string base_config_;
};

TEST_F(AlertsDaemonTest, OneExpectedDenialLeavesTheProjectHealthy) {
  const std::string p = StartProject({{"allow_tools", {"asset.list"}}});
  ASSERT_TRUE(
      ExpectError(Tool(p, "fs.read", {{"path", "README.md"}}), "denied"));
  const json d = Diagnostics(p);
  EXPECT_EQ(d["health"]["status"], "ok") << d["health"];
  EXPECT_EQ(d["health"]["error_count"], 1) << d["health"];
  EXPECT_EQ(d["health"]["firing_rules"], json::array()) << d["health"];
  EXPECT_EQ(Count(d, "policy.denied"), 1);
  // Every rule is listed with its threshold, none firing.
  ASSERT_EQ(d["alerts"]["rules"].size(), 9u) << d["alerts"];
  for (const json& rule : d["alerts"]["rules"]) {
    EXPECT_FALSE(rule["firing"].get<bool>()) << rule;
    EXPECT_TRUE(rule["threshold"].is_number()) << rule;
  }
  EXPECT_EQ(d["alerts"]["router"]["signal_events"],
            json::array({"security.repeated_timeout_failures",
                         "security.sandbox_violation"}));
}

TEST_F(AlertsDaemonTest, SandboxViolationReachesTheSinkAfterSighupReload) {
  const std::string alerts = dir_.Sub("alerts.jsonl");
  // Fail closed on reload: an exec sink whose program is not an absolute
  // path is refused, nothing changes.
  ASSERT_TRUE(Reload("alert_router { sinks { exec { argv: \"cat\" } } }",
                     "alert config reload refused"))
      << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("exec.argv[0]: expected the program's absolute "
                               "path"),
            std::string::npos)
      << daemon_.Log();
  ASSERT_TRUE(Reload("alert_router { sinks { file: \"" + alerts +
                         "\" extra_args: \"oncall\" } }",
                     "alert config reloaded (1 sink(s))"))
      << daemon_.Log();

  // The path carries a secret: the alert keeps it redacted.
  WriteOutsideFile("token=hunter2", "outside\n");
  PlantSymlink(outside_, "escape");
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectError(
      Tool(p, "fs.read", {{"path", "escape/token=hunter2"}}), "outside_root"));

  ASSERT_TRUE(WaitFor(
      [&] { return JsonLines(ReadFileOrEmpty(alerts)).size() >= 2; }, 10))
      << ReadFileOrEmpty(alerts) << daemon_.Log();
  const std::string text = ReadFileOrEmpty(alerts);
  const std::vector<json> docs = JsonLines(text);
  ASSERT_EQ(docs.size(), 2u) << text;
  EXPECT_EQ(docs[0]["event"], "security.sandbox_violation") << text;
  EXPECT_EQ(docs[0]["payload"]["project_id"], p) << text;
  EXPECT_EQ(docs[0]["payload"]["reason"], "outside_root") << text;
  EXPECT_EQ(docs[0]["metadata"]["alert_event"], "security.sandbox_violation");
  EXPECT_EQ(docs[0]["metadata"]["alert_severity"], "critical");
  EXPECT_EQ(docs[0]["extra_args"], json::array({"oncall"}));
  EXPECT_EQ(docs[1]["event"], "alert.sandbox_violation") << text;
  EXPECT_EQ(docs[1]["payload"]["rule"], "sandbox_violation") << text;
  EXPECT_EQ(docs[1]["payload"]["project_id"], p) << text;
  EXPECT_EQ(docs[1]["metadata"]["alert_severity"], "critical");
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;

  const json d = Diagnostics(p);
  EXPECT_EQ(d["health"]["status"], "degraded") << d["health"];
  ASSERT_EQ(d["health"]["firing_rules"].size(), 1u) << d["health"];
  EXPECT_EQ(d["health"]["firing_rules"][0]["rule"], "sandbox_violation");
  EXPECT_EQ(d["alerts"]["router"]["delivered"], 2) << d["alerts"];
  EXPECT_EQ(d["alerts"]["router"]["dropped"], 0) << d["alerts"];
  EXPECT_EQ(Count(d, "alert.sandbox_violation"), 1);
}

// A jailed tool must not read (or replace) every project's alerts: a sink
// inside a project root is refused on reload, and a project whose root holds
// a sink added by a reload does not start.
TEST_F(AlertsDaemonTest, AlertSinksStayOutOfProjectRoots) {
  const std::string p = StartProject();
  const std::string inside = root_ + "/alerts.jsonl";
  ASSERT_TRUE(Reload("alert_router { sinks { file: \"" + inside + "\" } }",
                     "alert config reload refused"))
      << daemon_.Log();
  EXPECT_NE(daemon_.Log().find("is inside the root of project " + p),
            std::string::npos)
      << daemon_.Log();
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  // Named through a symlinked directory: still the root's file.
  const std::string link = dir_.Sub("link-to-root");
  ASSERT_EQ(symlink(root_.c_str(), link.c_str()), 0);
  ASSERT_TRUE(
      Reload("alert_router { sinks { file: \"" + link + "/alerts.jsonl\" } }",
             "alert config reloaded (1 sink(s))"))
      << daemon_.Log();
  const RunResult again = StartProjectRaw({});
  EXPECT_EQ(again.exit_code, 1) << again.Describe();
  EXPECT_NE(again.err.find("root_contains_daemon_files"), std::string::npos)
      << again.Describe();
  EXPECT_NE(again.err.find("alert sink"), std::string::npos)
      << again.Describe();
}

// The exec sink: a script of the operator's (outside the system
// directories: its directory is bound read-only) gets each alert on stdin
// and exits 0 only when it is the sandbox violation's document.
TEST_F(AlertsDaemonTest, ExecSinkGetsTheAlertOnStdin) {
  const std::string script = dir_.WriteFile(
      (dir_.MakeDir("pager"), "pager/notify"),
      "#!/bin/sh\n"
      "doc=$(cat)\n"
      "case \"$doc\" in *'\"alert_severity\":\"critical\"'*) ;; *) exit 3;; "
      "esac\n"
      "case \"$doc\" in *'\"extra_args\":[\"oncall\"]'*) exit 0;; esac\n"
      "exit 4\n");
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  ASSERT_TRUE(Reload("alert_router { sinks { exec { argv: \"" + script +
                         "\" } extra_args: \"oncall\" timeout_ms: 10000 } }",
                     "alert config reloaded (1 sink(s))"))
      << daemon_.Log();
  WriteOutsideFile("secret", "outside\n");
  PlantSymlink(outside_, "escape");
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectError(Tool(p, "fs.read", {{"path", "escape/secret"}}),
                          "outside_root"));
  json router;
  ASSERT_TRUE(WaitFor(
      [&] {
        router = Diagnostics(p)["alerts"]["router"];
        return router["delivered"].get<int>() +
                   router["sink_failures"].get<int>() >=
               2;
      },
      30))
      << router << daemon_.Log();
  EXPECT_EQ(router["delivered"], 2) << router;
  EXPECT_EQ(router["sink_failures"], 0) << router;
  EXPECT_EQ(router["sinks"][0]["kind"], "exec") << router;
}

// A sink that never ends (sleep, ignoring stdin) holds the router's thread
// for its 60 s timeout; tool calls go on at their pace meanwhile, the
// bounded queue fills and every alert past it is dropped and counted. The
// daemon's stop kills the hanging sink.
TEST_F(AlertsDaemonTest, HangingExecSinkNeverDelaysToolCalls) {
  const std::string p = StartProject();
  const json true_args = ExecArgs({"/bin/true"});
  ASSERT_EQ(Tool(p, "exec", true_args).status(), "ok");
  const std::string marker = UniqueSleepMarker();
  ASSERT_TRUE(
      Reload("alert_signal_events: \"tool.completed\"\n"
             "alert_router { queue_capacity: 2 sinks { exec { argv: "
             "\"/bin/sleep\" argv: \"" +
                 marker + "\" } timeout_ms: 60000 } }",
             "alert config reloaded (1 sink(s))"))
      << daemon_.Log();
  // The first alert: the router's thread is now held by the sink.
  ASSERT_EQ(Tool(p, "exec", true_args).status(), "ok");
  ASSERT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 1; }, 10))
      << daemon_.Log();
  // Nine more calls, each far below the sink's 60 s.
  for (int i = 0; i < 9; ++i) {
    const absl::Time start = absl::Now();
    ASSERT_EQ(Tool(p, "exec", true_args).status(), "ok");
    EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "call " << i;
  }
  const json router = Diagnostics(p)["alerts"]["router"];
  EXPECT_EQ(router["routed"], 10) << router;
  EXPECT_EQ(router["queued"], 2) << router;
  EXPECT_EQ(router["dropped"], 7) << router;
  EXPECT_EQ(router["delivered"], 0) << router;
  EXPECT_EQ(CountProcessesWithArg(marker), 1);
  EXPECT_EQ(daemon_.StopCleanly(), "");
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 0; }, 10));
  EXPECT_NE(daemon_.Log().find("dropped: queue full"), std::string::npos)
      << daemon_.Log();
}

}  // namespace
}  // namespace jcs::serve_test
