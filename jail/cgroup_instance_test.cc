#include "jail/cgroup_instance.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail::cgroup_instance {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

InstanceId Id(pid_t pid, uint64_t start, uint64_t pid_ns, uint64_t time_ns) {
  InstanceId id;
  id.pid = pid;
  id.start_ticks = start;
  id.pid_ns = pid_ns;
  id.time_ns = time_ns;
  return id;
}

// A start-time oracle: pid 10 started at tick 500, pid 11 cannot be read,
// every other pid does not exist.
absl::StatusOr<std::optional<uint64_t>> FakeStart(pid_t pid) {
  if (pid == 10) return std::optional<uint64_t>(500);
  if (pid == 11) return absl::PermissionDeniedError("denied");
  return std::optional<uint64_t>();
}

TEST(CgroupInstanceTest, NameRoundTrip) {
  const InstanceId id = Id(1234, 98765, 4026531836, 4026531834);
  EXPECT_EQ(InstanceName(id), "inst-1234-98765-p4026531836-t4026531834");
  std::optional<InstanceId> parsed = ParseInstanceName(InstanceName(id));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, id);
  for (const char* bad :
       {"run-12-1", "inst-12-3-p4", "inst-12-3-4-5", "inst--3-p4-t5",
        "inst-0-3-p4-t5", "inst-1a-3-p4-t5", "inst-1-3-p4-t5-x",
        "inst-1-+3-p4-t5", "inst-99999999999-3-p4-t5", "xinst-1-3-p4-t5"}) {
    EXPECT_FALSE(ParseInstanceName(bad).has_value()) << bad;
  }
}

TEST(CgroupInstanceTest, OwnInstanceIsThisProcess) {
  absl::StatusOr<InstanceId> self = OwnInstance();
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(self->pid, getpid());
  absl::StatusOr<std::optional<uint64_t>> start = ProcStartTime(getpid());
  ASSERT_TRUE(start.ok() && start->has_value());
  EXPECT_EQ(self->start_ticks, **start);
  struct stat st;
  ASSERT_EQ(stat("/proc/self/ns/pid", &st), 0);
  EXPECT_EQ(self->pid_ns, st.st_ino);
}

TEST(CgroupInstanceTest, OnlyADeadOwnerOfTheSameNamespacesIsProvablyDead) {
  const InstanceId self = Id(1, 1, 100, 200);
  // Same namespaces: a missing pid, or a pid that started at another time.
  EXPECT_TRUE(OwnerProvablyDead(Id(12, 500, 100, 200), self, FakeStart));
  EXPECT_TRUE(OwnerProvablyDead(Id(10, 499, 100, 200), self, FakeStart));
  // Alive with the recorded start time.
  EXPECT_FALSE(OwnerProvablyDead(Id(10, 500, 100, 200), self, FakeStart));
  // /proc cannot tell.
  EXPECT_FALSE(OwnerProvablyDead(Id(11, 500, 100, 200), self, FakeStart));
  // Another pid or time namespace: its pid means nothing here.
  EXPECT_FALSE(OwnerProvablyDead(Id(12, 500, 101, 200), self, FakeStart));
  EXPECT_FALSE(OwnerProvablyDead(Id(12, 500, 100, 201), self, FakeStart));
  // Itself.
  EXPECT_FALSE(OwnerProvablyDead(self, self, FakeStart));
}

TEST(CgroupInstanceTest, StaleNamesAreTheProvablyDeadInstances) {
  const InstanceId self = Id(1, 1, 100, 200);
  EXPECT_THAT(StaleInstanceNames({InstanceName(Id(12, 5, 100, 200)),
                                  InstanceName(Id(10, 500, 100, 200)),
                                  InstanceName(Id(12, 5, 999, 200)), "run-12-1",
                                  "inst-garbage"},
                                 self, FakeStart),
              ElementsAre(InstanceName(Id(12, 5, 100, 200))));
  EXPECT_THAT(StaleInstanceNames({}, self, FakeStart), IsEmpty());
}

// The first user creates the instance directory, the last one removes it;
// a directory with something left in it is not forced.
TEST(CgroupInstanceTest, AcquireAndReleaseCountUsers) {
  char tmpl[] = "/tmp/cgroup_instance_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string parent = tmpl;
  absl::StatusOr<Acquired> a = AcquireInstanceDir(parent);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->first);
  EXPECT_EQ(a->dir, parent + "/" + InstanceName(*OwnInstance()));
  EXPECT_TRUE(IsDir(a->dir));
  absl::StatusOr<Acquired> b = AcquireInstanceDir(parent);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->first);
  EXPECT_EQ(b->dir, a->dir);
  ReleaseInstanceDir(parent);
  EXPECT_TRUE(IsDir(a->dir));
  ReleaseInstanceDir(parent);
  EXPECT_FALSE(IsDir(a->dir));
  ReleaseInstanceDir(parent);  // one release too many: no effect

  a = AcquireInstanceDir(parent);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->first);
  ASSERT_EQ(mkdir((a->dir + "/left").c_str(), 0755), 0);
  ReleaseInstanceDir(parent);
  EXPECT_TRUE(IsDir(a->dir + "/left"));
  rmdir((a->dir + "/left").c_str());
  rmdir(a->dir.c_str());

  EXPECT_FALSE(AcquireInstanceDir(parent + "/missing").ok());
  rmdir(parent.c_str());
}

TEST(CgroupInstanceTest, EachDirectoryIsSweptOnce) {
  const std::string dir = absl::StrCat("/sweep-test-", getpid());
  EXPECT_TRUE(FirstSweepOf(dir));
  EXPECT_FALSE(FirstSweepOf(dir));
}

}  // namespace
}  // namespace jcs::jail::cgroup_instance
