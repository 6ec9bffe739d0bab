#include "jail/spec.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

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
  EXPECT_THAT(spec->warnings[0], HasSubstr("uid 65534"));

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
        "--pids", "--cpus", "--config", "--print-config", "--report"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
}

}  // namespace
}  // namespace jcs::jail
