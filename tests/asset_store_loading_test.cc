// Port of the original asset_store_loading acceptance suite
// (/work/shared/spec/original-behaviour.md §10.5) to jcs, through a real
// `jcs serve` and the real `jcs assets|project|diagnostics` CLI, followed by
// the layout's ownership and an attack on the loader's identity.
//
// Case map (§10.5 -> test):
//   1 BootLoadsSharedAssetsAndExposesListGetSearch
//   2 ReloadRefreshesTheSnapshotAndBumpsTheGeneration
//   3 StrictReloadWithParseErrorsKeepsTheSnapshot
// runtime_diagnostics 2: WatcherReloadsChangedAssets.
// runtime_hardening 51, 52 and 54 are in tests/runtime_hardening_test.cc.
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

class AssetStoreLoadingTest : public ToolFixture {
 protected:
  // The original's TempProject(with_seed_files: true): one asset of each
  // kind, each a "# Title" line.
  void Seed() {
    MakeRootDir(".jido/commands");
    MakeRootDir(".jido/workflows");
    MakeRootDir(".jido/skill_graph");
    WriteRootFile(".jido/skills/example_skill.md", "# Example Skill\n");
    WriteRootFile(".jido/commands/example_command.md", "# Example Command\n");
    WriteRootFile(".jido/workflows/example_workflow.md",
                  "# Example Workflow\n");
    WriteRootFile(".jido/skill_graph/index.md", "# Index\n");
  }

  // `jcs assets ARGS... --json`, parsed; a failure records the CLI result.
  json Assets(std::vector<std::string> args) {
    args.insert(args.begin(), "assets");
    args.push_back("--json");
    const RunResult r = Cli(args);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    json doc = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << r.Describe();
    return doc;
  }

  static std::vector<std::string> Names(const json& items) {
    std::vector<std::string> names;
    for (const json& item : items) names.push_back(item.value("name", ""));
    return names;
  }
};

// §10.5 case 1.
TEST_F(AssetStoreLoadingTest, BootLoadsSharedAssetsAndExposesListGetSearch) {
  Seed();
  const std::string p = StartProject();
  const json all = Assets({"list", p});
  for (const char* type : {"skill", "command", "workflow", "skill_graph"}) {
    SCOPED_TRACE(type);
    EXPECT_EQ(all[type]["generation"], 1);
    EXPECT_EQ(all[type]["version"], 1);
  }
  EXPECT_EQ(Names(all["command"]["items"]),
            std::vector<std::string>{"example_command"});
  EXPECT_EQ(Names(all["workflow"]["items"]),
            std::vector<std::string>{"example_workflow"});
  EXPECT_EQ(all["skill_graph"]["graph"]["nodes"][0]["id"], "index");
  const json got = Assets({"get", p, "skill", "example_skill"});
  EXPECT_EQ(got["asset"]["relative_path"], "example_skill.md");
  EXPECT_EQ(got["asset"]["content"], "# Example Skill\n");
  EXPECT_EQ(Names(Assets({"search", p, "skill", "example"})["items"]),
            std::vector<std::string>{"example_skill"});
  EXPECT_EQ(Assets({"search", p, "skill", "missing"})["items"], json::array());
  const json diag = Diagnostics(p);
  EXPECT_EQ(diag["assets"]["loaded"], true) << diag["assets"];
  EXPECT_EQ(diag["assets"]["generation"], 1);
  EXPECT_EQ(diag["assets"]["errors"], json::array());
  EXPECT_EQ(diag["assets"]["counts"]["skill"], 4);  // + alpha, beta, gamma
  EXPECT_EQ(Count(diag, "project.assets_loaded"), 1);
  // The human forms.
  const RunResult table = Cli({"assets", "list", p, "command"});
  EXPECT_THAT(table.out, HasSubstr(".jido/commands/example_command.md"));
  const RunResult content = Cli({"assets", "get", p, "skill", "example_skill"});
  EXPECT_EQ(content.out, "# Example Skill\n");
}

