// Project quotas: the fail-closed check on filesystems that cannot enforce a
// budget, the project-id walk (symlinks, other mounts, FIFOs, trees deeper
// than PATH_MAX with few descriptors, a directory moved away mid-walk), and,
// where the kernel can (XFS for project ids; ext4 with prjquota for limits),
// the tagging and limits themselves. The test runs in its own mount
// namespace, so every mount it makes disappears with it.
#include "jail/project_quota.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

// Runs argv (absolute path) and returns its exit status (-1 if it did not
// exit normally).
int RunProgram(const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void MakeDir(const std::string& path) {
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0) << path << ": " << strerror(errno);
}

void WriteFile(const std::string& path, const std::string& content) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  fputs(content.c_str(), f);
  fclose(f);
}

int OpenDir(const std::string& path) {
  return open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

class ProjectQuotaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Private mounts: nothing this test mounts is seen by, or outlives, it.
    ASSERT_EQ(unshare(CLONE_NEWNS), 0) << strerror(errno);
    ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
  }

  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string tmpl =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/pq-XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override {
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
      umount2(it->c_str(), MNT_DETACH);
    }
    RunProgram({"/bin/rm", "-rf", dir_});
  }

  // A fresh tmpfs at <dir>/<name>.
  std::string MountTmpfs(const std::string& at) {
    MakeDir(at);
    EXPECT_EQ(mount("tmpfs", at.c_str(), "tmpfs", 0, "size=16m"), 0)
        << strerror(errno);
    mounts_.push_back(at);
    return at;
  }

  // Mounts a new `fs` image at <dir>/<name>; "" when this host cannot.
  std::string MountImage(const std::string& name,
                         const std::vector<std::string>& mkfs, size_t size,
                         const std::string& options) {
    const std::string image = absl::StrCat(dir_, "/", name, ".img");
    const std::string at = absl::StrCat(dir_, "/", name);
    if (access(mkfs[0].c_str(), X_OK) != 0) return "";
    const int fd =
        open(image.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return "";
    const bool sized = ftruncate(fd, static_cast<off_t>(size)) == 0;
    close(fd);
    if (!sized) return "";
    std::vector<std::string> cmd = mkfs;
    cmd.push_back(image);
    if (RunProgram(cmd) != 0) return "";
    MakeDir(at);
    if (RunProgram({"/bin/mount", "-o", options, image, at}) != 0) return "";
    mounts_.push_back(at);
    return at;
  }

  std::string dir_;
  std::vector<std::string> mounts_;
};

TEST_F(ProjectQuotaTest, DerivedIdsAreStableAndInJcsRange) {
  const uint32_t a = DerivedProjectId("/srv/project", 0);
  EXPECT_EQ(a, DerivedProjectId("/srv/project", 0));
  EXPECT_NE(a, DerivedProjectId("/srv/project", 1));
  EXPECT_NE(a, DerivedProjectId("/srv/other", 0));
  for (const char* root : {"/", "/a", "/srv/project", "/x/y/z"}) {
    for (uint32_t attempt : {0u, 1u, kProjectIdCount - 1, kProjectIdCount}) {
      const uint32_t id = DerivedProjectId(root, attempt);
      EXPECT_GE(id, kProjectIdFirst);
      EXPECT_LT(id, kProjectIdFirst + kProjectIdCount);
    }
  }
}

// The id choice: the root's recorded id is kept; ids in use (usage or
// limits, e.g. an administrator's or another project's) are skipped.
TEST_F(ProjectQuotaTest, ChoiceKeepsTheRecordedIdAndSkipsIdsInUse) {
  const std::string root = "/srv/p";
  const uint32_t first = DerivedProjectId(root, 0);
  const uint32_t second = DerivedProjectId(root, 1);
  const auto in_use = [&](std::set<uint32_t> used) {
    return [used](uint32_t id) -> absl::StatusOr<bool> {
      return used.count(id) > 0;
    };
  };
  EXPECT_EQ(*ChooseProjectIdWith(root, 0, in_use({})), first);
  EXPECT_EQ(*ChooseProjectIdWith(root, 0, in_use({first})), second);
  // Recorded by an earlier start (its usage makes it read as in use).
  EXPECT_EQ(*ChooseProjectIdWith(root, second, in_use({first, second})),
            second);
  // An id the root carries that is not jcs's is not trusted as a record.
  EXPECT_EQ(*ChooseProjectIdWith(root, 42, in_use({42})), first);
  std::set<uint32_t> all;
  for (uint32_t i = 0; i < kProjectIdProbes; ++i) {
    all.insert(DerivedProjectId(root, i));
  }
  absl::StatusOr<uint32_t> none = ChooseProjectIdWith(root, 0, in_use(all));
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::StartsWith(none.status().message(),
                               "disk_quota_unavailable: no free project id"))
      << none.status();
  const absl::Status broken = absl::InternalError("disk_quota_failed: x");
  EXPECT_EQ(
      ChooseProjectIdWith(
          root, 0, [&](uint32_t) -> absl::StatusOr<bool> { return broken; })
          .status(),
      broken);
}

