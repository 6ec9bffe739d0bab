#include "runtime/assets/asset_store.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime::assets {
namespace {

using ::nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The original's seeded project (spec §10 TempProject): one asset of each
// kind, each a "# Title" line.
class AssetStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = absl::StrCat(::testing::TempDir(), "/storeXXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    Write(".jido/skills/example_skill.md", "# Example Skill\n");
    Write(".jido/commands/example_command.md", "# Example Command\n");
    Write(".jido/workflows/example_workflow.md", "# Example Workflow\n");
    Write(".jido/skill_graph/index.md", "# Index\n");
    config_.root = root_;
    config_.data_dir = ".jido";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void Write(const std::string& rel, const std::string& content) {
    const std::string path = absl::StrCat(root_, "/", rel);
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  static std::vector<std::string> Names(const AssetStore& store,
                                        AssetType type) {
    std::vector<std::string> out;
    for (const Asset& a : store.Current()->snapshot->Of(type)) {
      out.push_back(a.name);
    }
    return out;
  }

  std::string root_;
  LoaderConfig config_;
};

// asset_store_loading case 1.
TEST_F(AssetStoreTest, BootLoadsSharedAssetsAndServesListGetSearch) {
  AssetStore store(config_);
  absl::StatusOr<LoadSummary> loaded = store.Load(/*strict=*/false);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->initial);
  EXPECT_EQ(loaded->event["generation"], 1);
  EXPECT_EQ(loaded->event["error_count"], 0);
  EXPECT_EQ(loaded->event["counts"], json({{"skill", 1},
                                           {"command", 1},
                                           {"workflow", 1},
                                           {"skill_graph_nodes", 1},
                                           {"skill_graph_edges", 0}}));
  EXPECT_EQ(
      loaded->event["versions"],
      json(
          {{"skill", 1}, {"command", 1}, {"workflow", 1}, {"skill_graph", 1}}));
  const AssetSnapshot& s = *store.Current()->snapshot;
  const Asset* skill = FindAsset(s, AssetType::kSkill, "example_skill");
  ASSERT_NE(skill, nullptr);
  EXPECT_EQ(skill->relative_path, "example_skill.md");
  EXPECT_EQ(AssetDocument(*skill)["content"], "# Example Skill\n");
  EXPECT_EQ(GraphJson(s)["nodes"][0]["id"], "index");
  EXPECT_EQ(SearchAssets(s, AssetType::kSkill, "  EXAMPLE ").size(), 1u);
  EXPECT_TRUE(SearchAssets(s, AssetType::kSkill, "missing").empty());
  const json diag = store.Diagnostics();
  EXPECT_EQ(diag["loaded"], true);
  EXPECT_EQ(diag["errors"], json::array());
}

// asset_store_loading case 2.
TEST_F(AssetStoreTest, ReloadRefreshesAndBumpsOnlyChangedVersions) {
  AssetStore store(config_);
  ASSERT_TRUE(store.Load(false).ok());
  Write(".jido/skills/new_skill.md", "# New\n");
  absl::StatusOr<LoadSummary> reloaded = store.Reload(false);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_FALSE(reloaded->initial);
  EXPECT_EQ(reloaded->event["generation"], 2);
  EXPECT_EQ(
      reloaded->event["versions"],
      json(
          {{"skill", 2}, {"command", 1}, {"workflow", 1}, {"skill_graph", 1}}));
  EXPECT_THAT(Names(store, AssetType::kSkill),
              ElementsAre("example_skill", "new_skill"));
  // A link added to the graph changes its version.
  Write(".jido/skill_graph/index.md", "# Index\n[[example_skill]]\n");
  ASSERT_TRUE(store.Reload(false).ok());
  EXPECT_EQ(store.Diagnostics()["versions"]["skill_graph"], 3);
  EXPECT_EQ(store.Diagnostics()["versions"]["skill"], 2);
}

// asset_store_loading case 3 and runtime_hardening 51.
TEST_F(AssetStoreTest, StrictReloadKeepsThePreviousSnapshotLenientApplies) {
  AssetStore store(config_);
  ASSERT_TRUE(store.Load(/*strict=*/true).ok());
  Write(".jido/skills/valid_new.md", "# Valid\n");
  Write(".jido/skills/broken.md", "# Broken \xff\n");
  absl::StatusOr<LoadSummary> strict = store.Reload(/*strict=*/true);
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(strict.status().message(),
              HasSubstr("asset_load_failed: 1 error(s): "
                        ".jido/skills/broken.md: invalid_utf8"));
  EXPECT_EQ(store.Current()->generation, 1u);
  EXPECT_THAT(Names(store, AssetType::kSkill), ElementsAre("example_skill"));
  json diag = store.Diagnostics();
  EXPECT_EQ(diag["last_failure"]["error_count"], 1);
  EXPECT_EQ(diag["error_count"], 0);

  absl::StatusOr<LoadSummary> lenient = store.Reload(/*strict=*/false);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  EXPECT_EQ(lenient->error_count, 1u);
  EXPECT_THAT(Names(store, AssetType::kSkill),
              ElementsAre("example_skill", "valid_new"));
  diag = store.Diagnostics();
  EXPECT_EQ(diag["generation"], 2);
  EXPECT_EQ(diag["errors"][0]["reason"], "invalid_utf8");
  EXPECT_EQ(diag["errors"][0]["loader"], "skills");
  EXPECT_FALSE(diag.contains("last_failure"));
}

// runtime_hardening 52: a strict first load fails; nothing is published.
TEST_F(AssetStoreTest, StrictFirstLoadFailsAndLeavesTheStoreUnloaded) {
  Write(".jido/commands/bad.md", "---\nparams: [x\n---\n");
  AssetStore strict(config_);
  absl::StatusOr<LoadSummary> r = strict.Load(/*strict=*/true);
  EXPECT_THAT(r.status().message(),
              HasSubstr(".jido/commands/bad.md: invalid_frontmatter (line"));
  EXPECT_EQ(strict.Current(), nullptr);
  EXPECT_EQ(strict.Diagnostics()["loaded"], false);
  AssetStore lenient(config_);
  ASSERT_TRUE(lenient.Load(/*strict=*/false).ok());
  EXPECT_EQ(lenient.Diagnostics()["error_count"], 1);
}

TEST_F(AssetStoreTest, ReloadBeforeLoadIsLayoutNotLoaded) {
  AssetStore store(config_);
  EXPECT_EQ(store.Reload(false).status().message(), "layout_not_loaded");
}

TEST_F(AssetStoreTest, ReadersKeepTheirSnapshotAcrossAReload) {
  AssetStore store(config_);
  ASSERT_TRUE(store.Load(false).ok());
  std::shared_ptr<const PublishedAssets> held = store.Current();
  std::filesystem::remove(root_ + "/.jido/skills/example_skill.md");
  ASSERT_TRUE(store.Reload(false).ok());
  EXPECT_TRUE(store.Current()->snapshot->Of(AssetType::kSkill).empty());
  EXPECT_NE(FindAsset(*held->snapshot, AssetType::kSkill, "example_skill"),
            nullptr);
}

}  // namespace
}  // namespace jcs::runtime::assets
