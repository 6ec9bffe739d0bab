#include "runtime/conversation/incident_timeline.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/json_fields.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {
namespace {

constexpr char kConversation[] = "conversation";
constexpr char kTelemetry[] = "telemetry";
constexpr char kCancelledName[] = "conversation.tool.cancelled";
// Rows per journal read: one page and the kept entries are all the memory a
// query holds, however long the conversation.
constexpr size_t kPageRows = 1000;

using json_fields::Member;

std::string NonBlankString(const nlohmann::json& value) {
  if (!value.is_string()) return "";
  return std::string(absl::StripAsciiWhitespace(value.get<std::string>()));
}

// "conversation_cancelled" as the original's atom (":conversation_cancelled"
// once stringified) or as a plain string.
bool IsCancelledReason(const nlohmann::json& value) {
  std::string text = NonBlankString(value);
  if (!text.empty() && text[0] == ':') text.erase(0, 1);
  return text == "conversation_cancelled";
}

// A tool failure says it was a conversation cancel in data.reason,
// data.message, or (the tool runtime's events) reason / message.
bool CancelledFailure(const nlohmann::json& payload) {
  const nlohmann::json& data = Member(payload, "data");
  return IsCancelledReason(Member(data, "reason")) ||
         IsCancelledReason(Member(data, "message")) ||
         IsCancelledReason(Member(payload, "reason")) ||
         IsCancelledReason(Member(payload, "message"));
}

bool IsEventIngested(absl::string_view name) {
  return name == "event_ingested" || absl::EndsWith(name, ".event_ingested");
}

// The §5.5 renames of a conversation entry; nullopt drops it.
std::optional<std::string> ConversationName(std::string name,
                                            const nlohmann::json& payload) {
  if (name == "conv.in.message.received") {
    name = "conversation.user.message";
  } else if (name == "conv.out.assistant.delta") {
    name = "conversation.assistant.delta";
  } else if (name == "conv.out.assistant.completed") {
    name = "conversation.assistant.message";
  } else if (name == "conv.out.tool.status") {
    const std::string status =
        NonBlankString(Member(Member(payload, "data"), "status"));
    if (status == "requested" || status == "completed" ||
        status == "cancelled") {
      name = "conversation.tool." + status;
    } else if (status == "failed") {
      name = CancelledFailure(payload) ? kCancelledName
                                       : "conversation.tool.failed";
    } else {
      name = "conversation.tool.status";
    }
  } else if (name == "conversation.tool.failed" && CancelledFailure(payload)) {
    name = kCancelledName;
  }
  if (absl::StartsWith(name, "conv.") || IsEventIngested(name)) {
    return std::nullopt;
  }
  return name;
}

// The renames of a telemetry entry (the tool runtime's tool.failed for a
// call the conversation's cancel ended, and the original's
// conversation.tool.failed); nullopt drops it.
std::optional<std::string> TelemetryName(std::string name,
                                         const nlohmann::json& payload) {
  if (IsEventIngested(name)) return std::nullopt;
  if ((name == "tool.failed" || name == "conversation.tool.failed") &&
      CancelledFailure(payload)) {
    return std::string(kCancelledName);
  }
  return name;
}

// A conversation entry's correlation id: the payload's, else the signal's
// meta, extensions or data.metadata (§5.5), else the journal column.
std::string ConversationCorrelation(const nlohmann::json& payload,
                                    const journal::StoredEvent& row) {
  for (const nlohmann::json* candidate :
       {&Member(payload, "correlation_id"),
        &Member(Member(payload, "meta"), "correlation_id"),
        &Member(Member(payload, "extensions"), "correlation_id"),
        &Member(Member(Member(payload, "data"), "metadata"),
                "correlation_id")}) {
    std::string id = NonBlankString(*candidate);
    if (!id.empty()) return id;
  }
  return std::string(absl::StripAsciiWhitespace(row.correlation_id));
}

}  // namespace

int64_t NormalizeTimelineLimit(int64_t limit) {
  if (limit <= 0) return kTimelineDefaultLimit;
  return std::min(limit, kTimelineMaxLimit);
}

int64_t TimelineTimestampMs(const nlohmann::json& at) {
  if (at.is_number_integer()) return at.get<int64_t>();
  if (at.is_number_unsigned()) {
    const uint64_t v = at.get<uint64_t>();
    return v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v);
  }
  if (!at.is_string()) return -1;
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, at.get<std::string>(), &t, &error)) {
    return -1;
  }
  return absl::ToUnixMillis(t);
}

IncidentTimelineBuilder::IncidentTimelineBuilder(TimelineQuery query)
    : query_(std::move(query)), limit_(NormalizeTimelineLimit(query_.limit)) {
  query_.correlation_id =
      std::string(absl::StripAsciiWhitespace(query_.correlation_id));
}

