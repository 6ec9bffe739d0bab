// `jcs serve` as a process: config errors, the embedded default config, boot
// projects, the SIGTERM/SIGINT drain, socket ownership (a live daemon is never
// displaced, a stale socket is replaced, other files are never touched) and
// the socket's mode. Every test starts its own daemon on a temporary socket.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

using ::testing::HasSubstr;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
  return st.st_mode;
}

struct ConfigCase {
  std::string name;
  std::string body;  // after socket_path / state_dir
  std::vector<std::string> expected;
};

TEST(ServeDaemonTest, ConfigErrorsExit2WithOneLineNamingTheField) {
  TempDir dir;
  const std::string root = dir.MakeOwnedDir("root");
  const std::string root_owned = dir.MakeDir("root-owned");
  const std::string paths =
      absl::StrCat("socket_path: \"", dir.Sub("jcs.sock"), "\"\nstate_dir: \"",
                   dir.Sub("state"), "\"\n");
  const std::vector<ConfigCase> cases = {
      {"socket_mode", "socket_mode: 4095\n", {"socket_mode"}},
      {"max_frame_bytes", "max_frame_bytes: 5\n", {"max_frame_bytes"}},
      {"max_clients", "max_clients: 0\n", {"max_clients"}},
      {"send_queue",
       "max_frame_bytes: 8192\nmax_send_queue_bytes: 4096\n",
       {"max_send_queue_bytes"}},
      {"drain_grace_ms", "drain_grace_ms: 4000000\n", {"drain_grace_ms"}},
      {"alert_signal_events",
       "alert_signal_events: \"\"\n",
       {"alert_signal_events[0]"}},
      {"default_options",
       "default_options { options { key: \"tool_timeout_ms\" value { "
       "int_value: -1 } } }\n",
       {"default_options", "tool_timeout_ms", "expected_positive_integer"}},
      {"default_options_unknown",
       "default_options { options { key: \"no_such_option\" value { "
       "bool_value: true } } }\n",
       {"default_options", "no_such_option", "unknown_option"}},
      {"default_options_json",
       "default_options_json: '{\"tool_timeout_ms\": -1}'\n",
       {"config: default_options_json: invalid_runtime_opt", "tool_timeout_ms",
        "expected_positive_integer"}},
      {"default_options_json_syntax",
       "default_options_json: '{\"tool_timeout_ms\": 5,}'\n",
       {"config: default_options_json: invalid JSON at line 1, column"}},
      {"default_options_both",
       "default_options_json: '{}'\ndefault_options { }\n",
       {"default_options and default_options_json are both set"}},
      {"boot_options_json",
       absl::StrCat("projects { root: \"", root,
                    "\" options_json: '{\"allow_tools\": 3}' }\n"),
       {"projects[0].options_json", "allow_tools", "expected_list_of_strings"}},
      {"boot_option",
       absl::StrCat("projects { root: \"", root,
                    "\" options { options { key: \"allow_tools\" value { "
                    "int_value: 3 } } } }\n"),
       {"projects[0].options", "allow_tools", "expected_list_of_strings"}},
      {"boot_option_second_project",
       absl::StrCat(
           "projects { root: \"", root, "\" project_id: \"ok\" }\n",
           "projects { root: \"", root,
           "\" options { options { key: \"outside_root_allowlist\" value { "
           "list_value { values { map_value { fields { key: \"path\" value { "
           "string_value: \"/etc\" } } } } } } } } }\n"),
       {"projects[1].options", "outside_root_allowlist",
        "invalid_entry[0]: missing_reason_code"}},
      {"boot_root_relative",
       "projects { root: \"relative/dir\" }\n",
       {"projects[0].root"}},
      {"boot_root_missing",
       absl::StrCat("projects { root: \"", dir.Sub("missing"), "\" }\n"),
       {"projects[0]", "invalid_root_path"}},
      {"boot_project_id",
       absl::StrCat("projects { root: \"", root, "\" project_id: \"a/b\" }\n"),
       {"projects[0]", "invalid_project_id"}},
      {"boot_data_dir",
       absl::StrCat("projects { root: \"", root, "\" data_dir: \"../x\" }\n"),
       {"projects[0]", "invalid_data_dir", "must_not_traverse"}},
      {"boot_root_owned_by_root",
       absl::StrCat("projects { root: \"", root_owned, "\" }\n"),
       {"projects[0]", "root_owned_by_root", "--run-as"}},
      {"boot_run_as_root",
       absl::StrCat("projects { root: \"", root_owned, "\" run_as_uid: 0 }\n"),
       {"projects[0]", "invalid_run_as"}},
      {"boot_overlapping",
       absl::StrCat("projects { root: \"", root, "\" project_id: \"a\" }\n",
                    "projects { root: \"", root, "\" project_id: \"b\" }\n"),
       {"projects[1]", "overlapping_project_root"}},
      {"boot_duplicate",
       absl::StrCat("projects { root: \"", root, "\" project_id: \"dup\" }\n",
                    "projects { root: \"", root, "\" project_id: \"dup\" }\n"),
       {"projects[1]", "already_started"}},
  };
  for (const ConfigCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string config = dir.WriteFile("bad.txtpb", paths + c.body);
    const RunResult r = RunJcs({"serve", "--config", config}, TimeoutAfter(10));
    EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
    EXPECT_EQ(r.ErrLines(), 1) << r.Describe();
    EXPECT_EQ(r.err.rfind("jcs serve: ", 0), 0u) << r.Describe();
    for (const std::string& e : c.expected) {
      EXPECT_NE(r.err.find(e), std::string::npos)
          << "expected '" << e << "' in: " << r.err;
    }
    EXPECT_FALSE(PathExists(dir.Sub("jcs.sock")))
        << "a daemon that refused its config left its socket file";
  }
}

