#include "runtime/tools/asset_tools.h"

#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/tools/fs_tools.h"

namespace jcs::runtime {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::vector<std::string> Names(const ToolOutcome& out) {
  std::vector<std::string> names;
  for (const json& item : out.result["items"]) names.push_back(item["name"]);
  return names;
}

// A hostile tree loaded into a store (runtime/assets), served by the tools.
class AssetToolsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (getuid() == 0) setgroups(0, nullptr);
  }

  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/asset_tools_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = fs::canonical(pattern).string();
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    data_ = root_ + "/.jido";
    for (const char* d : {"skills", "commands", "workflows", "skill_graph"}) {
      fs::create_directories(data_ + "/" + d);
    }
    WriteFile(outside_ + "/outside.md", "outside secret");
    WriteFile(outside_ + "/skills/stolen.md", "stolen");
    WriteFile(data_ + "/skills/example_skill.md",
              "# Example\nUses the GREP tool");
    WriteFile(data_ + "/skills/beta.md", "beta content");
    WriteFile(data_ + "/skills/notes.txt", "not an asset");
    WriteFile(data_ + "/skills/.md", "no stem");
    WriteFile(data_ + "/skills/subdir/nested.md", "nested");
    WriteFile(data_ + "/skills/big.md", std::string((1 << 20) + 1, 'n'));
    WriteFile(data_ + "/skills/latin1.md", "caf\xe9");
    fs::create_symlink(outside_ + "/outside.md", data_ + "/skills/link.md");
    fs::create_symlink("beta.md", data_ + "/skills/inner_link.md");
    ASSERT_EQ(link((outside_ + "/outside.md").c_str(),
                   (data_ + "/skills/hard.md").c_str()),
              0);
    ASSERT_EQ(mkfifo((data_ + "/skills/fifo.md").c_str(), 0666), 0);
    WriteFile(data_ + "/commands/example_command.md",
              "---\nname: example_command\n---\nrun things");
    WriteFile(data_ + "/workflows/example_workflow.md", "## Steps");
    WriteFile(data_ + "/skill_graph/index.md", "# Graph Index\n[[a]] [[b]]");
    WriteFile(data_ + "/skill_graph/nodes/a.md", "node a");
    WriteFile(data_ + "/skill_graph/nodes/deep/b.md", "node b");
    fs::create_directory_symlink(outside_, data_ + "/skill_graph/escape");
    ctx_.data_dir = ".jido";
    Load();
  }

  void TearDown() override {
    if (!base_.empty()) fs::remove_all(base_);
  }

  // (Re)loads the store with the context's sensitive lists.
  void Load() {
    assets::LoaderConfig config;
    config.root = root_;
    config.data_dir = ctx_.data_dir;
    config.sensitive_denylist = ctx_.sensitive_denylist;
    config.sensitive_allowlist = ctx_.sensitive_allowlist;
    config.enter_identity = identity_;
    store_ = std::make_unique<assets::AssetStore>(config);
    ASSERT_TRUE(store_->Load(/*strict=*/false).ok());
    ctx_.assets = store_->Current();
  }

  ToolOutcome Run(std::string_view tool, const json& args) {
    return RunAssetTool(ctx_, tool, args);
  }

  std::string base_, root_, outside_, data_;
  AssetToolContext ctx_;
  std::unique_ptr<assets::AssetStore> store_;
  std::function<absl::StatusOr<std::shared_ptr<void>>()> identity_;
};

void ExpectFail(const ToolOutcome& out, const std::string& reason) {
  EXPECT_FALSE(out.ok) << out.result.dump();
  EXPECT_EQ(out.reason, reason) << out.detail.dump();
}

