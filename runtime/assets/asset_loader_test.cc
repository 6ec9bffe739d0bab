#include "runtime/assets/asset_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime::assets {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class AssetLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = absl::StrCat(::testing::TempDir(), "/assetsXXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    for (const char* dir : {"skills", "commands", "workflows", "skill_graph"}) {
      std::filesystem::create_directories(absl::StrCat(root_, "/.jido/", dir));
    }
    config_.root = root_;
    config_.data_dir = ".jido";
    config_.sensitive_denylist = {".env", ".env.*", "*.pem", "*.key"};
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void Write(const std::string& rel, const std::string& content) {
    const std::string path = absl::StrCat(root_, "/", rel);
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  AssetSnapshot Load() {
    absl::StatusOr<AssetSnapshot> s = LoadAssetTree(config_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : AssetSnapshot();
  }

  static std::vector<std::string> Names(const AssetSnapshot& s, AssetType t) {
    std::vector<std::string> out;
    for (const Asset& a : s.Of(t)) out.push_back(a.name);
    return out;
  }
  static std::vector<std::string> Reasons(const AssetSnapshot& s) {
    std::vector<std::string> out;
    for (const LoadError& e : s.errors) {
      out.push_back(absl::StrCat(e.path, " ", e.reason));
    }
    return out;
  }

  std::string root_;
  LoaderConfig config_;
};

TEST_F(AssetLoaderTest, LoadsEveryTypeRecursivelySortedByName) {
  Write(".jido/skills/zeta.md", "# Zeta\n");
  Write(".jido/skills/nested/deeper/alpha.md", "# Alpha\n");
  Write(".jido/skills/notes.txt", "not an asset");
  Write(".jido/commands/grep.md", "---\nname: grep\n---\nGrep {{query}}\n");
  Write(".jido/workflows/review.md", "# Review\n");
  const AssetSnapshot s = Load();
  EXPECT_TRUE(s.errors.empty()) << ::testing::PrintToString(Reasons(s));
  EXPECT_THAT(Names(s, AssetType::kSkill), ElementsAre("alpha", "zeta"));
  const Asset& alpha = s.Of(AssetType::kSkill)[0];
  EXPECT_EQ(alpha.path, ".jido/skills/nested/deeper/alpha.md");
  EXPECT_EQ(alpha.relative_path, "nested/deeper/alpha.md");
  EXPECT_EQ(alpha.body, "# Alpha\n");
  const Asset* grep = s.Find(AssetType::kCommand, "grep");
  ASSERT_NE(grep, nullptr);
  EXPECT_EQ(grep->frontmatter["name"], "grep");
  EXPECT_THAT(Names(s, AssetType::kWorkflow), ElementsAre("review"));
}

TEST_F(AssetLoaderTest, CollectsInvalidUtf8DuplicatesAndFrontmatterErrors) {
  Write(".jido/skills/bad.md", "# Bad \xff\xfe\n");
  Write(".jido/skills/a/dup.md", "first");
  Write(".jido/skills/b/dup.md", "second");
  Write(".jido/skills/name\xc3(.md", "# fine content, bad name");
  Write(".jido/commands/broken.md", "---\nparams: [unclosed\n---\nbody\n");
  const AssetSnapshot s = Load();
  EXPECT_THAT(Reasons(s),
              ElementsAre(".jido/skills/b/dup.md duplicate_name",
                          ".jido/skills/bad.md invalid_utf8",
                          ".jido/skills/name\\xC3(.md invalid_utf8",
                          ".jido/commands/broken.md invalid_frontmatter"));
  // The first file in path order wins; bad files are left out.
  EXPECT_THAT(Names(s, AssetType::kSkill), ElementsAre("dup"));
  EXPECT_EQ(s.Of(AssetType::kSkill)[0].body, "first");
  // A command whose frontmatter does not parse stays loaded (it registers
  // as invalid) with the parser's message.
  const Asset* broken = s.Find(AssetType::kCommand, "broken");
  ASSERT_NE(broken, nullptr);
  EXPECT_THAT(broken->frontmatter_error,
              HasSubstr("line 3, column 1: end of sequence"));
  EXPECT_THAT(s.errors.back().detail,
              HasSubstr("line 3, column 1: end of sequence"));
}

TEST_F(AssetLoaderTest, SkillGraphNodesTitlesAndDeduplicatedEdges) {
  Write(".jido/skill_graph/index.md",
        "intro\n# Index Page\nSee [[testing]], [[testing]] and "
        "[[build|the build]].\n");
  Write(".jido/skill_graph/topics/testing.md", "no heading, [[index]]\n");
  Write(".jido/skill_graph/other/index.md", "# Second index\n");
  const AssetSnapshot s = Load();
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].id, "index");
  EXPECT_EQ(s.nodes[0].title, "Index Page");
  EXPECT_EQ(s.nodes[1].id, "testing");
  EXPECT_EQ(s.nodes[1].title, "testing");
  std::vector<std::string> edges;
  for (const GraphEdge& e : s.edges) edges.push_back(e.from + "->" + e.to);
  EXPECT_THAT(edges,
              ElementsAre("index->build", "index->testing", "testing->index"));
  // "index.md" sorts before "other/index.md": the second is the duplicate.
  EXPECT_THAT(Reasons(s), ElementsAre(".jido/skill_graph/other/index.md "
                                      "duplicate_node"));
}

