#include "runtime/project/root_access.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

using ::testing::HasSubstr;

constexpr uid_t kAlice = 1001;
constexpr uid_t kBob = 1000;
constexpr gid_t kStaff = 2000;

class RootAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under /tmp, not TEST_TMPDIR: the test's own ancestors (e.g. /root)
    // may not be searchable by the uids the tests check.
    std::string pattern = "/tmp/jcs_access_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    char* real = realpath(pattern.c_str(), nullptr);
    ASSERT_NE(real, nullptr);
    tmp_ = real;
    free(real);
    ASSERT_EQ(chmod(tmp_.c_str(), 0755), 0);
  }

  // A directory owned by uid:gid with `mode` (chmod after mkdir: no umask).
  std::string Dir(const std::string& rel, uid_t uid, gid_t gid, mode_t mode) {
    const std::string path = tmp_ + "/" + rel;
    EXPECT_EQ(mkdir(path.c_str(), 0700), 0) << path;
    EXPECT_EQ(chown(path.c_str(), uid, gid), 0) << path;
    EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
    return path;
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(tmp_, ignored);
  }

  std::string tmp_;
};

TEST_F(RootAccessTest, GrantedBitsFollowOwnerGroupOther) {
  struct stat st = {};
  st.st_uid = kAlice;
  st.st_gid = kStaff;
  st.st_mode = S_IFDIR | 0751;
  EXPECT_EQ(GrantedBits(st, {kAlice, kAlice, {}}), 7);
  EXPECT_EQ(GrantedBits(st, {kBob, kStaff, {}}), 5);
  EXPECT_EQ(GrantedBits(st, {kBob, kBob, {kStaff}}), 5);  // supplementary
  EXPECT_EQ(GrantedBits(st, {kBob, kBob, {}}), 1);
  // The owner class wins even when it grants less than the group class.
  st.st_mode = S_IFDIR | 0070;
  EXPECT_EQ(GrantedBits(st, {kAlice, kStaff, {}}), 0);
}

TEST_F(RootAccessTest, OwnerMayUseItsDirectory) {
  const std::string home = Dir("alice", kAlice, kAlice, 0700);
  EXPECT_TRUE(CheckPeerRootAccess(home, {kAlice, kAlice, {}}).ok());
}

TEST_F(RootAccessTest, AnotherUserMayNotUseAPrivateDirectory) {
  const std::string home = Dir("alice", kAlice, kAlice, 0700);
  absl::Status status = CheckPeerRootAccess(home, {kBob, kBob, {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(status.message()), HasSubstr("uid 1000"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("no read+write+search permission on " + home));
}

TEST_F(RootAccessTest, ReadOnlyForTheClientIsRefused) {
  const std::string shared = Dir("shared", kAlice, kStaff, 0755);
  absl::Status status = CheckPeerRootAccess(shared, {kBob, kBob, {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no write permission"));
}

TEST_F(RootAccessTest, GroupWritableThroughASupplementaryGroup) {
  const std::string shared = Dir("team", kAlice, kStaff, 0770);
  EXPECT_TRUE(CheckPeerRootAccess(shared, {kBob, kBob, {kStaff}}).ok());
  EXPECT_FALSE(CheckPeerRootAccess(shared, {kBob, kBob, {}}).ok());
}

TEST_F(RootAccessTest, EveryAncestorMustBeSearchable) {
  Dir("locked", kAlice, kAlice, 0700);
  // Bob's own directory under Alice's private one: the kernel would not let
  // Bob reach it, so neither does the check.
  const std::string inner = Dir("locked/bob", kBob, kBob, 0700);
  absl::Status status = CheckPeerRootAccess(inner, {kBob, kBob, {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("no search permission on " + tmp_ + "/locked"));
}

TEST_F(RootAccessTest, ASymlinkComponentIsRefusedNotFollowed) {
  Dir("bobs", kBob, kBob, 0755);
  const std::string target = Dir("bobs/real", kBob, kBob, 0700);
  ASSERT_EQ(symlink(target.c_str(), (tmp_ + "/bobs/link").c_str()), 0);
  // A path that is not the real one (a link swapped in after realpath).
  absl::Status status =
      CheckPeerRootAccess(tmp_ + "/bobs/link", {kBob, kBob, {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(status.message()), HasSubstr("symlink"));
  EXPECT_TRUE(CheckPeerRootAccess(target, {kBob, kBob, {}}).ok());
}

TEST_F(RootAccessTest, RelativePathIsAnError) {
  EXPECT_EQ(CheckPeerRootAccess("rel/dir", {kBob, kBob, {}}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace jcs::runtime
