#include "runtime/policy/sensitive_index.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/policy/sensitive_mask.h"

namespace jcs::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Basename patterns, a directory, a pattern with a parent ("config/*.pem":
// its match depends on the parent's name) and an anchored one.
const std::vector<std::string> kDeny = {
    ".env", ".env.*", "*.key", "id_rsa", "secrets", "config/*.pem", "/top.txt"};
const std::vector<std::string> kAllow = {".env.example"};

// What the jail uses of an entry (nlink is informational).
std::vector<std::string> Shown(const SensitiveScan& scan) {
  std::vector<std::string> out;
  for (const SensitiveEntry& e : scan.entries) {
    out.push_back(absl::StrCat(e.rel, e.is_dir ? "/" : "", " ", e.dev, ":",
                               e.ino, e.hard_link ? " link" : ""));
  }
  return out;
}

class SensitiveIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") +
                          "/sensitive_index_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = fs::canonical(pattern).string();
    root_ = base_ + "/root";
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (index_ != nullptr) index_->Stop();
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  void Write(const std::string& rel, const std::string& content = "x") {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << content;
  }

  std::shared_ptr<SensitiveIndex> Built() {
    index_ = std::make_shared<SensitiveIndex>(root_, kDeny, kAllow);
    index_->Build();
    return index_;
  }

  // The index's set (it must be usable) against a full scan of the tree.
  void ExpectMatchesFullScan(const std::string& when) {
    SensitiveIndex::Snapshot snapshot = index_->Take();
    ASSERT_EQ(snapshot.mode, "index") << when << ": " << snapshot.reason;
    ASSERT_TRUE(snapshot.scan.has_value());
    absl::StatusOr<SensitiveScan> full =
        ScanSensitivePaths(root_, kDeny, kAllow);
    ASSERT_TRUE(full.ok()) << full.status();
    EXPECT_EQ(Shown(*snapshot.scan), Shown(*full)) << when;
  }

  std::string base_;
  std::string root_;
  std::shared_ptr<SensitiveIndex> index_;
};

TEST_F(SensitiveIndexTest, BuildGivesWhatTheFullScanGives) {
  Write("src/main.c");
  Write("src/.env");
  Write("src/.env.example");  // allowlisted
  Write("a/b/c/d/server.KEY");
  Write("secrets/inner/plain.txt");  // masked whole with its directory
  Write("config/tls.pem");
  Write("other/tls.pem");  // not under config/
  Write("top.txt");
  Write("sub/top.txt");  // the anchored pattern is the root's only
  ASSERT_EQ(
      link((root_ + "/src/.env").c_str(), (root_ + "/shared.txt").c_str()), 0);
  ASSERT_EQ(symlink(".env", (root_ + "/src/id_rsa").c_str()), 0);
  Built();
  EXPECT_EQ(index_->state(), SensitiveIndex::State::kReady);
  ExpectMatchesFullScan("after build");
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  ASSERT_TRUE(snapshot.scan.has_value());
  std::vector<std::string> rels;
  for (const SensitiveEntry& e : snapshot.scan->entries) rels.push_back(e.rel);
  EXPECT_THAT(rels, ::testing::ElementsAre(
                        "a/b/c/d/server.KEY", "config/tls.pem", "secrets",
                        "shared.txt", "src/.env", "top.txt"));
  const nlohmann::json diag = index_->Diagnostics();
  EXPECT_EQ(diag["state"], "ready");
  // root, src, a, a/b, a/b/c, a/b/c/d, config, other, sub (not secrets/).
  EXPECT_EQ(diag["directories"], 9);
  EXPECT_GT(diag["bytes_per_directory"].get<int64_t>(), 0);
  EXPECT_EQ(diag["hard_links"], 1);
}

TEST_F(SensitiveIndexTest, ASecretCreatedJustBeforeTheCallIsIndexed) {
  Write("d1/d2/d3/d4/d5/d6/d7/d8/keep.txt");
  Built();
  for (int i = 0; i < 100; ++i) {
    const std::string rel = absl::StrCat("d1/d2/d3/d4/d5/d6/d7/d8/n", i);
    Write(rel + "/.env", "SECRET");
    const SensitiveIndex::Snapshot snapshot = index_->Take();
    ASSERT_EQ(snapshot.mode, "index") << snapshot.reason;
    bool found = false;
    for (const SensitiveEntry& e : snapshot.scan->entries) {
      found = found || e.rel == rel + "/.env";
    }
    ASSERT_TRUE(found) << "iteration " << i;
  }
}

