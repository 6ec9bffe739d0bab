// `jcs run` says what happened (issue 17): the real binary, one exact `jcs:`
// line on stderr for each thing a user must know (the report has the
// details), none under --quiet; bad input stopped before anything runs with
// one exact `jcs run:` line; the report on an inherited descriptor.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

// Every test's program prints nothing itself: stderr is jcs's alone.
constexpr char kPtraceTwice[] =
    "import ctypes\n"
    "libc = ctypes.CDLL(None)\n"
    "libc.syscall(101, 0, 0, 0, 0)\n"
    "libc.syscall(101, 0, 0, 0, 0)\n";

constexpr char kForkUntilRefused[] =
    "import os, time\n"
    "for _ in range(16):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if pid == 0:\n"
    "        time.sleep(30)\n"
    "        os._exit(0)\n";

struct Said {
  std::string name;
  std::vector<std::string> flags;
  std::vector<std::string> argv;
  int exit_code;
  std::string line;  // the one stderr line, after "jcs: "
};

class RunSays : public ::testing::TestWithParam<Said> {};

TEST_P(RunSays, OneExactLineAndNoneWhenQuiet) {
  const Said& c = GetParam();
  Project project;
  const JcsResult r = RunJail(project, c.flags, c.argv);
  EXPECT_TRUE(r.exited) << r.Describe();
  EXPECT_EQ(r.exit_code, c.exit_code) << r.Describe();
  EXPECT_EQ(r.err, "jcs: " + c.line + "\n");
  EXPECT_TRUE(r.has_report) << r.Describe();

  std::vector<std::string> quiet = c.flags;
  quiet.push_back("--quiet");
  const JcsResult q = RunJail(project, quiet, c.argv);
  EXPECT_EQ(q.exit_code, c.exit_code) << q.Describe();
  EXPECT_EQ(q.err, "");
}

INSTANTIATE_TEST_SUITE_P(
    Issue17, RunSays,
    ::testing::Values(
        Said{"oom",
             {"--memory", "64M"},
             Python("b = bytearray(512 << 20)"),
             137,
             "killed by the memory limit 64M"},
        Said{"fsize",
             {"--fsize", "1M"},
             {"/bin/dd", "if=/dev/zero", "of=/tmp/big", "bs=64k", "count=64",
              "status=none"},
             128 + SIGXFSZ,
             "killed by SIGXFSZ: a file reached the file-size limit 1M "
             "(--fsize)"},
        Said{"seccomp",
             {},
             Python(kPtraceTwice),
             0,
             "seccomp denied 2 calls: ptrace (2)"},
        Said{"pids",
             {"--pids", "4"},
             Python(kForkUntilRefused),
             0,
             "the pids limit 4 refused 1 fork (--pids)"},
        Said{"egress_without_allow_host",
             {"--net", "egress"},
             {"/bin/true"},
             0,
             "--net egress without --allow-host: every destination is "
             "refused"},
        Said{"cpus_above_host",
             {"--cpus", "4096"},
             {"/bin/true"},
             0,
             "--cpus 4096 is more than the host's " +
                 std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) +
                 " CPUs; the quota cannot be reached"}),
    [](const ::testing::TestParamInfo<Said>& info) { return info.param.name; });

TEST(RunSaysRoot, RootNotWritableForTheJailUser) {
  Project project(0, 0);
  const JcsResult r = RunJail(project, {}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.err, "jcs: --root " + project.root() +
                       " is owned by uid 0; the jail user is 65534 (nobody); "
                       "pass --uid or chown\n");
  const JcsResult q = RunJail(project, {"-q"}, {"/bin/true"});
  EXPECT_EQ(q.exit_code, 0) << q.Describe();
  EXPECT_EQ(q.err, "");
}

