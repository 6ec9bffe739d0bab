#include "telemetry/logging/line_writer.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "base/background_thread_priority.h"

namespace jcs::telemetry::logging {
namespace {

// How often a writer waiting for POLLOUT looks at its stop flag.
constexpr int kPollSliceMs = 100;

bool IsRegularFile(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

LineWriter::LineWriter(int fd, bool owned, Limits limits)
    : limits_(limits), fd_(fd), owned_(owned), owner_pid_(getpid()) {
  // The thread starts with every signal blocked: a daemon that takes its
  // signals through a signalfd blocks them in the threads it has, and a
  // thread created earlier with SIGTERM open would take the default action
  // (the whole process dies).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] {
    RunThisThreadBehindTheLoop();  // a log line never preempts the loop
    Run();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_setname_np(thread_.native_handle(), "jcs-log-writer");  // top -H
}

LineWriter::~LineWriter() {
  Flush(limits_.drain_on_exit);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stopping_.store(true);
  wake_.notify_all();
  thread_.join();
  dropped_.fetch_add(queue_.size());
  if (pending_fd_ >= 0 && pending_owned_) close(pending_fd_);
  if (owned_ && fd_ >= 0) close(fd_);
}

LineWriter& LineWriter::Stderr() {
  // Never destroyed: other threads may still log while the process exits.
  // What is queued gets a second to reach the reader at exit.
  static LineWriter* const writer = [] {
    auto* w = new LineWriter(STDERR_FILENO, /*owned=*/false);
    std::atexit([] { LineWriter::Stderr().Flush(absl::Seconds(1)); });
    return w;
  }();
  return *writer;
}

void LineWriter::Write(std::string line) {
  if (getpid() != owner_pid_) {
    // A forked child has no writer thread: write directly (a child's
    // diagnostics are few and it has no event loop to hold up).
    (void)!write(fd_, line.data(), line.size());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || queue_.size() >= limits_.max_queued_lines ||
        queued_bytes_ + line.size() > limits_.max_queued_bytes) {
      dropped_.fetch_add(1);
      return;
    }
    queued_bytes_ += line.size();
    queue_.push_back(std::move(line));
    ++queued_total_;
  }
  wake_.notify_one();
}

bool LineWriter::Flush(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = queued_total_;
  return drained_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    return finished_total_ >= target && (pending_fd_ < 0);
  });
}

void LineWriter::Replace(int fd, bool owned) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_fd_ >= 0 && pending_owned_) close(pending_fd_);
    pending_fd_ = fd;
    pending_owned_ = owned;
    swap_at_ = queued_total_;
  }
  wake_.notify_one();
}

void LineWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // The descriptor changes only here, between lines: the old one is never
    // closed while a write to it is under way.
    if (pending_fd_ >= 0 && finished_total_ >= swap_at_) {
      if (owned_ && fd_ >= 0) close(fd_);
      fd_ = std::exchange(pending_fd_, -1);
      owned_ = pending_owned_;
      drained_.notify_all();
    }
    if (queue_.empty()) {
      drained_.notify_all();
      if (stop_) return;
      wake_.wait(lock, [&] {
        return stop_ || !queue_.empty() ||
               (pending_fd_ >= 0 && finished_total_ >= swap_at_);
      });
      continue;
    }
    if (stop_) return;
    std::string line = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= line.size();
    const int fd = fd_;
    lock.unlock();
    const bool ok = WriteOne(fd, line);
    (ok ? written_ : dropped_).fetch_add(1);
    lock.lock();
    ++finished_total_;
  }
}

bool LineWriter::WriteOne(int fd, const std::string& line) {
  const bool regular = IsRegularFile(fd);
  size_t done = 0;
  while (done < line.size()) {
    if (!regular) {
      struct pollfd p = {fd, POLLOUT, 0};
      const int ready = poll(&p, 1, kPollSliceMs);
      if (ready < 0 && errno != EINTR) return false;
      if (ready <= 0) {
        if (stopping_.load()) return false;
        continue;
      }
      if (p.revents & (POLLERR | POLLNVAL)) return false;
    }
    // A pipe with POLLOUT has room for PIPE_BUF bytes: a chunk of at most
    // that never blocks. A regular file takes the whole line at once.
    const size_t chunk = regular
                             ? line.size() - done
                             : std::min<size_t>(line.size() - done, PIPE_BUF);
    const ssize_t n = write(fd, line.data() + done, chunk);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

void StderrLine(std::string text) {
  text += '\n';
  LineWriter::Stderr().Write(std::move(text));
}

}  // namespace jcs::telemetry::logging
