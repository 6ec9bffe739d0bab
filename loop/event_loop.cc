#include "loop/event_loop.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/base/optimization.h"
#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "loop/uring_setup.h"

namespace jcs::runtime {
namespace {

// user_data layout. User operations: bit 63 clear, bits 24..62 a per-slot
// generation (never 0), bits 0..23 the slot index. Internal requests: bit 63
// set. liburing's own timeout requests (LIBURING_UDATA_TIMEOUT, all ones, used
// only on kernels without IORING_FEAT_EXT_ARG) fall in the internal range too.
constexpr int kSlotBits = 24;
constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;
constexpr uint64_t kGenerationMask = (uint64_t{1} << 39) - 1;
constexpr uint64_t kInternalBit = uint64_t{1} << 63;
constexpr uint64_t kWakeTag = kInternalBit | 1;
constexpr uint64_t kCancelTag = kInternalBit | 2;

constexpr size_t kMaxInFlightLimit = size_t{1} << 20;
constexpr unsigned kMaxCqEntries = 65536;
// Reads and writes are capped per request (the result is an int).
constexpr size_t kMaxIo = size_t{1} << 30;
// The fd's current position (IORING_FEAT_RW_CUR_POS); what pipes and sockets
// need.
constexpr uint64_t kCurrentPosition = ~uint64_t{0};
// Completions handled per RunOnce() before posted tasks get their turn.
constexpr int kCqeBatch = 64;
constexpr int kMaxBatchesPerRun = 64;

unsigned IoSize(size_t n) { return static_cast<unsigned>(std::min(n, kMaxIo)); }

uint64_t MonotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // in the vDSO: no syscall
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u +
         static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// The loop thread's CPU time, exact to the call (getrusage(RUSAGE_THREAD)
// is cheaper but lags by up to a scheduler tick, 4 ms at HZ=250, which would
// move CPU time between rounds). A syscall of about 0.4 µs, read once per
// round that did work.
uint64_t ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u +
         static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

int Log2Bucket(uint64_t us, int buckets) {
  return us < 2 ? 0 : std::min(buckets - 1, 63 - __builtin_clzll(us));
}

__kernel_timespec ToKernelTimespec(absl::Duration d) {
  const int64_t sec = absl::ToInt64Seconds(d);
  __kernel_timespec ts;
  ts.tv_sec = sec;
  ts.tv_nsec = absl::ToInt64Nanoseconds(d - absl::Seconds(sec));
  return ts;
}

absl::Status UringError(const char* what, int rc) {
  return absl::InternalError(
      absl::StrCat("io_uring: ", what, " failed: ", strerror(-rc)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(unsigned entries) {
  Options options;
  options.sq_entries = entries;
  return Create(options);
}

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(
    const Options& options) {
  if (options.max_in_flight == 0 || options.max_in_flight > kMaxInFlightLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("EventLoop: max_in_flight must be in 1..",
                     kMaxInFlightLimit, ", got ", options.max_in_flight));
  }
  if (options.max_posted == 0) {
    return absl::InvalidArgumentError("EventLoop: max_posted must be >= 1");
  }
  // Room for a completion per operation in flight plus a batch of internal
  // ones; the kernel keeps overflowing completions (IORING_FEAT_NODROP)
  // anyway, this only avoids the slow path.
  RingConfig config;
  config.sq_entries = options.sq_entries;
  config.cq_entries = static_cast<unsigned>(std::min<size_t>(
      kMaxCqEntries, options.max_in_flight + 2 * size_t{options.sq_entries}));
  config.allowed_flags = options.allowed_ring_flags;

  std::unique_ptr<EventLoop> loop(new EventLoop(options));
  absl::StatusOr<unsigned> flags = SetupRing(config, &loop->ring_);
  if (!flags.ok()) return flags.status();
  loop->ring_ready_ = true;
  loop->ring_flags_ = *flags;

  loop->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->wake_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("EventLoop: eventfd failed: ", strerror(errno)));
  }
  // A SINGLE_ISSUER ring that is not started disabled belongs to the thread
  // that created it.
  if ((loop->ring_flags_ & IORING_SETUP_SINGLE_ISSUER) &&
      !(loop->ring_flags_ & IORING_SETUP_R_DISABLED)) {
    loop->owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  // Only prepares the SQE: it is submitted by the loop thread's first wait.
  if (absl::Status s = loop->ArmWake(); !s.ok()) return s;
  return loop;
}

EventLoop::EventLoop(const Options& options)
    : max_in_flight_(options.max_in_flight), max_posted_(options.max_posted) {
  free_slots_.reserve(std::min<size_t>(options.max_in_flight, 1024));
}

EventLoop::~EventLoop() {
  if (ring_ready_) {
    const std::thread::id owner = owner_.load(std::memory_order_relaxed);
    if (owner == std::this_thread::get_id()) {
      CancelAllAndDrain();
    } else if (owner != std::thread::id() && in_flight_ > 0) {
      ABSL_RAW_LOG(WARNING,
                   "EventLoop destroyed off its thread with %zu operations in "
                   "flight: they are left to the kernel's ring teardown",
                   in_flight_);
    }
    io_uring_queue_exit(&ring_);
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool EventLoop::IsLoopThread() const {
  const std::thread::id owner = owner_.load(std::memory_order_relaxed);
  return owner == std::thread::id() || owner == std::this_thread::get_id();
}

absl::Status EventLoop::CheckThread() {
  const std::thread::id owner = owner_.load(std::memory_order_relaxed);
  const std::thread::id self = std::this_thread::get_id();
  if (ABSL_PREDICT_TRUE(owner == self)) return absl::OkStatus();
  if (owner != std::thread::id()) {
    return absl::FailedPreconditionError(
        "EventLoop: called from a thread other than the loop thread (only "
        "Post() and Stop() are thread-safe)");
  }
  // First use: this thread becomes the loop thread. A ring set up with
  // SINGLE_ISSUER | R_DISABLED is enabled here so the kernel binds it to this
  // thread.
  if (ring_flags_ & IORING_SETUP_R_DISABLED) {
    if (absl::Status s = EnableRing(&ring_); !s.ok()) return s;
  }
  owner_.store(self, std::memory_order_relaxed);
  cpu_mark_us_ = ThreadCpuUs();  // the thread's work before the loop is not
  return absl::OkStatus();
}

absl::StatusOr<EventLoop::Slot*> EventLoop::NewSlot(Kind kind) {
  if (in_flight_ >= max_in_flight_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "EventLoop: ", in_flight_,
        " operations in flight, the cap (max_in_flight) is ", max_in_flight_));
  }
  uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.generation = (slot.generation + 1) & kGenerationMask;
  if (slot.generation == 0) slot.generation = 1;
  slot.id = (slot.generation << kSlotBits) | index;
  slot.kind = kind;
  slot.cancel_requested = false;
  ++in_flight_;
  return &slot;
}

void EventLoop::FreeSlot(Slot* slot) {
  const uint32_t index = static_cast<uint32_t>(slot->id & kSlotMask);
  slot->id = 0;
  slot->kind = Kind::kFree;
  slot->done = nullptr;
  slot->each = nullptr;
  slot->data = nullptr;
  free_slots_.push_back(index);
  --in_flight_;
}

EventLoop::Slot* EventLoop::Lookup(uint64_t user_data) {
  if (user_data == 0 || (user_data & kInternalBit)) return nullptr;
  const uint64_t index = user_data & kSlotMask;
  if (index >= slots_.size()) return nullptr;
  Slot& slot = slots_[index];
  return slot.id == user_data ? &slot : nullptr;
}

absl::Status EventLoop::SubmitQueued() {
  if (absl::Status s = CheckThread(); !s.ok()) return s;
  if (io_uring_sq_ready(&ring_) == 0) return absl::OkStatus();
  const int rc = io_uring_submit(&ring_);
  // EAGAIN/EBUSY: the kernel takes them at the next wait, as it would have.
  if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    return UringError("submitting queued operations", rc);
  }
  return absl::OkStatus();
}

absl::StatusOr<io_uring_sqe*> EventLoop::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // Submission queue full: hand what is queued to the kernel and retry.
  for (int attempt = 0; sqe == nullptr && attempt < 8; ++attempt) {
    const int rc = io_uring_submit(&ring_);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      return UringError("submitting a full submission queue", rc);
    }
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe == nullptr) {
    return absl::UnavailableError(
        "EventLoop: the io_uring submission queue is full and the kernel "
        "refuses more submissions (EAGAIN/EBUSY); retry after the loop has "
        "run");
  }
  return sqe;
}