TEST_F(ProjectQuotaTest, MountOfFdDecodesTypeAndEscapedMountPoint) {
  const std::string at = MountTmpfs(dir_ + "/with space");
  const int fd = OpenDir(at);
  ASSERT_GE(fd, 0);
  absl::StatusOr<MountInfo> info = MountOfFd(fd);
  close(fd);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->fs_type, "tmpfs");
  EXPECT_EQ(info->mount_point, at);
}

// The attack: a budget on a filesystem that cannot enforce it must not be
// accepted as if it were in force.
TEST_F(ProjectQuotaTest, TmpfsBudgetIsRefusedWithTheMissingLayerAndFix) {
  const std::string at = MountTmpfs(dir_ + "/tmpfs");
  absl::StatusOr<uint32_t> id =
      ApplyProjectQuota(at, {.bytes = 8u << 20, .inodes = std::nullopt});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(id.status().message(),
            absl::StrCat("disk_quota_unavailable: tmpfs at ", at,
                         " has no project quotas; move the project to ext4 or "
                         "XFS and mount with prjquota (ext4 needs the "
                         "'project' feature: tune2fs -O project -Q prjquota) "
                         "or drop disk_quota_bytes"));
  // The hint names exactly the options that were given.
  id = ApplyProjectQuota(at, {.bytes = std::nullopt, .inodes = 100});
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(
      absl::EndsWith(id.status().message(), "or drop disk_quota_inodes"))
      << id.status();
  id = ApplyProjectQuota(at, {.bytes = 1, .inodes = 100});
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(absl::EndsWith(id.status().message(),
                             "or drop disk_quota_bytes and disk_quota_inodes"))
      << id.status();
}

TEST_F(ProjectQuotaTest, HostFilesystemWithoutPrjquotaIsRefused) {
  const int fd = OpenDir(dir_);
  ASSERT_GE(fd, 0);
  absl::StatusOr<MountInfo> info = MountOfFd(fd);
  ASSERT_TRUE(info.ok()) << info.status();
  const absl::Status enforced = CheckProjectQuotaEnforced(fd, "");
  close(fd);
  if (enforced.ok()) {
    GTEST_SKIP() << "the test's own filesystem enforces project quotas";
  }
  EXPECT_TRUE(absl::StartsWith(
      enforced.message(),
      absl::StrCat("disk_quota_unavailable: ", info->fs_type, " at ",
                   info->mount_point, " has no project quotas; ")))
      << enforced;
  if (info->fs_type == "ext4") {
    EXPECT_TRUE(absl::EndsWith(enforced.message(),
                               "mount with prjquota (ext4 needs the 'project' "
                               "feature: tune2fs -O project -Q prjquota)"))
        << enforced;
  }
  const ProjectQuotaProbe probe = ProbeProjectQuota(dir_);
  EXPECT_FALSE(probe.available);
  EXPECT_TRUE(absl::StartsWith(probe.detail, info->fs_type)) << probe.detail;
  EXPECT_FALSE(probe.fix.empty());
}

