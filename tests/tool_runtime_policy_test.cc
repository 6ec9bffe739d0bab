// Port of the original tool_runtime_policy acceptance cases 12-15
// (/work/shared/spec/original-behaviour.md §10.2) to jcs, through a real
// `jcs serve` and the real CLI, followed by attack tests: a tool call trying
// to reach outside its project root through its arguments (fs.read/write/
// list with `..`, absolute paths, symlinks planted in the root, exec's cwd)
// and through the code it runs (exec reading host secrets, masked sensitive
// files, the read-only data dir and its hidden state/).
//
// Case map (§10.2 -> test):
//   12 AllowToolsLimitsInventoryAndExecution
//   13 SymlinkedDirectoryEscapeIsOutsideRoot
//   14 ConcurrencyLimitIsPositiveAndBlocksTheNextCall (jcs deviation:
//      tool_max_concurrency must be a positive integer, so 0 is rejected at
//      project start; the limit is exercised with 1 and a running call)
//   15 not applicable: jcs tools never run without a project context; the
//      root comes from the project registry, which only starts projects whose
//      root is an existing directory (invalid_root_path otherwise, covered by
//      serve_cli_test).
// Cases 1-11 of §10.2 (command/workflow markdown assets as tools) are in
// tests/asset_tools_daemon_test.cc:
//    1 ListToolsShowsBuiltinsAndAssetTools
//    2 RunToolUsesThePolicyPipelineForAssetTools
//    3 CommandExecutesAValidDefinition
//    4, 5 ConcurrentCallsRunInSeparateJails (the jail is jcs's workspace)
//    6 CommandSeesTheProjectRootAsItsWorkingDirectory
//    7 InvalidCommandRunsInPreviewMode
//    8 WorkflowRunsItsStepsInOrder
//    9 DefinitionAwareSchemasAreListed
//   10 NestedParamsAndInputsAreValidated
//   11 InvalidWorkflowRunsInPreviewMode
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;

constexpr char kSecret[] = "OUTSIDE-SECRET-7f3a9c";
constexpr char kEnvSecret[] = "ROOT-ENV-SECRET-41d2e8";
constexpr char kStateSecret[] = "STATE-SECRET-c0ffee";

class ToolRuntimePolicyTest : public ToolFixture {
 protected:
  void SetUp() override {
    ToolFixture::SetUp();
    // A world-readable secret next to the root: if any layer let a tool
    // reach it, the tool could read it.
    secret_ = WriteOutsideFile("secret.txt", absl::StrCat(kSecret, "\n"));
  }

  // No response of this test may ever contain the outside secret.
  void ExpectNoSecret(const ToolResponse& r) {
    EXPECT_EQ(r.run.out.find(kSecret), std::string::npos) << r.Describe();
    EXPECT_EQ(r.run.err.find(kSecret), std::string::npos) << r.Describe();
  }

  // The outside directory holds exactly the secret, unchanged.
  void ExpectOutsideUntouched() {
    EXPECT_EQ(ReadFileOrEmpty(secret_), absl::StrCat(kSecret, "\n"));
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(outside_)) {
      (void)e;
      ++entries;
    }
    EXPECT_EQ(entries, 1) << "something was created in " << outside_;
  }

  std::string secret_;
};

// §10.2 case 12.
TEST_F(ToolRuntimePolicyTest, AllowToolsLimitsInventoryAndExecution) {
  const std::string p =
      StartProject({{"allow_tools", json::array({"asset.list"})},
                    {"network_egress_policy", "allow"}});
  EXPECT_EQ(ToolNames(p), std::vector<std::string>({"asset.list"}));
  EXPECT_TRUE(ExpectOk(Tool(p, "asset.list", {{"type", "skill"}})));
  EXPECT_TRUE(ExpectError(
      Tool(p, "asset.search", {{"type", "skill"}, {"query", "alpha"}}),
      "denied"));
  EXPECT_TRUE(ExpectError(Tool(p, "exec", ExecArgs({"/bin/true"})), "denied"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "policy.denied"), 2) << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 1) << diag;

  // deny_tools wins over the default "everything allowed" (on the same root
  // once the first project has stopped: roots may not overlap).
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  const std::string q =
      StartProject({{"deny_tools", json::array({"exec", "fs.write"})}},
                   {"--project-id", "q"});
  const std::vector<std::string> names = ToolNames(q);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "fs.write"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "fs.read"), 1);
  EXPECT_TRUE(ExpectError(Tool(q, "exec", ExecArgs({"/bin/true"})), "denied"));
  EXPECT_TRUE(ExpectError(
      Tool(q, "fs.write", {{"path", "x.txt"}, {"content", "x"}}), "denied"));
  EXPECT_FALSE(PathExists(root_ + "/x.txt"));
}