TEST_F(AssetToolsTest, ListSkillsOnlyRegularSingleLinkUtf8MdFiles) {
  ToolOutcome out = Run("asset.list", {{"type", "skill"}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  // Not: the symlinks, the hard link, the FIFO, the oversized and the
  // Latin-1 files (diagnostics' errors say why), notes.txt, ".md".
  EXPECT_EQ(Names(out),
            (std::vector<std::string>{"beta", "example_skill", "nested"}));
  EXPECT_EQ(out.result["items"][0], json({{"type", "skill"},
                                          {"name", "beta"},
                                          {"path", ".jido/skills/beta.md"},
                                          {"relative_path", "beta.md"}}));
  EXPECT_EQ(out.result["items"][2]["relative_path"], "subdir/nested.md");
  EXPECT_EQ(out.result["generation"], 1);
  EXPECT_EQ(out.result["version"], 1);
  EXPECT_EQ(Run("asset.list", {{"type", "skills"}}).result, out.result);
}

TEST_F(AssetToolsTest, ListOtherTypesAndTheSkillGraph) {
  ToolOutcome out = Run("asset.list", {{"type", "commands"}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.result["items"],
            json::array({{{"type", "command"},
                          {"name", "example_command"},
                          {"path", ".jido/commands/example_command.md"},
                          {"relative_path", "example_command.md"}}}));
  out = Run("asset.list", {{"type", "workflow"}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(Names(out), std::vector<std::string>{"example_workflow"});
  out = Run("asset.list", {{"type", "skill_graph"}});
  ASSERT_TRUE(out.ok);
  // Recursive, and the symlinked "escape" directory is not followed.
  EXPECT_EQ(Names(out), (std::vector<std::string>{"a", "b", "index"}));
  EXPECT_EQ(out.result["items"][1]["path"],
            ".jido/skill_graph/nodes/deep/b.md");
  EXPECT_EQ(out.result["graph"]["edges"],
            json::array({{{"from", "index"}, {"to", "a"}},
                         {{"from", "index"}, {"to", "b"}}}));
  EXPECT_EQ(out.result["graph"]["nodes"][2]["title"], "Graph Index");
}

TEST_F(AssetToolsTest, EmptyAndUnknownTypes) {
  ToolOutcome out = Run("asset.list", {{"type", ""}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.result, json({{"items", json::array()}}));
  out = Run("asset.search", {{"type", ""}, {"query", "x"}});
  ASSERT_TRUE(out.ok);
  EXPECT_TRUE(out.result["items"].empty());
  out = Run("asset.list", {{"type", "secrets"}});
  ExpectFail(out, "invalid_asset_type");
  EXPECT_EQ(out.detail, json({{"type", "secrets"}}));
  ExpectFail(Run("asset.get", {{"type", "Skill"}, {"key", "x"}}),
             "invalid_asset_type");
  ExpectFail(Run("asset.get", {{"type", ""}, {"key", "x"}}), "asset_not_found");
}

TEST_F(AssetToolsTest, SearchByNamePathAndContentCaseInsensitive) {
  ToolOutcome out =
      Run("asset.search", {{"type", "skill"}, {"query", " EXAMPLE "}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(Names(out), std::vector<std::string>{"example_skill"});
  out = Run("asset.search", {{"type", "skills"}, {"query", "grep"}});
  EXPECT_EQ(Names(out), std::vector<std::string>{"example_skill"});
  out = Run("asset.search", {{"type", "skills"}, {"query", "SUBDIR/"}});
  EXPECT_EQ(Names(out), std::vector<std::string>{"nested"});
  out = Run("asset.search", {{"type", "skills"}, {"query", "missing"}});
  ASSERT_TRUE(out.ok);
  EXPECT_TRUE(out.result["items"].empty());
  out = Run("asset.search", {{"type", "skill_graph"}, {"query", "NODE"}});
  EXPECT_EQ(Names(out), (std::vector<std::string>{"a", "b"}));
  out = Run("asset.search", {{"type", "skill_graph"}, {"query", "graph ind"}});
  EXPECT_EQ(Names(out), (std::vector<std::string>{"index"}));
  out = Run("asset.search", {{"type", "skill"}, {"query", ""}});
  EXPECT_EQ(Names(out).size(), 3u);
  // Nothing refused by the loader is searched.
  for (const char* q : {"nnnn", "outside", "caf"}) {
    EXPECT_TRUE(Run("asset.search", {{"type", "skill"}, {"query", q}})
                    .result["items"]
                    .empty())
        << q;
  }
  out = Run("asset.search", {{"type", "skill_graph"}, {"query", "stolen"}});
  EXPECT_TRUE(out.result["items"].empty());
}

TEST_F(AssetToolsTest, GetReturnsContentAndFrontmatter) {
  ToolOutcome out =
      Run("asset.get", {{"type", "skill"}, {"key", "example_skill"}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(out.result, json({{"asset",
                               {{"type", "skill"},
                                {"name", "example_skill"},
                                {"path", ".jido/skills/example_skill.md"},
                                {"relative_path", "example_skill.md"},
                                {"content", "# Example\nUses the GREP tool"},
                                {"frontmatter", json::object()}}}}));
  out = Run("asset.get", {{"type", "skill_graph"}, {"key", "nodes/deep/b"}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.result["asset"]["content"], "node b");
  out = Run("asset.get", {{"type", "skill_graph"}, {"key", "b"}});
  ASSERT_TRUE(out.ok);
  out = Run("asset.get", {{"type", "commands"}, {"key", "example_command"}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.result["asset"]["frontmatter"]["name"], "example_command");
}

TEST_F(AssetToolsTest, GetNotFoundCases) {
  for (const char* key :
       {"missing", "../commands/example_command", "..", ".", "subdir/nested",
        "notes", "notes.txt", "example_skill.md", "/etc/passwd", "a//b", "link",
        "inner_link", "hard", "fifo", "big", "latin1"}) {
    ToolOutcome out = Run("asset.get", {{"type", "skill"}, {"key", key}});
    ExpectFail(out, "asset_not_found");
    EXPECT_EQ(out.detail["key"], key);
    EXPECT_EQ(out.result.dump().find("outside secret"), std::string::npos);
  }
  for (const char* key : {"escape/outside", "escape/skills/stolen",
                          "nodes/../index", "nodes/", "stolen", "outside"}) {
    ExpectFail(Run("asset.get", {{"type", "skill_graph"}, {"key", key}}),
               "asset_not_found");
  }
}

TEST_F(AssetToolsTest, LoaderErrorsNameEveryRefusedFile) {
  std::vector<std::string> refused;
  for (const assets::LoadError& e : ctx_.assets->snapshot->errors) {
    refused.push_back(e.path + " " + e.reason);
  }
  EXPECT_EQ(refused, (std::vector<std::string>{
                         ".jido/skills/big.md file_too_large",
                         ".jido/skills/fifo.md not_regular_file",
                         ".jido/skills/hard.md hard_link",
                         ".jido/skills/inner_link.md not_regular_file",
                         ".jido/skills/latin1.md invalid_utf8",
                         ".jido/skills/link.md not_regular_file"}));
}

TEST_F(AssetToolsTest, SymlinkedDataDirServesNothingFromOutside) {
  fs::create_directory_symlink(outside_, root_ + "/evil");
  ctx_.data_dir = "evil";
  Load();
  ToolOutcome out = Run("asset.list", {{"type", "skill"}});
  ASSERT_TRUE(out.ok);
  EXPECT_TRUE(out.result["items"].empty());
  EXPECT_EQ(ctx_.assets->snapshot->errors[0].reason, "dir_unavailable");
  EXPECT_EQ(ctx_.assets->snapshot->errors[0].detail, "eloop");
  ExpectFail(Run("asset.get", {{"type", "skill"}, {"key", "stolen"}}),
             "asset_not_found");
}

TEST_F(AssetToolsTest, NoSnapshotIsAnError) {
  ctx_.assets = nullptr;
  ExpectFail(Run("asset.list", {{"type", "skill"}}), "assets_not_loaded");
}

TEST_F(AssetToolsTest, BadArgs) {
  struct Case {
    std::string tool;
    json args;
    std::string field, problem;
  };
  const std::vector<Case> cases = {
      {"asset.list", json::array(), "$", "expected_object"},
      {"asset.list", json::object(), "type", "missing"},
      {"asset.list", {{"type", 1}}, "type", "expected_string"},
      {"asset.list", {{"type", nullptr}}, "type", "expected_string"},
      {"asset.list", {{"type", std::string(5000, 's')}}, "type", "too_long"},
      {"asset.search", {{"type", "skill"}}, "query", "missing"},
      {"asset.search",
       {{"type", "skill"}, {"query", 2}},
       "query",
       "expected_string"},
      {"asset.get", {{"type", "skill"}}, "key", "missing"},
      {"asset.get",
       {{"type", "skill"}, {"key", false}},
       "key",
       "expected_string"},
      {"asset.get", {{"type", "skill"}, {"key", ""}}, "key", "empty"},
      {"asset.get",
       {{"type", "skill"}, {"key", std::string("a\0b", 3)}},
       "key",
       "contains_nul"},
  };
  for (const Case& c : cases) {
    ToolOutcome out = Run(c.tool, c.args);
    ExpectFail(out, "invalid_tool_args");
    EXPECT_EQ(out.detail["field"], c.field) << c.tool << c.args.dump();
    EXPECT_EQ(out.detail["problem"], c.problem) << c.tool << c.args.dump();
  }
  ToolOutcome out = Run("asset.delete", {{"type", "skill"}});
  ExpectFail(out, "unknown_tool");
  EXPECT_EQ(out.detail["tool"], "asset.delete");
  EXPECT_TRUE(IsAssetTool("asset.get"));
  EXPECT_FALSE(IsAssetTool("fs.read"));
}

// The load runs under the project's identity (ToolRuntime::LoadAssets): a
// file only root may read is refused (unreadable: eacces), never served.
TEST_F(AssetToolsTest, IdentityDeniesRootOnlyAssets) {
  if (getuid() != 0) GTEST_SKIP() << "needs root";
  for (const auto& entry : fs::recursive_directory_iterator(root_)) {
    ASSERT_EQ(lchown(entry.path().c_str(), 65534, 65534), 0);
  }
  ASSERT_EQ(lchown(root_.c_str(), 65534, 65534), 0);
  WriteFile(data_ + "/skills/private.md", "root only");
  ASSERT_EQ(chmod((data_ + "/skills/private.md").c_str(), 0600), 0);
  identity_ = [] {
    return absl::StatusOr<std::shared_ptr<void>>(
        std::make_shared<ScopedFsIdentity>(65534, 65534));
  };
  Load();
  identity_ = nullptr;
  ExpectFail(Run("asset.get", {{"type", "skill"}, {"key", "private"}}),
             "asset_not_found");
  bool reported = false;
  for (const assets::LoadError& e : ctx_.assets->snapshot->errors) {
    if (e.path == ".jido/skills/private.md") {
      reported = e.reason == "unreadable" && e.detail == "eacces";
    }
  }
  EXPECT_TRUE(reported);
  EXPECT_TRUE(Run("asset.get", {{"type", "skill"}, {"key", "beta"}}).ok);
  // The thread's identity is back to root.
  EXPECT_EQ(syscall(SYS_setfsuid, static_cast<uid_t>(-1)), 0);
  EXPECT_EQ(syscall(SYS_setfsgid, static_cast<gid_t>(-1)), 0);
  Load();
  EXPECT_TRUE(Run("asset.get", {{"type", "skill"}, {"key", "private"}}).ok);
}

// The project's sensitive-path policy holds for assets as for fs.read: a
// skill named ".env" is the file ".env.md", which `.env.*` denies, and
// "SERVER.KEY" / "id_rsa" are denied by name (case-insensitively), so none
// of them is listed, searched or returned.
class AssetToolsSensitiveTest : public AssetToolsTest {
 protected:
  void SetUp() override {
    AssetToolsTest::SetUp();
    for (const char* name : {".env", "SERVER.KEY", "id_rsa", "Id_Ed25519"}) {
      WriteFile(data_ + "/skills/" + name + ".md", kSecret);
    }
    WriteFile(data_ + "/skill_graph/secrets.key/notes.md", kSecret);
    WriteFile(data_ + "/skill_graph/nodes/.ENV.md", kSecret);
    ctx_.sensitive_denylist = {".env", ".env.*", "*.key", "id_rsa",
                               "id_ed25519"};
    Load();
  }

  void ExpectNoSecret(const ToolOutcome& out) {
    EXPECT_EQ(out.result.dump().find(kSecret), std::string::npos)
        << out.result.dump();
  }

  static constexpr char kSecret[] = "TOKEN=ASSET-SECRET-5be1";
};

TEST_F(AssetToolsSensitiveTest, ListAndSearchLeaveSensitiveAssetsOut) {
  ToolOutcome out = Run("asset.list", {{"type", "skill"}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(Names(out),
            (std::vector<std::string>{"beta", "example_skill", "nested"}));
  out = Run("asset.list", {{"type", "skill_graph"}});
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(Names(out), (std::vector<std::string>{"a", "b", "index"}));
  // Not read, so not named in the loader's errors either.
  EXPECT_EQ(ctx_.assets->snapshot->errors.size(), 6u);
  // Neither by name nor by content.
  for (const char* query : {"", "ASSET-SECRET", "env", "server", "id_"}) {
    SCOPED_TRACE(query);
    for (const char* type : {"skill", "skill_graph"}) {
      out = Run("asset.search", {{"type", type}, {"query", query}});
      ASSERT_TRUE(out.ok);
      ExpectNoSecret(out);
      for (const std::string& name : Names(out)) {
        EXPECT_TRUE(name == "beta" || name == "nested" ||
                    name == "example_skill" || name == "index" || name == "a" ||
                    name == "b")
            << name;
      }
    }
  }
}

TEST_F(AssetToolsSensitiveTest, GetRefusesSensitiveAssets) {
  for (const auto& [type, key] :
       std::vector<std::pair<std::string, std::string>>{
           {"skill", ".env"},
           {"skill", ".env.md"},
           {"skill", "SERVER.KEY"},
           {"skill", "id_rsa"},
           {"skill", "Id_Ed25519"},
           {"skill", "missing.key"},  // refused before any open
           {"skill_graph", "secrets.key/notes"},
           {"skill_graph", "nodes/.ENV"}}) {
    SCOPED_TRACE(key);
    const ToolOutcome out = Run("asset.get", {{"type", type}, {"key", key}});
    ExpectFail(out, "sensitive_path_denied");
    EXPECT_EQ(out.detail.value("key", ""), key);
    ExpectNoSecret(out);
  }
  const ToolOutcome out =
      Run("asset.get", {{"type", "skills"}, {"key", ".env"}});
  EXPECT_EQ(out.detail, json({{"type", "skill"},
                              {"key", ".env"},
                              {"path", ".jido/skills/.env.md"}}));
  // The data dir is checked as normalized: "./.jido/" is ".jido".
  ctx_.data_dir = "./.jido/";
  ExpectFail(Run("asset.get", {{"type", "skill"}, {"key", "id_rsa"}}),
             "sensitive_path_denied");
  // Public halves and plain names stay readable.
  ctx_.data_dir = ".jido";
  EXPECT_TRUE(Run("asset.get", {{"type", "skill"}, {"key", "beta"}}).ok);
}

// Both forms of an asset's path must pass: allowlisting only the name ".env"
// leaves the file ".env.md" denied by ".env.*"; a pattern covering both
// (or the file's own path) allows the asset.
TEST_F(AssetToolsSensitiveTest, AllowlistOverridesWhenItCoversTheFile) {
  ctx_.sensitive_allowlist = {".env"};
  Load();
  ExpectFail(Run("asset.get", {{"type", "skill"}, {"key", ".env"}}),
             "sensitive_path_denied");
  ctx_.sensitive_allowlist = {".JIDO/skills/.env*"};
  Load();
  ToolOutcome out = Run("asset.get", {{"type", "skill"}, {"key", ".env"}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(out.result["asset"]["content"], kSecret);
  out = Run("asset.list", {{"type", "skill"}});
  EXPECT_EQ(Names(out), (std::vector<std::string>{".env", "beta",
                                                  "example_skill", "nested"}));
  ExpectFail(Run("asset.get", {{"type", "skill"}, {"key", "SERVER.KEY"}}),
             "sensitive_path_denied");
}

}  // namespace
}  // namespace jcs::runtime