// Random creations, deletions, renames and links of files and directories,
// sensitive or not; after each batch the index equals a full scan.
TEST_F(SensitiveIndexTest, RandomMutationsKeepTheIndexExact) {
  std::mt19937 rng(20261203);
  const std::vector<std::string> file_names = {
      ".env",    ".env.local", ".env.example", "a.key",   "id_rsa",
      "tls.pem", "main.c",     "README",       "top.txt", "x"};
  const std::vector<std::string> dir_names = {"secrets", "config", "src",
                                              "lib",     "d",      "e"};
  Write("src/main.c");
  Built();
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  auto all_dirs = [this] {
    std::vector<std::string> dirs = {root_};
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && !it->is_symlink()) {
        dirs.push_back(it->path().string());
      }
    }
    return dirs;
  };
  auto all_entries = [this] {
    std::vector<std::string> entries;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      entries.push_back(it->path().string());
    }
    return entries;
  };
  for (int batch = 0; batch < 40; ++batch) {
    for (int op = 0; op < 25; ++op) {
      const std::vector<std::string> dirs = all_dirs();
      const std::string dir = dirs[pick(dirs.size())];
      std::error_code ec;
      switch (pick(7)) {
        case 0:
        case 1:
          std::ofstream(dir + "/" + file_names[pick(file_names.size())]) << "v";
          break;
        case 2:
          fs::create_directory(dir + "/" + dir_names[pick(dir_names.size())],
                               ec);
          break;
        case 3: {  // delete a file or a whole directory
          const std::vector<std::string> entries = all_entries();
          if (!entries.empty())
            fs::remove_all(entries[pick(entries.size())], ec);
          break;
        }
        case 4:
        case 5: {  // rename anything to any directory, under any name
          const std::vector<std::string> entries = all_entries();
          if (entries.empty()) break;
          const std::string from = entries[pick(entries.size())];
          const bool is_dir = fs::is_directory(from);
          const std::string name = is_dir ? dir_names[pick(dir_names.size())]
                                          : file_names[pick(file_names.size())];
          (void)rename(from.c_str(), (dir + "/" + name).c_str());
          break;
        }
        case 6: {  // a hard link of any file
          const std::vector<std::string> entries = all_entries();
          if (entries.empty()) break;
          const std::string from = entries[pick(entries.size())];
          if (fs::is_regular_file(fs::symlink_status(from))) {
            (void)link(
                from.c_str(),
                (dir + "/" + file_names[pick(file_names.size())]).c_str());
          }
          break;
        }
      }
    }
    ExpectMatchesFullScan(absl::StrCat("batch ", batch));
    if (HasFailure()) return;
  }
}