// §10.2 case 13.
TEST_F(ToolRuntimePolicyTest, SymlinkedDirectoryEscapeIsOutsideRoot) {
  PlantSymlink(outside_, "escape");
  const std::string p = StartProject();
  const ToolResponse r = Tool(p, "fs.read", {{"path", "escape/secret.txt"}});
  ASSERT_TRUE(ExpectError(r, "outside_root"));
  EXPECT_EQ(r.detail()["resolved_path"], secret_) << r.Describe();
  ExpectNoSecret(r);
  EXPECT_EQ(Count(p, "security.sandbox_violation"), 1);
}

// §10.2 case 14.
TEST_F(ToolRuntimePolicyTest, ConcurrencyLimitIsPositiveAndBlocksTheNextCall) {
  const RunResult zero = StartProjectRaw({{"tool_max_concurrency", 0}});
  EXPECT_TRUE(zero.exited && zero.exit_code != 0) << zero.Describe();
  EXPECT_NE(zero.err.find("expected_positive_integer"), std::string::npos)
      << zero.Describe();

  const std::string p = StartProject({{"tool_max_concurrency", 1}});
  // A lone async call is accepted: its own bookkeeping does not count.
  const ToolResponse lone =
      Tool(p, "exec", ExecArgs({"/bin/true"}), {"--async"});
  ASSERT_EQ(lone.status(), "accepted") << lone.Describe();
  EXPECT_TRUE(WaitFor([&] { return Count(p, "tool.completed") == 1; }, 10));

  // A synchronous call holds the slot while it runs.
  RunResult first;
  std::thread runner([&] {
    first = RunJcs(
        {"tool", "run", p, "exec", "--args", ExecArgs({"sleep", "1"}).dump(),
         "--json", "--socket", daemon_.socket_path()},
        TimeoutAfter(30));
  });
  EXPECT_TRUE(WaitFor(
      [&] { return Diagnostics(p)["tools"]["running_calls"].size() == 1; },
      10));
  const ToolResponse second = Tool(p, "fs.list", json::object());
  EXPECT_TRUE(ExpectError(second, "max_concurrency_reached"));
  runner.join();
  EXPECT_TRUE(first.exited && first.exit_code == 0) << first.Describe();
  EXPECT_EQ(json::parse(first.out, nullptr, false).value("status", ""), "ok")
      << first.Describe();
  EXPECT_TRUE(ExpectOk(Tool(p, "fs.list", json::object())));
}

// ---- attacks through the arguments ----

TEST_F(ToolRuntimePolicyTest, FsToolsRejectTraversalAndAbsolutePaths) {
  const std::string p = StartProject();
  const std::vector<std::string> paths = {
      "../outside/secret.txt",
      "./../outside/secret.txt",
      "sub/../../outside/secret.txt",
      "..",
      "../..",
      secret_,
      root_ + "/../outside/secret.txt",
      "/etc/passwd",
      "/",
      " ../outside/secret.txt",  // leading blank
  };
  int calls = 0;
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    for (const char* tool : {"fs.read", "fs.list"}) {
      SCOPED_TRACE(tool);
      const ToolResponse r = Tool(p, tool, {{"path", path}});
      EXPECT_TRUE(ExpectError(r, "outside_root"));
      ExpectNoSecret(r);
      ++calls;
    }
    const ToolResponse w =
        Tool(p, "fs.write", {{"path", path}, {"content", "pwned"}});
    EXPECT_TRUE(ExpectError(w, "outside_root"));
    ++calls;
  }
  ExpectOutsideUntouched();
  EXPECT_FALSE(PathExists(dir_.Sub("secret.txt")));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), calls) << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 0) << diag;
}