template <typename Prep>
absl::StatusOr<OpId> EventLoop::Start(Kind kind, Callback done,
                                      MultishotCallback each, Prep prep) {
  if (absl::Status s = CheckThread(); ABSL_PREDICT_FALSE(!s.ok())) return s;
  const bool multishot =
      kind == Kind::kMultishot || kind == Kind::kAcceptMultishot;
  if (multishot ? !each : !done) {
    return absl::InvalidArgumentError("EventLoop: empty callback");
  }
  absl::StatusOr<Slot*> slot = NewSlot(kind);
  if (!slot.ok()) return slot.status();
  absl::StatusOr<io_uring_sqe*> sqe = GetSqe();
  if (!sqe.ok()) {
    FreeSlot(*slot);
    return sqe.status();
  }
  Slot* s = *slot;
  s->done = std::move(done);
  s->each = std::move(each);
  prep(*sqe, s);
  io_uring_sqe_set_data64(*sqe, s->id);
  return s->id;
}

absl::StatusOr<OpId> EventLoop::Read(int fd, absl::Span<char> buffer,
                                     Callback done) {
  return Start(Kind::kOneShot, std::move(done), nullptr,
               [&](io_uring_sqe* sqe, Slot*) {
                 io_uring_prep_read(sqe, fd, buffer.data(),
                                    IoSize(buffer.size()), kCurrentPosition);
               });
}

