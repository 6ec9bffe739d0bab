#include "base/background_thread_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace jcs {

bool RunThisThreadBehindTheLoop(int nice) {
  // pid 0 is the calling thread: the policy and nice value are per thread
  // on Linux, so the rest of the process keeps its own.
  struct sched_param param = {};
  param.sched_priority = 0;
  const bool batch = sched_setscheduler(0, SCHED_BATCH, &param) == 0;
  if (nice != 0) {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
  }
  return batch;
}

}  // namespace jcs