TEST_F(ToolRuntimePolicyTest, PlantedSymlinksDoNotLeadOutside) {
  MakeRootDir("sub");
  WriteRootFile("sub/inside.txt", "inside\n");
  PlantSymlink(outside_, "escape");          // absolute, to a dir
  PlantSymlink("../outside", "rel_escape");  // relative, to a dir
  PlantSymlink(secret_, "secret_link");      // to a file
  PlantSymlink("chain2", "chain1");          // a chain
  PlantSymlink(outside_, "chain2");
  PlantSymlink("/etc", "etc");               // host config
  PlantSymlink("/etc/shadow", "shadow");     // root-only file
  PlantSymlink("/proc/1/root", "hostroot");  // magic link
  PlantSymlink("sub", "inner");              // stays inside
  const std::string p = StartProject();

  for (const std::string& path : std::vector<std::string>{
           "escape/secret.txt", "rel_escape/secret.txt", "secret_link",
           "chain1/secret.txt", "etc/passwd", "shadow", "hostroot/etc/passwd",
           "sub/../escape/secret.txt", "inner/../escape/secret.txt"}) {
    SCOPED_TRACE(path);
    const ToolResponse r = Tool(p, "fs.read", {{"path", path}});
    EXPECT_TRUE(ExpectError(r, "outside_root"));
    ExpectNoSecret(r);
    EXPECT_EQ(r.run.out.find("root:"), std::string::npos) << r.Describe();
  }
  for (const std::string& path :
       std::vector<std::string>{"escape", "rel_escape", "etc", "hostroot"}) {
    SCOPED_TRACE(path);
    const ToolResponse r = Tool(p, "fs.list", {{"path", path}});
    EXPECT_TRUE(ExpectError(r, "outside_root"));
    EXPECT_EQ(r.run.out.find("secret.txt"), std::string::npos) << r.Describe();
  }
  // Writing through a directory link, onto a file link, through a chain.
  for (const std::string& path : std::vector<std::string>{
           "escape/new.txt", "secret_link", "chain1/new.txt", "rel_escape/x"}) {
    SCOPED_TRACE(path);
    EXPECT_TRUE(
        ExpectError(Tool(p, "fs.write", {{"path", path}, {"content", "pwned"}}),
                    "outside_root"));
  }
  ExpectOutsideUntouched();
  // A link that stays inside the root works (the checks discriminate).
  const ToolResponse inner = Tool(p, "fs.read", {{"path", "inner/inside.txt"}});
  ASSERT_TRUE(ExpectOk(inner));
  EXPECT_EQ(inner.result()["content"], "inside\n");
  // The planted links are still links (nothing was replaced).
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/secret_link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(ToolRuntimePolicyTest, SymlinksToSensitiveFilesAreDenied) {
  WriteRootFile(".env", absl::StrCat("TOKEN=", kEnvSecret, "\n"));
  MakeRootDir("cfg");
  PlantSymlink(".env", "envlink");
  PlantSymlink("../.env", "cfg/settings");
  PlantSymlink(root_ + "/.env", "abs_envlink");
  const std::string p = StartProject();
  for (const std::string& path : std::vector<std::string>{
           ".env", "envlink", "cfg/settings", "abs_envlink", "./cfg/../.env"}) {
    SCOPED_TRACE(path);
    const ToolResponse r = Tool(p, "fs.read", {{"path", path}});
    EXPECT_TRUE(ExpectError(r, "sensitive_path_denied"));
    EXPECT_EQ(r.run.out.find(kEnvSecret), std::string::npos) << r.Describe();
  }
  // Overwriting it through a link is refused too.
  EXPECT_TRUE(ExpectError(
      Tool(p, "fs.write", {{"path", "envlink"}, {"content", "TOKEN=evil"}}),
      "sensitive_path_denied"));
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/.env"),
            absl::StrCat("TOKEN=", kEnvSecret, "\n"));
  // The jail masks it: reading through the links from exec fails too.
  const ToolResponse cat = Tool(
      p, "exec",
      ExecArgs({"sh", "-c", "cat envlink; cat cfg/settings; cat abs_envlink"}));
  ASSERT_TRUE(ExpectOk(cat));
  EXPECT_NE(cat.result()["exit_code"], 0) << cat.Describe();
  EXPECT_EQ(cat.run.out.find(kEnvSecret), std::string::npos) << cat.Describe();
  EXPECT_EQ(Count(p, "security.sensitive_path_denied"), 6);
}

TEST_F(ToolRuntimePolicyTest, ExecCwdCannotLeaveTheRoot) {
  MakeRootDir("sub");
  PlantSymlink(outside_, "escape");
  PlantSymlink("sub", "sub_link");
  const std::string p = StartProject();
  for (const std::string& cwd : std::vector<std::string>{
           "../", "..", "/tmp", outside_, "escape", "sub/../..", "/"}) {
    SCOPED_TRACE(cwd);
    json args = ExecArgs({"cat", "secret.txt"});
    args["cwd"] = cwd;
    const ToolResponse r = Tool(p, "exec", args);
    EXPECT_TRUE(ExpectError(r, "outside_root"));
    ExpectNoSecret(r);
  }
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "tool.started"), 0) << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 7) << diag;
  // Inside the root it works, at the root's own path.
  json sub = ExecArgs({"pwd"});
  sub["cwd"] = "sub";
  const ToolResponse r = Tool(p, "exec", sub);
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["stdout"], root_ + "/sub\n") << r.Describe();
  json linked = ExecArgs({"pwd"});
  linked["cwd"] = "sub_link";
  const ToolResponse l = Tool(p, "exec", linked);
  ASSERT_TRUE(ExpectOk(l));
  EXPECT_EQ(l.result()["exit_code"], 0) << l.Describe();
}

// ---- attacks through the code the tool runs ----