TEST_F(AssetLoaderTest, BoundsAreErrorsNotAllocations) {
  config_.limits.max_file_bytes = 100;
  config_.limits.max_files_per_type = 3;
  Write(".jido/skills/big.md", std::string(101, 'x'));
  Write(".jido/skills/fits.md", std::string(100, 'y'));
  for (int i = 0; i < 5; ++i) {
    Write(absl::StrCat(".jido/commands/c", i, ".md"), "x");
  }
  AssetSnapshot s = Load();
  EXPECT_THAT(Reasons(s), ElementsAre(".jido/skills/big.md file_too_large",
                                      ".jido/commands too_many_files"));
  EXPECT_THAT(Names(s, AssetType::kSkill), ElementsAre("fits"));
  EXPECT_THAT(Names(s, AssetType::kCommand), ElementsAre("c0", "c1", "c2"));

  config_.limits.max_total_bytes = 150;  // fits.md (100) + c0..c2 (3)
  config_.limits.max_file_bytes = 100;
  Write(".jido/workflows/w.md", std::string(60, 'w'));
  s = Load();
  EXPECT_THAT(Reasons(s),
              ::testing::Contains(".jido/workflows/w.md tree_too_large"));

  config_.limits = LoaderLimits();
  config_.limits.max_dir_entries = 4;
  s = Load();
  EXPECT_THAT(Reasons(s), ::testing::Contains(".jido/commands tree_too_large"));

  config_.limits = LoaderLimits();
  config_.limits.max_depth = 2;
  Write(".jido/workflows/a/b/c/deep.md", "deep");
  s = Load();
  EXPECT_THAT(Reasons(s),
              ::testing::Contains(".jido/workflows/a/b/c too_deep"));
  EXPECT_EQ(s.Find(AssetType::kWorkflow, "deep"), nullptr);
}

// The tree belongs to the project's user: a symlink, a FIFO or a second
// hard link named *.md must never be read, and a symlinked type directory
// must not redirect the load.
TEST_F(AssetLoaderTest, AttackSymlinksFifosAndHardLinksAreNeverRead) {
  const std::string outside = absl::StrCat(root_, "-outside");
  std::filesystem::create_directories(outside);
  std::ofstream(outside + "/secret.md") << "TOP-SECRET";
  ASSERT_EQ(symlink((outside + "/secret.md").c_str(),
                    (root_ + "/.jido/skills/link.md").c_str()),
            0);
  ASSERT_EQ(link((outside + "/secret.md").c_str(),
                 (root_ + "/.jido/skills/hard.md").c_str()),
            0);
  ASSERT_EQ(mkfifo((root_ + "/.jido/skills/fifo.md").c_str(), 0644), 0);
  std::filesystem::remove_all(root_ + "/.jido/commands");
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/.jido/commands").c_str()), 0);
  Write(".jido/skills/ok.md", "# ok");
  const AssetSnapshot s = Load();
  EXPECT_THAT(Reasons(s), ElementsAre(".jido/skills/fifo.md not_regular_file",
                                      ".jido/skills/hard.md hard_link",
                                      ".jido/skills/link.md not_regular_file",
                                      ".jido/commands dir_unavailable"));
  EXPECT_THAT(Names(s, AssetType::kSkill), ElementsAre("ok"));
  EXPECT_TRUE(s.Of(AssetType::kCommand).empty());
  std::filesystem::remove_all(outside);
}

TEST_F(AssetLoaderTest, SensitiveFilesAreNeitherReadNorNamed) {
  Write(".jido/skills/.env.md", "SECRET");
  Write(".jido/skills/server.KEY.md", "SECRET");
  Write(".jido/skills/certs.pem/readme.md", "SECRET");
  Write(".jido/skills/fine.md", "fine");
  const AssetSnapshot s = Load();
  EXPECT_TRUE(s.errors.empty());
  EXPECT_THAT(Names(s, AssetType::kSkill), ElementsAre("fine"));
}

TEST_F(AssetLoaderTest, MissingDataDirIsEmptyAndMissingRootIsAnError) {
  config_.data_dir = "./other//";
  AssetSnapshot s = Load();
  EXPECT_TRUE(s.errors.empty());
  EXPECT_TRUE(s.Of(AssetType::kSkill).empty());
  config_.root = root_ + "/nope";
  absl::StatusOr<AssetSnapshot> missing = LoadAssetTree(config_);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("asset_root_unavailable: enoent"));
}

TEST(Utf8Test, StrictValidation) {
  EXPECT_TRUE(IsValidUtf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_EQ(EscapeNonUtf8("a\xff\xc3\xa9"), "a\\xFF\xc3\xa9");
}

}  // namespace
}  // namespace jcs::runtime::assets
