#include "runtime/journal/journal_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace jcs::runtime::journal {
namespace {

constexpr int kSchemaVersion = 1;

// The schema. Events are looked up by project and conversation (timelines),
// by correlation id (incident timelines) and by age (retention).
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  conversation_id TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_conversation
  ON events (project_id, conversation_id, seq);
CREATE INDEX IF NOT EXISTS events_by_correlation
  ON events (project_id, correlation_id, seq);
CREATE INDEX IF NOT EXISTS events_by_age ON events (at_ms);
CREATE TABLE IF NOT EXISTS tool_results (
  project_id TEXT NOT NULL,
  call_id TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (project_id, call_id));
CREATE INDEX IF NOT EXISTS tool_results_by_age ON tool_results (at_ms);
CREATE TABLE IF NOT EXISTS projects (
  project_id TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  started_at_ms INTEGER NOT NULL);
)sql";

// Statements are finalized when the guard goes out of scope.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

void BindText(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  return text == nullptr
             ? std::string()
             : std::string(reinterpret_cast<const char*>(text), size);
}

}  // namespace

absl::StatusOr<std::unique_ptr<JournalStore>> JournalStore::Open(
    const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = (read_only ? SQLITE_OPEN_READONLY
                               : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
                    SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(
        absl::StrCat("journal: cannot open ", path, ": ", message));
  }
  std::unique_ptr<JournalStore> store(new JournalStore(db));
  // A reader waits for the writer's checkpoint instead of failing.
  sqlite3_busy_timeout(db, 5000);
  if (read_only) return store;
  // auto_vacuum must be set before the first table exists; INCREMENTAL lets
  // Prune() give pages back without rewriting the whole file.
  for (const char* pragma :
       {"PRAGMA auto_vacuum=INCREMENTAL", "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status s = store->Exec(pragma); !s.ok()) return s;
  }
  if (absl::Status s = store->Exec(kSchema); !s.ok()) return s;
  absl::StatusOr<int64_t> version =
      store->PragmaInt("SELECT value FROM meta WHERE key = 'schema_version'");
  if (version.ok() && *version != kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("journal: ", path, " has schema version ", *version,
                     ", this jcs reads version ", kSchemaVersion,
                     " (move the file away to start a new journal)"));
  }
  if (!version.ok()) {
    if (absl::Status s =
            store->Exec(absl::StrCat("INSERT OR REPLACE INTO meta VALUES "
                                     "('schema_version', ",
                                     kSchemaVersion, ")")
                            .c_str());
        !s.ok()) {
      return s;
    }
  }
  return store;
}

