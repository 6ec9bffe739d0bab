#include "jail/spec.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  std::string tmpl =
      std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
      "/spec_test.XXXXXX";
  return mkdtemp(tmpl.data());
}

std::string ErrorOf(const std::vector<std::string>& args) {
  absl::StatusOr<RunInvocation> inv = ParseRunArgs(args);
  if (!inv.ok()) return std::string(inv.status().message());
  absl::StatusOr<FinalSpec> final_spec = Finalize(inv->spec, "/");
  if (!final_spec.ok()) return std::string(final_spec.status().message());
  return "";
}

TEST(ParseSizeTest, Suffixes) {
  EXPECT_EQ(*ParseSize("512M", "--memory"), 512ull << 20);
  EXPECT_EQ(*ParseSize("64m", "--memory"), 64ull << 20);
  EXPECT_EQ(*ParseSize("1G", "--memory"), 1ull << 30);
  EXPECT_EQ(*ParseSize("100K", "--memory"), 100ull << 10);
  EXPECT_EQ(*ParseSize("4096", "--memory"), 4096u);
}

TEST(ParseSizeTest, RejectsGarbageNamingTheFlag) {
  for (const char* bad :
       {"", "M", "12Q", "-5M", "1.5G", "abc", "99999999999999999999T"}) {
    absl::StatusOr<uint64_t> size = ParseSize(bad, "--memory");
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_THAT(std::string(size.status().message()), HasSubstr("--memory"))
        << bad;
  }
}

TEST(ParseSizeTest, OneSyntaxForEveryUnitSpelling) {
  for (const char* one_gib :
       {"1G", "1g", "1GB", "1gb", "1GiB", "1gib", "1Gb"}) {
    absl::StatusOr<uint64_t> size = ParseSize(one_gib, "--memory");
    ASSERT_TRUE(size.ok()) << one_gib << ": " << size.status();
    EXPECT_EQ(*size, 1ull << 30) << one_gib;
  }
  EXPECT_EQ(*ParseSize("512k", "--memory"), 512ull << 10);
  EXPECT_EQ(*ParseSize("512KiB", "--memory"), 512ull << 10);
  EXPECT_EQ(*ParseSize("2TB", "--memory"), 2ull << 40);
  for (const char* bad : {"1GBB", "1Gi", "1iB", "1B", "G1", "1 G", "1GiBs"}) {
    absl::StatusOr<uint64_t> size = ParseSize(bad, "--fsize");
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_THAT(std::string(size.status().message()),
                HasSubstr("--fsize: expected a size like 512M, 1G, 1GB or "
                          "1GiB"))
        << bad;
  }
}

