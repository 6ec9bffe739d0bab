#include "loop/worker_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

// A one-shot flag built on std::mutex rather than absl::Notification, so that
// ThreadSanitizer (--config=tsan, which cannot see Debian's uninstrumented
// Abseil) sees the hand-over between the test and the pool's threads.
class Latch {
 public:
  // Signals under the lock: a waiter that returns may destroy the latch at
  // once, so nothing may touch it after the lock is released.
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  // False when the deadline passed first.
  bool WaitFor(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

constexpr std::chrono::seconds kDeadline{30};

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

// A job sees what was written before Submit, and the caller sees what the
// jobs wrote once the pool is gone, with plain (non-atomic) memory: the pool's
// own locking and joins are the only synchronisation. Under --config=tsan
// this fails when the pool's lock is invisible to ThreadSanitizer (as an
// absl::Mutex from Debian's Abseil is).
TEST(WorkerPoolTest, HandsPlainDataOverBothWays) {
  constexpr int kJobs = 200;
  std::vector<int> input(kJobs, 0);
  std::vector<int> output(kJobs, 0);
  {
    WorkerPool pool(4, kJobs);
    for (int i = 0; i < kJobs; ++i) {
      input[i] = i * 3;
      ASSERT_TRUE(
          pool.Submit([&input, &output, i] { output[i] = input[i] + 1; }).ok());
    }
  }
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(output[i], i * 3 + 1) << i;
}

TEST(WorkerPoolTest, QueueIsBounded) {
  Latch release, started;  // outlive the pool, whose threads use them
  WorkerPool pool(1, 2);
  ASSERT_TRUE(pool.Submit([&] {
                    started.Notify();
                    release.WaitFor(kDeadline);
                  })
                  .ok());
  ASSERT_TRUE(started.WaitFor(kDeadline));
  EXPECT_TRUE(pool.Submit([] {}).ok());
  EXPECT_TRUE(pool.Submit([] {}).ok());
  absl::Status full = pool.Submit([] {});
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(pool.queued(), 2u);
  release.Notify();
}

TEST(WorkerPoolTest, ABlockedJobDoesNotBlockTheOthers) {
  Latch release, other_ran;  // outlive the pool, whose threads use them
  WorkerPool pool(2, 10);
  ASSERT_TRUE(pool.Submit([&] { release.WaitFor(kDeadline); }).ok());
  ASSERT_TRUE(pool.Submit([&] { other_ran.Notify(); }).ok());
  EXPECT_TRUE(other_ran.WaitFor(kDeadline));
  release.Notify();
}

}  // namespace
}  // namespace jcs::runtime
