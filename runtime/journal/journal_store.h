// The journal's storage: one SQLite database per daemon in its state
// directory (which no jail can see), in WAL mode with synchronous=FULL, so a
// committed batch survives kill -9 and power loss, and a failed write (a full
// disk) rolls back without touching what was committed before.
//
// Not thread-safe: one JournalStore per thread. The Journal (journal.h) keeps
// the writing store on its writer thread; readers open their own read-only
// stores (WAL lets them read while the writer commits).
#ifndef JCS_RUNTIME_JOURNAL_JOURNAL_STORE_H_
#define JCS_RUNTIME_JOURNAL_JOURNAL_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

struct sqlite3;
struct sqlite3_stmt;

namespace jcs::runtime::journal {

struct StoredEvent {
  uint64_t seq = 0;  // unique, increasing; assigned by the Journal
  std::string project_id;
  std::string name;
  int64_t at_ms = 0;            // Unix time
  std::string conversation_id;  // "" when the event has none
  std::string correlation_id;
  std::string payload_json;  // a JSON object, already redacted
};

struct StoredToolResult {
  std::string project_id;
  std::string call_id;
  std::string conversation_id;
  int64_t at_ms = 0;
  std::string result_json;  // the call's response document, redacted
};

// A project started (spec_json set) or stopped (spec_json empty). Running
// projects come back after a restart.
struct ProjectChange {
  std::string project_id;
  std::string spec_json;
  int64_t at_ms = 0;
};

struct StoredProject {
  std::string project_id;
  std::string spec_json;
  int64_t started_at_ms = 0;
};

struct Batch {
  std::vector<StoredEvent> events;
  std::vector<StoredToolResult> results;
  std::vector<ProjectChange> projects;
  bool empty() const {
    return events.empty() && results.empty() && projects.empty();
  }
};

struct EventQuery {
  std::string project_id;
  std::string conversation_id;  // "" for every conversation
  std::string correlation_id;   // "" for any
  uint64_t after_seq = 0;       // only events with a larger seq
  size_t limit = 100;           // the oldest `limit` matching events
};

struct RetentionPolicy {
  int64_t max_age_ms = 0;  // 0: no age limit
  int64_t max_bytes = 0;   // 0: no size limit
};

struct PruneResult {
  uint64_t events_deleted = 0;
  uint64_t results_deleted = 0;
  int64_t bytes_after = 0;
};

class JournalStore {
 public:
  // Creates the database and its schema when missing (not when read_only).
  static absl::StatusOr<std::unique_ptr<JournalStore>> Open(
      const std::string& path, bool read_only);
  ~JournalStore();
  JournalStore(const JournalStore&) = delete;
  JournalStore& operator=(const JournalStore&) = delete;

  // One transaction: all of the batch or, on any error, none of it.
  absl::Status Append(const Batch& batch);

  absl::StatusOr<uint64_t> MaxSeq();
  absl::StatusOr<std::vector<StoredEvent>> Events(const EventQuery& query);
  absl::StatusOr<std::optional<StoredToolResult>> ToolResult(
      const std::string& project_id, const std::string& call_id);
  absl::StatusOr<std::vector<StoredProject>> RunningProjects();

  // Deletes events and tool results older than max_age, then the oldest
  // until the database's used pages fit max_bytes, and gives the freed
  // pages back to the filesystem.
  absl::StatusOr<PruneResult> Prune(const RetentionPolicy& policy,
                                    int64_t now_ms);
  // Bytes in use (pages minus free pages).
  absl::StatusOr<int64_t> UsedBytes();

 private:
  // The statements Append runs for every batch, prepared once
  // (SQLITE_PREPARE_PERSISTENT) instead of parsed again per transaction.
  enum CachedStatement {
    kBegin,
    kCommit,
    kRollback,
    kInsertEvent,
    kInsertResult,
    kUpsertProject,
    kDeleteProject,
    kCachedStatementCount,
  };

  explicit JournalStore(sqlite3* db) : db_(db) {}
  // The cached statement, reset and with its bindings cleared.
  absl::StatusOr<sqlite3_stmt*> Cached(CachedStatement which);
  // Runs a cached statement without results (BEGIN, COMMIT, ROLLBACK).
  absl::Status Step(CachedStatement which);
  absl::Status Exec(const char* sql);
  absl::StatusOr<sqlite3_stmt*> Prepare(const char* sql);
  absl::Status Error(const char* what) const;
  absl::StatusOr<int64_t> PragmaInt(const char* sql);

  sqlite3* db_;
  sqlite3_stmt* cached_[kCachedStatementCount] = {};
};

}  // namespace jcs::runtime::journal

#endif  // JCS_RUNTIME_JOURNAL_JOURNAL_STORE_H_
