#include "jail/background_thread.h"

#include <thread>
#include <utility>

namespace jcs::jail {

BackgroundThread::BackgroundThread() {
  std::thread([this] { Loop(); }).detach();
}

void BackgroundThread::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !tasks_.empty(); });
      task = std::move(tasks_.front());
      tasks_.pop_front();
      running_task_ = true;
    }
    task();
    task = nullptr;  // what it held is released before it counts as done
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_task_ = false;
    }
    cv_.notify_all();
  }
}

bool BackgroundThread::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
  return true;
}

void BackgroundThread::Stop(bool drop_queued) {
  std::deque<std::function<void()>> dropped;
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  if (drop_queued) dropped.swap(tasks_);
  cv_.wait(lock, [this] { return tasks_.empty() && !running_task_; });
  // `dropped` is destroyed after the lock is released (its tasks' captures
  // may take other locks).
  lock.unlock();
}

bool BackgroundThread::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool BackgroundThread::busy() {
  std::lock_guard<std::mutex> lock(mu_);
  return running_task_ || !tasks_.empty();
}

}  // namespace jcs::jail