absl::StatusOr<OpId> EventLoop::RecvMsg(int fd, msghdr* msg, Callback done) {
  return Start(Kind::kOneShot, std::move(done), nullptr,
               [&](io_uring_sqe* sqe, Slot*) {
                 io_uring_prep_recvmsg(sqe, fd, msg, MSG_CMSG_CLOEXEC);
               });
}

absl::StatusOr<OpId> EventLoop::Write(int fd, absl::Span<const char> data,
                                      Callback done) {
  return Start(Kind::kOneShot, std::move(done), nullptr,
               [&](io_uring_sqe* sqe, Slot*) {
                 io_uring_prep_write(sqe, fd, data.data(), IoSize(data.size()),
                                     kCurrentPosition);
               });
}

absl::StatusOr<OpId> EventLoop::WriteAll(int fd, absl::Span<const char> data,
                                         Callback done) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("EventLoop::WriteAll: ", data.size(),
                     " bytes do not fit the int result; split the data"));
  }
  if (data.empty()) {
    // Completes with 0 through the ring like any other operation.
    return Start(Kind::kOneShot, std::move(done), nullptr,
                 [](io_uring_sqe* sqe, Slot*) { io_uring_prep_nop(sqe); });
  }
  return Start(Kind::kWriteAll, std::move(done), nullptr,
               [&](io_uring_sqe* sqe, Slot* s) {
                 s->fd = fd;
                 s->data = data.data();
                 s->size = data.size();
                 s->written = 0;
                 io_uring_prep_write(sqe, fd, s->data, IoSize(s->size),
                                     kCurrentPosition);
               });
}

absl::Status EventLoop::SubmitNextWrite(Slot* slot) {
  absl::StatusOr<io_uring_sqe*> sqe = GetSqe();
  if (!sqe.ok()) return sqe.status();
  io_uring_prep_write(*sqe, slot->fd, slot->data + slot->written,
                      IoSize(slot->size - slot->written), kCurrentPosition);
  io_uring_sqe_set_data64(*sqe, slot->id);
  return absl::OkStatus();
}

