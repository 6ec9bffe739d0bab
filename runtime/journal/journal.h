// The journal: every event and tool result of the daemon's projects, and the
// projects that are running, persisted so that nothing acknowledged is lost
// (kill -9, a restart) and timelines outlive their conversations.
//
// The loop appends (cheap: a copy into a queue); one writer thread commits
// what is queued as one transaction per batch and posts the new durable
// sequence number back to the loop. Callers acknowledge an event only once
// durable_seq() has reached it. A failed commit (a full disk, an I/O error)
// keeps the batch queued and retried with backoff, reports the failure to the
// loop once per outage, and never touches what was committed before. The
// queue is bounded: past `max_pending` the oldest queued entries are dropped
// and counted (a daemon that cannot write for that long has lost them either
// way; the count says how many). Queries run on the worker pool with their
// own read-only connections.
#ifndef JCS_RUNTIME_JOURNAL_JOURNAL_H_
#define JCS_RUNTIME_JOURNAL_JOURNAL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"
#include "runtime/journal/journal_store.h"
#include "telemetry/bus.h"

namespace jcs::runtime::journal {

struct JournalOptions {
  std::string path;  // the database file
  // Seven days, 256 MiB.
  RetentionPolicy retention = {int64_t{7} * 24 * 3600 * 1000,
                               int64_t{256} << 20};
  absl::Duration prune_every = absl::Minutes(1);
  size_t max_pending = 100000;  // queued entries (events + results + projects)
  size_t max_batch = 4096;      // entries per transaction
  // Retry backoff after a failed commit: doubles from min to max.
  absl::Duration retry_min = absl::Milliseconds(50);
  absl::Duration retry_max = absl::Seconds(5);
};

class Journal {
 public:
  // Loop-thread callbacks: durability advanced to `seq` (every event with a
  // smaller or equal seq is committed); a commit failed (`pending` entries
  // wait), or writes work again after a failure (status OK).
  struct Callbacks {
    std::function<void(uint64_t seq)> durable;
    std::function<void(const absl::Status& status, size_t pending)> health;
    // Optional: a transaction of `entries` committed in `took` (the
    // writer's time in the store, for the commit-latency metric).
    std::function<void(absl::Duration took, size_t entries)> committed;
  };

  static absl::StatusOr<std::unique_ptr<Journal>> Open(EventLoop* loop,
                                                       JournalOptions options,
                                                       Callbacks callbacks);
  // Commits what is queued (waits for the writer), then stops it. Call it on
  // the loop thread while the loop object still exists.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Loop thread. Returns the event's sequence number. The event's
  // conversation_id and correlation_id come from its payload.
  uint64_t Append(const telemetry::Event& event);
  // The same, with the payload already serialized the way Append would
  // (dump(-1), invalid UTF-8 replaced): the daemon serializes each event once
  // for its subscribers and the journal.
  uint64_t Append(const telemetry::Event& event, std::string payload_json);
  // `at_ms` 0 means now.
  void PutToolResult(StoredToolResult result);
  void ProjectStarted(const std::string& project_id, const nlohmann::json& spec,
                      absl::Time at);
  void ProjectStopped(const std::string& project_id);

  // Loop thread: `done` runs once everything queued so far is committed
  // (OK), or at once with the error while writes fail. For what must not be
  // answered before it is durable (a project start or stop).
  void Flush(std::function<void(const absl::Status&)> done);

  // Loop thread: the last sequence number known to be committed.
  uint64_t durable_seq() const { return durable_seq_; }
  uint64_t last_seq() const { return next_seq_ - 1; }

  // Queries, answered on the loop (`done` is not called once the journal is
  // gone).
  void QueryEvents(
      EventQuery query,
      std::function<void(absl::StatusOr<std::vector<StoredEvent>>)> done);
  void QueryToolResult(
      std::string project_id, std::string call_id,
      std::function<void(absl::StatusOr<std::optional<StoredToolResult>>)>
          done);
  // At daemon start, before anything is appended: synchronous.
  absl::StatusOr<std::vector<StoredProject>> RunningProjects();

  // {path, durable_seq, last_seq, pending, dropped, write_failures,
  //  last_error, bytes, pruned_events, pruned_results} (loop thread).
  nlohmann::json Diagnostics() const;

 private:
  Journal(EventLoop* loop, JournalOptions options, Callbacks callbacks,
          std::unique_ptr<JournalStore> store, uint64_t max_seq);
  struct Entry {
    enum class Kind { kEvent, kResult, kProject } kind = Kind::kEvent;
    uint64_t ticket = 0;  // order of Enqueue (Flush waits for a ticket)
    StoredEvent event;
    StoredToolResult result;
    ProjectChange project;
  };
  void Enqueue(Entry entry);
  void WriterLoop();
  // Runs `task` on the loop unless the journal is gone by then.
  void PostToLoop(std::function<void()> task);

  EventLoop* const loop_;
  const JournalOptions options_;
  Callbacks callbacks_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  // Loop-thread state.
  uint64_t next_ticket_ = 1;
  uint64_t durable_ticket_ = 0;
  std::deque<std::pair<uint64_t, std::function<void(const absl::Status&)>>>
      flush_waiters_;
  uint64_t next_seq_;
  uint64_t durable_seq_;
  bool failing_ = false;
  uint64_t write_failures_ = 0;
  std::string last_error_;
  int64_t bytes_ = 0;
  uint64_t pruned_events_ = 0;
  uint64_t pruned_results_ = 0;

  // Shared with the writer thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  size_t in_flight_ = 0;  // the head entries the writer is committing
  uint64_t dropped_ = 0;
  bool stopping_ = false;

  std::unique_ptr<JournalStore> store_;  // the writer thread's
  std::thread writer_;
};

}  // namespace jcs::runtime::journal

#endif  // JCS_RUNTIME_JOURNAL_JOURNAL_H_