TEST(ParseSizeTest, EverySizeFlagTakesTheSameSyntaxAndUnlimited) {
  absl::StatusOr<RunInvocation> inv =
      ParseRunArgs({"--memory", "1GiB", "--tmp-size", "512kb", "--fsize", "2gb",
                    "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->spec.memory_bytes(), 1ull << 30);
  EXPECT_EQ(inv->spec.tmp_size_bytes(), 512ull << 10);
  EXPECT_EQ(inv->spec.fsize_bytes(), 2ull << 30);
  inv = ParseRunArgs({"--memory", "unlimited", "--tmp-size", "unlimited",
                      "--fsize", "unlimited", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->spec.has_tmp_size_bytes());
  EXPECT_EQ(inv->spec.memory_bytes(), 0u);
  EXPECT_EQ(inv->spec.tmp_size_bytes(), 0u);
  EXPECT_EQ(inv->spec.fsize_bytes(), 0u);
  const std::string root = TempDir();
  inv->spec.set_root(root);
  absl::StatusOr<FinalSpec> spec = Finalize(inv->spec, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->spec.tmp_size_bytes(), 0u);
}

TEST(FormatSizeTest, LargestExactUnit) {
  EXPECT_EQ(FormatSize(64ull << 20), "64M");
  EXPECT_EQ(FormatSize(1ull << 30), "1G");
  EXPECT_EQ(FormatSize(1536ull << 10), "1536K");
  EXPECT_EQ(FormatSize(1000), "1000 bytes");
  EXPECT_EQ(FormatSize(0), "unlimited");
}

TEST(ParseRunArgsTest, ShortFlags) {
  absl::StatusOr<RunInvocation> inv = ParseRunArgs({"-q", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->quiet);
  ASSERT_EQ(inv->spec.argv_size(), 1);
  inv = ParseRunArgs({"--quiet", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->quiet);
  // Before the fix -x was taken for the program.
  inv = ParseRunArgs({"-x", "true"});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().message(),
            "unknown flag '-x' (see jcs run --help; a program whose name "
            "starts with - goes after --)");
  // `--` still ends the flags.
  inv = ParseRunArgs({"--", "-x", "-q"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_FALSE(inv->quiet);
  ASSERT_EQ(inv->spec.argv_size(), 2);
  EXPECT_EQ(inv->spec.argv(0), "-x");
}

TEST(ParseRunArgsTest, Tty) {
  absl::StatusOr<RunInvocation> inv = ParseRunArgs({"-t", "--", "bash"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->tty);
  EXPECT_FALSE(inv->quiet);
  inv = ParseRunArgs({"--tty", "-q", "bash", "-t"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->tty);
  EXPECT_TRUE(inv->quiet);
  ASSERT_EQ(inv->spec.argv_size(), 2);  // the program's own -t stays its own
  EXPECT_EQ(inv->spec.argv(1), "-t");
  inv = ParseRunArgs({"bash"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_FALSE(inv->tty);
  inv = ParseRunArgs({"--tty=yes", "bash"});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().message(), "--tty takes no value");
}

TEST(ParseRunArgsTest, ReportFd) {
  absl::StatusOr<RunInvocation> inv =
      ParseRunArgs({"--report-fd", "3", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->report_fd, 3);
  EXPECT_EQ(ParseRunArgs({"--report-fd", "x", "true"}).status().message(),
            "--report-fd: expected a descriptor number, got 'x'");
  EXPECT_EQ(ParseRunArgs({"--report-fd", "3", "--report", "r", "true"})
                .status()
                .message(),
            "--report and --report-fd: give one of them");
}

TEST(FinalizeTest, CwdAndMaskMustNameSomething) {
  const std::string root = TempDir();
  EXPECT_EQ(ErrorOf({"--root", root, "--cwd", "nope", "--", "true"}),
            "--cwd: " + root + "/nope: does not exist");
  // Before the fix a missing mask was skipped with a warning.
  EXPECT_EQ(ErrorOf({"--root", root, "--mask", "nope", "--", "true"}),
            "--mask: " + root + "/nope does not exist (nothing to mask)");
  std::ofstream(root + "/file") << "x";
  EXPECT_EQ(ErrorOf({"--root", root, "--cwd", "file", "--", "true"}),
            "--cwd: " + root + "/file: not a directory");
  EXPECT_EQ(ErrorOf({"--root", "/tmp", "--", "true"}),
            "--root: /tmp: cannot bind over the jail's own /tmp; use a "
            "directory below it, e.g. --root /tmp/work");
}

TEST(FinalizeTest, PrintConfigNeedsNoProgram) {
  const std::string root = TempDir();
  proto::JailSpec in;
  in.set_root(root);
  EXPECT_FALSE(Finalize(in, "/").ok());
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/", /*require_program=*/false);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->spec.argv_size(), 0);
}

// A number no enum value has (possible in a --config file: proto3 enums are
// open) is refused by name, not read as some other mode.
TEST(FinalizeTest, UnknownEnumNumbersAreRefused) {
  const std::string root = TempDir();
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  absl::StatusOr<proto::JailSpec> parsed =
      ParseSpecText(absl::StrCat("net: 99\nroot: \"", root, "\""), "cfg");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  parsed->add_argv("true");
  absl::StatusOr<FinalSpec> spec = Finalize(*parsed, "/");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("net: unknown mode 99"));
  proto::JailSpec cgroup = in;
  cgroup.set_cgroup(static_cast<proto::CgroupBackend>(7));
  spec = Finalize(cgroup, "/");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("cgroup: unknown backend 7"));
  proto::JailSpec landlock = in;
  landlock.set_landlock(static_cast<proto::LandlockMode>(42));
  spec = Finalize(landlock, "/");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("landlock: unknown mode 42"));
}

TEST(FinalizeTest, LimitsAboveTheHostAreWarnings) {
  const std::string root = TempDir();
  // A root its owner can write, owned by someone other than host root, so
  // that the only warnings are the limits' (as root: hand it to a user).
  if (geteuid() == 0) {
    ASSERT_EQ(chown(root.c_str(), 1234, 1234), 0);
  }
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  in.set_cpus(static_cast<double>(cpus) + 1);
  in.set_memory_bytes(1ull << 50);
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->warnings.size(), 2u);
  EXPECT_EQ(spec->warnings[0],
            "--cpus " + std::to_string(cpus + 1) + " is more than the host's " +
                std::to_string(cpus) + " CPUs; the quota cannot be reached");
  EXPECT_THAT(spec->warnings[1],
              HasSubstr("--memory 1024T is more than the host's memory ("));
  in.set_cpus(static_cast<double>(cpus));
  in.set_memory_bytes(64ull << 20);
  spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->warnings.empty());
}

TEST(FinalizeTest, AllowPrivateHostAloneIsNotEveryDestinationRefused) {
  const std::string root = TempDir();
  if (geteuid() == 0) {
    ASSERT_EQ(chown(root.c_str(), 1234, 1234), 0);
  }
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  in.set_net(proto::NET_EGRESS);
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->warnings,
            std::vector<std::string>{"--net egress without --allow-host: every "
                                     "destination is refused"});
  in.add_allow_private_host("localhost:8080");
  spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->warnings.empty());
}

TEST(FinalizeTest, RootNotWritableForItsOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const std::string root = TempDir();
  ASSERT_EQ(chown(root.c_str(), 1234, 1234), 0);
  ASSERT_EQ(chmod(root.c_str(), 0555), 0);
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->warnings,
            std::vector<std::string>{
                "--root " + root +
                " is not writable by its owner, the jail user 1234 (mode "
                "0555); chmod u+wx"});
  // A root-owned but world-writable root (like /tmp's children): no warning.
  ASSERT_EQ(chown(root.c_str(), 0, 0), 0);
  ASSERT_EQ(chmod(root.c_str(), 01777), 0);
  spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->warnings.empty());
}

TEST(ParseSecondsTest, MillisecondPrecision) {
  EXPECT_EQ(*ParseSecondsToMs("60", "--timeout"), 60000u);
  EXPECT_EQ(*ParseSecondsToMs("0.25", "--timeout"), 250u);
  EXPECT_EQ(*ParseSecondsToMs(".5", "--timeout"), 500u);
  EXPECT_EQ(*ParseSecondsToMs("1.0005", "--timeout"), 1001u);
  EXPECT_EQ(*ParseSecondsToMs("0.001", "--timeout"), 1u);
}

TEST(ParseSecondsTest, RejectsBadDurations) {
  for (const char* bad :
       {"", ".", "0", "0.0001", "1s", "-1", "1e3", "10000000000000", "1.2.3"}) {
    EXPECT_FALSE(ParseSecondsToMs(bad, "--timeout").ok()) << bad;
  }
}

TEST(ParseRunArgsTest, FlagsFillTheSpec) {
  const std::string root = TempDir();
  absl::StatusOr<RunInvocation> inv =
      ParseRunArgs({"--root",   root,       "--net=loopback",
                    "--env",    "A=1",      "--timeout",
                    "1.5",      "--memory", "64M",
                    "--pids",   "64",       "--cpus",
                    "0.5",      "--ro",     "/usr/share",
                    "--report", "-",        "--",
                    "sh",       "-c",       "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->spec.root(), root);
  EXPECT_EQ(inv->spec.net(), proto::NET_LOOPBACK);
  EXPECT_EQ(inv->spec.timeout_ms(), 1500u);
  EXPECT_EQ(inv->spec.memory_bytes(), 64u << 20);
  EXPECT_EQ(inv->spec.pids(), 64u);
  EXPECT_DOUBLE_EQ(inv->spec.cpus(), 0.5);
  EXPECT_EQ(inv->report_path, "-");
  ASSERT_EQ(inv->spec.argv_size(), 3);
  EXPECT_EQ(inv->spec.argv(2), "true");
  ASSERT_EQ(inv->spec.env_size(), 1);
  EXPECT_EQ(inv->spec.env(0).key(), "A");
}

TEST(ParseRunArgsTest, UnlimitedAndDefaults) {
  const std::string root = TempDir();
  absl::StatusOr<RunInvocation> inv =
      ParseRunArgs({"--root", root, "--memory", "unlimited", "--", "true"});
  ASSERT_TRUE(inv.ok());
  absl::StatusOr<FinalSpec> spec = Finalize(inv->spec, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->spec.memory_bytes(), 0u);
  EXPECT_EQ(spec->spec.pids(), 256u);
  EXPECT_EQ(spec->spec.timeout_ms(), 60000u);
  EXPECT_EQ(spec->spec.net(), proto::NET_NONE);
  EXPECT_EQ(spec->spec.hostname(), "jcs");
  EXPECT_FALSE(spec->spec.has_cpus());
  EXPECT_GT(spec->spec.system_ro_size(), 0);
}

TEST(ParseRunArgsTest, BadInputGetsSpecificErrors) {
  const std::string root = TempDir();
  EXPECT_THAT(ErrorOf({"--bogus", "--", "true"}),
              HasSubstr("unknown flag '--bogus'"));
  EXPECT_THAT(ErrorOf({"--root"}), HasSubstr("--root: missing value"));
  EXPECT_THAT(ErrorOf({"--root", "/nonexistent/x", "--", "true"}),
              HasSubstr("does not exist"));
  EXPECT_THAT(ErrorOf({"--root", "/etc/hostname", "--", "true"}),
              HasSubstr("not a directory"));
  EXPECT_THAT(ErrorOf({"--root", root, "--memory", "lots", "--", "true"}),
              HasSubstr("--memory: expected a size"));
  EXPECT_THAT(ErrorOf({"--root", root, "--timeout", "soon", "--", "true"}),
              HasSubstr("--timeout: expected seconds"));
  EXPECT_THAT(ErrorOf({"--root", root, "--pids", "0", "--", "true"}),
              HasSubstr("greater than 0"));
  EXPECT_THAT(ErrorOf({"--root", root, "--net", "host", "--", "true"}),
              HasSubstr("expected none, loopback or egress"));
  EXPECT_THAT(ErrorOf({"--root", root, "--env", "1A=x", "--", "true"}),
              HasSubstr("invalid variable name"));
  EXPECT_THAT(ErrorOf({"--root", root, "--env", "=x", "--", "true"}),
              HasSubstr("empty"));
  EXPECT_THAT(ErrorOf({"--root", root, "--env", "1BAD", "--", "true"}),
              HasSubstr("--env: invalid variable name"));
  EXPECT_THAT(
      ErrorOf({"--root", root, "--env-file", "/nonexistent/env", "--", "true"}),
      HasSubstr("--env-file: cannot read /nonexistent/env"));
  EXPECT_THAT(
      ErrorOf({"--root", root, "--runfiles", "/nonexistent/r", "--", "true"}),
      HasSubstr("--runfiles: /nonexistent/r"));
  EXPECT_THAT(ErrorOf({"--root", root, "--cwd", "/var", "--", "true"}),
              HasSubstr("nor in a --ro, --rw or --runfiles bind"));
  EXPECT_THAT(
      ErrorOf({"--root", root, "--env", "A=1", "--env", "A=2", "--", "true"}),
      HasSubstr("given twice"));
  EXPECT_THAT(ErrorOf({"--root", root}), HasSubstr("no program given"));
  EXPECT_THAT(ErrorOf({"--root", root, "--", ""}),
              HasSubstr("program name is empty"));
  EXPECT_THAT(ErrorOf({"--root", root, "--uid", "0", "--", "true"}),
              HasSubstr("--allow-host-root"));
  EXPECT_THAT(ErrorOf({"--root", "/", "--", "true"}),
              HasSubstr("cannot bind over"));
  EXPECT_THAT(ErrorOf({"--root", "/proc", "--", "true"}),
              HasSubstr("binds under /proc"));
  EXPECT_THAT(ErrorOf({"--root", root, "--ro", "/", "--", "true"}),
              HasSubstr("cannot bind over"));
  EXPECT_THAT(ErrorOf({"--root", root, "--cpus", "-1", "--", "true"}),
              HasSubstr("expected a positive number"));
  EXPECT_THAT(ErrorOf({"--root", root, "--hostname", "a b", "--", "true"}),
              HasSubstr("--hostname"));
  EXPECT_THAT(
      ErrorOf({"--root", root, "--config", "/nonexistent.txtpb", "--", "true"}),
      HasSubstr("--config: cannot read"));
}

TEST(ParseRunArgsTest, EnvKeyAlonePassesTheHostValue) {
  setenv("JCS_SPEC_TEST_SET", "from host", 1);
  unsetenv("JCS_SPEC_TEST_UNSET");
  auto inv = ParseRunArgs({"--env", "JCS_SPEC_TEST_SET", "--env",
                           "JCS_SPEC_TEST_UNSET", "--env", "B=2", "--", "x"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  ASSERT_EQ(inv->spec.env_size(), 2);
  EXPECT_EQ(inv->spec.env(0).key(), "JCS_SPEC_TEST_SET");
  EXPECT_EQ(inv->spec.env(0).value(), "from host");
  EXPECT_EQ(inv->spec.env(1).key(), "B");
}

TEST(ParseRunArgsTest, EnvFileLinesCommentsAndErrorsWithLineNumbers) {
  const std::string dir = TempDir();
  setenv("JCS_SPEC_TEST_FROM_HOST", "h", 1);
  std::ofstream(dir + "/env") << "# a comment\n\nA=1\n  B=spaced \r\n"
                              << "JCS_SPEC_TEST_FROM_HOST\nC=x=y\n";
  auto inv = ParseRunArgs({"--env-file", dir + "/env", "--", "x"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  ASSERT_EQ(inv->spec.env_size(), 4);
  EXPECT_EQ(inv->spec.env(0).key(), "A");
  EXPECT_EQ(inv->spec.env(0).value(), "1");
  EXPECT_EQ(inv->spec.env(1).key(), "B");
  EXPECT_EQ(inv->spec.env(1).value(), "spaced ");
  EXPECT_EQ(inv->spec.env(2).value(), "h");
  EXPECT_EQ(inv->spec.env(3).value(), "x=y");
  std::ofstream(dir + "/bad") << "A=1\nnot a name=2\n";
  auto bad = ParseRunArgs({"--env-file", dir + "/bad", "--", "x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("--env-file " + dir + "/bad:2: "));
}

TEST(FinalizeTest, RunfilesBecomeReadOnlyBindsAndMayHoldTheCwd) {
  const std::string dir = TempDir();
  const std::string root = dir + "/root", tree = dir + "/tree",
                    out = dir + "/out";
  for (const std::string& d : {root, tree, tree + "/ws", out}) {
    ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << d;
  }
  std::ofstream(out + "/test") << "x";
  ASSERT_EQ(symlink((out + "/test").c_str(), (tree + "/ws/test").c_str()), 0);
  auto inv = ParseRunArgs({"--root", root, "--runfiles", tree, "--cwd",
                           tree + "/ws", "--", "./test"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  auto final_spec = Finalize(inv->spec, "/");
  ASSERT_TRUE(final_spec.ok()) << final_spec.status();
  EXPECT_THAT(final_spec->spec.ro(), ::testing::ElementsAre(out, tree));
  EXPECT_EQ(final_spec->spec.cwd(), tree + "/ws");
  EXPECT_EQ(final_spec->spec.runfiles_size(), 0);
  // A tree the program could write to would let it choose the binds.
  auto inside =
      ParseRunArgs({"--root", dir, "--runfiles", tree, "--", "./test"});
  ASSERT_TRUE(inside.ok());
  EXPECT_THAT(std::string(Finalize(inside->spec, "/").status().message()),
              HasSubstr("lies in the writable root"));
  auto writable = ParseRunArgs(
      {"--root", root, "--rw", tree, "--runfiles", tree + "/ws", "--", "x"});
  ASSERT_TRUE(writable.ok());
  EXPECT_THAT(std::string(Finalize(writable->spec, "/").status().message()),
              HasSubstr("lies in the writable bind"));
}

TEST(FinalizeTest, BindPathsThroughSymlinksAreRefused) {
  const std::string root = TempDir();
  const std::string outside = TempDir();
  ASSERT_EQ(symlink(outside.c_str(), (root + "/vendor").c_str()), 0);
  EXPECT_THAT(ErrorOf({"--root", root, "--rw", root + "/vendor", "--", "true"}),
              HasSubstr("binds never follow symlinks (the real path is " +
                        outside + ")"));
  EXPECT_THAT(ErrorOf({"--root", root + "/vendor", "--", "true"}),
              HasSubstr("binds never follow symlinks"));
  // `..` and `.` are resolved lexically; the result must still be real.
  absl::StatusOr<RunInvocation> inv =
      ParseRunArgs({"--root", root + "/./x/..", "--", "true"});
  ASSERT_TRUE(inv.ok());
  ASSERT_EQ(mkdir((root + "/x").c_str(), 0755), 0);
  absl::StatusOr<FinalSpec> spec = Finalize(inv->spec, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->spec.root(), root);
}

TEST(ParseSpecTextTest, SyntaxErrorHasLineAndColumn) {
  absl::StatusOr<proto::JailSpec> spec = ParseSpecText(
      "root: \"/tmp\"\nmemory_bytes: 12\npids: }\n", "jail.txtpb");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("jail.txtpb:3:7:"));
  spec = ParseSpecText("no_such_field: 1\n", "x.txtpb");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("x.txtpb:1:"));
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("no_such_field"));
  spec = ParseSpecText("env { key: \"1BAD\" value: \"x\" }\n", "e.txtpb");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("invalid variable name"));
}

TEST(ParseRunArgsTest, FlagsOverrideConfigFile) {
  const std::string root = TempDir();
  const std::string config = root + "/jail.txtpb";
  std::ofstream(config)
      << "memory_bytes: 1073741824\npids: 10\nhostname: \"fromfile\"\n"
         "argv: \"/bin/false\"\nenv { key: \"A\" value: \"file\" }\n";
  absl::StatusOr<RunInvocation> inv = ParseRunArgs(
      {"--config", config, "--root", root, "--pids", "20", "--", "/bin/true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->spec.memory_bytes(), 1u << 30);
  EXPECT_EQ(inv->spec.pids(), 20u);
  EXPECT_EQ(inv->spec.hostname(), "fromfile");
  ASSERT_EQ(inv->spec.argv_size(), 1);
  EXPECT_EQ(inv->spec.argv(0), "/bin/true");
  ASSERT_EQ(inv->spec.env_size(), 1);
  EXPECT_EQ(inv->spec.env(0).value(), "file");
}

TEST(FinalizeTest, RootOwnedByHostRootMapsToNobodyWithWarning) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to create a root-owned directory";
  const std::string root = TempDir();
  ASSERT_EQ(chown(root.c_str(), 0, 0), 0);
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->spec.uid(), 65534u);
  EXPECT_EQ(spec->spec.gid(), 65534u);
  ASSERT_EQ(spec->warnings.size(), 1u);
  EXPECT_EQ(spec->warnings[0],
            "--root " + root +
                " is owned by uid 0; the jail user is 65534 (nobody); pass "
                "--uid or chown");

  ASSERT_EQ(chown(root.c_str(), 1234, 4321), 0);
  spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->spec.uid(), 1234u);
  EXPECT_EQ(spec->spec.gid(), 4321u);
  EXPECT_TRUE(spec->warnings.empty());
}

TEST(FinalizeTest, PrintedConfigRoundTrips) {
  const std::string root = TempDir();
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok());
  absl::StatusOr<proto::JailSpec> reparsed =
      ParseSpecText(FormatSpec(spec->spec), "printed");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_EQ(reparsed->SerializeAsString(), spec->spec.SerializeAsString());
}

TEST(RunUsageTest, ListsEveryFlag) {
  const std::string usage = RunUsage();
  for (const char* flag :
       {"--root", "--ro", "--rw", "--net", "--env", "--timeout", "--memory",
        "--pids", "--cpus", "--config", "--print-config", "--report", "--quiet",
        "--report-fd", "--tty"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
  // The size syntax is explained once.
  const std::string syntax = "1G, 1GB and 1GiB are the same";
  ASSERT_THAT(usage, HasSubstr(syntax));
  EXPECT_EQ(usage.find(syntax), usage.rfind(syntax));
}

// Runs `body` as an unprivileged user: in a child that drops to 65534 when
// this test runs as root; inline otherwise (the run_under stage runs this
// test jailed as a mapped user). The child's failures become its exit code.
template <typename Body>
void AsUnprivilegedUser(Body body) {
  if (geteuid() != 0) {
    body();
    return;
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    body();
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Rootless: the jail user is the caller (its user namespace can map nothing
// else), and another --uid/--gid is refused naming the layer and the fix.
TEST(FinalizeTest, RootlessJailUserIsTheCaller) {
  AsUnprivilegedUser([] {
    char root[] = "/tmp/spec_test_rootless.XXXXXX";
    ASSERT_NE(mkdtemp(root), nullptr);
    proto::JailSpec in;
    in.set_root(root);
    in.add_argv("true");
    absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->spec.uid(), geteuid());
    EXPECT_EQ(spec->spec.gid(), getegid());
    in.set_uid(geteuid() + 1);
    spec = Finalize(in, "/");
    ASSERT_FALSE(spec.ok());
    EXPECT_THAT(std::string(spec.status().message()),
                HasSubstr("jcs run is not running as root"));
    EXPECT_THAT(std::string(spec.status().message()),
                HasSubstr("fix: drop --uid/--gid, or run jcs as root"));
    in.set_uid(geteuid());
    in.set_gid(getegid() + 1);
    EXPECT_FALSE(Finalize(in, "/").ok());
    rmdir(root);
  });
}

// Every flag line ends with its default, and the numeric ones are what
// Finalize actually applies when the flag is not given.
TEST(RunUsageTest, EveryFlagShowsTheDefaultFinalizeApplies) {
  const std::string usage = RunUsage();
  int flag_lines = 0;
  for (absl::string_view line : absl::StrSplit(usage, '\n')) {
    if (!absl::StartsWith(line, "  --")) continue;
    ++flag_lines;
    EXPECT_TRUE(absl::StrContains(line, " [default: ") &&
                absl::EndsWith(line, "]"))
        << line;
  }
  EXPECT_GE(flag_lines, 30);
  const std::string root = TempDir();
  proto::JailSpec in;
  in.set_root(root);
  in.add_argv("true");
  absl::StatusOr<FinalSpec> spec = Finalize(in, "/");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto shows = [&usage](const std::string& flag,
                              const std::string& value) {
    const size_t at = usage.find("  --" + flag + " ");
    if (at == std::string::npos) return false;
    const std::string line = usage.substr(at, usage.find('\n', at) - at);
    return absl::EndsWith(line, "[default: " + value + "]");
  };
  EXPECT_TRUE(shows("memory", FormatSize(spec->spec.memory_bytes())));
  EXPECT_TRUE(shows("tmp-size", FormatSize(spec->spec.tmp_size_bytes())));
  EXPECT_TRUE(shows("fsize", FormatSize(spec->spec.fsize_bytes())));
  EXPECT_TRUE(shows("pids", absl::StrCat(spec->spec.pids())));
  EXPECT_TRUE(shows("nofile", absl::StrCat(spec->spec.nofile())));
  EXPECT_TRUE(shows("timeout", absl::StrCat(spec->spec.timeout_ms() / 1000)));
  EXPECT_TRUE(shows("hostname", spec->spec.hostname()));
  EXPECT_TRUE(shows("cgroup-parent", spec->spec.cgroup_parent()));
  EXPECT_TRUE(shows("net", "none"));
  EXPECT_TRUE(shows("landlock", "best-effort"));
}

// The summary's lines fit 80 columns, so --help's wrapping never leaves a
// stray word on a line of its own.
TEST(RunUsageTest, ProseLinesFitTheTerminal) {
  for (absl::string_view line : absl::StrSplit(RunUsage(), '\n')) {
    if (absl::StartsWith(line, "  --")) continue;
    EXPECT_LE(line.size(), 80u) << line;
  }
}

}  // namespace
}  // namespace jcs::jail