absl::StatusOr<OpId> EventLoop::Accept(int listen_fd, Callback done) {
  return Start(
      Kind::kAccept, std::move(done), nullptr, [&](io_uring_sqe* sqe, Slot*) {
        io_uring_prep_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      });
}

absl::StatusOr<OpId> EventLoop::AcceptMultishot(int listen_fd,
                                                MultishotCallback each) {
  return Start(Kind::kAcceptMultishot, nullptr, std::move(each),
               [&](io_uring_sqe* sqe, Slot*) {
                 io_uring_prep_multishot_accept(sqe, listen_fd, nullptr,
                                                nullptr, SOCK_CLOEXEC);
               });
}

absl::StatusOr<OpId> EventLoop::Poll(int fd, uint32_t events, Callback done) {
  return Start(Kind::kOneShot, std::move(done), nullptr,
               [&](io_uring_sqe* sqe, Slot*) {
                 io_uring_prep_poll_add(sqe, fd, events);
               });
}

absl::StatusOr<OpId> EventLoop::PollMultishot(int fd, uint32_t events,
                                              MultishotCallback each) {
  return Start(Kind::kMultishot, nullptr, std::move(each),
               [&](io_uring_sqe* sqe, Slot*) {
                 io_uring_prep_poll_multishot(sqe, fd, events);
               });
}

absl::StatusOr<OpId> EventLoop::Timeout(absl::Duration after, Callback done) {
  if (after == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "EventLoop::Timeout: an infinite timeout never fires");
  }
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const absl::Duration deadline =
      absl::DurationFromTimespec(now) + std::max(after, absl::ZeroDuration());
  return Start(Kind::kTimeout, std::move(done), nullptr,
               [&](io_uring_sqe* sqe, Slot* s) {
                 s->deadline = ToKernelTimespec(deadline);
                 // count 0: a pure timer. ABS: the deadline is on
                 // CLOCK_MONOTONIC, independent of when the SQE is submitted.
                 io_uring_prep_timeout(sqe, &s->deadline, 0,
                                       IORING_TIMEOUT_ABS);
               });
}

absl::StatusOr<OpId> EventLoop::WaitPid(int pidfd, Callback done) {
  return Poll(pidfd, POLLIN, std::move(done));
}

absl::Status EventLoop::Cancel(OpId id) {
  if (absl::Status s = CheckThread(); !s.ok()) return s;
  Slot* slot = Lookup(id);
  if (slot == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("EventLoop::Cancel: operation ", id,
                     " is not in flight (it completed, or never existed)"));
  }
  if (slot->cancel_requested) return absl::OkStatus();
  absl::StatusOr<io_uring_sqe*> sqe = GetSqe();
  if (!sqe.ok()) return sqe.status();
  io_uring_prep_cancel64(*sqe, id, 0);
  io_uring_sqe_set_data64(*sqe, kCancelTag);
  // Also stops a WriteAll between two of its writes, where the kernel has
  // nothing to cancel.
  slot->cancel_requested = true;
  return absl::OkStatus();
}

absl::Status EventLoop::ArmWake() {
  absl::StatusOr<io_uring_sqe*> sqe = GetSqe();
  if (!sqe.ok()) return sqe.status();
  if (wake_multishot_) {
    io_uring_prep_poll_multishot(*sqe, wake_fd_, POLLIN);
  } else {
    io_uring_prep_poll_add(*sqe, wake_fd_, POLLIN);
  }
  io_uring_sqe_set_data64(*sqe, kWakeTag);
  wake_armed_ = true;
  return absl::OkStatus();
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0 && errno != EAGAIN) {
    ABSL_RAW_LOG(ERROR, "EventLoop: waking the loop (eventfd write): %s",
                 strerror(errno));
  }
}

absl::Status EventLoop::Post(Task task) {
  if (!task) return absl::InvalidArgumentError("EventLoop::Post: empty task");
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    if (posted_.size() >= max_posted_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("EventLoop::Post: ", posted_.size(),
                       " tasks already queued (max_posted)"));
    }
    was_empty = posted_.empty();
    posted_.push_back(std::move(task));
  }
  // One wake-up per batch: the loop resets the eventfd before it takes the
  // queue, so a task queued after that finds the queue empty and wakes again.
  if (was_empty) Wake();
  return absl::OkStatus();
}