TEST_F(ToolRuntimePolicyTest, ExecCannotReadHostSecrets) {
  PlantSymlink(outside_, "escape");
  const std::string p = StartProject();
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{
           {"cat", "../outside/secret.txt"},
           {"cat", secret_},
           {"cat", "escape/secret.txt"},
           {"sh", "-c", "cd .. && cat outside/secret.txt"},
           {"sh", "-c", "cat /proc/1/root" + secret_},
           {"sh", "-c", "grep -rs " + std::string(kSecret, 14) + " /tmp"},
           {"cat", "/etc/shadow"}}) {
    SCOPED_TRACE(argv.back());
    const ToolResponse r = Tool(p, "exec", ExecArgs(argv));
    ASSERT_TRUE(ExpectOk(r));
    EXPECT_NE(r.result()["exit_code"], 0) << r.Describe();
    ExpectNoSecret(r);
  }
  // /etc/shadow: not a byte of it.
  const ToolResponse shadow = Tool(p, "exec", ExecArgs({"cat", "/etc/shadow"}));
  ASSERT_TRUE(ExpectOk(shadow));
  EXPECT_EQ(shadow.result()["stdout"], "") << shadow.Describe();
  const std::string host_shadow = ReadFileOrEmpty("/etc/shadow");
  const std::string first_line = host_shadow.substr(0, host_shadow.find('\n'));
  if (!first_line.empty()) {
    EXPECT_EQ(shadow.run.out.find(first_line), std::string::npos);
  }
  // A hard link planted in the root (host root made it) does not help: the
  // program and the file tools run as the project user.
  const std::string hard = root_ + "/shadow_copy";
  if (link("/etc/shadow", hard.c_str()) == 0) {
    const ToolResponse cat = Tool(p, "exec", ExecArgs({"cat", "shadow_copy"}));
    ASSERT_TRUE(ExpectOk(cat));
    EXPECT_NE(cat.result()["exit_code"], 0) << cat.Describe();
    EXPECT_EQ(cat.result()["stdout"], "") << cat.Describe();
    const ToolResponse read = Tool(p, "fs.read", {{"path", "shadow_copy"}});
    ASSERT_TRUE(ExpectError(read, "tool_failed"));
    EXPECT_EQ(read.detail()["reason"], "permission_denied") << read.Describe();
    unlink(hard.c_str());
  }
  ExpectOutsideUntouched();
}

TEST_F(ToolRuntimePolicyTest, ExecCannotReadMaskedSensitiveFiles) {
  WriteRootFile(".env", absl::StrCat("A=", kEnvSecret, "\n"));
  WriteRootFile(".env.production", absl::StrCat("B=", kEnvSecret, "\n"));
  MakeRootDir("deploy");
  WriteRootFile("deploy/id_rsa", absl::StrCat(kEnvSecret, "\n"));
  WriteRootFile("deploy/server.key", absl::StrCat(kEnvSecret, "\n"));
  MakeRootDir("certs.pem");  // a sensitive directory: masked whole
  WriteRootFile("certs.pem/inner.txt", absl::StrCat(kEnvSecret, "\n"));
  WriteRootFile("plain.txt", "plain\n");
  const std::string p = StartProject();
  for (const std::string& file :
       std::vector<std::string>{".env", ".env.production", "deploy/id_rsa",
                                "deploy/server.key", "certs.pem/inner.txt"}) {
    SCOPED_TRACE(file);
    const ToolResponse r = Tool(p, "exec", ExecArgs({"cat", file}));
    ASSERT_TRUE(ExpectOk(r));
    EXPECT_NE(r.result()["exit_code"], 0) << r.Describe();
    EXPECT_EQ(r.run.out.find(kEnvSecret), std::string::npos) << r.Describe();
  }
  // A search over the whole tree finds nothing, but does find plain files.
  const ToolResponse grep =
      Tool(p, "exec",
           ExecArgs({"sh", "-c",
                     absl::StrCat("grep -rs ", std::string(kEnvSecret, 15),
                                  " . ; grep -rl plain .")}));
  ASSERT_TRUE(ExpectOk(grep));
  EXPECT_EQ(grep.run.out.find(kEnvSecret), std::string::npos)
      << grep.Describe();
  EXPECT_NE(grep.result()["stdout"].get<std::string>().find("plain.txt"),
            std::string::npos)
      << grep.Describe();
  // Nor can the program replace a masked file.
  const ToolResponse write =
      Tool(p, "exec", ExecArgs({"sh", "-c", "echo A=evil > .env"}));
  ASSERT_TRUE(ExpectOk(write));
  EXPECT_NE(write.result()["exit_code"], 0) << write.Describe();
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/.env"),
            absl::StrCat("A=", kEnvSecret, "\n"));
}

TEST_F(ToolRuntimePolicyTest, ExecCannotWriteTheDataDir) {
  const std::string p = StartProject();
  const std::string alpha = ReadFileOrEmpty(root_ + "/.jido/skills/alpha.md");
  ASSERT_FALSE(alpha.empty());
  for (const std::string& script : std::vector<std::string>{
           "echo x > .jido/pwn", "echo x >> .jido/skills/alpha.md",
           "mkdir .jido/newdir", "rm .jido/skills/beta.md",
           "mv .jido/skills/gamma.md .jido/skills/moved.md",
           "touch .jido/skills/new.md", "chmod 777 .jido"}) {
    SCOPED_TRACE(script);
    const ToolResponse r = Tool(p, "exec", ExecArgs({"sh", "-c", script}));
    ASSERT_TRUE(ExpectOk(r));
    EXPECT_NE(r.result()["exit_code"], 0) << r.Describe();
  }
  EXPECT_FALSE(PathExists(root_ + "/.jido/pwn"));
  EXPECT_FALSE(PathExists(root_ + "/.jido/newdir"));
  EXPECT_FALSE(PathExists(root_ + "/.jido/skills/new.md"));
  EXPECT_TRUE(PathExists(root_ + "/.jido/skills/beta.md"));
  EXPECT_TRUE(PathExists(root_ + "/.jido/skills/gamma.md"));
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/.jido/skills/alpha.md"), alpha);
  // The rest of the root is writable (the check discriminates), as the
  // project user.
  const ToolResponse w =
      Tool(p, "exec", ExecArgs({"sh", "-c", "echo ok > written.txt"}));
  ASSERT_TRUE(ExpectOk(w));
  EXPECT_EQ(w.result()["exit_code"], 0) << w.Describe();
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/written.txt"), "ok\n");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/written.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kProjectUid);
}

