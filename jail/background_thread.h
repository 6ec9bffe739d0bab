// One long-lived thread that runs tasks in order, off the event loop: the
// jail supervisor's blocking work (building warm jails, tearing jails down)
// must never hold up the loop that answers every client.
#ifndef JCS_JAIL_BACKGROUND_THREAD_H_
#define JCS_JAIL_BACKGROUND_THREAD_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace jcs::jail {

class BackgroundThread {
 public:
  // The thread lives as long as the process (it is never joined): a jail's
  // init has PR_SET_PDEATHSIG, which fires when the thread that cloned it
  // exits, so the thread that clones jails must not.
  BackgroundThread();
  BackgroundThread(const BackgroundThread&) = delete;
  BackgroundThread& operator=(const BackgroundThread&) = delete;

  // False once Stop() was called (the task is not run).
  bool Submit(std::function<void()> task);
  // Refuses new tasks, then waits for the one running. Queued tasks are
  // dropped (`drop_queued`) or run first.
  void Stop(bool drop_queued);
  bool stopping();
  // True while a task is queued or running.
  bool busy();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool running_task_ = false;
  bool stopping_ = false;
};

}  // namespace jcs::jail

#endif  // JCS_JAIL_BACKGROUND_THREAD_H_