// A racer renames a secret's directory back and forth: a snapshot from the
// index has the secret under one of its names, or the call is told to run
// the full scan; never an index without it.
TEST_F(SensitiveIndexTest, ARenameRaceNeverHidesTheSecret) {
  Write("config/.env", "SECRET");
  Built();
  std::atomic<bool> stop{false};
  std::atomic<long> renames{0};
  std::thread racer([&] {
    const std::string a = root_ + "/config", b = root_ + "/cfgx";
    while (!stop.load()) {
      if (rename(a.c_str(), b.c_str()) == 0) ++renames;
      if (rename(b.c_str(), a.c_str()) == 0) ++renames;
    }
  });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (renames.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  int by_index = 0, busy = 0;
  for (int i = 0; (i < 300 || renames.load() < 30000) && !HasFailure() &&
                  std::chrono::steady_clock::now() < deadline;
       ++i) {
    const SensitiveIndex::Snapshot snapshot = index_->Take();
    if (snapshot.mode != "index") {
      EXPECT_THAT(snapshot.reason, HasSubstr("busy")) << i;
      ++busy;
      continue;
    }
    ++by_index;
    bool found = false;
    for (const SensitiveEntry& e : snapshot.scan->entries) {
      found = found || e.rel == "config/.env" || e.rel == "cfgx/.env";
    }
    EXPECT_TRUE(found) << "snapshot " << i << " has no secret";
  }
  stop = true;
  racer.join();
  fprintf(stderr, "race: %d snapshots by index, %d busy, %ld renames\n",
          by_index, busy, renames.load());
  EXPECT_GT(renames.load(), 1000);
  // Once the racer stops, the index is exact again.
  ExpectMatchesFullScan("after the race");
}

// The tree changes while the index is built: once it settles, the index
// equals a full scan.
TEST_F(SensitiveIndexTest, ChangesDuringTheBuildAreCaught) {
  for (int d = 0; d < 60; ++d) {
    for (int f = 0; f < 30; ++f) Write(absl::StrCat("d", d, "/f", f, ".c"));
  }
  for (int round = 0; round < 3; ++round) {
    index_ = std::make_shared<SensitiveIndex>(root_, kDeny, kAllow);
    std::atomic<bool> stop{false};
    // At most kChanges rounds of changes (each a few inotify events): well
    // under the kernel's queue (fs.inotify.max_queued_events, 16384 by
    // default) even when a loaded host makes the build slow; beyond it the
    // index rightly falls back (QueueOverflowFallsBackThenRebuilds).
    constexpr int kChanges = 1000;
    std::thread mutator([&] {
      for (int i = 0; i < kChanges && !stop.load(); ++i) {
        const std::string dir = absl::StrCat(root_, "/d", i % 60);
        std::ofstream(absl::StrCat(dir, "/.env.", round, "_", i)) << "s";
        if (i % 7 == 0) {
          (void)rename(dir.c_str(), absl::StrCat(root_, "/m", i).c_str());
          (void)rename(absl::StrCat(root_, "/m", i).c_str(), dir.c_str());
        }
        if (i % 5 == 0) {
          fs::create_directories(absl::StrCat(dir, "/new", i, "/secrets"));
          std::ofstream(absl::StrCat(dir, "/new", i, "/k.key")) << "k";
        }
      }
    });
    index_->Build();
    stop = true;
    mutator.join();
    ExpectMatchesFullScan(absl::StrCat("round ", round));
  }
}

// More changes than the kernel queues between two calls: the call says it
// falls back, and a rebuild brings the index back.
TEST_F(SensitiveIndexTest, QueueOverflowFallsBackThenRebuilds) {
  Built();
  std::ifstream limit_file("/proc/sys/fs/inotify/max_queued_events");
  int limit = 16384;
  limit_file >> limit;
  fs::create_directories(root_ + "/many");
  ASSERT_EQ(index_->Take().mode, "index");
  for (int i = 0; i <= limit + 10; ++i) {
    std::ofstream(absl::StrCat(root_, "/many/f", i)) << "";
  }
  Write("many/.env");
  const SensitiveIndex::Snapshot fallback = index_->Take();
  EXPECT_EQ(fallback.mode, "full_scan");
  EXPECT_THAT(fallback.reason, HasSubstr("overflow"));
  EXPECT_FALSE(fallback.scan.has_value());
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (index_->state() != SensitiveIndex::State::kReady &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(index_->state(), SensitiveIndex::State::kReady);
  ExpectMatchesFullScan("after the rebuild");
  EXPECT_GE(index_->Diagnostics()["builds"].get<int>(), 2);
}

// A mount raises no inotify event: a file system mounted below the root
// after the build (with a secret in it) must not be missed.
TEST_F(SensitiveIndexTest, AMountBelowTheRootDistrustsTheIndex) {
  const std::string source = base_ + "/source";
  fs::create_directories(source);
  std::ofstream(source + "/.env") << "SECRET";
  Write("mnt/keep.txt");
  Built();
  ASSERT_EQ(index_->Take().mode, "index");
  if (mount(source.c_str(), (root_ + "/mnt").c_str(), nullptr, MS_BIND,
            nullptr) != 0) {
    GTEST_SKIP() << "cannot bind-mount here: " << strerror(errno);
  }
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  EXPECT_EQ(umount2((root_ + "/mnt").c_str(), MNT_DETACH), 0);
  EXPECT_EQ(snapshot.mode, "full_scan");
  EXPECT_THAT(snapshot.reason, HasSubstr("mount table"));
}

// TakeIfQuiet (the event loop's path, no drain): the set of the last drain
// while nothing is queued, and nothing as soon as something is.
TEST_F(SensitiveIndexTest, QuietSetIsTheLastDrainsSetWhileNothingIsQueued) {
  Write("a/.env");
  Built();
  EXPECT_EQ(index_->TakeIfQuiet(), nullptr) << "no drain yet";
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  ASSERT_EQ(snapshot.mode, "index") << snapshot.reason;
  std::shared_ptr<const SensitiveScan> quiet = index_->TakeIfQuiet();
  ASSERT_NE(quiet, nullptr);
  EXPECT_EQ(Shown(*quiet), Shown(*snapshot.scan));
  EXPECT_EQ(index_->Diagnostics()["quiet_snapshots"].get<int>(), 1);
}

// Attack: a secret created (or linked, or moved in) just before a call must
// never be missing from the set the loop takes without a drain.
TEST_F(SensitiveIndexTest, AChangeBeforeTheCallIsNeverMissedOnTheLoop) {
  Write("deep/er/still/keep.txt");
  Write("other/id_rsa", "KEY");
  Built();
  const auto quiet_after = [&](const std::string& what) {
    ASSERT_EQ(index_->Take().mode, "index") << what;
    ASSERT_NE(index_->TakeIfQuiet(), nullptr) << what;
  };
  quiet_after("start");
  Write("deep/er/still/.env", "SECRET");
  EXPECT_EQ(index_->TakeIfQuiet(), nullptr) << "a new .env is queued";
  ExpectMatchesFullScan("after .env");
  std::shared_ptr<const SensitiveScan> quiet = index_->TakeIfQuiet();
  ASSERT_NE(quiet, nullptr);
  EXPECT_THAT(Shown(*quiet),
              ::testing::Contains(HasSubstr("deep/er/still/.env")));

  quiet_after("before the link");
  ASSERT_EQ(link((root_ + "/other/id_rsa").c_str(),
                 (root_ + "/deep/innocent.txt").c_str()),
            0);
  EXPECT_EQ(index_->TakeIfQuiet(), nullptr) << "a new hard link is queued";
  ExpectMatchesFullScan("after the link");

  quiet_after("before the move");
  fs::create_directories(base_ + "/outside/secrets");
  std::ofstream(base_ + "/outside/secrets/token") << "T";
  fs::rename(base_ + "/outside/secrets", root_ + "/deep/secrets");
  EXPECT_EQ(index_->TakeIfQuiet(), nullptr) << "a moved-in secret is queued";
  ExpectMatchesFullScan("after the move");
}

// Attack: the loop's poll of mountinfo consumes the change it sees; the
// drain that follows must still compare the mount table.
TEST_F(SensitiveIndexTest, AMountSeenOnTheLoopStillDistrustsTheIndex) {
  const std::string source = base_ + "/source";
  fs::create_directories(source);
  std::ofstream(source + "/.env") << "SECRET";
  Write("mnt/keep.txt");
  Built();
  ASSERT_EQ(index_->Take().mode, "index");
  ASSERT_NE(index_->TakeIfQuiet(), nullptr);
  if (mount(source.c_str(), (root_ + "/mnt").c_str(), nullptr, MS_BIND,
            nullptr) != 0) {
    GTEST_SKIP() << "cannot bind-mount here: " << strerror(errno);
  }
  const std::shared_ptr<const SensitiveScan> quiet = index_->TakeIfQuiet();
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  EXPECT_EQ(umount2((root_ + "/mnt").c_str(), MNT_DETACH), 0);
  EXPECT_EQ(quiet, nullptr);
  EXPECT_EQ(snapshot.mode, "full_scan");
  EXPECT_THAT(snapshot.reason, HasSubstr("mount table"));
  EXPECT_EQ(index_->TakeIfQuiet(), nullptr);
}

TEST_F(SensitiveIndexTest, AMissingRootIsAFallbackNotAnEmptySet) {
  index_ = std::make_shared<SensitiveIndex>(base_ + "/absent", kDeny, kAllow);
  index_->Build();
  EXPECT_EQ(index_->state(), SensitiveIndex::State::kFallback);
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  EXPECT_EQ(snapshot.mode, "full_scan");
  EXPECT_THAT(snapshot.reason, HasSubstr("cannot open the root"));
}

TEST_F(SensitiveIndexTest, BeforeTheBuildCallsUseTheFullScan) {
  index_ = std::make_shared<SensitiveIndex>(root_, kDeny, kAllow);
  EXPECT_EQ(index_->TakeIfQuiet(), nullptr);
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  EXPECT_EQ(snapshot.mode, "full_scan");
  EXPECT_EQ(snapshot.reason, "building");
}

TEST_F(SensitiveIndexTest, MovingTheRootAwayDistrustsTheIndex) {
  Write("a/.env");
  Built();
  ASSERT_EQ(rename(root_.c_str(), (base_ + "/moved").c_str()), 0);
  const SensitiveIndex::Snapshot snapshot = index_->Take();
  EXPECT_EQ(snapshot.mode, "full_scan");
  EXPECT_THAT(snapshot.reason, HasSubstr("root"));
  ASSERT_EQ(rename((base_ + "/moved").c_str(), root_.c_str()), 0);
}

}  // namespace
}  // namespace jcs::runtime
