#include "loop/worker_pool.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/background_thread_priority.h"

namespace jcs::runtime {

WorkerPool::WorkerPool(int threads, size_t max_queued)
    : max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

absl::Status WorkerPool::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::FailedPreconditionError("worker pool stopping");
    if (jobs_.size() >= max_queued_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "worker pool: ", max_queued_, " jobs already wait for a thread"));
    }
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return absl::OkStatus();
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

void WorkerPool::Work() {
  // Below the loop's priority: on a busy host the loop (every client's
  // latency) gets the CPU before a background scan does, and a woken
  // worker never preempts the loop that queued its job.
  RunThisThreadBehindTheLoop(kWorkerNice);
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

WorkerPool& WorkerPool::Shared() {
  static WorkerPool* pool = new WorkerPool(kSharedThreads, kSharedMaxQueued);
  return *pool;
}

}  // namespace jcs::runtime