TEST_F(ToolRuntimePolicyTest, ExecCannotListOrReadTheStateDir) {
  const std::string p = StartProject();
  // The project layout has a state/ directory; put something in it.
  MakeRootDir(".jido/state");
  WriteRootFile(".jido/state/journal", absl::StrCat(kStateSecret, "\n"));
  const ToolResponse ls =
      Tool(p, "exec", ExecArgs({"ls", "-a", ".jido/state"}));
  ASSERT_TRUE(ExpectOk(ls));
  EXPECT_NE(ls.result()["exit_code"], 0) << ls.Describe();
  EXPECT_EQ(ls.result()["stdout"].get<std::string>().find("journal"),
            std::string::npos)
      << ls.Describe();
  const ToolResponse cat =
      Tool(p, "exec", ExecArgs({"cat", ".jido/state/journal"}));
  ASSERT_TRUE(ExpectOk(cat));
  EXPECT_NE(cat.result()["exit_code"], 0) << cat.Describe();
  EXPECT_EQ(cat.run.out.find(kStateSecret), std::string::npos)
      << cat.Describe();
  const ToolResponse find =
      Tool(p, "exec", ExecArgs({"sh", "-c", "find . -name journal; ls .jido"}));
  ASSERT_TRUE(ExpectOk(find));
  EXPECT_EQ(find.result()["stdout"].get<std::string>().find("journal"),
            std::string::npos)
      << find.Describe();
  // The other data dir entries stay visible (read-only).
  EXPECT_NE(find.result()["stdout"].get<std::string>().find("skills"),
            std::string::npos)
      << find.Describe();
}

// The in-process file tools apply the jail\'s data-dir rules: <data_dir>
// is read-only for tools and <data_dir>/state private.
TEST_F(ToolRuntimePolicyTest, FsToolsHonourTheDataDirRulesOfTheJail) {
  const std::string p = StartProject();
  MakeRootDir(".jido/state");
  WriteRootFile(".jido/state/journal", absl::StrCat(kStateSecret, "\n"));
  const ToolResponse list = Tool(p, "fs.list", {{"path", ".jido/state"}});
  EXPECT_NE(list.status(), "ok") << list.Describe();
  const ToolResponse read =
      Tool(p, "fs.read", {{"path", ".jido/state/journal"}});
  EXPECT_NE(read.status(), "ok") << read.Describe();
  EXPECT_EQ(read.run.out.find(kStateSecret), std::string::npos);
  const ToolResponse write =
      Tool(p, "fs.write",
           {{"path", ".jido/skills/evil.md"}, {"content", "# Evil\n"}});
  EXPECT_NE(write.status(), "ok") << write.Describe();
  EXPECT_FALSE(PathExists(root_ + "/.jido/skills/evil.md"));
}

