// `jcs serve` and the jails it starts: kill -9 of the daemon takes every
// jail down with it (the jails' inits die with their parent, and with them
// their whole pid namespaces), and a SIGTERM drain lets running tool calls
// finish within drain_grace_ms, then kills them and exits 0.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/jcs_runner.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

using ::jcs::testing::ProcessesWithMarker;
using ::jcs::testing::SleepMarker;
using ::jcs::testing::WaitForMarkerCount;

// A project root the jail user (uid 1000) owns.
std::string MakeProject(const Daemon& daemon) {
  const std::string root = daemon.dir().MakeDir("project");
  EXPECT_EQ(chown(root.c_str(), 1000, 1000), 0);
  return root;
}

std::string StartProject(const Daemon& daemon, const std::string& root,
                         const std::vector<std::string>& opts = {}) {
  std::vector<std::string> args = {"project", "start", root, "--socket",
                                   daemon.socket_path()};
  for (const std::string& opt : opts) {
    args.push_back("--opt");
    args.push_back(opt);
  }
  const RunResult r = RunJcs(args);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::string id = r.out;
  while (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

RunResult RunTool(const Daemon& daemon, const std::string& project,
                  const nlohmann::json& args, bool async,
                  double timeout_s = 30) {
  std::vector<std::string> argv = {
      "tool",   "run",       project,    "exec",
      "--args", args.dump(), "--socket", daemon.socket_path(),
      "--json"};
  if (async) argv.push_back("--async");
  return RunJcs(argv, TimeoutAfter(timeout_s));
}

TEST(ServeLifetimeTest, KillMinus9OfTheDaemonKillsEveryJailItStarted) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const std::string project = StartProject(daemon, MakeProject(daemon));
  const std::string marker = SleepMarker();
  // Three jails, each with the program, a background child and a setsid
  // escapee.
  for (int i = 0; i < 3; ++i) {
    const RunResult r = RunTool(daemon, project,
                                {{"argv",
                                  {"/bin/sh", "-c",
                                   "sleep " + marker + " & setsid sleep " +
                                       marker + " & sleep " + marker}}},
                                /*async=*/true);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(nlohmann::json::parse(r.out)["status"], "accepted") << r.out;
  }
  // Only the sleeps (comm "sleep"): the jails' shells carry the marker too.
  ASSERT_TRUE(WaitForMarkerCount(marker, 9, 10.0, "sleep"))
      << ProcessesWithMarker(marker).size() << " processes";
  daemon.Signal(SIGKILL);
  daemon.Wait();
  // Every process of every jail is gone within two seconds. A process that
  // is being torn down can read as gone for a moment (its cmdline is empty
  // while its memory is released), so "gone" must hold for 200 ms.
  const double deadline = NowSeconds() + 2.0;
  double empty_since = -1;
  while (NowSeconds() < deadline) {
    if (!ProcessesWithMarker(marker).empty()) {
      empty_since = -1;
    } else if (empty_since < 0) {
      empty_since = NowSeconds();
    } else if (NowSeconds() - empty_since >= 0.2) {
      break;
    }
    usleep(20'000);
  }
  const std::vector<pid_t> left = ProcessesWithMarker(marker);
  EXPECT_TRUE(empty_since >= 0 && left.empty())
      << left.size() << " jailed processes survived";
}

TEST(ServeLifetimeTest, DrainLetsRunningToolCallsFinishWithinTheGrace) {
  Daemon daemon("drain_grace_ms: 5000\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const std::string project = StartProject(daemon, MakeProject(daemon));
  const std::string marker = SleepMarker();
  RunResult call;
  std::thread client([&] {
    call = RunTool(daemon, project,
                   {{"argv",
                     {"/bin/sh", "-c",
                      "sleep 0.8 & sleep 0.8" + marker.substr(5) +
                          "; wait; echo finished"}}},
                   /*async=*/false);
  });
  // The jailed sleep itself (comm "sleep"): the CLI's own argv carries the
  // marker too, before the daemon has even received the call.
  ASSERT_TRUE(WaitForMarkerCount(marker.substr(5), 1, 10.0, "sleep"));
  const double signalled = NowSeconds();
  daemon.Signal(SIGTERM);
  client.join();
  const ExitInfo exit = daemon.Wait(10);
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe();
  ASSERT_EQ(call.exit_code, 0) << call.Describe();
  const nlohmann::json response = nlohmann::json::parse(call.out);
  EXPECT_EQ(response["status"], "ok") << response;
  EXPECT_EQ(response["result"]["stdout"], "finished\n") << response;
  EXPECT_LT(NowSeconds() - signalled, 4.0);
}

TEST(ServeLifetimeTest, DrainKillsToolCallsStillRunningAfterTheGrace) {
  Daemon daemon("drain_grace_ms: 500\n");
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const std::string project = StartProject(daemon, MakeProject(daemon));
  const std::string marker = SleepMarker();
  RunResult sync_call;
  std::thread client([&] {
    sync_call = RunTool(
        daemon, project,
        {{"argv",
          {"/bin/sh", "-c",
           "setsid sleep " + marker + " & sleep " + marker + "; echo late"}}},
        /*async=*/false);
  });
  const RunResult async_call = RunTool(
      daemon, project, {{"argv", {"/bin/sleep", marker}}}, /*async=*/true);
  ASSERT_EQ(async_call.exit_code, 0) << async_call.Describe();
  ASSERT_TRUE(WaitForMarkerCount(marker, 3, 10.0, "sleep"));
  const double signalled = NowSeconds();
  daemon.Signal(SIGTERM);
  client.join();
  const ExitInfo exit = daemon.Wait(10);
  const double took = NowSeconds() - signalled;
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe();
  EXPECT_GE(took, 0.45);
  EXPECT_LT(took, 3.0);
  EXPECT_EQ(sync_call.exit_code, 1) << sync_call.Describe();
  const nlohmann::json response = nlohmann::json::parse(sync_call.out);
  EXPECT_EQ(response["status"], "error");
  EXPECT_EQ(response["reason"], "drain_timeout") << response;
  EXPECT_TRUE(ProcessesWithMarker(marker).empty())
      << ProcessesWithMarker(marker).size() << " processes left";
}

// The zygote that clones warm jails (jail/zygote.h) can die on its own (an
// operator's kill): the jails it cloned die with it, and tool calls keep
// working (warm jails are then cloned by the daemon itself).
TEST(ServeLifetimeTest, ToolCallsSurviveTheZygotesDeath) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const std::string project = StartProject(daemon, MakeProject(daemon));
  const pid_t zygote = ZygoteOf(daemon.pid());
  ASSERT_GT(zygote, 0) << "the daemon has no zygote";
  std::string last_call;
  const auto ok = [&] {
    const RunResult r =
        RunTool(daemon, project, {{"argv", {"/bin/echo", "alive"}}}, false);
    last_call = r.Describe();
    const nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
    return r.exit_code == 0 && doc.is_object() &&
           doc["result"]["stdout"] == "alive\n";
  };
  ASSERT_TRUE(ok());  // builds the warm pool through the zygote
  ASSERT_TRUE(WaitForIdleWarmJail(daemon.pid()))
      << "the zygote built no warm jail\n"
      << daemon.Log();
  ASSERT_EQ(kill(zygote, SIGKILL), 0);
  // Gone once the daemon has reaped it.
  const double deadline = NowSeconds() + 10;
  while (ParentOf(zygote) == daemon.pid() && NowSeconds() < deadline) {
    usleep(5'000);
  }
  ASSERT_NE(ParentOf(zygote), daemon.pid()) << "the zygote was not reaped";
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(ok()) << "call " << i << " after the zygote died: " << last_call
                      << "\n"
                      << daemon.Log();
  }
  EXPECT_TRUE(daemon.running());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