// §10.5 case 2.
TEST_F(AssetStoreLoadingTest, ReloadRefreshesTheSnapshotAndBumpsTheGeneration) {
  Seed();
  const std::string p = StartProject();
  WriteRootFile(".jido/skills/new_skill.md", "# New\n");
  const json reloaded = Assets({"reload", p});
  EXPECT_EQ(reloaded["generation"], 2);
  EXPECT_EQ(reloaded["versions"]["skill"], 2);
  EXPECT_EQ(reloaded["versions"]["command"], 1);
  EXPECT_EQ(reloaded["error_count"], 0);
  EXPECT_EQ(reloaded["trigger"], "reload_assets");
  EXPECT_EQ(Names(Assets({"list", p, "skill"})["skill"]["items"]),
            (std::vector<std::string>{"alpha", "beta", "example_skill", "gamma",
                                      "new_skill"}));
  EXPECT_EQ(Count(p, "project.assets_reloaded"), 1);
  const RunResult human = Cli({"assets", "reload", p});
  EXPECT_THAT(human.out, HasSubstr("generation 3, 5 skills"));
}

// §10.5 case 3: strict mode refuses a reload with a parse error and keeps
// the snapshot (the valid new file is not added either).
TEST_F(AssetStoreLoadingTest, StrictReloadWithParseErrorsKeepsTheSnapshot) {
  Seed();
  const std::string p = StartProject({{"strict_asset_loading", true}});
  WriteRootFile(".jido/skills/valid_new.md", "# Valid\n");
  WriteRootFile(".jido/skills/broken.md", "# Broken \xff\xfe\n");
  const RunResult r = Cli({"assets", "reload", p});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("asset_load_failed"));
  EXPECT_THAT(r.err, HasSubstr(".jido/skills/broken.md: invalid_utf8"));
  EXPECT_EQ(
      Names(Assets({"list", p, "skill"})["skill"]["items"]),
      (std::vector<std::string>{"alpha", "beta", "example_skill", "gamma"}));
  const json diag = Diagnostics(p);
  EXPECT_EQ(diag["assets"]["generation"], 1);
  EXPECT_EQ(diag["assets"]["strict"], true);
  EXPECT_EQ(diag["assets"]["last_failure"]["errors"][0]["reason"],
            "invalid_utf8");
  EXPECT_EQ(Count(diag, "project.assets_reloaded"), 0);
  EXPECT_EQ(Count(diag, "project.assets_reload_failed"), 1);
}