TEST(RunSaysRoot, ChdirRefusedNamesTheUidFix) {
  Project project;
  ASSERT_EQ(chmod(project.root().c_str(), 0700), 0);
  const JcsResult r = RunJail(project, {"--uid", "2000"}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  const std::string root = project.root();
  EXPECT_EQ(r.err, "jcs: --root " + root +
                       " is owned by uid 1000; the jail user is 2000; pass "
                       "--uid or chown\n"
                       "jcs run: jail setup failed: chdir " +
                       root + ": " + root +
                       ": Permission denied (fix: the jail user (uid 2000) "
                       "cannot enter it; pass --uid with the directory "
                       "owner's uid, or chown/chmod the directory)\n");
}

struct Refused {
  std::string name;
  std::vector<std::string> args;  // after `jcs run`; ROOT substituted
  std::string line;               // the one stderr line; ROOT substituted
};

class RunRefuses : public ::testing::TestWithParam<Refused> {};

std::string WithRoot(std::string text, const std::string& root) {
  for (size_t at = text.find("ROOT"); at != std::string::npos;
       at = text.find("ROOT", at + root.size())) {
    text.replace(at, 4, root);
  }
  return text;
}

TEST_P(RunRefuses, BeforeAnythingRuns) {
  const Refused& c = GetParam();
  Project project;
  ASSERT_EQ(mkdir(project.Path("sub").c_str(), 0755), 0);
  std::vector<std::string> args = {"run"};
  for (const std::string& a : c.args)
    args.push_back(WithRoot(a, project.root()));
  const std::string marker = project.Path("ran");
  args.push_back("/usr/bin/touch");
  args.push_back(marker);
  const JcsResult r = RunJcs(args);
  EXPECT_TRUE(r.exited) << r.Describe();
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_EQ(r.err, WithRoot(c.line, project.root()) + "\n");
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(project.Exists("ran")) << "the program ran";
  EXPECT_TRUE(RunCgroupDirs(r.pid).empty());
}

INSTANTIATE_TEST_SUITE_P(
    Issue17, RunRefuses,
    ::testing::Values(
        // Before: -x became the program.
        Refused{"unknown_short_flag",
                {"--root", "ROOT", "-x"},
                "jcs run: unknown flag '-x' (see jcs run --help; a program "
                "whose name starts with - goes after --)"},
        // Before: found only after the run, exit 0.
        Refused{"report_unwritable",
                {"--root", "ROOT", "--report", "/nonexistent-jcs/r.json", "--"},
                "jcs run: --report: cannot write /nonexistent-jcs/r.json: No "
                "such file or directory"},
        Refused{"report_fd_closed",
                {"--root", "ROOT", "--report-fd", "9", "--"},
                "jcs run: --report-fd 9: not an open descriptor"},
        Refused{"cwd_missing",
                {"--root", "ROOT", "--cwd", "nope", "--"},
                "jcs run: --cwd: ROOT/nope: does not exist"},
        // Before: skipped with a warning in the report only.
        Refused{"mask_missing",
                {"--root", "ROOT", "--mask", "sub/.env", "--"},
                "jcs run: --mask: ROOT/sub/.env does not exist (nothing to "
                "mask)"},
        Refused{"size_typo",
                {"--root", "ROOT", "--tmp-size", "1GBB", "--"},
                "jcs run: --tmp-size: expected a size like 512M, 1G, 1GB or "
                "1GiB, got '1GBB'"},
        Refused{"root_is_tmp",
                {"--root", "/tmp", "--"},
                "jcs run: --root: /tmp: cannot bind over the jail's own /tmp; "
                "use a directory below it, e.g. --root /tmp/work"}),
    [](const ::testing::TestParamInfo<Refused>& info) {
      return info.param.name;
    });

TEST(RunSaysCwd, FromTmpTheErrorGivesTheFlag) {
  // `cd /tmp && jcs run -- pwd`: the root defaults to the cwd.
  const ProcessResult r = RunProcess(
      {"/bin/sh", "-c", "cd /tmp && exec \"$0\" run -- /bin/pwd", JcsPath()});
  EXPECT_EQ(r.exit_code, 125) << r.Describe();
  EXPECT_EQ(r.err,
            "jcs run: --root: /tmp: cannot bind over the jail's own /tmp; use "
            "a directory below it, e.g. --root /tmp/work\n");
}

TEST(RunSaysConfig, PrintConfigNeedsNoProgram) {
  Project project;
  const JcsResult r = RunJcs(
      {"run", "--root", project.root(), "--memory", "1GiB", "--print-config"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("memory_bytes: 1073741824\n"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("argv"), std::string::npos) << r.out;
}

TEST(RunSaysHelp, SizeSyntaxOnceAndEveryLineWhole) {
  const JcsResult r = RunJcs({"run", "--help"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const std::string syntax =
      "\nSIZE: digits with an optional unit K, M, G or T, alone or followed by "
      "B or iB,\nin any case (all powers of 1024: 1G, 1GB and 1GiB are the "
      "same), or 'unlimited'.\n";
  ASSERT_NE(r.out.find(syntax), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("SIZE:"), r.out.rfind("SIZE:"));
  EXPECT_NE(r.out.find("\nexit status: the program's;"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--report-fd N"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--quiet"), std::string::npos) << r.out;
}

TEST(RunSaysReport, ReportFdIsWrittenAndNeverInTheJail) {
  Project project;
  const std::string path = project.base() + "/fd-report.json";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ProcessOptions options;
  options.inherit_fds = {{fd, 7}};
  // The program lists its descriptors: 0-2 and the one ls opens to read.
  const JcsResult r = RunJcs({"run", "--root", project.root(), "--report-fd",
                              "7", "--", "/bin/ls", "/proc/self/fd"},
                             options);
  close(fd);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");
  EXPECT_EQ(r.err, "");
  const nlohmann::json report =
      nlohmann::json::parse(ReadHostFile(path), nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << ReadHostFile(path);
  EXPECT_EQ(report["status"], "exited");
  EXPECT_EQ(report["program"][0], "/bin/ls");

  // A descriptor open only for reading is refused before the run.
  const int ro = open(path.c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  options.inherit_fds = {{ro, 7}};
  const JcsResult bad = RunJcs(
      {"run", "--root", project.root(), "--report-fd", "7", "--", "/bin/true"},
      options);
  close(ro);
  EXPECT_EQ(bad.exit_code, 125) << bad.Describe();
  EXPECT_EQ(bad.err, "jcs run: --report-fd 7: not open for writing\n");
}

}  // namespace
}  // namespace jcs::testing
