// The scheduling class of the daemon's helper threads (journal writer, log
// writer, worker pool, alert router): SCHED_BATCH, so that waking one never
// preempts the event loop thread that woke it.
//
// Measured with `perf sched timehist --state` on a 2-CPU host: an `exec`
// call's loop thread appends tool.started, which wakes the journal writer;
// the scheduler put the writer on the loop's CPU and, as an ordinary
// SCHED_OTHER thread, it preempted the loop for 255 µs (its SQLite commit)
// before the jail's command was sent: a quarter of the daemon's share of
// the call. A SCHED_BATCH thread never preempts on wakeup (the kernel's
// fair class checks the policy first); it runs when the loop sleeps, on
// an idle CPU, or at the next tick, and otherwise gets its fair share of
// the CPU, so a busy loop cannot starve it.
#ifndef JCS_BASE_BACKGROUND_THREAD_PRIORITY_H_
#define JCS_BASE_BACKGROUND_THREAD_PRIORITY_H_

namespace jcs {

// Makes the calling thread SCHED_BATCH with nice value `nice` (0 keeps the
// default weight). Best effort: a host that refuses (a seccomp profile
// without sched_setscheduler) keeps the thread as it was, which is only
// slower, never wrong. Returns whether the policy was applied.
bool RunThisThreadBehindTheLoop(int nice = 0);

}  // namespace jcs

#endif  // JCS_BASE_BACKGROUND_THREAD_PRIORITY_H_