void EventLoop::Stop() {
  stop_.store(true, std::memory_order_release);
  // From a callback, Run() sees the flag when the batch ends; from anywhere
  // else the loop may be blocked in the kernel.
  if (!(IsLoopThread() && running_)) Wake();
}

absl::Status EventLoop::Run() {
  for (;;) {
    absl::StatusOr<int> ran = RunOnce(absl::InfiniteDuration());
    if (!ran.ok()) return ran.status();
    if (stop_.exchange(false, std::memory_order_acq_rel)) {
      return absl::OkStatus();
    }
  }
}

absl::StatusOr<int> EventLoop::RunOnce(absl::Duration timeout) {
  if (absl::Status s = CheckThread(); !s.ok()) return s;
  if (running_) {
    return absl::FailedPreconditionError(
        "EventLoop: Run/RunOnce called from a callback; the loop is not "
        "reentrant");
  }
  running_ = true;
  absl::Cleanup not_running = [this] { running_ = false; };
  if (!wake_armed_) {
    if (absl::Status s = ArmWake(); !s.ok()) return s;
  }

  int rc;
  if (timeout <= absl::ZeroDuration()) {
    rc = io_uring_submit_and_get_events(&ring_);
  } else if (timeout == absl::InfiniteDuration()) {
    rc = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts = ToKernelTimespec(timeout);
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    return UringError("io_uring_enter", rc);
  }

  int ran = 0;
  wake_seen_ = false;
  const uint64_t round_start_us = MonotonicUs();
  io_uring_cqe* cqes[kCqeBatch];
  struct Completion {
    uint64_t user_data;
    int res;
    uint32_t flags;
  } batch[kCqeBatch];
  for (int round = 0; round < kMaxBatchesPerRun; ++round) {
    const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch);
    if (n == 0) break;
    // Copy and release the CQ entries first: callbacks may start operations,
    // submit, and even make the kernel post more completions.
    for (unsigned i = 0; i < n; ++i) {
      batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    }
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      ran += Dispatch(batch[i].user_data, batch[i].res, batch[i].flags);
    }
  }
  if (wake_seen_) ran += RunPosted();
  if (ran > 0) RecordRound(MonotonicUs() - round_start_us);
  if (!wake_armed_) {
    if (absl::Status s = ArmWake(); !s.ok()) return s;
  }
  return ran;
}

void EventLoop::RecordRound(uint64_t wall_us) {
  // CPU time since the last round that did work, which covers this round's
  // callbacks and the wait before it; capped at the round's wall time, so the
  // wait (where the kernel may run completions for this thread) cannot
  // inflate it past that: never less than the round used.
  const uint64_t cpu_now_us = ThreadCpuUs();
  const uint64_t cpu_us = std::min(
      wall_us, cpu_now_us - std::min(cpu_now_us,
                                     std::exchange(cpu_mark_us_, cpu_now_us)));
  ++stats_.rounds;
  stats_.max_cpu_us = std::max(stats_.max_cpu_us, cpu_us);
  stats_.max_wall_us = std::max(stats_.max_wall_us, wall_us);
  ++stats_.cpu_us_log2[Log2Bucket(cpu_us, Stats::kBuckets)];
  ++stats_.wall_us_log2[Log2Bucket(wall_us, Stats::kBuckets)];
}