// The layout is created at start owned by the project's user, not root.
TEST_F(AssetStoreLoadingTest, LayoutIsCreatedOwnedByTheProjectUser) {
  const std::string p = StartProject();
  for (const char* dir :
       {"skills", "commands", "workflows", "skill_graph", "state"}) {
    struct stat st;
    ASSERT_EQ(stat(absl::StrCat(root_, "/.jido/", dir).c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_uid, kProjectUid) << dir;
    EXPECT_EQ(st.st_gid, kProjectGid) << dir;
  }
  EXPECT_EQ(Diagnostics(p)["assets"]["loaded"], true);
}

// The daemon is root, the tree is the user's: a file in it that only root
// may read must not be served to the project (the loader reads as the
// project's user).
TEST_F(AssetStoreLoadingTest, AttackRootOnlyFileInTheTreeIsNotServed) {
  constexpr char kRootSecret[] = "ROOT-ONLY-ASSET-9d1c";
  const std::string file =
      WriteRootFile(".jido/skills/private.md", kRootSecret, 0600);
  ASSERT_EQ(chown(file.c_str(), 0, 0), 0);
  const std::string p = StartProject();
  const RunResult get = Cli({"assets", "get", p, "skill", "private", "--json"});
  EXPECT_EQ(get.exit_code, 1) << get.Describe();
  EXPECT_THAT(get.err, HasSubstr("asset_not_found"));
  const RunResult search = Cli({"assets", "search", p, "skill", "ROOT-ONLY"});
  EXPECT_EQ(search.out.find(kRootSecret), std::string::npos);
  EXPECT_THAT(search.out, HasSubstr("no skill matches"));
  const json diag = Diagnostics(p);
  EXPECT_EQ(diag["assets"]["errors"][0]["path"], ".jido/skills/private.md");
  EXPECT_EQ(diag["assets"]["errors"][0]["reason"], "unreadable");
  EXPECT_EQ(diag["assets"]["errors"][0]["detail"], "eacces");
  EXPECT_EQ(diag.dump().find(kRootSecret), std::string::npos);
}

// runtime_diagnostics case 2: the watcher reloads what changed, and says so.
TEST_F(AssetStoreLoadingTest, WatcherReloadsChangedAssets) {
  Seed();
  const std::string p =
      StartProject({{"watcher", true}, {"watcher_debounce_ms", 50}});
  WriteRootFile(".jido/skills/new_skill.md", "# New\n");
  ASSERT_TRUE(WaitFor(
      [&] { return Diagnostics(p)["assets"]["counts"]["skill"] == 5; }, 10));
  ASSERT_TRUE(WaitFor(
      [&] { return Count(p, "project.watcher_reload_completed") >= 1; }, 10));
  EXPECT_GE(Count(p, "project.assets_reloaded"), 1);
  // Save-by-rename, as editors do: the new content is served.
  WriteRootFile(".jido/skills/.alpha.md.tmp", "# Alpha v2\n");
  ASSERT_EQ(rename((root_ + "/.jido/skills/.alpha.md.tmp").c_str(),
                   (root_ + "/.jido/skills/alpha.md").c_str()),
            0);
  ASSERT_TRUE(WaitFor(
      [&] {
        const RunResult r = Cli({"assets", "get", p, "skill", "alpha"});
        return r.out == "# Alpha v2\n";
      },
      10));
  // A bad file under strict mode: the reload fails, the event says why.
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  const std::string q = StartProject({{"watcher", true},
                                      {"watcher_debounce_ms", 50},
                                      {"strict_asset_loading", true}},
                                     {"--project-id", "strict"});
  WriteRootFile(".jido/skills/bad.md", "\xff");
  ASSERT_TRUE(WaitFor(
      [&] { return Count(q, "project.watcher_reload_failed") >= 1; }, 10));
  const json diag = Diagnostics(q);
  EXPECT_EQ(diag["assets"]["generation"], 1);
  bool named = false;
  for (const json& e : diag["telemetry"]["recent_errors"]) {
    if (e.dump().find("bad.md") != std::string::npos) named = true;
  }
  EXPECT_TRUE(named) << diag["telemetry"]["recent_errors"];
}

// The spec's watcher_stopped {reason: :file_system_stop}: a project whose
// asset tree disappears (here the whole .jido folder and the root with it)
// says once that it stopped watching; the daemon keeps serving the project.
TEST_F(AssetStoreLoadingTest, WatcherSaysWhenTheTreeCanNoLongerBeWatched) {
  Seed();
  const std::string p =
      StartProject({{"watcher", true}, {"watcher_debounce_ms", 30}});
  ASSERT_EQ(Count(p, "project.watcher_started"), 1);
  RemoveTree(root_);
  ASSERT_TRUE(
      WaitFor([&] { return Count(p, "project.watcher_stopped") == 1; }, 10));
  const json watcher = Diagnostics(p)["assets"]["watcher"];
  EXPECT_EQ(watcher["watching"], false) << watcher;
  EXPECT_NE(watcher.value("stopped_reason", "").find("cannot be opened"),
            std::string::npos)
      << watcher;
  // Stopping the project does not say it a second time.
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  MakeRootDir("");  // for the fixture's teardown
}

// A reload while 20 calls of a command run: every call completes with the
// definition it started with.
TEST_F(AssetStoreLoadingTest, ReloadWhileTwentyCallsRunFailsNone) {
  MakeRootDir(".jido/commands");
  WriteRootFile(".jido/commands/slow.md",
                "---\nrun: 'sleep 0.5; echo v1'\n---\n");
  const std::string p = StartProject({{"tool_max_concurrency", 32}});
  std::vector<std::string> calls;
  for (int i = 0; i < 20; ++i) {
    const ToolResponse r =
        Tool(p, "command.run.slow", json::object(), {"--async"});
    ASSERT_EQ(r.status(), "accepted") << r.Describe();
    calls.push_back(r.doc["call_id"]);
  }
  WriteRootFile(".jido/commands/slow.md", "---\nrun: 'echo v2'\n---\n");
  const RunResult reload = Cli({"assets", "reload", p});
  ASSERT_EQ(reload.exit_code, 0) << reload.Describe();
  for (const std::string& call : calls) {
    const RunResult done = Cli({"tool", "result", p, call, "--wait", "--json"});
    const json doc = json::parse(done.out, nullptr, false);
    EXPECT_EQ(doc.value("status", ""), "ok") << done.Describe();
    EXPECT_EQ(doc["result"]["execution"]["stdout"], "v1\n") << done.Describe();
  }
  const ToolResponse after = Tool(p, "command.run.slow", json::object());
  ASSERT_TRUE(ExpectOk(after));
  EXPECT_EQ(after.result()["execution"]["stdout"], "v2\n");
}

}  // namespace
}  // namespace jcs::serve_test
