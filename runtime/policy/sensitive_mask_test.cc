#include "runtime/policy/sensitive_mask.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
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
  // A pattern with a slash matches whole trailing segments at any depth;
  // a leading slash ties it to the root.
  auto paths = FindSensitivePaths(root_, {"config/*.json"}, {});
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(*paths,
              ElementsAre("config/prod.json", "other/config/prod.json"));
  paths = FindSensitivePaths(root_, {"/config/*.json"}, {});
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

TEST_F(SensitiveMaskTest, DeepChainBeyondPathMax) {
  // 2,200 levels: the relative path is longer than PATH_MAX, which used to
  // make every later call fail closed (ENAMETOOLONG).
  std::string rel;
  int fd = open(root_.c_str(), O_PATH | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 2200; ++i) {
    ASSERT_EQ(mkdirat(fd, "d", 0755), 0) << i;
    const int next = openat(fd, "d", O_PATH | O_DIRECTORY);
    ASSERT_GE(next, 0);
    close(fd);
    fd = next;
    rel += rel.empty() ? "d" : "/d";
  }
  const int secret = openat(fd, ".env", O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(secret, 0);
  struct stat st;
  ASSERT_EQ(fstat(secret, &st), 0);
  close(secret);
  close(fd);
  auto scan = ScanSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(scan.ok()) << scan.status();
  ASSERT_EQ(scan->entries.size(), 1u);
  EXPECT_EQ(scan->entries[0].rel, rel + "/.env");
  EXPECT_EQ(scan->entries[0].ino, st.st_ino);
  EXPECT_EQ(scan->entries[0].dev, st.st_dev);
  EXPECT_EQ(scan->directories, 2200u);
}

TEST_F(SensitiveMaskTest, NoEntryBound) {
  // More entries than the 200,000 that used to fail every call closed.
  int root_fd = open(root_.c_str(), O_PATH | O_DIRECTORY);
  ASSERT_GE(root_fd, 0);
  for (int d = 0; d < 2010; ++d) {
    const std::string dir = "d" + std::to_string(d);
    ASSERT_EQ(mkdirat(root_fd, dir.c_str(), 0755), 0);
    const int dir_fd = openat(root_fd, dir.c_str(), O_PATH | O_DIRECTORY);
    ASSERT_GE(dir_fd, 0);
    for (int f = 0; f < 100; ++f) {
      const std::string name = "f" + std::to_string(f);
      const int file = openat(dir_fd, name.c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(file, 0);
      close(file);
    }
    close(dir_fd);
  }
  close(root_fd);
  Touch("d1999/deploy.pem");
  auto scan = ScanSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_GT(scan->entries_seen, 200000u);
  ASSERT_EQ(scan->entries.size(), 1u);
  EXPECT_EQ(scan->entries[0].rel, "d1999/deploy.pem");
}

TEST_F(SensitiveMaskTest, HardLinksOfASecretAreReported) {
  Touch("config/.env", "SECRET=1");
  ASSERT_EQ(
      link((root_ + "/config/.env").c_str(), (root_ + "/notes.txt").c_str()),
      0);
  Touch("src/deep/keep.txt");
  ASSERT_EQ(link((root_ + "/config/.env").c_str(),
                 (root_ + "/src/deep/copy.txt").c_str()),
            0);
  Touch("other.txt", "SECRET=1");  // same content, another inode: not a link
  auto scan = ScanSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_TRUE(scan->hard_link_walk);
  std::vector<std::string> rels;
  for (const SensitiveEntry& e : scan->entries) {
    rels.push_back(e.rel + (e.hard_link ? " (link)" : ""));
  }
  EXPECT_THAT(rels, ElementsAre("config/.env", "notes.txt (link)",
                                "src/deep/copy.txt (link)"));
}

TEST_F(SensitiveMaskTest, NoHardLinkWalkWithoutLinks) {
  Touch("config/.env");
  auto scan = ScanSensitivePaths(root_, kDefaultDeny, {});
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_FALSE(scan->hard_link_walk);
}

// A racer renames the secret's parent back and forth while the tree is
// scanned: every scan either reports the secret's inode (under whichever
// name it listed) or fails; none returns a set without it.
TEST_F(SensitiveMaskTest, RenameRaceNeverHidesTheSecret) {
  for (int i = 0; i < 40; ++i) Touch("pad" + std::to_string(i) + "/x.txt");
  Touch("config/.env", "SECRET=1");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/config/.env").c_str(), &st), 0);
  std::atomic<bool> stop{false};
  std::thread racer([&] {
    const std::string a = root_ + "/config", b = root_ + "/zz_config";
    while (!stop.load()) {
      rename(a.c_str(), b.c_str());
      rename(b.c_str(), a.c_str());
    }
  });
  int ok = 0, failed = 0;
  for (int i = 0; i < 300; ++i) {
    auto scan = ScanSensitivePaths(root_, kDefaultDeny, {});
    if (!scan.ok()) {
      EXPECT_EQ(scan.status().code(), absl::StatusCode::kUnavailable)
          << scan.status();
      ++failed;
      continue;
    }
    ++ok;
    bool found = false;
    for (const SensitiveEntry& e : scan->entries) {
      found = found || (e.ino == st.st_ino && e.dev == st.st_dev);
    }
    EXPECT_TRUE(found) << "scan " << i << " lost the secret";
  }
  stop = true;
  racer.join();
  EXPECT_GT(ok, 0);
  std::cerr << ok << " scans complete, " << failed << " failed closed\n";
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