TEST(ServeDaemonTest, SyntaxErrorsGiveFileLineColumn) {
  TempDir dir;
  const std::string config = dir.WriteFile(
      "syntax.txtpb", absl::StrCat("socket_path: \"", dir.Sub("jcs.sock"),
                                   "\"\n\nstate_dir: /tmp\n"));
  RunResult r = RunJcs({"serve", "--config", config}, TimeoutAfter(10));
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_EQ(r.ErrLines(), 1) << r.Describe();
  EXPECT_TRUE(std::regex_search(r.err, std::regex(config + ":3:[0-9]+: ")))
      << r.Describe();

  const std::string unknown =
      dir.WriteFile("unknown.txtpb", "state_dir: \"/tmp/x\"\nbogus_field: 1\n");
  r = RunJcs({"serve", "--config", unknown}, TimeoutAfter(10));
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_EQ(r.ErrLines(), 1) << r.Describe();
  EXPECT_TRUE(std::regex_search(r.err, std::regex(unknown + ":2:[0-9]+: ")))
      << r.Describe();
  EXPECT_NE(r.err.find("bogus_field"), std::string::npos) << r.Describe();
}

TEST(ServeDaemonTest, CommandLineErrorsExit2) {
  TempDir dir;
  RunResult r =
      RunJcs({"serve", "--config", dir.Sub("missing.txtpb")}, TimeoutAfter(10));
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(dir.Sub("missing.txtpb")), std::string::npos)
      << r.Describe();
  r = RunJcs({"serve", "--bogus"}, TimeoutAfter(10));
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.Describe();
  r = RunJcs({"serve", "--log-level", "verbose"}, TimeoutAfter(10));
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
  EXPECT_EQ(r.err,
            "jcs serve: --log-level: expected one of debug, info, warn, "
            "error; got 'verbose'\n");
}

