// The supervisor's event loop: one io_uring (liburing) that owns the thread it
// runs on and drives every fd with completion callbacks.
//
// Threading. The loop belongs to the first thread that calls any of its
// methods other than Post() and Stop() (normally the thread that runs it).
// Every other method must be called on that thread, from a callback or around
// Run(); calls from another thread fail with FAILED_PRECONDITION. Post() and
// Stop() may be called from any thread. Destroy the loop on its thread.
//
// Operations. Read, Write, WriteAll, Accept, Poll, Timeout and WaitPid run
// their callback exactly once, on the loop thread, with the kernel's result
// `res` (cqe->res: >= 0 on success, a negative errno on error). The
// multishot variants run their callback once per completion with
// `more == true` while the operation stays armed, and a last time with
// `more == false` when it ends (cancelled, failed, or terminated by the kernel,
// e.g. after a completion-queue overflow: re-arm if you still want it).
// Nothing is ever run inline from the call that starts an operation.
//
// Buffers are owned by the caller and must stay valid and unmoved until the
// operation's (last) callback has run, or until the loop is destroyed.
// Every operation returns an OpId that Cancel() accepts.
//
// Cancellation. Cancel(id) asks the kernel to cancel the operation; its
// callback still runs exactly once (multishot: a last time, more == false),
// normally with -ECANCELED. If the operation had already completed in the
// kernel when the request arrived, the callback gets that real result
// instead (a read that got data reports the byte count: no data is lost).
// After the final callback the kernel no longer references the buffer.
//
// Bounds. At most Options::max_in_flight operations may be in flight (the
// loop's internal wake-up poll and cancel requests do not count); beyond that,
// starting one fails with RESOURCE_EXHAUSTED. Post()'s queue is capped by
// Options::max_posted the same way. Submissions are batched until the loop
// next waits; a full submission queue is flushed to the kernel and retried.
//
// Writes to a pipe or socket whose reader is gone raise SIGPIPE like write(2)
// does: processes using the loop should ignore SIGPIPE (jcs serve does).
#ifndef JCS_RUNTIME_EVENT_LOOP_H_
#define JCS_RUNTIME_EVENT_LOOP_H_

#include <liburing.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace jcs::runtime {

// Identifies an operation while it is in flight. Never 0; not reused for a
// long time (a slot index plus a 39-bit generation), so a stale id makes
// Cancel() fail with NOT_FOUND instead of cancelling someone else's operation.
using OpId = uint64_t;

class EventLoop {
 public:
  using Callback = absl::AnyInvocable<void(int res)>;
  using MultishotCallback = absl::AnyInvocable<void(int res, bool more)>;
  using Task = absl::AnyInvocable<void()>;

  struct Options {
    // Submission queue entries (1..32768). Not a limit on operations: a full
    // submission queue is flushed and refilled.
    unsigned sq_entries = 256;
    // Cap on operations in flight (1..1048576).
    size_t max_in_flight = 4096;
    // Cap on tasks queued by Post() and not yet run.
    size_t max_posted = 65536;
    // io_uring setup flags outside this mask are never tried (see
    // uring_setup.h); tests use it to run on the fallback configurations.
    unsigned allowed_ring_flags = ~0u;
  };

  // Sets up the ring with the best flags the kernel accepts (see SetupRing()
  // in uring_setup.h). Fails with an error naming io_uring and the fix (e.g.
  // the kernel.io_uring_disabled sysctl) when io_uring is unavailable.
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(
      unsigned entries = 256);
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(
      const Options& options);