// The OS-level twin of the network policy (issue 5): exec.network runs with
// the egress proxy as its only way out. A destination the argument scan
// cannot see (the URL is assembled by the program) is still refused, by the
// proxy, and reported as security.network_denied with the call's ids, host,
// port and reason.
TEST_F(ToolRuntimePolicyTest, EgressProxyRefusesWhatTheArgumentScanMissed) {
  const std::string p = StartProject(
      {{"network_egress_policy", "allow"},
       {"network_allowlist", nlohmann::json::array({"example.com"})}});
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> events =
      tools::ControlClient::Connect(daemon_.socket_path());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_TRUE((*events)->Subscribe(p).ok());
  // No "scheme://" in the arguments: the scan finds nothing to check.
  const std::string program =
      "import urllib.request as u, sys\n"
      "target = 'ht' + 'tp' + chr(58) + '//evil.test/x'\n"
      "try:\n"
      "    u.urlopen(target, timeout=10)\n"
      "except Exception as e:\n"
      "    print(type(e).__name__, getattr(e, 'code', ''))\n";
  const ToolResponse r =
      Tool(p, "exec.network",
           {{"argv", nlohmann::json::array({"python3", "-c", program})}},
           {"--correlation-id", "corr-egress-test", "--conversation", "c-1"});
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["stdout"], "HTTPError 403\n") << r.Describe();
  EXPECT_EQ(r.result()["egress"]["denied"], 1) << r.Describe();
  EXPECT_EQ(r.result()["egress"]["allowed"], 0) << r.Describe();
  EXPECT_EQ(Count(p, "security.network_denied"), 1);
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    absl::StatusOr<proto::Event> event = (*events)->NextEvent(absl::Seconds(5));
    ASSERT_TRUE(event.ok()) << event.status();
    if (event->name() != "security.network_denied") continue;
    seen = true;
    const nlohmann::json payload = nlohmann::json::parse(event->payload_json());
    EXPECT_EQ(payload["project_id"], p);
    EXPECT_EQ(payload["conversation_id"], "c-1");
    EXPECT_EQ(payload["correlation_id"], "corr-egress-test");
    EXPECT_EQ(payload["tool"], "exec.network");
    EXPECT_EQ(payload["host"], "evil.test");
    EXPECT_EQ(payload["port"], 80);
    EXPECT_EQ(payload["reason"], "network_endpoint_denied");
    EXPECT_EQ(payload["detail"], "host_not_allowlisted");
    EXPECT_EQ(payload["source"], "egress_proxy");
  }
  EXPECT_TRUE(seen);
  // Plain exec has no network at all, not even the proxy.
  const ToolResponse plain = Tool(
      p, "exec",
      {{"argv", nlohmann::json::array(
                    {"sh", "-c",
                     "echo \"[$HTTP_PROXY]\"; grep -vc Iface /proc/net/route; "
                     "true"})}});
  ASSERT_TRUE(ExpectOk(plain));
  EXPECT_EQ(plain.result()["stdout"], "[]\n0\n") << plain.Describe();
}

// Cancelling a call kills its whole process tree (setsid escapees
// included), emits tool.cancelled and tool.child_processes_terminated, and
// its late result never arrives. Cancelling a conversation does the same for
// each of its calls.
TEST_F(ToolRuntimePolicyTest, CancelKillsTheCallsProcessTreeAndDropsItsResult) {
  const std::string p = StartProject();
  const std::string marker = UniqueSleepMarker();
  const std::string tree = "sleep " + marker + " & setsid sleep " + marker +
                           " & sleep " + marker + "; echo late";
  const ToolResponse call =
      Tool(p, "exec", ExecArgs({"sh", "-c", tree}), {"--async"});
  ASSERT_EQ(call.status(), "accepted") << call.Describe();
  const std::string call_id = call.doc["call_id"];
  ASSERT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 3; }, 10))
      << CountProcessesWithArg(marker);
  RunResult cancel =
      Cli({"tool", "cancel", p, call_id, "--correlation-id", "corr-cancel-1"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  EXPECT_EQ(cancel.out,
            "cancelled 1 call " + call_id + " in project " + p + "\n");
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 0; }, 5))
      << CountProcessesWithArg(marker) << " processes survived the cancel";
  // Cancelling it again: it is gone.
  cancel = Cli({"tool", "cancel", p, call_id});
  EXPECT_EQ(cancel.exit_code, 1) << cancel.Describe();
  EXPECT_NE(cancel.err.find("call_not_found"), std::string::npos);

  // A conversation's calls.
  const std::string marker2 = UniqueSleepMarker();
  for (int i = 0; i < 2; ++i) {
    const ToolResponse r = Tool(p, "exec", ExecArgs({"sleep", marker2}),
                                {"--async", "--conversation", "conv-9"});
    ASSERT_EQ(r.status(), "accepted") << r.Describe();
  }
  ASSERT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker2) == 2; }, 10));
  cancel = Cli({"tool", "cancel", p, "--conversation", "conv-9"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  EXPECT_EQ(cancel.out,
            "cancelled 2 calls of conversation conv-9 in project " + p + "\n");
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker2) == 0; }, 5));

  // Every cancellation is recorded; a late result would have been recorded
  // before the call left running_calls.
  nlohmann::json diag;
  EXPECT_TRUE(WaitFor(
      [&] {
        diag = Diagnostics(p);
        return Count(diag, "tool.cancelled") == 3 &&
               Count(diag, "tool.child_processes_terminated") == 3 &&
               diag["tools"]["running_calls"] == nlohmann::json::array();
      },
      10))
      << diag;
  EXPECT_EQ(Count(diag, "tool.cancelled"), 3) << diag;
  EXPECT_EQ(Count(diag, "tool.child_processes_terminated"), 3) << diag;
  EXPECT_EQ(Count(diag, "tool.completed"), 0) << diag;
  EXPECT_EQ(Count(diag, "tool.failed"), 0) << diag;
  EXPECT_EQ(diag["tools"]["running_calls"], nlohmann::json::array()) << diag;
  for (const nlohmann::json& e : diag["telemetry"]["recent_events"]) {
    if (e["event"] == "tool.cancelled" && e["conversation_id"] == "conv-9") {
      EXPECT_EQ(e["reason"], "conversation_cancelled") << e;
    } else if (e["event"] == "tool.cancelled") {
      EXPECT_EQ(e["reason"], "cancelled") << e;
      EXPECT_EQ(e["correlation_id"], call.doc["correlation_id"]) << e;
    }
  }
}

