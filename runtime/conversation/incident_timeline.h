// The incident timeline of a conversation (spec §5.5): the conversation's own
// events and the telemetry about it (tool.*, policy.*, security.*), merged in
// time order, bounded, optionally narrowed to one correlation id. It is read
// from the journal, which holds every event of a live or a stopped
// conversation alike, so an operator gets the same answer before and after
// the conversation ends (or the daemon restarts).
//
// Two halves: IncidentTimelineBuilder is a pure function over journal rows
// (fed page by page, so memory stays bounded by the limit and one page, not
// by the conversation's history), and QueryIncidentTimeline is the glue that
// pages through the journal on the event loop.
#ifndef JCS_RUNTIME_CONVERSATION_INCIDENT_TIMELINE_H_
#define JCS_RUNTIME_CONVERSATION_INCIDENT_TIMELINE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/journal/journal.h"
#include "runtime/journal/journal_store.h"

namespace jcs::runtime::conversation {

inline constexpr int64_t kTimelineDefaultLimit = 100;
inline constexpr int64_t kTimelineMaxLimit = 500;

struct TimelineQuery {
  std::string project_id;
  std::string conversation_id;
  std::string correlation_id;  // trimmed; blank: no filter
  int64_t limit = 0;           // non-positive: 100; capped at 500
};

// The limit §5.5 applies: 100 for a non-positive one, at most 500.
int64_t NormalizeTimelineLimit(int64_t limit);

// Milliseconds since the epoch of an entry time: an integer, or an RFC 3339
// string; -1 for anything else (it then sorts first, as in §5.5).
int64_t TimelineTimestampMs(const nlohmann::json& at);

// Builds one timeline from journal rows given in journal (seq) order.
// Entries: {source: "conversation"|"telemetry", at (RFC 3339 ms), at_ms,
// seq, event, conversation_id, correlation_id, payload}. Renames (§5.5):
// conv.* signal names to their conversation.* names; a tool failure whose
// reason (data.reason / data.message / reason / message) is
// conversation_cancelled (optionally ":"-prefixed) becomes
// conversation.tool.cancelled; event_ingested entries and leftover conv.*
// names are dropped. Sort: stable by (timestamp ms, conversation before
// telemetry); the last `limit` are kept, total_entries counts them all.
class IncidentTimelineBuilder {
 public:
  explicit IncidentTimelineBuilder(TimelineQuery query);

  // Rows of other conversations or projects are ignored.
  void Add(const journal::StoredEvent& row);
  void AddAll(const std::vector<journal::StoredEvent>& rows) {
    for (const journal::StoredEvent& row : rows) Add(row);
  }

  // {project_id, conversation_id, correlation_id (null: none), limit,
  //  total_entries, entries}; NotFound "conversation_not_found: CID" when no
  // row of the conversation was seen at all.
  absl::StatusOr<nlohmann::json> Finish();

 private:
  struct Entry {
    int64_t at_ms = -1;
    int rank = 0;        // conversation 0, telemetry 1
    uint64_t order = 0;  // arrival order: keeps the sort stable
    nlohmann::json doc;
  };
  // Sorts and keeps the last `limit_` entries. The last `limit` of all
  // entries are among the last `limit` of any earlier part plus the rest,
  // so trimming as rows arrive gives the same answer as trimming once.
  void Trim();

  TimelineQuery query_;
  int64_t limit_;
  bool found_ = false;
  uint64_t total_ = 0;
  uint64_t next_order_ = 0;
  std::vector<Entry> entries_;
};

// The pure function over a whole list of rows.
absl::StatusOr<nlohmann::json> BuildIncidentTimeline(
    TimelineQuery query, const std::vector<journal::StoredEvent>& rows);

// Loop thread: flushes the journal (so the caller's own recent events are
// included), then pages through the conversation's events and answers
// `done` on the loop with Finish()'s result, or the journal's error.
// `done` is not called once the journal is gone.
void QueryIncidentTimeline(
    journal::Journal* journal, TimelineQuery query,
    std::function<void(absl::StatusOr<nlohmann::json>)> done);

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_INCIDENT_TIMELINE_H_
