#include "jail/background_thread.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

// A gate the test opens to let a blocked task finish.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// BackgroundThreads live as long as the process, by design: each test's is
// kept reachable here (LeakSanitizer counts it as held, not leaked).
BackgroundThread* NewThread() {
  static auto* const all = new std::vector<BackgroundThread*>();
  all->push_back(new BackgroundThread());
  return all->back();
}

bool WaitUntil(const std::function<bool()>& done) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(BackgroundThreadTest, RunsTasksInOrderOnOneOtherThread) {
  BackgroundThread* thread = NewThread();
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> ids;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(thread->Submit([&, i] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      ids.push_back(std::this_thread::get_id());
    }));
  }
  ASSERT_TRUE(WaitUntil([&] { return !thread->busy(); }));
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  for (const std::thread::id id : ids) {
    EXPECT_EQ(id, ids[0]);
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(BackgroundThreadTest, StopThatDropsWaitsForTheRunningTaskOnly) {
  BackgroundThread* thread = NewThread();
  Gate gate;
  std::atomic<bool> started{false}, first_done{false}, second_ran{false};
  ASSERT_TRUE(thread->Submit([&] {
    started = true;
    gate.Wait();
    first_done = true;
  }));
  ASSERT_TRUE(thread->Submit([&] { second_ran = true; }));
  ASSERT_TRUE(WaitUntil([&] { return started.load(); }));
  std::thread stopper([&] { thread->Stop(/*drop_queued=*/true); });
  ASSERT_TRUE(WaitUntil([&] { return thread->stopping(); }));
  EXPECT_FALSE(thread->Submit([] {}));  // refused once stopping
  gate.Open();
  stopper.join();  // returns only after the running task ended
  EXPECT_TRUE(first_done);
  EXPECT_FALSE(second_ran);
}

TEST(BackgroundThreadTest, StopThatDrainsRunsEveryQueuedTask) {
  BackgroundThread* thread = NewThread();
  Gate gate;
  std::atomic<int> ran{0};
  ASSERT_TRUE(thread->Submit([&] {
    gate.Wait();
    ++ran;
  }));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(thread->Submit([&] { ++ran; }));
  std::thread stopper([&] { thread->Stop(/*drop_queued=*/false); });
  ASSERT_TRUE(WaitUntil([&] { return thread->stopping(); }));
  gate.Open();
  stopper.join();
  EXPECT_EQ(ran, 11);
  EXPECT_FALSE(thread->busy());
}

}  // namespace
}  // namespace jcs::jail