  // Cancels every operation still in flight and waits (up to a few seconds)
  // until the kernel has released their buffers; their callbacks are
  // destroyed without being run, and connections accepted meanwhile are
  // closed. Tasks still queued by Post() are destroyed without running.
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // read(2) at the fd's current position into `buffer` (at most 1 GiB):
  // res = bytes read, 0 at end of file, or -errno.
  absl::StatusOr<OpId> Read(int fd, absl::Span<char> buffer, Callback done);
  // recvmsg(2) on a socket into `*msg` (its iovecs and control buffer), with
  // MSG_CMSG_CLOEXEC: res = bytes received, 0 at end of stream, or -errno.
  // `*msg` and everything it points to must outlive the operation; the
  // kernel updates msg->msg_controllen and msg->msg_flags (MSG_CTRUNC: the
  // control buffer was too small and the descriptors that did not fit were
  // closed). The caller owns the descriptors an SCM_RIGHTS message brings.
  absl::StatusOr<OpId> RecvMsg(int fd, msghdr* msg, Callback done);
  // One write(2) of `data` (at most 1 GiB): res = bytes written (possibly
  // fewer than data.size()) or -errno.
  absl::StatusOr<OpId> Write(int fd, absl::Span<const char> data,
                             Callback done);
  // Writes all of `data`, continuing after short writes under the same OpId:
  // res = data.size(), or -errno of the failing write (-ECANCELED when
  // cancelled; part of the data may have been written then).
  absl::StatusOr<OpId> WriteAll(int fd, absl::Span<const char> data,
                                Callback done);
  // accept4(listen_fd, SOCK_CLOEXEC): res = the connected fd (owned by the
  // callback) or -errno.
  absl::StatusOr<OpId> Accept(int listen_fd, Callback done);
  // Multishot accept (Linux 5.19+): one callback per connection (res = fd,
  // SOCK_CLOEXEC) until cancelled or an error ends it.
  absl::StatusOr<OpId> AcceptMultishot(int listen_fd, MultishotCallback each);
  // One-shot poll: res = the ready events (POLLIN, POLLOUT, POLLHUP, ...) or
  // -errno. `events` is a poll(2) mask.
  absl::StatusOr<OpId> Poll(int fd, uint32_t events, Callback done);
  // Multishot poll: a callback each time the fd becomes ready (edge-like: on
  // each wake-up of the fd, not continuously while it stays ready).
  absl::StatusOr<OpId> PollMultishot(int fd, uint32_t events,
                                     MultishotCallback each);
  // Deadline `after` from now on CLOCK_MONOTONIC (measured when Timeout() is
  // called, not when the ring is next submitted; a negative duration fires at
  // once). res = 0 when the deadline passed (the kernel's -ETIME is reported
  // as 0), -ECANCELED when cancelled: res < 0 means it did not fire.
  // Resolution is the kernel's hrtimer; the callback runs when the loop next
  // processes completions after the deadline.
  absl::StatusOr<OpId> Timeout(absl::Duration after, Callback done);
  // Fires when the process behind `pidfd` (pidfd_open(2) or clone3
  // CLONE_PIDFD) has exited: a one-shot POLLIN poll on the pidfd, since
  // liburing 2.3 has no IORING_OP_WAITID. res = POLLIN (> 0) or -errno. The
  // process is not reaped: call waitid(P_PIDFD, pidfd, ..., WEXITED) in the
  // callback to collect its status.
  absl::StatusOr<OpId> WaitPid(int pidfd, Callback done);

  // Requests cancellation of an operation in flight (see the top comment).
  // NOT_FOUND when `id` is not in flight (already completed, its final
  // callback has run, or never existed). Cancelling twice is harmless.
  absl::Status Cancel(OpId id);

  // Queues `task` to run on the loop thread and wakes the loop. Thread-safe;
  // from the loop thread the task runs on a later iteration, never inline.
  // RESOURCE_EXHAUSTED when Options::max_posted tasks are already queued.
  absl::Status Post(Task task);

  // Runs until Stop(): waits for completions and runs their callbacks and the
  // posted tasks. Errors only when io_uring itself fails.
  absl::Status Run();
  // Makes Run() return after the current batch of callbacks. Thread-safe. A
  // Stop() while Run() is not running makes the next Run() return after its
  // first batch.
  void Stop();
  // Submits pending operations, waits up to `timeout` (0: do not wait,
  // InfiniteDuration(): until something completes) for a completion or a
  // posted task, then runs the callbacks and tasks that are ready. Returns how
  // many callbacks and tasks ran (0 after a timeout). Not reentrant: calling
  // it (or Run) from a callback fails with FAILED_PRECONDITION.
  absl::StatusOr<int> RunOnce(absl::Duration timeout);

  // Hands the operations queued so far to the kernel now, instead of at the
  // loop's next wait: a reply queued with Write/WriteAll leaves before the
  // rest of this turn's work (see telemetry::Bus::Held). Their callbacks
  // still run on a later turn. Loop thread only.
  absl::Status SubmitQueued();

