// A small, bounded pool of threads for the blocking filesystem work of tool
// calls (the sensitive-path scan, the file and asset tools with their
// fsync), so the event loop never waits on a project's disk: a 200,000-file
// scan or an fsync of a large write used to stall every other client of the
// daemon for hundreds of milliseconds.
//
// Work is queued FIFO; Submit refuses (RESOURCE_EXHAUSTED) once
// `max_queued` jobs wait, so a flood of calls cannot grow memory without
// bound. A job must not touch loop-owned state: it works on copies and hands
// its result back with EventLoop::Post (see RunOffLoop in tool_runtime.h).
#ifndef JCS_RUNTIME_WORKER_POOL_H_
#define JCS_RUNTIME_WORKER_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace jcs::runtime {

class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queued);
  // Runs the jobs already queued, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  absl::Status Submit(std::function<void()> job);

  // Jobs waiting (not running).
  size_t queued() const;

  // The daemon's pool: kSharedThreads threads, never destroyed (a job still
  // running at exit must not hold the process up).
  static WorkerPool& Shared();
  static constexpr int kSharedThreads = 4;
  static constexpr size_t kSharedMaxQueued = 4096;
  // Worker threads run at this nice value (the loop keeps its own).
  static constexpr int kWorkerNice = 10;

 private:
  void Work();

  const size_t max_queued_;
  // std::mutex rather than absl::Mutex: ThreadSanitizer (--config=tsan) sees
  // a std::mutex through its pthread interceptors, but not an absl::Mutex
  // from Debian's uninstrumented Abseil, and would then report every job
  // handed over here as a race.
  mutable std::mutex mu_;
  std::condition_variable wake_;  // a job was queued, or stopping_ was set
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_WORKER_POOL_H_
