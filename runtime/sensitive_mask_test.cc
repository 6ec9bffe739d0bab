#include "runtime/sensitive_mask.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<std::string> kDefaultDeny = {".env",  ".env.*", "*.pem",
                                               "*.key", "id_rsa", "id_ed25519"};

class SensitiveMaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") +
                          "/sensitive_mask_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = fs::canonical(pattern).string();
    root_ = base_ + "/root";
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(base_); }

  void Touch(const std::string& rel, const std::string& content = "x") {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << content;
  }

  std::string base_, root_;
};

TEST_F(SensitiveMaskTest, EmptyTree) {
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, IsEmpty());
}

TEST_F(SensitiveMaskTest, DefaultDenylistNestedAndSorted) {
  Touch(".env");
  Touch(".env.local");
  Touch("README.md");
  Touch("src/main.cc");
  Touch("src/config/.env.production");
  Touch("deploy/certs/server.pem");
  Touch("home/.ssh/id_rsa");
  Touch("home/.ssh/id_rsa.pub");
  Touch("home/.ssh/id_ed25519");
  Touch("tls.key");
  Touch("environment.txt");
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths,
              ElementsAre(".env", ".env.local", "deploy/certs/server.pem",
                          "home/.ssh/id_ed25519", "home/.ssh/id_rsa",
                          "src/config/.env.production", "tls.key"));
}

TEST_F(SensitiveMaskTest, MatchedDirectoryIsReportedNotDescended) {
  Touch("secrets.key/inner.pem");
  Touch("secrets.key/deeper/.env");
  Touch(".env.d/a.txt");
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, ElementsAre(".env.d", "secrets.key"));
}

TEST_F(SensitiveMaskTest, AllowlistExceptions) {
  Touch(".env");
  Touch(".env.example");
  Touch("test/fixtures/fake.pem");
  Touch("real.pem");
  auto paths = FindSensitivePaths(root_, kDefaultDeny,
                                  {".env.example", "test/fixtures/*"});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, ElementsAre(".env", "real.pem"));
}

TEST_F(SensitiveMaskTest, SlashPatternsMatchTheRelativePath) {
  Touch("config/prod.json");
  Touch("other/config/prod.json");
  auto paths = FindSensitivePaths(root_, {"config/*.json"}, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, ElementsAre("config/prod.json"));
}

TEST_F(SensitiveMaskTest, SymlinksAreNeitherReportedNorFollowed) {
  Touch("a/b/server.pem");
  fs::create_directories(base_ + "/outside");
  std::ofstream(base_ + "/outside/.env") << "x";
  fs::create_directory_symlink("a", root_ + "/linkdir");
  fs::create_directory_symlink(base_ + "/outside", root_ + "/escape");
  fs::create_symlink("a/b/server.pem", root_ + "/alias.pem");
  fs::create_symlink("/etc/passwd", root_ + "/.env");
  fs::create_directory_symlink(root_, root_ + "/a/loop");  // a cycle
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, ElementsAre("a/b/server.pem"));
}

TEST_F(SensitiveMaskTest, OtherFileTypesAreNotReported) {
  ASSERT_EQ(mkfifo((root_ + "/.env").c_str(), 0600), 0);
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, IsEmpty());
}

TEST_F(SensitiveMaskTest, EntryCap) {
  for (int i = 0; i < 5; ++i) Touch("d/f" + std::to_string(i));
  // 6 entries: d and its 5 files.
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {}, 6);
  ASSERT_TRUE(paths.ok()) << paths.status();
  paths = FindSensitivePaths(root_, kDefaultDeny, {}, 5);
  ASSERT_FALSE(paths.ok());
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(paths.status().message(),
              HasSubstr("sensitive_mask: more than 5 entries under " + root_));
  EXPECT_THAT(paths.status().message(), HasSubstr("narrow the root"));
  paths = FindSensitivePaths(root_, kDefaultDeny, {}, 0);
  EXPECT_FALSE(paths.ok());
}

TEST_F(SensitiveMaskTest, MatchedDirectoryContentDoesNotCountTowardsCap) {
  for (int i = 0; i < 50; ++i) Touch("vault.key/f" + std::to_string(i));
  auto paths = FindSensitivePaths(root_, kDefaultDeny, {}, 1);
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, ElementsAre("vault.key"));
}

TEST_F(SensitiveMaskTest, BadRoots) {
  auto paths = FindSensitivePaths("", kDefaultDeny, {});
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kInvalidArgument);
  paths = FindSensitivePaths("relative/dir", kDefaultDeny, {});
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kInvalidArgument);
  paths = FindSensitivePaths(std::string("/tmp\0x", 6), kDefaultDeny, {});
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kInvalidArgument);
  paths = FindSensitivePaths(base_ + "/missing", kDefaultDeny, {});
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kFailedPrecondition);
  Touch("file.txt");
  paths = FindSensitivePaths(root_ + "/file.txt", kDefaultDeny, {});
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SensitiveMaskTest, EmptyDenylistFindsNothing) {
  Touch(".env");
  auto paths = FindSensitivePaths(root_, {}, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths, IsEmpty());
}

}  // namespace
}  // namespace jcs::runtime
