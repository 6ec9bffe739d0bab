// One sensitive-path policy for every tool, through a real `jcs serve`:
// the asset tools refuse and hide what fs.read refuses, credential files are
// recognised in any letter case and wherever they sit in the tree, and the
// jail masks exactly what the tools refuse, while public keys and ordinary
// files stay readable.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;

constexpr char kSecret[] = "CREDENTIAL-SECRET-9e4b17";

class SensitivePolicyTest : public ToolFixture {
 protected:
  // No part of a response may carry the secret.
  static void ExpectNoSecret(const ToolResponse& r) {
    EXPECT_EQ(r.run.out.find(kSecret), std::string::npos) << r.Describe();
    EXPECT_EQ(r.run.err.find(kSecret), std::string::npos) << r.Describe();
  }

  static std::vector<std::string> ItemNames(const ToolResponse& r) {
    std::vector<std::string> names;
    if (!r.result().contains("items")) return names;
    for (const json& item : r.result()["items"]) {
      names.push_back(item.value("name", ""));
    }
    return names;
  }
};

// `asset.get skills .env` used to return .jido/skills/.env.md, which fs.read
// refuses; list and search gave away names and contents.
TEST_F(SensitivePolicyTest, AssetToolsApplyTheSensitivePolicy) {
  for (const char* file : {".env.md", "SERVER.KEY.md", "id_rsa.md"}) {
    WriteRootFile(absl::StrCat(".jido/skills/", file),
                  absl::StrCat("# Leak\n", kSecret, "\n"));
  }
  const std::string p = StartProject();
  // The same file through fs.read: refused, as the assets must be.
  EXPECT_TRUE(
      ExpectError(Tool(p, "fs.read", {{"path", ".jido/skills/.env.md"}}),
                  "sensitive_path_denied"));

  for (const char* key :
       {".env", ".env.md", "SERVER.KEY", "server.key", "id_rsa", "ID_RSA"}) {
    SCOPED_TRACE(key);
    const ToolResponse r =
        Tool(p, "asset.get", {{"type", "skills"}, {"key", key}});
    EXPECT_TRUE(ExpectError(r, "sensitive_path_denied"));
    EXPECT_EQ(r.detail().value("key", ""), key) << r.Describe();
    ExpectNoSecret(r);
  }
  // "SERVER.KEY.md" names the file SERVER.KEY.md.md: no such asset, and
  // nothing sensitive in its name.
  const ToolResponse md =
      Tool(p, "asset.get", {{"type", "skills"}, {"key", "SERVER.KEY.md"}});
  EXPECT_TRUE(ExpectError(md, "tool_failed"));
  EXPECT_EQ(md.detail().value("reason", ""), "asset_not_found")
      << md.Describe();
  ExpectNoSecret(md);
  const ToolResponse list = Tool(p, "asset.list", {{"type", "skills"}});
  ASSERT_TRUE(ExpectOk(list));
  EXPECT_EQ(ItemNames(list),
            (std::vector<std::string>{"alpha", "beta", "gamma"}));
  for (const std::string& query : std::vector<std::string>{
           "", "leak", std::string(kSecret, 17), ".env", "server", "id_rsa"}) {
    SCOPED_TRACE(query);
    const ToolResponse search =
        Tool(p, "asset.search", {{"type", "skills"}, {"query", query}});
    ASSERT_TRUE(ExpectOk(search));
    ExpectNoSecret(search);
    for (const std::string& name : ItemNames(search)) {
      EXPECT_TRUE(name == "alpha" || name == "beta" || name == "gamma")
          << name << " " << search.Describe();
    }
  }
  // The check discriminates: ordinary assets are still served.
  const ToolResponse alpha =
      Tool(p, "asset.get", {{"type", "skills"}, {"key", "alpha"}});
  ASSERT_TRUE(ExpectOk(alpha));
  EXPECT_EQ(alpha.result()["asset"]["content"], "# Alpha\nThe alpha skill.\n");
  const ToolResponse all =
      Tool(p, "asset.search", {{"type", "skills"}, {"query", ""}});
  EXPECT_EQ(ItemNames(all),
            (std::vector<std::string>{"alpha", "beta", "gamma"}));
}

