// IsSensitivePath / IsSensitivePathOrAncestor: the one sensitive-path rule of
// every tool and of the jail's masks, and the default denylist it runs with.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/policy/path_policy.h"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {
namespace {

const std::vector<std::string>& Defaults() {
  static const std::vector<std::string>* const list =
      new std::vector<std::string>(ValidatedOptions().sensitive_path_denylist);
  return *list;
}

bool Sensitive(const std::string& path,
               const std::vector<std::string>& allow = {}) {
  return IsSensitivePath(path, Defaults(), allow);
}

// Every default entry with paths it must deny: at the root, deeper in the
// tree and in other cases.
const std::vector<std::pair<std::string, std::vector<std::string>>>&
DefaultCases() {
  static const auto* const cases =
      new std::vector<std::pair<std::string, std::vector<std::string>>>{
          {".env", {".env", "app/.env", ".ENV"}},
          {".env.*", {".env.local", "app/.env.production", ".Env.Local"}},
          {"*.pem", {"server.pem", "deploy/certs/ca.pem", "X.PEM"}},
          {"*.key", {"server.key", "tls/SERVER.KEY", "a.Key"}},
          {"*.p12", {"cert.p12", "ios/Dist.P12"}},
          {"*.pfx", {"cert.pfx", "win/CODESIGN.PFX"}},
          {"*.jks", {"release.jks", "android/app/Upload.JKS"}},
          {"*.keystore", {"release.keystore", "app/DEBUG.KEYSTORE"}},
          {"*.ppk", {"deploy.ppk", "putty/ME.PPK"}},
          {"id_rsa", {"id_rsa", "home/.ssh/id_rsa", "ID_RSA"}},
          {"id_dsa", {"id_dsa", ".ssh/Id_Dsa"}},
          {"id_ecdsa", {"id_ecdsa", ".ssh/ID_ECDSA"}},
          {"id_ecdsa_sk", {"id_ecdsa_sk", ".ssh/ID_ECDSA_SK"}},
          {"id_ed25519", {"id_ed25519", ".ssh/ID_ED25519"}},
          {"id_ed25519_sk", {"id_ed25519_sk", ".ssh/Id_Ed25519_Sk"}},
          {"id_xmss", {"id_xmss", ".ssh/ID_XMSS"}},
          {".netrc", {".netrc", "home/.NETRC"}},
          {"_netrc", {"_netrc", "home/_NETRC"}},
          {".npmrc", {".npmrc", "web/.NPMRC"}},
          {".pypirc", {".pypirc", "home/.PyPiRc"}},
          {".pgpass", {".pgpass", "home/.PGPASS"}},
          {".git-credentials", {".git-credentials", "home/.GIT-CREDENTIALS"}},
          {".aws/credentials",
           {".aws/credentials", "home/.aws/credentials",
            "sub/.AWS/Credentials"}},
          {".docker/config.json",
           {".docker/config.json", "home/u/.Docker/CONFIG.json"}},
          {".kube/config", {".kube/config", "home/.KUBE/config"}},
          {".config/gh/hosts.yml",
           {".config/gh/hosts.yml", "home/.CONFIG/GH/hosts.yml"}},
          {".gnupg/private-keys-v1.d",
           {".gnupg/private-keys-v1.d", "home/.GnuPG/private-keys-v1.d"}},
          {".gnupg/secring.gpg",
           {".gnupg/secring.gpg", "home/.gnupg/SECRING.GPG"}},
          {"credentials.json", {"credentials.json", "gcp/CREDENTIALS.JSON"}},
          {"application_default_credentials.json",
           {"application_default_credentials.json",
            "home/.config/gcloud/application_default_credentials.json"}},
      };
  return *cases;
}

TEST(SensitivePathDefaultsTest, EveryDefaultEntryIsTested) {
  std::vector<std::string> tested;
  for (const auto& [entry, paths] : DefaultCases()) tested.push_back(entry);
  EXPECT_EQ(tested, Defaults());
}

TEST(SensitivePathDefaultsTest, EachEntryDeniesItsFilesInAnyCase) {
  for (const auto& [entry, paths] : DefaultCases()) {
    for (const std::string& path : paths) {
      EXPECT_TRUE(Sensitive(path)) << entry << ": " << path;
      // Each entry on its own denies it (no entry is dead weight).
      EXPECT_TRUE(IsSensitivePath(path, {entry}, {})) << entry << ": " << path;
    }
  }
}

// Public keys, templates, look-alike names and ordinary project files stay
// readable: a false positive hides a file from every tool and masks it in
// the jail.
TEST(SensitivePathDefaultsTest, OrdinaryFilesStayReadable) {
  for (const char* path : {"README.md",
                           "src/main.cc",
                           "id_rsa.pub",
                           ".ssh/id_ecdsa.pub",
                           "ID_ED25519.PUB",
                           "id_generator.go",
                           "env.txt",
                           ".envrc",
                           "environment.yml",
                           "keys.txt",
                           "keyboard.key.txt",
                           "pem.go",
                           ".aws/config",
                           "x.aws/credentials",
                           "aws/credentials",
                           "credentials",
                           ".docker/daemon.json",
                           "config.json",
                           ".kube/cache/x",
                           "kube/config",
                           "package.json",
                           ".npmrc.d/x",
                           "netrc.go",
                           ".gnupg/pubring.kbx",
                           "secrets.yaml",
                           "settings.py"}) {
    EXPECT_FALSE(Sensitive(path)) << path;
  }
}

TEST(SensitivePathTest, AllowlistOverridesCaseInsensitively) {
  EXPECT_FALSE(Sensitive("SERVER.KEY", {"server.key"}));
  EXPECT_TRUE(Sensitive("other.key", {"server.key"}));
  EXPECT_FALSE(Sensitive(".env.example", {".ENV.EXAMPLE"}));
  EXPECT_TRUE(Sensitive(".env", {".env.example"}));
  EXPECT_FALSE(Sensitive("home/.aws/credentials", {".aws/*"}));
  EXPECT_FALSE(Sensitive("fixtures/tls/ca.pem", {"FIXTURES/*"}));
  EXPECT_TRUE(Sensitive("src/tls/ca.pem", {"fixtures/*"}));
}

TEST(SensitivePathTest, PatternForms) {
  // Basename patterns look at the last segment only.
  EXPECT_TRUE(IsSensitivePath("a/b/secret.txt", {"secret.txt"}, {}));
  EXPECT_FALSE(IsSensitivePath("secret.txt/b", {"secret.txt"}, {}));
  // Slash patterns: any trailing run of whole segments.
  EXPECT_TRUE(IsSensitivePath("a/b/c", {"b/c"}, {}));
  EXPECT_TRUE(IsSensitivePath("b/c", {"b/c"}, {}));
  EXPECT_FALSE(IsSensitivePath("ab/c", {"b/c"}, {}));
  EXPECT_FALSE(IsSensitivePath("b/c/d", {"b/c"}, {}));
  EXPECT_TRUE(
      IsSensitivePath("/home/u/.aws/credentials", {".aws/credentials"}, {}));
  // Anchored patterns: the whole path, root-relative read as "/" + path.
  EXPECT_TRUE(IsSensitivePath("b/c", {"/b/c"}, {}));
  EXPECT_FALSE(IsSensitivePath("a/b/c", {"/b/c"}, {}));
  EXPECT_TRUE(IsSensitivePath("/etc/shadow", {"/etc/shadow"}, {}));
  EXPECT_FALSE(IsSensitivePath("/x/etc/shadow", {"/etc/*"}, {}));
  // Trailing separators name the directory; `\` is a separator; blanks are
  // trimmed and empty patterns ignored.
  EXPECT_TRUE(IsSensitivePath("a/secrets", {"secrets/"}, {}));
  EXPECT_TRUE(IsSensitivePath("a/b/c", {"b\\c"}, {}));
  EXPECT_TRUE(IsSensitivePath("a\\b\\c", {"b/c"}, {}));
  EXPECT_TRUE(IsSensitivePath("x.key", {"  *.KEY  "}, {}));
  EXPECT_FALSE(IsSensitivePath("x", {"", " ", "/", "//"}, {}));
  // Wildcards at the end of a pattern (the literal-tail quick reject must
  // leave them alone).
  EXPECT_TRUE(IsSensitivePath("a/id_rsa", {"id_rs?"}, {}));
  EXPECT_TRUE(IsSensitivePath("a/b/c", {"b/*"}, {}));
  EXPECT_FALSE(IsSensitivePath("a/b.keys", {"*.key"}, {}));
  // Non-ASCII bytes compare exactly: no Unicode folding.
  EXPECT_TRUE(IsSensitivePath("\xc3\xa9.key", {"\xc3\xa9.KEY"}, {}));
  EXPECT_FALSE(IsSensitivePath("\xc3\x89.key", {"\xc3\xa9.key"}, {}));
}

TEST(SensitivePathTest, AncestorsCount) {
  const std::vector<std::string> deny = {"*.pem", ".aws/credentials"};
  EXPECT_TRUE(IsSensitivePathOrAncestor("certs.pem/readme.txt", deny, {}));
  EXPECT_TRUE(IsSensitivePathOrAncestor("a/CERTS.PEM/b/c", deny, {}));
  EXPECT_TRUE(
      IsSensitivePathOrAncestor("/home/u/.aws/credentials/x", deny, {}));
  EXPECT_TRUE(IsSensitivePathOrAncestor("a//certs.pem//x", deny, {}));
  EXPECT_FALSE(IsSensitivePathOrAncestor("certs/readme.txt", deny, {}));
  EXPECT_FALSE(IsSensitivePathOrAncestor("", {"*"}, {}));
  // An allowlisted file inside a denied directory stays denied (the jail
  // masks the directory whole); allowlisting both frees the file.
  EXPECT_TRUE(IsSensitivePathOrAncestor("certs.pem/ca.pem", deny,
                                        {"certs.pem/ca.pem"}));
  EXPECT_FALSE(IsSensitivePathOrAncestor("certs.pem/ca.pem", deny,
                                         {"certs.pem", "certs.pem/ca.pem"}));
}

}  // namespace
}  // namespace jcs::runtime