// Seccomp denials inside the jail become security.sandbox_violation events
// naming the syscall; the program keeps running and sees EPERM.
TEST_F(ToolRuntimePolicyTest, SeccompDenialsAreReportedAsSandboxViolations) {
  const std::string p = StartProject();
  const ToolResponse r = Tool(
      p, "exec",
      ExecArgs({"python3", "-c",
                "import ctypes, os\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "rc = libc.syscall(101, 16, 1, 0, 0)\n"  // ptrace(ATTACH, 1)
                "print(rc, os.strerror(ctypes.get_errno()))\n"}));
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["stdout"], "-1 Operation not permitted\n")
      << r.Describe();
  EXPECT_EQ(r.result()["status"], "violation") << r.Describe();
  ASSERT_EQ(r.result()["violations"].size(), 1u) << r.Describe();
  EXPECT_EQ(r.result()["violations"][0]["syscall"], "ptrace");
  const nlohmann::json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 1) << diag;
  bool found = false;
  for (const nlohmann::json& e : diag["telemetry"]["recent_events"]) {
    if (e["event"] == "security.sandbox_violation") {
      found = true;
      EXPECT_EQ(e["reason"], "seccomp_denied") << e;
      EXPECT_EQ(e["tool"], "exec") << e;
    }
  }
  EXPECT_TRUE(found) << diag;
}

// Writing files into the root does not change the shape of the jail: the
// warm jails built before stay valid and are used (they were thrown away on
// every fs.write when the root's ctime was part of their identity).
TEST_F(ToolRuntimePolicyTest, WarmJailsSurviveWritesIntoTheRoot) {
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"true"}))));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "the pool is empty";
    ASSERT_TRUE(ExpectOk(Tool(
        p, "fs.write",
        {{"path", absl::StrCat("notes", i, ".txt")}, {"content", "hello"}})));
    const ToolResponse next =
        Tool(p, "exec", ExecArgs({"cat", absl::StrCat("notes", i, ".txt")}));
    ASSERT_TRUE(ExpectOk(next));
    EXPECT_EQ(next.result()["stdout"], "hello") << next.Describe();
    EXPECT_TRUE(next.doc["timing_us"].value("warm_jail", false))
        << "the write threw the warm jails away: " << next.Describe();
  }
}

// A project's first call, and the first after the tree changed shape, wait
// for a jail the zygote builds rather than start cold: a cold start clones
// the daemon itself on its event loop (its page tables copied, its pages
// left copy-on-write), which cost the loop rounds of 4-9 ms of CPU (40 ms
// under ASan) and held up every other client's requests.
TEST_F(ToolRuntimePolicyTest, FirstCallsRunInJailsTheZygoteBuilt) {
  const std::string p = StartProject();
  const ToolResponse first = Tool(p, "exec", ExecArgs({"true"}));
  ASSERT_TRUE(ExpectOk(first));
  EXPECT_TRUE(first.doc["timing_us"].value("warm_jail", false))
      << "the first call started cold: " << first.Describe();
  ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "the pool is empty";
  // A sensitive file changes the masks, so the pool's jails are discarded.
  WriteRootFile("new.pem", "NEW-PRIVATE-KEY\n");
  const ToolResponse after = Tool(p, "exec", ExecArgs({"cat", "new.pem"}));
  ASSERT_TRUE(ExpectOk(after));
  EXPECT_NE(after.result()["exit_code"], 0) << after.Describe();
  EXPECT_EQ(after.run.out.find("NEW-PRIVATE-KEY"), std::string::npos)
      << after.Describe();
  EXPECT_TRUE(after.doc["timing_us"].value("warm_jail", false))
      << "the call after the tree changed started cold: " << after.Describe();
}

// Warm jails (built ahead, one call each): nothing of one call reaches the
// next (/tmp, /dev/shm, processes), and a jail built before a sensitive file
// appeared is never used for a call that must mask it.
TEST_F(ToolRuntimePolicyTest, WarmJailsAreFreshForEveryCallAndFollowTheTree) {
  const std::string p = StartProject();
  const std::string marker = UniqueSleepMarker();
  ToolResponse first =
      Tool(p, "exec",
           ExecArgs({"sh", "-c",
                     "echo secret > /tmp/left; echo secret > /dev/shm/left; "
                     "(setsid sleep " +
                         marker + " &) ; echo ok"}));
  ASSERT_TRUE(ExpectOk(first));
  // The next calls run in warm jails.
  bool saw_warm = false;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "the pool is empty";
    const ToolResponse next =
        Tool(p, "exec",
             ExecArgs({"sh", "-c",
                       "ls /tmp /dev/shm; cat /tmp/left /dev/shm/left 2>&1; "
                       "ps -e -o args | grep -c '^sleep' ; true"}));
    ASSERT_TRUE(ExpectOk(next));
    saw_warm = saw_warm || next.doc["timing_us"].value("warm_jail", false);
    EXPECT_EQ(next.result()["stdout"].get<std::string>().find("secret"),
              std::string::npos)
        << next.Describe();
    EXPECT_NE(next.result()["stdout"].get<std::string>().find("\n0\n"),
              std::string::npos)
        << "a process of an earlier call is visible: " << next.Describe();
  }
  EXPECT_TRUE(saw_warm) << "no call ran in a warm jail";
  EXPECT_EQ(CountProcessesWithArg(marker), 0);

  // A sensitive file appears after the pool was built: the call still
  // cannot read it.
  ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "the pool is empty";
  WriteRootFile("late.pem", "LATE-PRIVATE-KEY\n");
  const ToolResponse after = Tool(p, "exec", ExecArgs({"cat", "late.pem"}));
  ASSERT_TRUE(ExpectOk(after));
  EXPECT_NE(after.result()["exit_code"], 0) << after.Describe();
  EXPECT_EQ(after.run.out.find("LATE-PRIVATE-KEY"), std::string::npos)
      << after.Describe();
}

