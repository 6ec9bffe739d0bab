// Writes text lines to a descriptor from a thread of its own, so that the
// thread that logs (the daemon's event loop) never waits for the reader.
//
// Why: a daemon's stderr is usually a pipe (a container runtime's log
// driver, journald, `jcs serve 2>&1 | ...`). When its reader stalls, the pipe
// fills (64 KiB) and a plain write(2) blocks the writer; on the event loop
// that would stop every project's tool calls. Here a line is queued (bounded:
// a full queue drops the line and counts it) and the writer thread waits for
// the descriptor with poll(2), so it also notices a stop request.
//
// Lines are written in the order they were queued. To a pipe, a socket or a
// terminal a line goes out in chunks of at most PIPE_BUF bytes after POLLOUT,
// so no write blocks; to a regular file (which never makes a writer wait on a
// reader) each line is one write(2), atomic with O_APPEND.
#ifndef JCS_TELEMETRY_LOGGING_LINE_WRITER_H_
#define JCS_TELEMETRY_LOGGING_LINE_WRITER_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"

namespace jcs::telemetry::logging {

class LineWriter {
 public:
  struct Limits {
    // Queued bytes and lines at most; past either, a line is dropped.
    size_t max_queued_bytes = 8 << 20;
    size_t max_queued_lines = 100000;
    // How long the destructor waits for the queue to drain.
    absl::Duration drain_on_exit = absl::Seconds(1);
  };

  // Writes to `fd`; closes it at the end when `owned`.
  LineWriter(int fd, bool owned, Limits limits);
  LineWriter(int fd, bool owned) : LineWriter(fd, owned, Limits()) {}
  // Waits up to Limits::drain_on_exit for queued lines, then stops (what is
  // still queued is dropped: a stalled reader cannot hold up an exit).
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // The process's stderr, shared by everything that writes lines there (one
  // queue: their lines keep their order). Lives until exit.
  static LineWriter& Stderr();

  // Queues `line` (which should end in '\n'). Never blocks on the reader.
  void Write(std::string line);

  // Waits until every line queued before the call is written (or dropped)
  // or `timeout` passes; true when the queue drained.
  bool Flush(absl::Duration timeout);

  // Writes to `fd` from now on (lines queued before are written to the old
  // one first), closing the old descriptor when it was owned.
  void Replace(int fd, bool owned);

  uint64_t written() const { return written_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  void Run();
  // Writes `line` to fd_; false when the descriptor failed (EPIPE, EBADF,
  // ENOSPC...) or a stop was requested while it was not writable.
  bool WriteOne(int fd, const std::string& line);

  const Limits limits_;
  std::mutex mu_;
  std::condition_variable wake_;     // the writer: a line or a stop
  std::condition_variable drained_;  // Flush: the queue emptied
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  uint64_t queued_total_ = 0;    // lines ever queued
  uint64_t finished_total_ = 0;  // lines ever written or dropped by the thread
  int fd_;
  bool owned_;
  // Replace(): the next descriptor, used once `swap_at_` lines are finished.
  int pending_fd_ = -1;
  bool pending_owned_ = false;
  uint64_t swap_at_ = 0;
  bool stop_ = false;
  const pid_t owner_pid_;  // the process whose thread writes
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
};

// Queues one line (a '\n' is added) on the process's stderr writer.
void StderrLine(std::string text);

}  // namespace jcs::telemetry::logging

#endif  // JCS_TELEMETRY_LOGGING_LINE_WRITER_H_
