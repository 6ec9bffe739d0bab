#include "base/background_thread_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"

namespace jcs {
namespace {

TEST(BackgroundThreadPriorityTest, OnlyTheCallingThreadBecomesBatch) {
  const int before = sched_getscheduler(0);
  ASSERT_EQ(before, SCHED_OTHER);
  int helper_policy = -1;
  int helper_nice = -100;
  bool applied = false;
  std::thread helper([&] {
    applied = RunThisThreadBehindTheLoop(5);
    helper_policy = sched_getscheduler(0);
    errno = 0;
    helper_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  });
  helper.join();
  // Lowering one's own policy and raising one's nice value need no
  // privilege: this holds as root and as nobody.
  EXPECT_TRUE(applied);
  EXPECT_EQ(helper_policy, SCHED_BATCH);
  EXPECT_EQ(helper_nice, 5);
  // The thread that created it keeps its class and weight.
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), 0);
}

TEST(BackgroundThreadPriorityTest, NiceZeroKeepsTheWeight) {
  int helper_nice = -100;
  int helper_policy = -1;
  std::thread helper([&] {
    RunThisThreadBehindTheLoop();
    helper_policy = sched_getscheduler(0);
    helper_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  });
  helper.join();
  EXPECT_EQ(helper_policy, SCHED_BATCH);
  EXPECT_EQ(helper_nice, 0);
}

}  // namespace
}  // namespace jcs