JournalStore::~JournalStore() {
  // Every statement must be finalized first: sqlite3_close refuses (BUSY) a
  // connection that still has some.
  for (sqlite3_stmt* stmt : cached_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

absl::StatusOr<sqlite3_stmt*> JournalStore::Cached(CachedStatement which) {
  static constexpr const char* kSql[kCachedStatementCount] = {
      "BEGIN IMMEDIATE",
      "COMMIT",
      "ROLLBACK",
      "INSERT INTO events (seq, project_id, name, at_ms, conversation_id, "
      "correlation_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
      "INSERT OR REPLACE INTO tool_results (project_id, call_id, "
      "conversation_id, at_ms, result) VALUES (?, ?, ?, ?, ?)",
      "INSERT OR REPLACE INTO projects (project_id, spec, started_at_ms) "
      "VALUES (?, ?, ?)",
      "DELETE FROM projects WHERE project_id = ?",
  };
  sqlite3_stmt*& stmt = cached_[which];
  if (stmt == nullptr &&
      sqlite3_prepare_v3(db_, kSql[which], -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                         nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    stmt = nullptr;
    return Error(kSql[which]);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return stmt;
}

absl::Status JournalStore::Step(CachedStatement which) {
  absl::StatusOr<sqlite3_stmt*> stmt = Cached(which);
  if (!stmt.ok()) return stmt.status();
  const int rc = sqlite3_step(*stmt);
  // The error (if any) is read before the reset, which would clear it.
  absl::Status status = rc == SQLITE_DONE || rc == SQLITE_ROW
                            ? absl::OkStatus()
                            : Error(sqlite3_sql(*stmt));
  sqlite3_reset(*stmt);
  return status;
}

absl::Status JournalStore::Error(const char* what) const {
  const int code = sqlite3_extended_errcode(db_);
  const std::string message =
      absl::StrCat("journal: ", what, ": ", sqlite3_errmsg(db_));
  switch (code & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status JournalStore::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    sqlite3_free(message);
    return Error(sql);
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> JournalStore::Prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return Error(sql);
  }
  return stmt;
}

absl::StatusOr<int64_t> JournalStore::PragmaInt(const char* sql) {
  absl::StatusOr<sqlite3_stmt*> prepared = Prepare(sql);
  if (!prepared.ok()) return prepared.status();
  Statement s{*prepared};
  const int rc = sqlite3_step(s.stmt);
  if (rc == SQLITE_ROW) return sqlite3_column_int64(s.stmt, 0);
  if (rc == SQLITE_DONE) return absl::NotFoundError(sql);
  return Error(sql);
}

absl::Status JournalStore::Append(const Batch& batch) {
  if (batch.empty()) return absl::OkStatus();
  if (absl::Status s = Step(kBegin); !s.ok()) return s;
  bool committed = false;
  absl::Cleanup rollback = [&] {
    if (!committed) (void)Step(kRollback);
  };
  // Each statement is reset after its step: a statement left mid-way would
  // hold its read of the database past the transaction.
  const auto run = [this](sqlite3_stmt* stmt, const char* what) {
    const int rc = sqlite3_step(stmt);
    absl::Status status = rc == SQLITE_DONE ? absl::OkStatus() : Error(what);
    sqlite3_reset(stmt);
    return status;
  };
  for (const StoredEvent& e : batch.events) {
    absl::StatusOr<sqlite3_stmt*> stmt = Cached(kInsertEvent);
    if (!stmt.ok()) return stmt.status();
    sqlite3_bind_int64(*stmt, 1, static_cast<int64_t>(e.seq));
    BindText(*stmt, 2, e.project_id);
    BindText(*stmt, 3, e.name);
    sqlite3_bind_int64(*stmt, 4, e.at_ms);
    BindText(*stmt, 5, e.conversation_id);
    BindText(*stmt, 6, e.correlation_id);
    BindText(*stmt, 7, e.payload_json);
    if (absl::Status s = run(*stmt, "insert event"); !s.ok()) return s;
  }
  for (const StoredToolResult& r : batch.results) {
    absl::StatusOr<sqlite3_stmt*> stmt = Cached(kInsertResult);
    if (!stmt.ok()) return stmt.status();
    BindText(*stmt, 1, r.project_id);
    BindText(*stmt, 2, r.call_id);
    BindText(*stmt, 3, r.conversation_id);
    sqlite3_bind_int64(*stmt, 4, r.at_ms);
    BindText(*stmt, 5, r.result_json);
    if (absl::Status s = run(*stmt, "insert tool result"); !s.ok()) return s;
  }
  for (const ProjectChange& p : batch.projects) {
    absl::StatusOr<sqlite3_stmt*> stmt =
        Cached(p.spec_json.empty() ? kDeleteProject : kUpsertProject);
    if (!stmt.ok()) return stmt.status();
    BindText(*stmt, 1, p.project_id);
    if (!p.spec_json.empty()) {
      BindText(*stmt, 2, p.spec_json);
      sqlite3_bind_int64(*stmt, 3, p.at_ms);
    }
    if (absl::Status s = run(*stmt, "record project"); !s.ok()) return s;
  }
  if (absl::Status s = Step(kCommit); !s.ok()) return s;
  committed = true;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> JournalStore::MaxSeq() {
  absl::StatusOr<int64_t> max =
      PragmaInt("SELECT COALESCE(MAX(seq), 0) FROM events");
  if (!max.ok()) return max.status();
  return static_cast<uint64_t>(*max);
}

absl::StatusOr<std::vector<StoredEvent>> JournalStore::Events(
    const EventQuery& query) {
  absl::StatusOr<sqlite3_stmt*> prepared = Prepare(
      "SELECT seq, project_id, name, at_ms, conversation_id, correlation_id, "
      "payload FROM events WHERE project_id = ?1 AND seq > ?2 "
      "AND (?3 = '' OR conversation_id = ?3) "
      "AND (?4 = '' OR correlation_id = ?4) ORDER BY seq LIMIT ?5");
  if (!prepared.ok()) return prepared.status();
  Statement s{*prepared};
  BindText(s.stmt, 1, query.project_id);
  sqlite3_bind_int64(s.stmt, 2, static_cast<int64_t>(query.after_seq));
  BindText(s.stmt, 3, query.conversation_id);
  BindText(s.stmt, 4, query.correlation_id);
  sqlite3_bind_int64(s.stmt, 5, static_cast<int64_t>(query.limit));
  std::vector<StoredEvent> events;
  int rc;
  while ((rc = sqlite3_step(s.stmt)) == SQLITE_ROW) {
    StoredEvent e;
    e.seq = static_cast<uint64_t>(sqlite3_column_int64(s.stmt, 0));
    e.project_id = ColumnText(s.stmt, 1);
    e.name = ColumnText(s.stmt, 2);
    e.at_ms = sqlite3_column_int64(s.stmt, 3);
    e.conversation_id = ColumnText(s.stmt, 4);
    e.correlation_id = ColumnText(s.stmt, 5);
    e.payload_json = ColumnText(s.stmt, 6);
    events.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return Error("read events");
  return events;
}

absl::StatusOr<std::optional<StoredToolResult>> JournalStore::ToolResult(
    const std::string& project_id, const std::string& call_id) {
  absl::StatusOr<sqlite3_stmt*> prepared = Prepare(
      "SELECT conversation_id, at_ms, result FROM tool_results "
      "WHERE project_id = ? AND call_id = ?");
  if (!prepared.ok()) return prepared.status();
  Statement s{*prepared};
  BindText(s.stmt, 1, project_id);
  BindText(s.stmt, 2, call_id);
  const int rc = sqlite3_step(s.stmt);
  if (rc == SQLITE_DONE) return std::optional<StoredToolResult>();
  if (rc != SQLITE_ROW) return Error("read tool result");
  StoredToolResult r;
  r.project_id = project_id;
  r.call_id = call_id;
  r.conversation_id = ColumnText(s.stmt, 0);
  r.at_ms = sqlite3_column_int64(s.stmt, 1);
  r.result_json = ColumnText(s.stmt, 2);
  return std::optional<StoredToolResult>(std::move(r));
}

absl::StatusOr<std::vector<StoredProject>> JournalStore::RunningProjects() {
  absl::StatusOr<sqlite3_stmt*> prepared = Prepare(
      "SELECT project_id, spec, started_at_ms FROM projects "
      "ORDER BY started_at_ms, project_id");
  if (!prepared.ok()) return prepared.status();
  Statement s{*prepared};
  std::vector<StoredProject> projects;
  int rc;
  while ((rc = sqlite3_step(s.stmt)) == SQLITE_ROW) {
    projects.push_back({ColumnText(s.stmt, 0), ColumnText(s.stmt, 1),
                        sqlite3_column_int64(s.stmt, 2)});
  }
  if (rc != SQLITE_DONE) return Error("read projects");
  return projects;
}

absl::StatusOr<int64_t> JournalStore::UsedBytes() {
  absl::StatusOr<int64_t> pages = PragmaInt("PRAGMA page_count");
  absl::StatusOr<int64_t> free_pages = PragmaInt("PRAGMA freelist_count");
  absl::StatusOr<int64_t> page_size = PragmaInt("PRAGMA page_size");
  if (!pages.ok()) return pages.status();
  if (!free_pages.ok()) return free_pages.status();
  if (!page_size.ok()) return page_size.status();
  return (*pages - *free_pages) * *page_size;
}

absl::StatusOr<PruneResult> JournalStore::Prune(const RetentionPolicy& policy,
                                                int64_t now_ms) {
  PruneResult result;
  if (policy.max_age_ms > 0) {
    const int64_t cutoff = now_ms - policy.max_age_ms;
    for (const char* table : {"events", "tool_results"}) {
      absl::StatusOr<sqlite3_stmt*> prepared = Prepare(
          absl::StrCat("DELETE FROM ", table, " WHERE at_ms < ?").c_str());
      if (!prepared.ok()) return prepared.status();
      Statement s{*prepared};
      sqlite3_bind_int64(s.stmt, 1, cutoff);
      if (sqlite3_step(s.stmt) != SQLITE_DONE) return Error("prune by age");
      (table[0] == 'e' ? result.events_deleted : result.results_deleted) +=
          static_cast<uint64_t>(sqlite3_changes(db_));
    }
  }
  if (policy.max_bytes > 0) {
    // The oldest tenth of what is left per round, until it fits (or nothing
    // is left to delete).
    for (int round = 0; round < 64; ++round) {
      absl::StatusOr<int64_t> used = UsedBytes();
      if (!used.ok()) return used.status();
      if (*used <= policy.max_bytes) break;
      absl::StatusOr<int64_t> count = PragmaInt("SELECT COUNT(*) FROM events");
      absl::StatusOr<int64_t> results =
          PragmaInt("SELECT COUNT(*) FROM tool_results");
      if (!count.ok()) return count.status();
      if (!results.ok()) return results.status();
      if (*count == 0 && *results == 0) break;
      const int64_t events_batch = std::max<int64_t>(1, *count / 10);
      const int64_t results_batch = std::max<int64_t>(1, *results / 10);
      const std::string delete_events = absl::StrCat(
          "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY "
          "seq LIMIT ",
          events_batch, ")");
      if (absl::Status s = Exec(delete_events.c_str()); !s.ok()) return s;
      result.events_deleted += static_cast<uint64_t>(sqlite3_changes(db_));
      const std::string delete_results = absl::StrCat(
          "DELETE FROM tool_results WHERE rowid IN (SELECT rowid FROM "
          "tool_results ORDER BY at_ms LIMIT ",
          results_batch, ")");
      if (absl::Status s = Exec(delete_results.c_str()); !s.ok()) return s;
      result.results_deleted += static_cast<uint64_t>(sqlite3_changes(db_));
    }
  }
  if (result.events_deleted + result.results_deleted > 0) {
    // Frees the pages, then (WAL mode) copies that into the database file
    // and truncates both: only then does the disk get the space back.
    if (absl::Status s = Exec("PRAGMA incremental_vacuum"); !s.ok()) return s;
    if (absl::Status s = Exec("PRAGMA wal_checkpoint(TRUNCATE)"); !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<int64_t> used = UsedBytes();
  if (!used.ok()) return used.status();
  result.bytes_after = *used;
  return result;
}

}  // namespace jcs::runtime::journal