TEST_F(ProjectQuotaTest, NoBudgetDoesNothing) {
  const std::string at = MountTmpfs(dir_ + "/none");
  absl::StatusOr<uint32_t> id = ApplyProjectQuota(at, {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 0u);
}

std::set<std::string> Walk(const std::string& root, absl::Status* status) {
  std::set<std::string> seen;
  const int fd = OpenDir(root);
  EXPECT_GE(fd, 0);
  *status = WalkProjectTree(fd, [&](int, bool is_dir, const std::string& rel) {
    seen.insert(is_dir ? rel + "/" : rel);
    return absl::OkStatus();
  });
  close(fd);
  return seen;
}

// The walk must only reach the project's own files: a symlink to a host
// directory or file, a FIFO (opening it would block), and another filesystem
// mounted inside the tree are never visited.
TEST_F(ProjectQuotaTest, WalkStaysInsideTheTreeAndNeverFollowsLinks) {
  const std::string fs = MountTmpfs(dir_ + "/fs");
  const std::string root = fs + "/root";
  const std::string outside = fs + "/outside";
  MakeDir(root);
  MakeDir(outside);
  WriteFile(outside + "/secret", "x");
  MakeDir(root + "/src");
  WriteFile(root + "/src/main.c", "int main;");
  WriteFile(root + "/top", "t");
  ASSERT_EQ(symlink(outside.c_str(), (root + "/src/to_dir").c_str()), 0);
  ASSERT_EQ(symlink((outside + "/secret").c_str(), (root + "/to_file").c_str()),
            0);
  ASSERT_EQ(mkfifo((root + "/fifo").c_str(), 0600), 0);
  MakeDir(root + "/mnt");
  const std::string inner = MountTmpfs(root + "/mnt/inner");
  WriteFile(inner + "/other_fs", "o");

  absl::Status status;
  const std::set<std::string> seen = Walk(root, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(seen,
            (std::set<std::string>{"./", "src/", "src/main.c", "top", "mnt/"}));
}

// Deeper than PATH_MAX, with RLIMIT_NOFILE far below the depth: a walk that
// kept a descriptor per level, or used paths, could not finish.
TEST_F(ProjectQuotaTest, WalkHandlesTreesDeeperThanPathMaxWithFewFds) {
  const std::string root = MountTmpfs(dir_ + "/deep");
  const int depth = 1500;  // 1500 * 11 bytes > PATH_MAX (4096)
  int fd = OpenDir(root);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < depth; ++i) {
    ASSERT_EQ(mkdirat(fd, "ddddddddddd", 0755), 0) << i << strerror(errno);
    const int next =
        openat(fd, "ddddddddddd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(next, 0);
    close(fd);
    fd = next;
  }
  const int file = openat(fd, "leaf", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  close(file);
  close(fd);

  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  struct rlimit low = old_limit;
  low.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  absl::Status status;
  int dirs = 0, files = 0;
  size_t longest = 0;
  const int root_fd = OpenDir(root);
  status =
      WalkProjectTree(root_fd, [&](int, bool is_dir, const std::string& rel) {
        (is_dir ? dirs : files)++;
        longest = std::max(longest, rel.size());
        return absl::OkStatus();
      });
  close(root_fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(dirs, depth + 1);
  EXPECT_EQ(files, 1);
  EXPECT_GT(longest, 4096u);
}

// A directory moved out of the project while the walk is inside it: climbing
// back with ".." would land outside; the walk must stop instead of tagging
// whatever is there.
TEST_F(ProjectQuotaTest, WalkStopsWhenADirectoryIsMovedAwayMidWalk) {
  const std::string fs = MountTmpfs(dir_ + "/moving");
  const std::string root = fs + "/root";
  MakeDir(root);
  MakeDir(root + "/a");
  MakeDir(root + "/a/b");
  WriteFile(root + "/a/b/file", "f");
  MakeDir(fs + "/away");
  WriteFile(fs + "/away/host_file", "h");
  std::set<std::string> seen;
  const int root_fd = OpenDir(root);
  const absl::Status status =
      WalkProjectTree(root_fd, [&](int, bool, const std::string& rel) {
        seen.insert(rel);
        if (rel == "a/b") {
          EXPECT_EQ(rename((root + "/a/b").c_str(), (fs + "/away/b").c_str()),
                    0);
        }
        return absl::OkStatus();
      });
  close(root_fd);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "a/b was moved")) << status;
  EXPECT_EQ(seen.count("host_file"), 0u);
  EXPECT_EQ(seen.count("../host_file"), 0u);
}

uint32_t ProjIdAt(const std::string& path, uint32_t* xflags = nullptr) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  struct fsxattr attr = {};
  EXPECT_EQ(ioctl(fd, FS_IOC_FSGETXATTR, &attr), 0) << path;
  close(fd);
  if (xflags != nullptr) *xflags = attr.fsx_xflags;
  return attr.fsx_projid;
}

// XFS keeps project ids even without quota support in the kernel, so the
// tagging runs on any kernel with XFS and xfsprogs.
TEST_F(ProjectQuotaTest, TagSetsIdsAndInheritanceButNotThroughSymlinks) {
  const std::string fs =
      MountImage("xfs", {"/usr/sbin/mkfs.xfs", "-q"}, 300u << 20, "loop");
  if (fs.empty()) {
    GTEST_SKIP() << "no XFS here (needs mkfs.xfs from xfsprogs, loop devices "
                    "and XFS in the kernel)";
  }
  const std::string root = fs + "/root";
  MakeDir(root);
  MakeDir(root + "/d");
  WriteFile(root + "/d/f", "f");
  WriteFile(fs + "/host_file", "h");
  ASSERT_EQ(symlink((fs + "/host_file").c_str(), (root + "/link").c_str()), 0);
  constexpr uint32_t kId = kProjectIdFirst + 7;
  const int root_fd = OpenDir(root);
  ASSERT_TRUE(TagProjectTree(root_fd, kId).ok());
  close(root_fd);
  uint32_t flags = 0;
  EXPECT_EQ(ProjIdAt(root, &flags), kId);
  EXPECT_NE(flags & FS_XFLAG_PROJINHERIT, 0u);
  EXPECT_EQ(ProjIdAt(root + "/d", &flags), kId);
  EXPECT_NE(flags & FS_XFLAG_PROJINHERIT, 0u);
  EXPECT_EQ(ProjIdAt(root + "/d/f"), kId);
  EXPECT_EQ(ProjIdAt(fs + "/host_file"), 0u);  // not through the link
  // New files inherit the id.
  WriteFile(root + "/d/new", "n");
  EXPECT_EQ(ProjIdAt(root + "/d/new"), kId);

  // This kernel or mount has no XFS project quota: a budget is refused.
  absl::StatusOr<uint32_t> id =
      ApplyProjectQuota(root, {.bytes = 1 << 20, .inodes = std::nullopt});
  if (!id.ok()) {
    EXPECT_TRUE(absl::StartsWith(
        id.status().message(),
        absl::StrCat("disk_quota_unavailable: xfs at ", fs,
                     " has no project quotas; mount with pquota")))
        << id.status();
  }
}

// The real thing, where the kernel has ext4 project quotas (CONFIG_QUOTA and
// CONFIG_QFMT_V2): limits are set on the derived id and reported back.
TEST_F(ProjectQuotaTest, Ext4PrjquotaAppliesLimitsAndReportsUsage) {
  const std::string fs =
      MountImage("ext4", {"/usr/sbin/mkfs.ext4", "-q", "-O", "quota,project"},
                 64u << 20, "loop,prjquota");
  if (fs.empty()) {
    GTEST_SKIP() << "cannot mount ext4 with prjquota here (the kernel needs "
                    "CONFIG_QUOTA and CONFIG_QFMT_V2, and loop devices)";
  }
  const std::string root = fs + "/root";
  MakeDir(root);
  WriteFile(root + "/existing", std::string(10000, 'x'));
  absl::StatusOr<uint32_t> id =
      ApplyProjectQuota(root, {.bytes = 1 << 20, .inodes = 50});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, DerivedProjectId(root, 0));
  EXPECT_EQ(ProjIdAt(root + "/existing"), *id);
  absl::StatusOr<ProjectQuotaUsage> usage = ReadProjectQuotaUsage(root);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->project_id, *id);
  EXPECT_EQ(usage->bytes_limit, 1u << 20);
  EXPECT_EQ(usage->inodes_limit, 50u);
  EXPECT_GE(usage->bytes_used, 10000u);
  EXPECT_EQ(usage->inodes_used, 2u);
  // A restart finds its own id again, and a second project gets another.
  EXPECT_EQ(
      *ApplyProjectQuota(root, {.bytes = 2 << 20, .inodes = std::nullopt}),
      *id);
  MakeDir(fs + "/second");
  absl::StatusOr<uint32_t> second = ApplyProjectQuota(
      fs + "/second", {.bytes = 1 << 20, .inodes = std::nullopt});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*second, *id);
}

}  // namespace
}  // namespace jcs::jail
