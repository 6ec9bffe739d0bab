#include "runtime/journal/journal.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/background_thread_priority.h"
#include "loop/worker_pool.h"
#include "telemetry/logging/line_writer.h"

namespace jcs::runtime::journal {
namespace {

std::string StringField(const nlohmann::json& payload, const char* key) {
  if (!payload.is_object()) return "";
  auto it = payload.find(key);
  return it != payload.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(EventLoop* loop,
                                                       JournalOptions options,
                                                       Callbacks callbacks) {
  absl::StatusOr<std::unique_ptr<JournalStore>> store =
      JournalStore::Open(options.path, /*read_only=*/false);
  if (!store.ok()) return store.status();
  absl::StatusOr<uint64_t> max_seq = (*store)->MaxSeq();
  if (!max_seq.ok()) return max_seq.status();
  return std::unique_ptr<Journal>(new Journal(loop, std::move(options),
                                              std::move(callbacks),
                                              *std::move(store), *max_seq));
}

Journal::Journal(EventLoop* loop, JournalOptions options, Callbacks callbacks,
                 std::unique_ptr<JournalStore> store, uint64_t max_seq)
    : loop_(loop),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      next_seq_(max_seq + 1),
      durable_seq_(max_seq),
      store_(std::move(store)) {
  writer_ = std::thread([this] {
    // A commit never preempts the loop that appended the event (it is on
    // the path of every tool call): see base/background_thread_priority.h.
    RunThisThreadBehindTheLoop();
    WriterLoop();
  });
}

Journal::~Journal() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  *alive_ = false;
}

void Journal::PostToLoop(std::function<void()> task) {
  std::weak_ptr<bool> alive = alive_;
  (void)loop_->Post([alive, task = std::move(task)] {
    std::shared_ptr<bool> live = alive.lock();
    if (live != nullptr && *live) task();
  });
}

void Journal::Enqueue(Entry entry) {
  entry.ticket = next_ticket_++;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_pending) {
      ++dropped_;
      if (queue_.size() <= in_flight_) return;  // all in flight: drop the new
      queue_.erase(queue_.begin() + static_cast<ptrdiff_t>(in_flight_));
    }
    queue_.push_back(std::move(entry));
  }
  cv_.notify_one();
}

uint64_t Journal::Append(const telemetry::Event& event) {
  return Append(event,
                event.payload.dump(-1, ' ', false,
                                   nlohmann::json::error_handler_t::replace));
}

uint64_t Journal::Append(const telemetry::Event& event,
                         std::string payload_json) {
  Entry entry;
  entry.kind = Entry::Kind::kEvent;
  StoredEvent& e = entry.event;
  e.seq = next_seq_++;
  e.project_id = event.project_id;
  e.name = event.name;
  e.at_ms = absl::ToUnixMillis(event.at);
  e.conversation_id = StringField(event.payload, "conversation_id");
  e.correlation_id = StringField(event.payload, "correlation_id");
  e.payload_json = std::move(payload_json);
  const uint64_t seq = e.seq;
  Enqueue(std::move(entry));
  return seq;
}

void Journal::PutToolResult(StoredToolResult result) {
  // Retention goes by this time: an unset one would make the result look
  // decades old and prune it at once.
  if (result.at_ms == 0) result.at_ms = absl::ToUnixMillis(absl::Now());
  Entry entry;
  entry.kind = Entry::Kind::kResult;
  entry.result = std::move(result);
  Enqueue(std::move(entry));
}

void Journal::ProjectStarted(const std::string& project_id,
                             const nlohmann::json& spec, absl::Time at) {
  Entry entry;
  entry.kind = Entry::Kind::kProject;
  entry.project = {
      project_id,
      spec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      absl::ToUnixMillis(at)};
  Enqueue(std::move(entry));
}

void Journal::ProjectStopped(const std::string& project_id) {
  Entry entry;
  entry.kind = Entry::Kind::kProject;
  entry.project = {project_id, "", 0};
  Enqueue(std::move(entry));
}

