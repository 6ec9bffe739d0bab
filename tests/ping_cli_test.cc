// `jcs ping`, the container health check: exit 0 when the daemon answers,
// 1 with exactly one line on stderr when it does not (no daemon, or a socket
// that never answers, within --timeout); --json carries the version and the
// event loop's figures. Also: the image's default config (deploy/jcs.conf)
// starts a daemon that answers on its default socket.
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

using ::testing::HasSubstr;

TEST(PingCliTest, AnswersWithVersionAndLoopFigures) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const RunResult plain = RunJcs({"ping", "--socket", daemon.socket_path()});
  EXPECT_TRUE(plain.exited && plain.exit_code == 0) << plain.Describe();
  EXPECT_EQ(plain.out, "jcs 0.1.0\n");
  EXPECT_EQ(plain.err, "");

  const RunResult json =
      RunJcs({"ping", "--json", "--socket", daemon.socket_path()});
  ASSERT_TRUE(json.exited && json.exit_code == 0) << json.Describe();
  const nlohmann::json doc = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << json.out;
  EXPECT_EQ(doc.value("version", ""), "jcs 0.1.0");
  const nlohmann::json& loop = doc["loop"];
  EXPECT_GT(loop.value("rounds", 0), 0) << json.out;
  EXPECT_TRUE(loop["cpu_us_log2"].is_array()) << json.out;
  EXPECT_TRUE(loop["wall_us_log2"].is_array()) << json.out;
  EXPECT_TRUE(loop.contains("max_cpu_us") && loop.contains("max_wall_us"));

  // The default socket comes from $JCS_SOCKET.
  RunOptions env;
  env.extra_env = {"JCS_SOCKET=" + daemon.socket_path()};
  const RunResult from_env = RunJcs({"ping"}, env);
  EXPECT_TRUE(from_env.exited && from_env.exit_code == 0)
      << from_env.Describe();
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(PingCliTest, NoDaemonIsOneLineAndExit1) {
  TempDir dir;
  const std::string socket = dir.Sub("none.sock");
  const RunResult r = RunJcs({"ping", "--socket", socket});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_EQ(r.ErrLines(), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(socket));
  EXPECT_EQ(r.out, "");
}

// A socket that accepts connections (the kernel's backlog) but whose owner
// never answers: a hung daemon. The check must give up at --timeout.
TEST(PingCliTest, HungDaemonTimesOutWithOneLine) {
  TempDir dir;
  const std::string path = dir.Sub("hung.sock");
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  const double start = NowSeconds();
  const RunResult r =
      RunJcs({"ping", "--socket", path, "--timeout", "0.5"}, TimeoutAfter(10));
  const double elapsed = NowSeconds() - start;
  close(fd);
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_EQ(r.ErrLines(), 1) << r.err;
  EXPECT_GE(elapsed, 0.45);
  EXPECT_LT(elapsed, 3.0) << "--timeout 0.5 was not honoured";
}

TEST(PingCliTest, BadCommandLineIsUsageExit2) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"ping", "--bogus"},
                                             {"ping", "extra"},
                                             {"ping", "--timeout", "0"},
                                             {"ping", "--timeout", "soon"},
                                             {"ping", "--socket"}}) {
    const RunResult r = RunJcs(args);
    EXPECT_TRUE(r.exited && r.exit_code == 2) << args.back() << r.Describe();
    EXPECT_THAT(r.err, HasSubstr("usage: jcs ping")) << r.err;
  }
}

// The image's config, unchanged: it parses, and the daemon answers on the
// default socket /run/jcs/jcs.sock (in a private mount namespace with fresh
// /run and /var/lib, as the image's volumes).
TEST(PingCliTest, ImageDefaultConfigServesOnTheDefaultSocket) {
  const char* srcdir = getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  const std::string config =
      ReadFileOrEmpty(absl::StrCat(srcdir, "/jcs/deploy/jcs.conf"));
  ASSERT_THAT(config, HasSubstr("socket_path: \"/run/jcs/jcs.sock\""));
  DaemonOptions options;
  options.set_paths = false;
  options.clone_flags = CLONE_NEWNS;
  options.child_setup = [] {
    return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") ==
               0 &&
           mount("tmpfs", "/var/lib", "tmpfs", MS_NOSUID | MS_NODEV,
                 "mode=755") == 0;
  };
  Daemon daemon(options);
  daemon.WriteConfig(config);
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  EXPECT_THAT(daemon.Log(), HasSubstr("listening on /run/jcs/jcs.sock"));
  const std::string socket =
      absl::StrCat("/proc/", daemon.pid(), "/root/run/jcs/jcs.sock");
  const RunResult r = RunJcs({"ping", "--socket", socket});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe() << daemon.Log();
  daemon.Signal(SIGTERM);
  const ExitInfo exit = daemon.Wait();
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe();
  EXPECT_THAT(daemon.Log(), HasSubstr("draining (grace 10000 ms)"));
}

}  // namespace
}  // namespace jcs::serve_test
