#include "jail/mount_plan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

std::string TempDir() {
  std::string tmpl =
      std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
      "/mount_plan_test.XXXXXX";
  return mkdtemp(tmpl.data());
}

const ChildBind* FindBind(const MountPlan& plan, const std::string& source) {
  for (const ChildBind& bind : plan.binds) {
    if (bind.source == source) return &bind;
  }
  return nullptr;
}

size_t IndexOf(const MountPlan& plan, const std::string& source) {
  for (size_t i = 0; i < plan.binds.size(); ++i) {
    if (plan.binds[i].source == source) return i;
  }
  return plan.binds.size();
}

TEST(MountPlanTest, SystemDirsRootExtrasAndDevices) {
  const std::string base = TempDir();
  const std::string usr = base + "/usr";
  ASSERT_EQ(mkdir(usr.c_str(), 0755), 0);
  ASSERT_EQ(symlink("usr/bin", (base + "/bin").c_str()), 0);
  const std::string root = base + "/project";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/sub").c_str(), 0755), 0);
  const std::string data = base + "/data";
  ASSERT_EQ(mkdir(data.c_str(), 0755), 0);
  const std::string file = base + "/config.txt";
  std::ofstream(file) << "x";

  proto::JailSpec spec;
  spec.add_system_ro(usr);
  spec.add_system_ro(base + "/bin");
  spec.add_system_ro(base + "/missing");
  spec.set_root(root);
  spec.add_rw(root + "/sub");  // deeper than the root: must come after it
  spec.add_ro(data);
  spec.add_ro(file);

  absl::StatusOr<MountPlan> plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();

  const ChildBind* system = FindBind(*plan, usr);
  ASSERT_NE(system, nullptr);
  EXPECT_TRUE(system->read_only);
  EXPECT_TRUE(system->is_dir);
  EXPECT_EQ(system->target, usr.substr(1));
  EXPECT_EQ(FindBind(*plan, base + "/missing"), nullptr);
  ASSERT_EQ(plan->symlinks.size(), 1u);
  EXPECT_EQ(plan->symlinks[0].link_target, "usr/bin");
  EXPECT_EQ(plan->symlinks[0].path, (base + "/bin").substr(1));

  const ChildBind* project = FindBind(*plan, root);
  ASSERT_NE(project, nullptr);
  EXPECT_FALSE(project->read_only);
  EXPECT_LT(IndexOf(*plan, usr), IndexOf(*plan, root));
  EXPECT_LT(IndexOf(*plan, root), IndexOf(*plan, root + "/sub"));
  EXPECT_FALSE(FindBind(*plan, root + "/sub")->read_only);
  EXPECT_TRUE(FindBind(*plan, data)->read_only);
  EXPECT_FALSE(FindBind(*plan, file)->is_dir);

  for (const char* device : kJailDevices) {
    const ChildBind* bind = FindBind(*plan, std::string("/dev/") + device);
    ASSERT_NE(bind, nullptr) << device;
    EXPECT_TRUE(bind->device);
    EXPECT_FALSE(bind->read_only);
    EXPECT_FALSE(bind->is_dir);
  }
  EXPECT_THAT(plan->read_exec,
              ::testing::UnorderedElementsAre(usr, data, file));
  EXPECT_THAT(plan->read_write,
              ::testing::UnorderedElementsAre(root, root + "/sub"));
}

TEST(MountPlanTest, VanishedBindIsAnError) {
  proto::JailSpec spec;
  spec.set_root("/nonexistent/jcs/root");
  absl::StatusOr<MountPlan> plan = PlanMounts(spec);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()),
              ::testing::HasSubstr("/nonexistent/jcs/root"));
}

TEST(MountPlanTest, StagingDirExists) {
  struct stat st;
  ASSERT_EQ(stat(StagingDir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

}  // namespace
}  // namespace jcs::jail