void Journal::WriterLoop() {
  absl::Duration backoff = options_.retry_min;
  absl::Time next_prune = absl::Now();
  bool failing = false;
  for (;;) {
    Batch batch;
    uint64_t batch_seq = 0, batch_ticket = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const absl::Duration until_prune =
          std::max(absl::ZeroDuration(), next_prune - absl::Now());
      cv_.wait_for(lock, absl::ToChronoMilliseconds(until_prune),
                   [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      // Copies: the entries stay queued (and count as pending) until the
      // transaction holding them has committed.
      in_flight_ = std::min(queue_.size(), options_.max_batch);
      for (size_t i = 0; i < in_flight_; ++i) {
        const Entry& entry = queue_[i];
        batch_ticket = std::max(batch_ticket, entry.ticket);
        switch (entry.kind) {
          case Entry::Kind::kEvent:
            batch.events.push_back(entry.event);
            batch_seq = std::max(batch_seq, entry.event.seq);
            break;
          case Entry::Kind::kResult:
            batch.results.push_back(entry.result);
            break;
          case Entry::Kind::kProject:
            batch.projects.push_back(entry.project);
            break;
        }
      }
    }
    if (!batch.empty()) {
      const absl::Time commit_start = absl::Now();
      const absl::Status status = store_->Append(batch);
      const absl::Duration took = absl::Now() - commit_start;
      const size_t entries =
          batch.events.size() + batch.results.size() + batch.projects.size();
      size_t pending;
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (status.ok()) {
          queue_.erase(queue_.begin(),
                       queue_.begin() + static_cast<ptrdiff_t>(in_flight_));
        }
        in_flight_ = 0;
        pending = queue_.size();
        stopping = stopping_;
      }
      if (status.ok()) {
        backoff = options_.retry_min;
        const bool recovered = failing;
        failing = false;
        PostToLoop([this, batch_seq, batch_ticket, recovered, took, entries] {
          if (callbacks_.committed) callbacks_.committed(took, entries);
          if (batch_seq > durable_seq_) {
            durable_seq_ = batch_seq;
            if (callbacks_.durable) callbacks_.durable(batch_seq);
          }
          durable_ticket_ = std::max(durable_ticket_, batch_ticket);
          while (!flush_waiters_.empty() &&
                 flush_waiters_.front().first <= durable_ticket_) {
            auto done = std::move(flush_waiters_.front().second);
            flush_waiters_.pop_front();
            done(absl::OkStatus());
          }
          if (recovered) {
            failing_ = false;
            if (callbacks_.health) callbacks_.health(absl::OkStatus(), 0);
          }
        });
      } else {
        if (!failing) {
          // Once per outage: the log line an operator greps for.
          telemetry::logging::StderrLine(absl::StrFormat(
              "jcs: journal: write failed (%zu entries wait): %s", pending,
              std::string(status.message()).c_str()));
        }
        failing = true;
        PostToLoop([this, status, pending] {
          ++write_failures_;
          last_error_ = std::string(status.message());
          const bool first = !failing_;
          failing_ = true;
          auto waiters = std::move(flush_waiters_);
          flush_waiters_.clear();
          for (auto& [ticket, done] : waiters) done(status);
          if (first && callbacks_.health) callbacks_.health(status, pending);
        });
        if (stopping) {
          telemetry::logging::StderrLine(absl::StrFormat(
              "jcs: journal: stopping with %zu entries not written: %s",
              pending, std::string(status.message()).c_str()));
          break;
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff),
                     [this] { return stopping_; });
        backoff = std::min(backoff * 2, options_.retry_max);
        continue;
      }
    }
    if (absl::Now() >= next_prune) {
      next_prune = absl::Now() + options_.prune_every;
      absl::StatusOr<PruneResult> pruned =
          store_->Prune(options_.retention, absl::ToUnixMillis(absl::Now()));
      if (pruned.ok()) {
        const PruneResult r = *pruned;
        PostToLoop([this, r] {
          bytes_ = r.bytes_after;
          pruned_events_ += r.events_deleted;
          pruned_results_ += r.results_deleted;
        });
      }
    }
  }
}

void Journal::Flush(std::function<void(const absl::Status&)> done) {
  const uint64_t ticket = next_ticket_ - 1;
  if (ticket <= durable_ticket_) {
    done(absl::OkStatus());
  } else if (failing_) {
    done(absl::UnavailableError(absl::StrCat("journal: ", last_error_)));
  } else {
    flush_waiters_.emplace_back(ticket, std::move(done));
  }
}

void Journal::QueryEvents(
    EventQuery query,
    std::function<void(absl::StatusOr<std::vector<StoredEvent>>)> done) {
  using Result = absl::StatusOr<std::vector<StoredEvent>>;
  std::weak_ptr<bool> alive = alive_;
  absl::Status submitted =
      WorkerPool::Shared().Submit([loop = loop_, alive, path = options_.path,
                                   query = std::move(query), done] {
        auto result = std::make_shared<Result>(absl::InternalError(""));
        absl::StatusOr<std::unique_ptr<JournalStore>> store =
            JournalStore::Open(path, /*read_only=*/true);
        *result = store.ok() ? (*store)->Events(query) : Result(store.status());
        (void)loop->Post([alive, result, done] {
          std::shared_ptr<bool> live = alive.lock();
          if (live != nullptr && *live) done(std::move(*result));
        });
      });
  if (!submitted.ok()) done(submitted);
}

void Journal::QueryToolResult(
    std::string project_id, std::string call_id,
    std::function<void(absl::StatusOr<std::optional<StoredToolResult>>)> done) {
  using Result = absl::StatusOr<std::optional<StoredToolResult>>;
  std::weak_ptr<bool> alive = alive_;
  absl::Status submitted = WorkerPool::Shared().Submit(
      [loop = loop_, alive, path = options_.path,
       project_id = std::move(project_id), call_id = std::move(call_id), done] {
        auto result = std::make_shared<Result>(absl::InternalError(""));
        absl::StatusOr<std::unique_ptr<JournalStore>> store =
            JournalStore::Open(path, /*read_only=*/true);
        *result = store.ok() ? (*store)->ToolResult(project_id, call_id)
                             : Result(store.status());
        (void)loop->Post([alive, result, done] {
          std::shared_ptr<bool> live = alive.lock();
          if (live != nullptr && *live) done(std::move(*result));
        });
      });
  if (!submitted.ok()) done(submitted);
}

absl::StatusOr<std::vector<StoredProject>> Journal::RunningProjects() {
  absl::StatusOr<std::unique_ptr<JournalStore>> store =
      JournalStore::Open(options_.path, /*read_only=*/true);
  if (!store.ok()) return store.status();
  return (*store)->RunningProjects();
}

nlohmann::json Journal::Diagnostics() const {
  size_t pending;
  uint64_t dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending = queue_.size();
    dropped = dropped_;
  }
  return {{"path", options_.path},
          {"durable_seq", durable_seq_},
          {"last_seq", last_seq()},
          {"pending", pending},
          {"dropped", dropped},
          {"write_failures", write_failures_},
          {"failing", failing_},
          {"last_error", last_error_},
          {"bytes", bytes_},
          {"pruned_events", pruned_events_},
          {"pruned_results", pruned_results_}};
}

}  // namespace jcs::runtime::journal
