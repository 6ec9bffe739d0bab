#include "runtime/assets/asset_watcher.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loop/event_loop.h"

namespace jcs::runtime::assets {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;

class AssetWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = absl::StrCat(::testing::TempDir(), "/watchXXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = fs::canonical(tmpl).string();
    for (const char* d : {"skills", "commands", "workflows", "skill_graph"}) {
      fs::create_directories(absl::StrCat(root_, "/.jido/", d));
    }
    absl::StatusOr<std::unique_ptr<EventLoop>> loop =
        EventLoop::Create(EventLoop::Options());
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }
  void TearDown() override {
    watcher_.reset();
    // Let the cancelled read finish before the loop goes.
    for (int i = 0; i < 5; ++i) (void)loop_->RunOnce(absl::Milliseconds(5));
    fs::remove_all(root_);
  }

  void StartWatcher(absl::Duration debounce) {
    AssetWatcher::Config config;
    config.root = root_;
    config.on_stopped = [this](std::string detail) {
      stops_.push_back(std::move(detail));
    };
    config.data_dir = ".jido";
    config.debounce = debounce;
    config.on_settled = [this](std::vector<std::string> paths, size_t n) {
      flushes_.push_back(std::move(paths));
      events_ += n;
    };
    watcher_ = std::make_unique<AssetWatcher>(loop_.get(), config);
    ASSERT_TRUE(watcher_->Start().ok());
  }

  void Write(const std::string& rel, const std::string& content) {
    std::ofstream(absl::StrCat(root_, "/", rel)) << content;
  }

  bool RunUntil(const std::function<bool()>& done,
                absl::Duration limit = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + limit;
    while (!done()) {
      if (absl::Now() >= deadline) return false;
      if (!loop_->RunOnce(absl::Milliseconds(10)).ok()) return false;
    }
    return true;
  }
  void RunFor(absl::Duration d) {
    const absl::Time deadline = absl::Now() + d;
    while (absl::Now() < deadline) (void)loop_->RunOnce(absl::Milliseconds(5));
  }

  std::string root_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<AssetWatcher> watcher_;
  std::vector<std::vector<std::string>> flushes_;
  std::vector<std::string> stops_;
  size_t events_ = 0;
};

