#include "loop/worker_pool.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

TEST(WorkerPoolTest, RunsEveryJobOffTheCallingThread) {
  std::atomic<int> ran{0};
  std::atomic<int> on_caller{0};
  const std::thread::id caller = std::this_thread::get_id();
  {
    WorkerPool pool(2, 100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pool.Submit([&] {
                        if (std::this_thread::get_id() == caller) ++on_caller;
                        ++ran;
                      })
                      .ok());
    }
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 50);
  EXPECT_EQ(on_caller.load(), 0);
}

TEST(WorkerPoolTest, QueueIsBounded) {
  WorkerPool pool(1, 2);
  absl::Notification release, started;
  ASSERT_TRUE(pool.Submit([&] {
                    started.Notify();
                    release.WaitForNotification();
                  })
                  .ok());
  started.WaitForNotification();
  EXPECT_TRUE(pool.Submit([] {}).ok());
  EXPECT_TRUE(pool.Submit([] {}).ok());
  absl::Status full = pool.Submit([] {});
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(pool.queued(), 2u);
  release.Notify();
}

TEST(WorkerPoolTest, ABlockedJobDoesNotBlockTheOthers) {
  WorkerPool pool(2, 10);
  absl::Notification release, other_ran;
  ASSERT_TRUE(pool.Submit([&] { release.WaitForNotification(); }).ok());
  ASSERT_TRUE(pool.Submit([&] { other_ran.Notify(); }).ok());
  EXPECT_TRUE(other_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  release.Notify();
}

}  // namespace
}  // namespace jcs::runtime