int EventLoop::Dispatch(uint64_t user_data, int res, uint32_t flags) {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (user_data & kInternalBit) {
    if (user_data == kWakeTag) {
      wake_seen_ = true;
      if (!more) {
        wake_armed_ = false;
        // A kernel without multishot poll: fall back to re-arming a one-shot
        // poll after every wake-up.
        if (res == -EINVAL && wake_multishot_) wake_multishot_ = false;
      }
    }
    // kCancelTag: the result of a cancel request (0, -ENOENT, -EALREADY);
    // the cancelled operation reports through its own completion.
    return 0;
  }
  Slot* slot = Lookup(user_data);
  if (slot == nullptr) {
    ABSL_RAW_LOG(ERROR, "EventLoop: completion for unknown operation %llu",
                 static_cast<unsigned long long>(user_data));  // NOLINT
    return 0;
  }
  switch (slot->kind) {
    case Kind::kMultishot:
    case Kind::kAcceptMultishot: {
      if (more) {
        slot->each(res, true);
        return 1;
      }
      MultishotCallback each = std::move(slot->each);
      FreeSlot(slot);
      each(res, false);
      return 1;
    }
    case Kind::kWriteAll:
      if (res > 0) {
        slot->written += static_cast<size_t>(res);
        if (slot->written >= slot->size) {
          res = static_cast<int>(slot->size);
        } else if (slot->cancel_requested) {
          res = -ECANCELED;
        } else if (absl::Status s = SubmitNextWrite(slot); s.ok()) {
          return 0;
        } else {
          ABSL_RAW_LOG(ERROR, "EventLoop::WriteAll: %s",
                       std::string(s.message()).c_str());
          res = -EAGAIN;
        }
      } else if (res == 0) {
        res = -EIO;  // a write that makes no progress would loop forever
      }
      break;
    case Kind::kTimeout:
      if (res == -ETIME) res = 0;
      break;
    default:
      break;
  }
  Callback done = std::move(slot->done);
  FreeSlot(slot);
  done(res);
  return 1;
}

int EventLoop::RunPosted() {
  // Reset the eventfd before taking the queue (see Post()).
  uint64_t count;
  if (read(wake_fd_, &count, sizeof(count)) < 0 && errno != EAGAIN) {
    ABSL_RAW_LOG(ERROR, "EventLoop: eventfd read: %s", strerror(errno));
  }
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    running_tasks_.swap(posted_);
  }
  int ran = 0;
  for (Task& task : running_tasks_) {
    task();
    ++ran;
  }
  running_tasks_.clear();
  return ran;
}

void EventLoop::CancelAllAndDrain() {
  running_ = true;  // nothing may run the loop from a callback destructor
  auto cancel = [this](uint64_t user_data) {
    absl::StatusOr<io_uring_sqe*> sqe = GetSqe();
    if (!sqe.ok()) return;
    io_uring_prep_cancel64(*sqe, user_data, 0);
    io_uring_sqe_set_data64(*sqe, kCancelTag);
  };
  for (Slot& slot : slots_) {
    if (slot.id != 0) cancel(slot.id);
  }
  if (wake_armed_) cancel(kWakeTag);

  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  io_uring_cqe* cqes[kCqeBatch];
  while (in_flight_ > 0 || wake_armed_) {
    if (absl::Now() >= deadline) {
      ABSL_RAW_LOG(WARNING,
                   "EventLoop: %zu operations still in flight 5 s after "
                   "cancelling them; leaving them to the ring teardown",
                   in_flight_);
      break;
    }
    __kernel_timespec ts = ToKernelTimespec(absl::Milliseconds(100));
    io_uring_cqe* cqe = nullptr;
    const int rc =
        io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
        rc != -EBUSY) {
      ABSL_RAW_LOG(WARNING, "EventLoop: draining the ring: %s", strerror(-rc));
      break;
    }
    unsigned n;
    while ((n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch)) > 0) {
      for (unsigned i = 0; i < n; ++i) {
        const uint64_t user_data = cqes[i]->user_data;
        const int res = cqes[i]->res;
        const bool more = (cqes[i]->flags & IORING_CQE_F_MORE) != 0;
        if (user_data == kWakeTag) {
          if (!more) wake_armed_ = false;
          continue;
        }
        Slot* slot = Lookup(user_data);
        if (slot == nullptr) continue;
        const bool accept =
            slot->kind == Kind::kAccept || slot->kind == Kind::kAcceptMultishot;
        if (accept && res >= 0) close(res);
        if (more) continue;
        FreeSlot(slot);  // destroys the callback without running it
      }
      io_uring_cq_advance(&ring_, n);
    }
  }
  running_ = false;
}

}  // namespace jcs::runtime