TEST(ServeDaemonTest, HelpNamesTheDefaultSocketAndStateDir) {
  const RunResult r = RunJcs({"serve", "--help"}, TimeoutAfter(10));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_NE(r.out.find("/run/jcs/jcs.sock"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("/var/lib/jcs"), std::string::npos) << r.Describe();
}

// Without --config the daemon binds /run/jcs/jcs.sock and uses /var/lib/jcs.
// It runs in a private mount namespace with fresh tmpfs on /run and /var/lib,
// so the host's real paths (and any daemon using them) are never touched; the
// test reaches the socket through /proc/PID/root.
TEST(ServeDaemonTest, NoConfigUsesTheEmbeddedDefaultPaths) {
  DaemonOptions options;
  options.pass_config = false;
  options.set_paths = false;
  options.clone_flags = CLONE_NEWNS;
  options.child_setup = [] {
    return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") ==
               0 &&
           mount("tmpfs", "/var/lib", "tmpfs", MS_NOSUID | MS_NODEV,
                 "mode=0755") == 0;
  };
  Daemon daemon(options);
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const std::string ns_root = absl::StrCat("/proc/", daemon.pid(), "/root");
  const std::string socket = ns_root + "/run/jcs/jcs.sock";
  EXPECT_NE(daemon.Log().find("listening on /run/jcs/jcs.sock"),
            std::string::npos)
      << daemon.Log();
  EXPECT_TRUE(S_ISSOCK(ModeOf(socket))) << socket;
  EXPECT_EQ(ModeOf(socket) & 07777, 0660u);
  EXPECT_EQ(ModeOf(ns_root + "/run/jcs") & 07777, 0755u);
  EXPECT_TRUE(S_ISDIR(ModeOf(ns_root + "/var/lib/jcs")));
  EXPECT_EQ(ModeOf(ns_root + "/var/lib/jcs") & 07777, 0700u);
  EXPECT_EQ(PingError(socket), "");
  const ExitInfo exit = daemon.Stop();
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe() << "\n"
                                                  << daemon.Log();
}

// Every jail binds /etc, /usr, ... read-only: a socket there could be
// connected to from inside a jail, as the project's owner.
TEST(ServeDaemonTest, SocketOrStateInsideTheJailsSystemDirsIsRefused) {
  const std::string marker = absl::StrCat("jcs-refused-", getpid());
  TempDir elsewhere;
  for (const std::string& config :
       {absl::StrCat("socket_path: \"/etc/", marker, "/jcs.sock\"\n",
                     "state_dir: \"", elsewhere.Sub("state"), "\"\n"),
        absl::StrCat("socket_path: \"", elsewhere.Sub("jcs.sock"), "\"\n",
                     "state_dir: \"/usr/", marker, "/state\"\n")}) {
    DaemonOptions options;
    options.set_paths = false;
    options.extra_config = config;
    options.wait_ready = false;
    Daemon daemon(options);
    daemon.Start();
    const ExitInfo exit = daemon.Wait(10);
    EXPECT_TRUE(exit.exited && exit.exit_code == 1) << exit.Describe() << "\n"
                                                    << daemon.Log();
    EXPECT_THAT(daemon.Log(), HasSubstr("which every jail sees"));
    EXPECT_FALSE(PathExists("/etc/" + marker));
    EXPECT_FALSE(PathExists("/usr/" + marker));
  }
}

TEST(ServeDaemonTest, BootProjectsAppearInProjectList) {
  TempDir roots;
  const std::string root_a = roots.MakeOwnedDir("a");
  const std::string root_b = roots.MakeDir("b");  // root's: run_as below
  const std::string root_c = roots.MakeOwnedDir("c");
  // The defaults and boot-c's options as JSON (the `--options FILE` form),
  // boot-a's in the older message form: both merge the same way.
  Daemon daemon(absl::StrCat(
      "default_options_json: '{\"tool_timeout_ms\": 111}'\n",
      "projects { root: \"", root_a,
      "\" project_id: \"boot-a\" data_dir: \"state-a\" options { options { "
      "key: \"watcher\" value { bool_value: true } } } }\n",
      "projects { root: \"", root_b, "\" run_as_uid: 1234 }\n",
      "projects { root: \"", root_c,
      "\" project_id: \"boot-c\" options_json: '{\"tool_timeout_ms\": 222}' "
      "}\n"));
  ASSERT_TRUE(daemon.Start()) << daemon.Log();

  const RunResult list =
      RunJcs({"project", "list", "--json", "--socket", daemon.socket_path()});
  ASSERT_TRUE(list.exited && list.exit_code == 0) << list.Describe();
  nlohmann::json projects = nlohmann::json::parse(list.out, nullptr, false);
  ASSERT_TRUE(projects.is_array()) << list.out;
  ASSERT_EQ(projects.size(), 3u) << list.out;
  std::map<std::string, nlohmann::json> by_id;
  for (nlohmann::json& p : projects) {
    by_id[p.value("project_id", "")] = p;
  }
  ASSERT_EQ(by_id.count("boot-a"), 1u) << list.out;
  ASSERT_EQ(by_id.count("boot-c"), 1u) << list.out;
  EXPECT_EQ(by_id["boot-a"]["root_path"], root_a);
  EXPECT_EQ(by_id["boot-a"]["data_dir"], "state-a");
  EXPECT_EQ(by_id["boot-c"]["data_dir"], ".jido");
  std::string generated;
  for (const auto& [id, p] : by_id) {
    if (id != "boot-a" && id != "boot-c") generated = id;
  }
  ASSERT_FALSE(generated.empty()) << list.out;
  EXPECT_EQ(by_id[generated]["root_path"], root_b);
  EXPECT_EQ(by_id["boot-a"]["run_as"],
            nlohmann::json::parse(
                R"({"uid": 1000, "gid": 1000, "source": "root_owner"})"));
  EXPECT_EQ(by_id[generated]["run_as"],
            nlohmann::json::parse(
                R"({"uid": 1234, "gid": 1234, "source": "run_as"})"));
  EXPECT_TRUE(PathExists(root_a + "/state-a/skills"));
  EXPECT_TRUE(PathExists(root_b + "/.jido/state"));

  // Defaults merge under each project's own options.
  const std::map<std::string, nlohmann::json> expected_opts = {
      {"boot-a", {{"tool_timeout_ms", 111}, {"watcher", true}}},
      {"boot-c", {{"tool_timeout_ms", 222}}},
      {generated, {{"tool_timeout_ms", 111}}},
  };
  for (const auto& [id, opts] : expected_opts) {
    const RunResult diag =
        RunJcs({"diagnostics", id, "--json", "--socket", daemon.socket_path()});
    ASSERT_TRUE(diag.exited && diag.exit_code == 0) << diag.Describe();
    nlohmann::json doc = nlohmann::json::parse(diag.out, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << diag.out;
    EXPECT_EQ(doc["runtime_opts"], opts) << id << ": " << diag.out;
  }
  EXPECT_EQ(daemon.StopCleanly(), "");
}

TEST(ServeDaemonTest, SigtermAndSigintDrainAndExitZero) {
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(strsignal(sig));
    Daemon daemon("drain_grace_ms: 5000\n");
    ASSERT_TRUE(daemon.Start()) << daemon.Log();
    // An idle connected client must not hold the drain up.
    absl::StatusOr<std::unique_ptr<tools::ControlClient>> idle =
        tools::ControlClient::Connect(daemon.socket_path(), absl::Seconds(5));
    ASSERT_TRUE(idle.ok()) << idle.status();
    ASSERT_TRUE((*idle)->ListProjects().ok());
    const double start = NowSeconds();
    daemon.Signal(sig);
    const ExitInfo exit = daemon.Wait(15);
    const double took = NowSeconds() - start;
    EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe() << "\n"
                                                    << daemon.Log();
    EXPECT_LT(took, 6.0) << "the drain outlasted drain_grace_ms";
    EXPECT_FALSE(PathExists(daemon.socket_path()));
    EXPECT_NE(daemon.Log().find("draining"), std::string::npos) << daemon.Log();
    // The idle client sees the connection end.
    EXPECT_FALSE((*idle)->ListProjects().ok());
  }
}

TEST(ServeDaemonTest, SecondDaemonOnALiveSocketRefusesToStart) {
  Daemon first;
  ASSERT_TRUE(first.Start()) << first.Log();
  struct stat before;
  ASSERT_EQ(lstat(first.socket_path().c_str(), &before), 0);

  DaemonOptions options;
  options.set_paths = false;
  Daemon second(options);
  options.extra_config =
      absl::StrCat("socket_path: \"", first.socket_path(), "\"\nstate_dir: \"",
                   second.state_dir(), "\"\n");
  second.WriteConfig(options.extra_config);
  EXPECT_FALSE(second.Start()) << "the second daemon started";
  const ExitInfo exit = second.Wait(10);
  EXPECT_TRUE(exit.exited && exit.exit_code == 1) << exit.Describe() << "\n"
                                                  << second.Log();
  EXPECT_NE(second.Log().find("another daemon is listening"), std::string::npos)
      << second.Log();

  // The first daemon's socket is untouched and it keeps serving.
  struct stat after;
  ASSERT_EQ(lstat(first.socket_path().c_str(), &after), 0)
      << "the refused daemon removed the live daemon's socket";
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(PingError(first.socket_path()), "");
  EXPECT_EQ(first.StopCleanly(), "");
}

TEST(ServeDaemonTest, StaleSocketOfAKilledDaemonIsReplaced) {
  Daemon killed;
  ASSERT_TRUE(killed.Start()) << killed.Log();
  killed.Signal(SIGKILL);
  const ExitInfo exit = killed.Wait(10);
  ASSERT_EQ(exit.term_signal, SIGKILL) << exit.Describe();
  ASSERT_TRUE(S_ISSOCK(ModeOf(killed.socket_path())))
      << "expected a stale socket file after SIGKILL";
  // The daemon's multishot accept on io_uring holds the listening socket; the
  // kernel cancels a dead process's io_uring requests in deferred work after
  // the process has been reaped, so for a moment (milliseconds, longer under
  // load) connect() still succeeds and the socket looks live. Wait for that
  // to pass: replacing a socket that is still accepting is refused on purpose.
  const double deadline = NowSeconds() + 10;
  while (true) {
    const int fd = ConnectUnix(killed.socket_path());
    if (fd < 0) break;
    close(fd);
    ASSERT_LT(NowSeconds(), deadline)
        << "the killed daemon's socket still accepts connections";
    usleep(2000);
  }

  DaemonOptions options;
  options.set_paths = false;
  Daemon next(options);
  next.WriteConfig(absl::StrCat("socket_path: \"", killed.socket_path(),
                                "\"\nstate_dir: \"", next.state_dir(), "\"\n"));
  ASSERT_TRUE(next.Start()) << next.Log();
  EXPECT_EQ(PingError(killed.socket_path()), "");
  const ExitInfo stopped = next.Stop();
  EXPECT_TRUE(stopped.exited && stopped.exit_code == 0) << stopped.Describe();
  EXPECT_FALSE(PathExists(killed.socket_path()));
}

TEST(ServeDaemonTest, NeverReplacesAFileThatIsNotASocket) {
  DaemonOptions options;
  Daemon daemon(options);
  daemon.dir().WriteFile("jcs.sock", "precious data");
  ASSERT_FALSE(daemon.Start());
  const ExitInfo exit = daemon.Wait(10);
  EXPECT_TRUE(exit.exited && exit.exit_code == 1) << exit.Describe() << "\n"
                                                  << daemon.Log();
  EXPECT_EQ(ReadFileOrEmpty(daemon.socket_path()), "precious data");
  EXPECT_NE(daemon.Log().find("not a socket"), std::string::npos)
      << daemon.Log();
}

TEST(ServeDaemonTest, SocketHasTheConfiguredMode) {
  for (const auto& [config, mode] : std::vector<std::pair<std::string, mode_t>>{
           {"", 0660},
           {"socket_mode: 0600", 0600},
           {"socket_mode: 0666", 0666},
           {"socket_mode: 384", 0600}}) {
    SCOPED_TRACE(config);
    Daemon daemon(config);
    ASSERT_TRUE(daemon.Start()) << daemon.Log();
    const mode_t actual = ModeOf(daemon.socket_path());
    EXPECT_TRUE(S_ISSOCK(actual));
    EXPECT_EQ(actual & 07777, mode) << std::oct << (actual & 07777);
    EXPECT_EQ(daemon.StopCleanly(), "");
  }
}

TEST(ServeDaemonTest, CreatesMissingStateAndSocketDirectories) {
  DaemonOptions options;
  options.set_paths = false;
  Daemon daemon(options);
  const std::string socket = daemon.dir().Sub("run/deep/jcs.sock");
  const std::string state = daemon.dir().Sub("lib/jcs/state");
  daemon.WriteConfig(absl::StrCat("socket_path: \"", socket,
                                  "\"\nstate_dir: \"", state, "\"\n"));
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  EXPECT_TRUE(S_ISDIR(ModeOf(state)));
  EXPECT_EQ(ModeOf(state) & 07777, 0700u);
  EXPECT_EQ(ModeOf(daemon.dir().Sub("run/deep")) & 07777, 0755u);
  EXPECT_EQ(PingError(socket), "");
  const ExitInfo exit = daemon.Stop();
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe();
  EXPECT_FALSE(PathExists(socket));
}

}  // namespace
}  // namespace jcs::serve_test