// The tmpfs a test mounts lives in this process's own mount namespace (set
// up before main, while the process has one thread).
const bool kPrivateMounts = [] {
  return unshare(CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}();

// The spec's watcher_stopped {reason: :file_system_stop}: the root's file
// system goes away under the watcher.
TEST_F(AssetWatcherTest, AnUnmountedRootEndsWatchingOnceAndSaysSo) {
  if (!kPrivateMounts ||
      mount("tmpfs", root_.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  fs::create_directories(absl::StrCat(root_, "/.jido/skills"));
  StartWatcher(absl::Milliseconds(20));
  ASSERT_TRUE(watcher_->Diagnostics()["watching"]);
  ASSERT_EQ(umount2(root_.c_str(), MNT_DETACH), 0);
  ASSERT_TRUE(RunUntil([&] { return !stops_.empty(); }));
  RunFor(absl::Milliseconds(100));
  ASSERT_EQ(stops_.size(), 1u);
  EXPECT_THAT(stops_[0], HasSubstr("was unmounted"));
  EXPECT_TRUE(watcher_->ended());
  const nlohmann::json diag = watcher_->Diagnostics();
  EXPECT_EQ(diag["watching"], false);
  EXPECT_THAT(diag["stopped_reason"].get<std::string>(),
              HasSubstr("unmounted"));
}

TEST_F(AssetWatcherTest, ARemovedRootEndsWatching) {
  StartWatcher(absl::Milliseconds(20));
  fs::remove_all(root_);
  ASSERT_TRUE(RunUntil([&] { return !stops_.empty(); }));
  EXPECT_THAT(stops_[0], HasSubstr("cannot be opened"));
  EXPECT_TRUE(flushes_.empty());  // nothing to reload from
  fs::create_directories(root_);  // for TearDown
}

// A file system mounted below the root and unmounted again is a change
// there, not the end of watching.
TEST_F(AssetWatcherTest, AMountBelowTheRootGoingAwayIsOnlyAChange) {
  const std::string sub = absl::StrCat(root_, "/.jido/skills/mounted");
  fs::create_directories(sub);
  if (!kPrivateMounts || mount("tmpfs", sub.c_str(), "tmpfs", 0, "size=1m")) {
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  StartWatcher(absl::Milliseconds(20));
  ASSERT_EQ(umount2(sub.c_str(), MNT_DETACH), 0);
  Write(".jido/skills/after.md", "# After\n");
  ASSERT_TRUE(RunUntil([&] { return !flushes_.empty(); }));
  RunFor(absl::Milliseconds(100));
  EXPECT_TRUE(stops_.empty()) << stops_[0];
  EXPECT_FALSE(watcher_->ended());
}

TEST_F(AssetWatcherTest, WatchesTheDataDirAndEveryTypeDirectory) {
  fs::create_directories(root_ + "/.jido/skill_graph/nodes");
  StartWatcher(absl::Milliseconds(30));
  EXPECT_EQ(watcher_->WatchedDirs(),
            (std::vector<std::string>{
                ".jido", ".jido/commands", ".jido/skill_graph",
                ".jido/skill_graph/nodes", ".jido/skills", ".jido/workflows"}));
}

// runtime_hardening 54: a storm is debounced into few flushes.
TEST_F(AssetWatcherTest, AStormOf40ChangesGivesOneToFiveFlushes) {
  StartWatcher(absl::Milliseconds(30));
  for (int i = 0; i < 40; ++i) {
    Write(absl::StrCat(".jido/skills/s", i % 4, ".md"), absl::StrCat(i));
    if (i % 10 == 0) RunFor(absl::Milliseconds(5));  // events arrive mid-storm
  }
  ASSERT_TRUE(RunUntil([&] { return !flushes_.empty(); }));
  RunFor(absl::Milliseconds(100));
  EXPECT_GE(flushes_.size(), 1u);
  EXPECT_LE(flushes_.size(), 5u);
  EXPECT_THAT(flushes_.back(), Contains(".jido/skills/s3.md"));
}

TEST_F(AssetWatcherTest, SaveByRenameIsSeen) {
  Write(".jido/skills/a.md", "old");
  StartWatcher(absl::Milliseconds(20));
  Write(".jido/skills/.a.md.swp", "new");
  RunFor(absl::Milliseconds(50));
  flushes_.clear();
  ASSERT_EQ(rename((root_ + "/.jido/skills/.a.md.swp").c_str(),
                   (root_ + "/.jido/skills/a.md").c_str()),
            0);
  ASSERT_TRUE(RunUntil([&] { return !flushes_.empty(); }));
  EXPECT_THAT(flushes_[0], Contains(".jido/skills/a.md"));
}

TEST_F(AssetWatcherTest, ReplacedAndNewFoldersAreFollowed) {
  StartWatcher(absl::Milliseconds(20));
  // The skills folder replaced by a new one: its changes still count.
  fs::remove_all(root_ + "/.jido/skills");
  fs::create_directories(root_ + "/.jido/skills/deep");
  ASSERT_TRUE(RunUntil([&] { return !flushes_.empty(); }));
  EXPECT_THAT(watcher_->WatchedDirs(), Contains(".jido/skills/deep"));
  flushes_.clear();
  Write(".jido/skills/deep/x.md", "x");
  ASSERT_TRUE(RunUntil([&] { return !flushes_.empty(); }));
  EXPECT_THAT(flushes_[0], Contains(".jido/skills/deep/x.md"));
  // The whole data dir removed and made again.
  fs::remove_all(root_ + "/.jido");
  ASSERT_TRUE(RunUntil([&] { return flushes_.size() >= 2; }));
  fs::create_directories(root_ + "/.jido/commands");
  ASSERT_TRUE(RunUntil([&] {
    const std::vector<std::string> dirs = watcher_->WatchedDirs();
    return std::find(dirs.begin(), dirs.end(), ".jido/commands") != dirs.end();
  }));
  const size_t before = flushes_.size();
  Write(".jido/commands/c.md", "c");
  ASSERT_TRUE(RunUntil([&] { return flushes_.size() > before; }));
  EXPECT_THAT(flushes_.back(), Contains(".jido/commands/c.md"));
}

// A symlink planted in the tree does not make the daemon watch elsewhere.
TEST_F(AssetWatcherTest, AttackSymlinkedFolderIsNotWatched) {
  const std::string outside = root_ + "-outside";
  fs::create_directories(outside);
  fs::create_directory_symlink(outside, root_ + "/.jido/skills/link");
  StartWatcher(absl::Milliseconds(20));
  for (const std::string& dir : watcher_->WatchedDirs()) {
    EXPECT_EQ(dir.find("link"), std::string::npos) << dir;
  }
  std::ofstream(outside + "/x.md") << "outside";
  RunFor(absl::Milliseconds(100));
  EXPECT_TRUE(flushes_.empty());
  fs::remove_all(outside);
}

// The identity hook runs around the listing (the tool runtime's
// ScopedFsIdentity); a hook that fails leaves the watcher degraded, not
// watching as root.
TEST_F(AssetWatcherTest, WatchesAreBuiltUnderTheGivenIdentity) {
  int entered = 0;
  AssetWatcher::Config config;
  config.root = root_;
  config.data_dir = ".jido";
  config.enter_identity = [&]() -> absl::StatusOr<std::shared_ptr<void>> {
    ++entered;
    return absl::PermissionDeniedError("no identity");
  };
  watcher_ = std::make_unique<AssetWatcher>(loop_.get(), config);
  ASSERT_TRUE(watcher_->Start().ok());
  EXPECT_EQ(entered, 1);
  EXPECT_TRUE(watcher_->WatchedDirs().empty());
  EXPECT_EQ(watcher_->Diagnostics()["degraded"], true);
}

TEST_F(AssetWatcherTest, UnrelatedChangesInTheRootAreIgnored) {
  fs::create_directories(root_ + "/.jido/state");
  StartWatcher(absl::Milliseconds(20));
  Write("README.md", "x");
  fs::create_directories(root_ + "/src");
  Write(".jido/state/journal", "x");
  Write(".jido/notes.txt", "x");
  RunFor(absl::Milliseconds(100));
  EXPECT_TRUE(flushes_.empty());
  EXPECT_EQ(watcher_->pending_event_count(), 0u);
}

}  // namespace
}  // namespace jcs::runtime::assets