// A warm jail's mask sits on the file it was built for. An editor that
// saves by writing a new file and renaming it over the old one removes that
// mount in every namespace: such a jail must not be used.
TEST_F(ToolRuntimePolicyTest, ReplacedSensitiveFilesStayMaskedInWarmJails) {
  WriteRootFile(".env", "OLD-SECRET\n");
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"true"}))));
  // The pool is built, masking the old .env.
  ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "the pool is empty";
  WriteRootFile(".env.new", "NEW-SECRET\n");
  ASSERT_EQ(rename((root_ + "/.env.new").c_str(), (root_ + "/.env").c_str()),
            0);
  for (int i = 0; i < 2; ++i) {
    const ToolResponse r = Tool(p, "exec", ExecArgs({"cat", ".env"}));
    ASSERT_TRUE(ExpectOk(r));
    EXPECT_NE(r.result()["exit_code"], 0) << r.Describe();
    EXPECT_EQ(r.run.out.find("SECRET"), std::string::npos) << r.Describe();
    ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "the pool is empty";
  }
}

// Cancelling a synchronous call answers its caller, also when the program
// has already closed its stdout and stderr.
TEST_F(ToolRuntimePolicyTest, CancelAnswersTheWaitingCaller) {
  const std::string p = StartProject();
  const std::string marker = UniqueSleepMarker();
  ToolResponse sync_call;
  std::thread caller([&] {
    sync_call =
        Tool(p, "exec",
             ExecArgs({"sh", "-c", "exec >/dev/null 2>&1; sleep " + marker}));
  });
  ASSERT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 1; }, 10));
  const nlohmann::json running = Diagnostics(p)["tools"]["running_calls"];
  ASSERT_EQ(running.size(), 1u) << running;
  const RunResult cancel =
      Cli({"tool", "cancel", p, running[0]["call_id"].get<std::string>()});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.Describe();
  caller.join();
  EXPECT_EQ(sync_call.status(), "error") << sync_call.Describe();
  EXPECT_EQ(sync_call.reason(), "cancelled") << sync_call.Describe();
  EXPECT_EQ(CountProcessesWithArg(marker), 0);
}

// A warm jail's init holds nothing of its parent but the sync socket and
// /dev/null as stdio (the zygote's sockets and the daemon's log stay out).
TEST_F(ToolRuntimePolicyTest, WarmJailsInheritNoDescriptors) {
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"true"}))));
  // The idle warm jails of this daemon: inits (PID 1 of their own pid
  // namespace) whose program process is forked, so their descriptors are
  // final.
  const pid_t zygote = ZygoteOf(daemon_.pid());
  ASSERT_GT(zygote, 0) << "the daemon has no zygote";
  ASSERT_TRUE(WaitForIdleWarmJail(daemon_.pid())) << "no warm jail found";
  int inits = 0;
  for (pid_t init : IdleWarmJails(zygote)) {
    const std::string dir = absl::StrCat("/proc/", init);
    std::ifstream status(dir + "/status");
    std::string line, nspid_line;
    while (std::getline(status, line)) {
      if (line.rfind("NSpid:", 0) == 0) nspid_line = line;
    }
    EXPECT_TRUE(nspid_line.size() > 2 &&
                nspid_line.substr(nspid_line.size() - 2) == "\t1")
        << init << " is not the init of its jail: " << nspid_line;
    ++inits;
    std::set<std::string> fds;
    std::error_code ec;
    for (const auto& fd :
         std::filesystem::directory_iterator(dir + "/fd", ec)) {
      fds.insert(fd.path().filename());
      const std::string target = std::filesystem::read_symlink(fd.path(), ec);
      const int number = std::stoi(fd.path().filename());
      if (number <= 2) {
        EXPECT_EQ(target, "/dev/null") << init << " fd " << number;
      }
    }
    EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2", "3"})) << init;
  }
  EXPECT_GE(inits, 1) << "no warm jail found";
}

}  // namespace
}  // namespace jcs::serve_test
