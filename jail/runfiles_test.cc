#include "jail/runfiles.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kSystem = {"/usr", "/bin", "/lib", "/etc"};

class RunfilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/runfiles_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = fs::canonical(tmpl).string();
    for (const char* dir : {"tree/ws/pkg", "out/bin/pkg", "out/bin/pkg/deep",
                            "src/pkg", "data/dir", "manifest_only", "root"}) {
      fs::create_directories(base_ + "/" + dir);
    }
    for (const char* file :
         {"out/bin/pkg/test", "out/bin/pkg/deep/lib.so", "src/pkg/input.txt",
          "data/dir/a", "manifest_only/m"}) {
      std::ofstream(base_ + "/" + file) << "x";
    }
  }
  void TearDown() override { fs::remove_all(base_); }

  void Link(const std::string& target, const std::string& rel) {
    fs::create_symlink(target, base_ + "/tree/" + rel);
  }
  absl::StatusOr<std::vector<std::string>> Binds() {
    return RunfilesBinds(base_ + "/tree", base_ + "/root", kSystem);
  }

  std::string base_;
};

TEST_F(RunfilesTest, BindsTheTreeAndTheOutermostTargetDirectories) {
  Link(base_ + "/out/bin/pkg/test", "ws/pkg/test");
  Link(base_ + "/out/bin/pkg/deep/lib.so", "ws/pkg/lib.so");
  Link(base_ + "/src/pkg/input.txt", "ws/pkg/input.txt");
  Link(base_ + "/data/dir", "ws/dir");          // a directory: bound whole
  Link("/usr/bin/env", "ws/env");               // a system file: bound already
  Link(base_ + "/nonexistent", "ws/dangling");  // nothing to show
  std::ofstream(base_ + "/tree/MANIFEST")
      << "ws/pkg/test " << base_ << "/out/bin/pkg/test\n"
      << "ws/m " << base_ << "/manifest_only/m\n"
      << "ws/empty_file \n";
  auto binds = Binds();
  ASSERT_TRUE(binds.ok()) << binds.status();
  EXPECT_THAT(*binds, ElementsAre(base_ + "/data/dir", base_ + "/manifest_only",
                                  base_ + "/out/bin/pkg", base_ + "/src/pkg",
                                  base_ + "/tree"));
}

// Bazel's runfiles link into bazel-out, whose entries link to the sources:
// the jail resolves the chain hop by hop, so every hop's directory is bound.
TEST_F(RunfilesTest, EveryHopOfALinkChainIsBound) {
  fs::create_symlink(base_ + "/src/pkg/input.txt",
                     base_ + "/out/bin/pkg/input.txt");
  Link(base_ + "/out/bin/pkg/input.txt", "ws/pkg/input.txt");
  auto binds = Binds();
  ASSERT_TRUE(binds.ok()) << binds.status();
  EXPECT_THAT(*binds, ElementsAre(base_ + "/out/bin/pkg", base_ + "/src/pkg",
                                  base_ + "/tree"));
}

TEST_F(RunfilesTest, ATreeInsideATargetDirectoryIsCoveredByIt) {
  fs::create_directories(base_ + "/out/bin/pkg/test.runfiles/ws");
  fs::create_symlink(base_ + "/out/bin/pkg/test",
                     base_ + "/out/bin/pkg/test.runfiles/ws/test");
  auto binds = RunfilesBinds(base_ + "/out/bin/pkg/test.runfiles",
                             base_ + "/root", kSystem);
  ASSERT_TRUE(binds.ok()) << binds.status();
  EXPECT_THAT(*binds, ElementsAre(base_ + "/out/bin/pkg"));
}

TEST_F(RunfilesTest, LinksIntoProcDevOrSysAreRefused) {
  Link("/proc/self/environ", "ws/environ");
  auto binds = Binds();
  ASSERT_FALSE(binds.ok());
  EXPECT_THAT(binds.status().message(), HasSubstr("/proc"));
  EXPECT_THAT(binds.status().message(), HasSubstr("ws/environ"));
}

TEST_F(RunfilesTest, ATargetDirectoryHoldingTheRootIsRefused) {
  // Binding base_ read-only would hide the jail's root below it.
  Link(base_, "ws/everything");
  auto binds = Binds();
  ASSERT_FALSE(binds.ok());
  EXPECT_THAT(binds.status().message(), HasSubstr("contains the root"));
}

TEST_F(RunfilesTest, TargetsBelowTheRootNeedNoBind) {
  std::ofstream(base_ + "/root/own") << "x";
  Link(base_ + "/root/own", "ws/own");
  auto binds = Binds();
  ASSERT_TRUE(binds.ok()) << binds.status();
  EXPECT_THAT(*binds, ElementsAre(base_ + "/tree"));
}

TEST_F(RunfilesTest, NotADirectoryIsAClearError) {
  auto binds =
      RunfilesBinds(base_ + "/src/pkg/input.txt", base_ + "/root", kSystem);
  ASSERT_FALSE(binds.ok());
  EXPECT_THAT(binds.status().message(), HasSubstr("is not a directory"));
}

TEST(OutermostDirectoriesTest, KeepsOnlyPathsNoOtherPathContains) {
  EXPECT_THAT(OutermostDirectories(
                  {"/a/c", "/a-b", "/a", "/a/c/d", "/b/x", "/b/x", "/ab"}),
              ElementsAre("/a", "/a-b", "/ab", "/b/x"));
  EXPECT_THAT(OutermostDirectories({"/x/y", "/"}), ElementsAre("/"));
  EXPECT_THAT(OutermostDirectories({}), ElementsAre());
}

}  // namespace
}  // namespace jcs::jail
