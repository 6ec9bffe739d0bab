// Escape suite: bad input. Each case gets exactly one clear line on stderr,
// the documented exit status, no crash, and leaves nothing behind: no cgroup,
// no host mount, no process, and the program never runs.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

struct BadCase {
  std::string name;
  // Arguments after `jcs run`; ROOT, FILE, CFG and PROG are substituted.
  std::vector<std::string> args;
  int exit_code;
  std::string message;  // a substring of the one stderr line
};

class BadInput : public ::testing::TestWithParam<BadCase> {};

std::string Substitute(std::string arg, const Project& project,
                       const std::string& prog) {
  auto replace = [&arg](const std::string& from, const std::string& to) {
    if (arg == from) arg = to;
  };
  replace("ROOT", project.root());
  replace("FILE", project.Path("a-file"));
  replace("CFG", project.base() + "/bad.cfg");
  replace("PROG", prog);
  return arg;
}

TEST_P(BadInput, OneLineExitCodeNoLeftovers) {
  const BadCase& c = GetParam();
  Project project;
  project.WriteFile("a-file", "not a directory\n");
  // Line 3, column 17 (1-based) is the '{'.
  WriteHostFile(project.base() + "/bad.cfg",
                "timeout_ms: 5000\n# comment\n  memory_bytes: { x\n");
  const std::string marker = UniqueToken("ran-");
  // If the program ever ran, it would leave this file and a marked sleeper.
  const std::string prog = "/bin/sh";
  std::vector<std::string> args = {"run"};
  for (const std::string& a : c.args) {
    args.push_back(Substitute(a, project, prog));
  }
  const bool has_program =
      std::find(c.args.begin(), c.args.end(), "--") != c.args.end() &&
      c.args.back() == "PROG";
  if (has_program) {
    args.push_back("-c");
    args.push_back("touch " + project.Path(marker) + "; sleep " +
                   SleepMarker() + " # " + marker);
  }
  const std::vector<std::string> mounts_before = HostMounts();
  const JcsResult r = RunJcs(args);
  EXPECT_TRUE(r.exited) << "jcs crashed: " << r.Describe();
  EXPECT_EQ(r.exit_code, c.exit_code) << r.Describe();
  EXPECT_EQ(r.StderrLines(), 1) << "expected exactly one line: " << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << r.err;
  EXPECT_NE(r.err.find(c.message), std::string::npos)
      << "stderr should mention '" << c.message << "': " << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_LT(r.wall_s, 10);
  EXPECT_FALSE(project.Exists(marker)) << "the program ran";
  EXPECT_TRUE(ProcessesWithMarker(marker).empty());
  EXPECT_TRUE(RunCgroupDirs(r.pid).empty()) << "leftover cgroup";
  const std::vector<std::string> added = NewLines(mounts_before, HostMounts());
  EXPECT_TRUE(added.empty()) << "new host mount: " << added[0];
  for (pid_t pid : ProcessesWithMarker(marker)) kill(pid, SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(
    Escape, BadInput,
    ::testing::Values(
        BadCase{"unknown_flag",
                {"--root", "ROOT", "--bogus", "--", "PROG"},
                125,
                "--bogus"},
        BadCase{"missing_root",
                {"--root", "/nonexistent-jcs-root", "--", "PROG"},
                125,
                "/nonexistent-jcs-root"},
        BadCase{"root_is_a_file",
                {"--root", "FILE", "--", "PROG"},
                125,
                "not a directory"},
        BadCase{"root_flag_without_value", {"--root"}, 125, "--root"},
        BadCase{"memory_lots",
                {"--root", "ROOT", "--memory", "lots", "--", "PROG"},
                125,
                "--memory"},
        BadCase{"memory_too_small",
                {"--root", "ROOT", "--memory", "1K", "--", "PROG"},
                125,
                "--memory"},
        BadCase{"timeout_x",
                {"--root", "ROOT", "--timeout", "x", "--", "PROG"},
                125,
                "--timeout"},
        BadCase{"timeout_negative",
                {"--root", "ROOT", "--timeout", "-1", "--", "PROG"},
                125,
                "--timeout"},
        BadCase{"timeout_zero",
                {"--root", "ROOT", "--timeout", "0", "--", "PROG"},
                125,
                "--timeout"},
        BadCase{"pids_words",
                {"--root", "ROOT", "--pids", "many", "--", "PROG"},
                125,
                "--pids"},
        BadCase{"net_unknown",
                {"--root", "ROOT", "--net", "wifi", "--", "PROG"},
                125,
                "--net"},
        BadCase{"env_bad_key",
                {"--root", "ROOT", "--env", "1A=b", "--", "PROG"},
                125,
                "--env"},
        BadCase{"env_empty_key",
                {"--root", "ROOT", "--env", "=b", "--", "PROG"},
                125,
                "--env"},
        BadCase{
            "env_file_missing",
            {"--root", "ROOT", "--env-file", "/nonexistent/env", "--", "PROG"},
            125,
            "--env-file"},
        BadCase{"runfiles_not_a_directory",
                {"--root", "ROOT", "--runfiles", "/etc/hostname", "--", "PROG"},
                125,
                "--runfiles"},
        BadCase{"config_syntax_error",
                {"--root", "ROOT", "--config", "CFG", "--", "PROG"},
                125,
                "bad.cfg:3:17"},
        BadCase{"config_missing",
                {"--root", "ROOT", "--config", "/nonexistent-jcs.cfg", "--",
                 "PROG"},
                125,
                "/nonexistent-jcs.cfg"},
        BadCase{"empty_command", {"--root", "ROOT", "--"}, 125, "program"},
        BadCase{"no_command", {"--root", "ROOT"}, 125, "program"},
        BadCase{
            "ro_missing",
            {"--root", "ROOT", "--ro", "/nonexistent-jcs-bind", "--", "PROG"},
            125,
            "/nonexistent-jcs-bind"},
        BadCase{"ro_under_proc",
                {"--root", "ROOT", "--ro", "/proc/self", "--", "PROG"},
                125,
                "--ro"},
        BadCase{"rw_system_dir",
                {"--root", "ROOT", "--rw", "/etc", "--", "PROG"},
                125,
                "/etc"},
        BadCase{"uid_zero_without_allow",
                {"--root", "ROOT", "--uid", "0", "--", "PROG"},
                125,
                "--allow-host-root"},
        BadCase{"nonexistent_program",
                {"--root", "ROOT", "--", "/nonexistent-jcs-program"},
                127,
                "not found"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      return info.param.name;
    });

TEST(BadInputConfig, PrintConfigShowsTheEffectiveSpecAndRunsNothing) {
  Project project;
  const std::string cfg = project.base() + "/spec.cfg";
  WriteHostFile(cfg,
                "timeout_ms: 5000\nmemory_bytes: 100663296\nhostname: "
                "\"from-file\"\n");
  const std::string marker = project.Path("ran");
  const JcsResult r =
      RunJcs({"run", "--root", project.root(), "--config", cfg, "--timeout",
              "2.5", "--print-config", "--", "/usr/bin/touch", marker});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.err, "");
  // Flags override the file; the file fills in the rest; defaults are shown.
  for (const std::string& line :
       {"root: \"" + project.root() + "\"", std::string("timeout_ms: 2500"),
        std::string("memory_bytes: 100663296"),
        std::string("hostname: \"from-file\""), std::string("pids: 256"),
        std::string("net: NET_NONE"), std::string("argv: \"/usr/bin/touch\""),
        "argv: \"" + marker + "\""}) {
    EXPECT_NE(("\n" + r.out).find("\n" + line + "\n"), std::string::npos)
        << "missing '" << line << "' in:\n"
        << r.out;
  }
  EXPECT_FALSE(project.Exists("ran")) << "--print-config ran the program";
  EXPECT_TRUE(RunCgroupDirs(r.pid).empty());

  // The printed text is itself a valid config that prints the same.
  const std::string printed = project.base() + "/printed.cfg";
  WriteHostFile(printed, r.out);
  const JcsResult again =
      RunJcs({"run", "--config", printed, "--print-config"});
  ASSERT_TRUE(again.exited && again.exit_code == 0) << again.Describe();
  EXPECT_EQ(again.out, r.out);
}

TEST(BadInputDoctor, DoctorListsEveryLayer) {
  const JcsResult r = RunJcs({"doctor"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  for (const char* layer :
       {"user_namespace", "mount_namespace", "pid_namespace",
        "network_namespace", "ipc_namespace", "uts_namespace",
        "cgroup_namespace", "seccomp", "seccomp_user_notification", "landlock",
        "cgroup_v2", "cgroup_v1", "io_uring"}) {
    EXPECT_NE(r.out.find(layer), std::string::npos) << layer << "\n" << r.out;
  }
  // Every missing layer comes with its fix.
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MISSING", 0) == 0) {
      EXPECT_NE(line.find("fix"), std::string::npos) << line;
    }
  }
  const JcsResult json = RunJcs({"doctor", "--json"});
  ASSERT_TRUE(json.exited && json.exit_code == 0) << json.Describe();
  const nlohmann::json parsed = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << json.out;
  std::set<std::string> names;
  for (const auto& entry : parsed) {
    names.insert(entry["name"].get<std::string>());
    if (!entry["available"].get<bool>()) {
      EXPECT_FALSE(entry["fix"].get<std::string>().empty()) << entry.dump();
    }
  }
  for (const char* layer :
       {"user_namespace", "seccomp", "landlock", "cgroup_v2", "io_uring"}) {
    EXPECT_TRUE(names.count(layer)) << layer;
  }
}

}  // namespace
}  // namespace jcs::testing
