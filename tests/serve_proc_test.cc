// `jcs serve` and /proc: an `exec` tool call's jail (cloned by the daemon's
// zygote) shows nothing of the daemon through /proc/1 (its command line
// names the config file), and the daemon refuses to start under a /proc of
// another pid namespace.
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

// Prints what /proc shows of PID 1; NULs in cmdline/environ become '|'.
constexpr char kShowInit[] =
    "printf 'cmdline=['; tr '\\0' '|' </proc/1/cmdline; printf ']\\n'; "
    "printf 'environ=['; tr '\\0' '|' </proc/1/environ; printf ']\\n'; "
    "echo \"comm=$(cat /proc/1/comm)\"; ls -l /proc/1/exe; "
    "cat /proc/1/maps /proc/1/status /proc/1/stat; "
    "readlink /proc/1/cwd /proc/1/root; ls /proc/1/fd";

TEST(ServeProcTest, ExecJailInitShowsNothingOfTheDaemon) {
  const std::string env_marker =
      absl::StrCat("envmarker", getpid(), "x", time(nullptr));
  ASSERT_EQ(setenv("JCS_TEST_SECRET", env_marker.c_str(), 1), 0);
  Daemon daemon;
  const bool started = daemon.Start();
  unsetenv("JCS_TEST_SECRET");
  ASSERT_TRUE(started) << daemon.Log();
  // The daemon's config path: /tmp/jcs-serve-<unique>/config.txtpb.
  const std::string dir = daemon.dir().path();
  const std::string unique = dir.substr(dir.rfind('-') + 1);
  ASSERT_GE(unique.size(), 6u) << dir;

  TempDir roots;
  const std::string root = roots.MakeDir("project");
  ASSERT_EQ(chown(root.c_str(), 1000, 1000), 0);
  const RunResult start =
      RunJcs({"project", "start", root, "--socket", daemon.socket_path()},
             TimeoutAfter(30));
  ASSERT_TRUE(start.exited && start.exit_code == 0) << start.Describe();
  std::string id = start.out;
  if (!id.empty() && id.back() == '\n') id.pop_back();

  const nlohmann::json args = {{"argv", {"/bin/sh", "-c", kShowInit}}};
  const RunResult call =
      RunJcs({"tool", "run", id, "exec", "--args", args.dump(), "--json",
              "--socket", daemon.socket_path()},
             TimeoutAfter(60));
  ASSERT_TRUE(call.exited && call.exit_code == 0) << call.Describe();
  const nlohmann::json doc = nlohmann::json::parse(call.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << call.out;
  const nlohmann::json& result = doc["result"];
  const std::string out = result.value("stdout", "");
  const std::string err = result.value("stderr", "");
  EXPECT_NE(out.find("cmdline=[init|]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("environ=[]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("comm=init\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Name:\tinit\n"), std::string::npos) << out;
  EXPECT_NE(err.find("/proc/1/environ: Permission denied"), std::string::npos)
      << err;
  EXPECT_NE(err.find("/proc/1/maps: Permission denied"), std::string::npos)
      << err;
  for (const std::string& secret :
       {unique, daemon.config_path(), env_marker, std::string("jcs"),
        std::string("serve"), std::string("--config"), std::string("zygote")}) {
    EXPECT_EQ(out.find(secret), std::string::npos)
        << "'" << secret << "' in stdout:\n"
        << out;
    EXPECT_EQ(err.find(secret), std::string::npos)
        << "'" << secret << "' in stderr:\n"
        << err;
  }
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// A new pid namespace without a procfs of its own (unshare --pid --fork
// without --mount-proc): the daemon exits at once naming the layer and the
// fix, rather than failing every jail later.
TEST(ServeProcTest, RefusesAProcOfAnotherPidNamespace) {
  DaemonOptions options;
  options.clone_flags = CLONE_NEWPID;
  Daemon daemon(options);
  EXPECT_FALSE(daemon.Start()) << daemon.Log();
  const ExitInfo exit = daemon.Wait(20);
  EXPECT_TRUE(exit.exited && exit.exit_code == 1) << exit.Describe();
  const std::string log = daemon.Log();
  EXPECT_NE(log.find("jcs serve: procfs: /proc belongs to another pid "
                     "namespace"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("unshare --pid --fork --mount-proc"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace jcs::serve_test