void IncidentTimelineBuilder::Add(const journal::StoredEvent& row) {
  if (row.project_id != query_.project_id ||
      row.conversation_id != query_.conversation_id) {
    return;
  }
  found_ = true;
  nlohmann::json payload =
      nlohmann::json::parse(row.payload_json, nullptr, false);
  if (!payload.is_object()) payload = nlohmann::json::object();
  const bool from_conversation =
      NonBlankString(Member(payload, "source")) == kConversation;
  std::optional<std::string> name = from_conversation
                                        ? ConversationName(row.name, payload)
                                        : TelemetryName(row.name, payload);
  if (!name.has_value()) return;
  std::string correlation =
      from_conversation
          ? ConversationCorrelation(payload, row)
          : std::string(absl::StripAsciiWhitespace(row.correlation_id));
  if (!query_.correlation_id.empty() && correlation != query_.correlation_id) {
    return;
  }
  Entry entry;
  // The conversation's own time of the signal when it carries one (§7
  // payloads have `at`), else when the journal got it.
  const nlohmann::json& at = Member(payload, "at");
  entry.at_ms =
      from_conversation && !at.is_null() ? TimelineTimestampMs(at) : row.at_ms;
  entry.rank = from_conversation ? 0 : 1;
  entry.order = next_order_++;
  entry.doc = {
      {"source", from_conversation ? kConversation : kTelemetry},
      {"at", entry.at_ms < 0 ? nlohmann::json()
                             : nlohmann::json(telemetry::Rfc3339(
                                   absl::FromUnixMillis(entry.at_ms)))},
      {"at_ms", entry.at_ms},
      {"seq", row.seq},
      {"event", *std::move(name)},
      {"conversation_id", row.conversation_id},
      {"correlation_id",
       correlation.empty() ? nlohmann::json() : nlohmann::json(correlation)},
      {"payload", std::move(payload)}};
  entries_.push_back(std::move(entry));
  ++total_;
  if (entries_.size() >= static_cast<size_t>(2 * limit_) + kPageRows) Trim();
}

void IncidentTimelineBuilder::Trim() {
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) {
              if (a.at_ms != b.at_ms) return a.at_ms < b.at_ms;
              if (a.rank != b.rank) return a.rank < b.rank;
              return a.order < b.order;
            });
  if (entries_.size() > static_cast<size_t>(limit_)) {
    entries_.erase(entries_.begin(),
                   entries_.end() - static_cast<ptrdiff_t>(limit_));
  }
}

absl::StatusOr<nlohmann::json> IncidentTimelineBuilder::Finish() {
  if (!found_) {
    return absl::NotFoundError(
        absl::StrCat("conversation_not_found: ", query_.conversation_id));
  }
  Trim();
  nlohmann::json entries = nlohmann::json::array();
  for (Entry& entry : entries_) entries.push_back(std::move(entry.doc));
  entries_.clear();
  return nlohmann::json{
      {"project_id", query_.project_id},
      {"conversation_id", query_.conversation_id},
      {"correlation_id", query_.correlation_id.empty()
                             ? nlohmann::json()
                             : nlohmann::json(query_.correlation_id)},
      {"limit", limit_},
      {"total_entries", total_},
      {"entries", std::move(entries)}};
}

absl::StatusOr<nlohmann::json> BuildIncidentTimeline(
    TimelineQuery query, const std::vector<journal::StoredEvent>& rows) {
  IncidentTimelineBuilder builder(std::move(query));
  builder.AddAll(rows);
  return builder.Finish();
}

namespace {

struct PagedQuery {
  journal::Journal* journal;
  journal::EventQuery page;
  IncidentTimelineBuilder builder;
  std::function<void(absl::StatusOr<nlohmann::json>)> done;
};

void ReadNextPage(std::shared_ptr<PagedQuery> state) {
  journal::Journal* journal = state->journal;
  journal::EventQuery page = state->page;
  journal->QueryEvents(
      std::move(page),
      [state = std::move(state)](
          absl::StatusOr<std::vector<journal::StoredEvent>> rows) {
        if (!rows.ok()) {
          state->done(rows.status());
          return;
        }
        state->builder.AddAll(*rows);
        if (rows->size() < kPageRows) {
          state->done(state->builder.Finish());
          return;
        }
        state->page.after_seq = rows->back().seq;
        ReadNextPage(state);
      });
}

}  // namespace

void QueryIncidentTimeline(
    journal::Journal* journal, TimelineQuery query,
    std::function<void(absl::StatusOr<nlohmann::json>)> done) {
  // An empty conversation id would read every conversation of the project.
  if (query.project_id.empty() || query.conversation_id.empty()) {
    done(absl::InvalidArgumentError(
        query.project_id.empty()
            ? "incident_timeline: project_id: expected a non-empty string"
            : "incident_timeline: conversation_id: expected a non-empty "
              "string"));
    return;
  }
  journal::EventQuery page;
  page.project_id = query.project_id;
  page.conversation_id = query.conversation_id;
  page.limit = kPageRows;
  auto state = std::make_shared<PagedQuery>(
      PagedQuery{journal, std::move(page),
                 IncidentTimelineBuilder(std::move(query)), std::move(done)});
  // A failing journal still answers with what it committed before.
  journal->Flush(
      [state](const absl::Status&) mutable { ReadNextPage(std::move(state)); });
}

}  // namespace jcs::runtime::conversation