  // Operations in flight (excluding the loop's internal ones).
  size_t in_flight() const { return in_flight_; }
  // The io_uring setup flags in use (IORING_SETUP_*).
  unsigned ring_flags() const { return ring_flags_; }
  // True on the loop's thread, and on any thread before the loop is bound.
  bool IsLoopThread() const;

  // How long each round between two waits took, for operators (a callback
  // that blocks the loop shows here) and for tests. Two clocks: the round's
  // wall time, which shows a blocking call on the loop, and the loop thread's
  // CPU time in it (see RecordRound), which a loop preempted on a saturated
  // host does not accumulate, so a loop that computes too long can be told
  // from a busy machine.
  struct Stats {
    static constexpr int kBuckets = 24;
    uint64_t rounds = 0;  // rounds that ran at least one callback or task
    uint64_t max_cpu_us = 0;
    uint64_t max_wall_us = 0;
    // [i] counts rounds of [2^i, 2^(i+1)) µs (bucket 0 also takes rounds
    // under 1 µs); the last bucket takes everything above.
    std::array<uint64_t, kBuckets> cpu_us_log2 = {};
    std::array<uint64_t, kBuckets> wall_us_log2 = {};
  };
  // Loop thread only (a control request answered on the loop reads it).
  const Stats& stats() const { return stats_; }

 private:
  enum class Kind : uint8_t {
    kFree,
    kOneShot,
    kTimeout,
    kAccept,
    kMultishot,
    kAcceptMultishot,
    kWriteAll,
  };
  struct Slot {
    OpId id = 0;  // 0 while free
    uint64_t generation = 0;
    Kind kind = Kind::kFree;
    bool cancel_requested = false;
    Callback done;
    MultishotCallback each;
    // kTimeout: the absolute deadline, read by the kernel at submission.
    __kernel_timespec deadline = {};
    // kWriteAll: what is left to write.
    int fd = -1;
    const char* data = nullptr;
    size_t size = 0;
    size_t written = 0;
  };

  explicit EventLoop(const Options& options);

  absl::Status CheckThread();
  absl::StatusOr<Slot*> NewSlot(Kind kind);
  void FreeSlot(Slot* slot);
  Slot* Lookup(uint64_t user_data);
  absl::StatusOr<io_uring_sqe*> GetSqe();
  // Allocates a slot of `kind`, gets an SQE and tags it with the slot's id;
  // `prep` fills the SQE. On error nothing is left behind.
  template <typename Prep>
  absl::StatusOr<OpId> Start(Kind kind, Callback done, MultishotCallback each,
                             Prep prep);
  absl::Status ArmWake();
  void Wake();
  absl::Status SubmitNextWrite(Slot* slot);
  // Runs the callback(s) for one completion; returns how many ran.
  int Dispatch(uint64_t user_data, int res, uint32_t flags);
  int RunPosted();
  void RecordRound(uint64_t wall_us);
  // Destructor helper: cancels everything and reaps without callbacks.
  void CancelAllAndDrain();

  io_uring ring_ = {};
  bool ring_ready_ = false;
  unsigned ring_flags_ = 0;
  const size_t max_in_flight_;
  const size_t max_posted_;
  int wake_fd_ = -1;
  // The loop thread; default-constructed until the loop is first used.
  std::atomic<std::thread::id> owner_{};

  // Loop-thread state.
  bool running_ = false;
  bool wake_armed_ = false;
  bool wake_multishot_ = true;
  bool wake_seen_ = false;
  size_t in_flight_ = 0;
  std::deque<Slot> slots_;  // grows up to max_in_flight_; references stable
  std::vector<uint32_t> free_slots_;
  std::vector<Task> running_tasks_;
  Stats stats_;
  uint64_t cpu_mark_us_ = 0;  // the thread's CPU time after the last round

  std::atomic<bool> stop_{false};

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer annotations, so TSAN could not see an absl::Mutex.
  std::mutex post_mu_;
  // Guarded by post_mu_. Not ABSL_GUARDED_BY: libstdc++'s std::mutex is no
  // capability for clang's -Wthread-safety, which then rejects the build.
  std::vector<Task> posted_;
};

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_EVENT_LOOP_H_