// SERVER.KEY, id_ecdsa, .netrc and a nested .AWS/credentials were readable
// through fs.read and inside exec; their public or ordinary neighbours must
// stay readable.
TEST_F(SensitivePolicyTest, CredentialFilesAreRefusedAndMaskedInAnyCase) {
  const std::vector<std::string> secrets = {"SERVER.KEY",
                                            "id_ecdsa",
                                            ".netrc",
                                            "sub/.AWS/credentials",
                                            "home/.docker/config.json",
                                            "Deploy.PEM"};
  MakeRootDir("sub/.AWS");
  MakeRootDir("home/.docker");
  for (const std::string& file : secrets) {
    WriteRootFile(file, absl::StrCat(kSecret, "\n"));
  }
  WriteRootFile("README.md", "readme\n");
  WriteRootFile("id_ecdsa.pub", "ecdsa-sha2-nistp256 AAAA public\n");
  WriteRootFile("sub/.AWS/config", "[default]\n");
  const std::string p = StartProject();

  for (const std::string& file : secrets) {
    SCOPED_TRACE(file);
    const ToolResponse read = Tool(p, "fs.read", {{"path", file}});
    EXPECT_TRUE(ExpectError(read, "sensitive_path_denied"));
    ExpectNoSecret(read);
    const ToolResponse cat = Tool(p, "exec", ExecArgs({"cat", file}));
    ASSERT_TRUE(ExpectOk(cat));
    EXPECT_NE(cat.result()["exit_code"], 0) << cat.Describe();
    ExpectNoSecret(cat);
  }
  // Nor through a search of the whole tree from inside the jail.
  const ToolResponse grep = Tool(
      p, "exec",
      ExecArgs({"sh", "-c",
                absl::StrCat("grep -rs ", std::string(kSecret, 17), " .")}));
  ASSERT_TRUE(ExpectOk(grep));
  ExpectNoSecret(grep);

  for (const auto& [file, content] :
       std::vector<std::pair<std::string, std::string>>{
           {"README.md", "readme\n"},
           {"id_ecdsa.pub", "ecdsa-sha2-nistp256 AAAA public\n"},
           {"sub/.AWS/config", "[default]\n"}}) {
    SCOPED_TRACE(file);
    const ToolResponse read = Tool(p, "fs.read", {{"path", file}});
    ASSERT_TRUE(ExpectOk(read));
    EXPECT_EQ(read.result()["content"], content) << read.Describe();
    const ToolResponse cat = Tool(p, "exec", ExecArgs({"cat", file}));
    ASSERT_TRUE(ExpectOk(cat));
    EXPECT_EQ(cat.result()["stdout"], content) << cat.Describe();
  }
}

// The allowlist matches case-insensitively too and still overrides, for the
// tools and for the jail's masks alike.
TEST_F(SensitivePolicyTest, AllowlistOverridesInAnyCase) {
  WriteRootFile("SERVER.KEY", "test fixture key\n");
  WriteRootFile("other.key", absl::StrCat(kSecret, "\n"));
  const std::string p =
      StartProject({{"sensitive_path_allowlist", json::array({"server.key"})}});
  const ToolResponse read = Tool(p, "fs.read", {{"path", "SERVER.KEY"}});
  ASSERT_TRUE(ExpectOk(read));
  EXPECT_EQ(read.result()["content"], "test fixture key\n") << read.Describe();
  const ToolResponse cat = Tool(p, "exec", ExecArgs({"cat", "SERVER.KEY"}));
  ASSERT_TRUE(ExpectOk(cat));
  EXPECT_EQ(cat.result()["stdout"], "test fixture key\n") << cat.Describe();
  EXPECT_TRUE(ExpectError(Tool(p, "fs.read", {{"path", "other.key"}}),
                          "sensitive_path_denied"));
}

// Diagnostics show the effective denylist: the defaults, sorted.
TEST_F(SensitivePolicyTest, DiagnosticsListTheEffectiveDenylistSorted) {
  const std::string p = StartProject();
  const json diag = Diagnostics(p);
  std::vector<std::string> expected =
      runtime::ValidatedOptions().sensitive_path_denylist;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(diag["policy"]["sensitive_path_denylist"], json(expected)) << diag;
  EXPECT_NE(std::find(expected.begin(), expected.end(), ".aws/credentials"),
            expected.end());
}

}  // namespace
}  // namespace jcs::serve_test
