#include "runtime/conversation/signal.h"

#include <array>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/tools/tool_runtime.h"

namespace jcs::runtime::conversation {
namespace {

constexpr std::string_view kCanonical[] = {
    "conversation.assistant.delta",
    "conversation.assistant.message",
    "conversation.cancel",
    "conversation.resume",
    "conversation.resume.rejected",
    "conversation.cmd.cancel",
    "conversation.cmd.drain",
    "conversation.cmd.ingest",
    "conversation.cmd.instruction.result",
    "conversation.llm.requested",
    "conversation.llm.completed",
    "conversation.llm.failed",
    "conversation.mode.switch.requested",
    "conversation.mode.switch.accepted",
    "conversation.mode.switch.rejected",
    "conversation.queue.overflow",
    "conversation.run.opened",
    "conversation.run.closed",
    "conversation.run.interrupted",
    "conversation.run.resumed",
    "conversation.strategy.cancelled",
    "conversation.subagent.requested",
    "conversation.subagent.started",
    "conversation.subagent.completed",
    "conversation.subagent.failed",
    "conversation.subagent.stopped",
    "conversation.tool.requested",
    "conversation.tool.completed",
    "conversation.tool.failed",
    "conversation.tool.cancelled",
    "conversation.user.message",
    "conversation.started",
    "conversation.stopped",
    "conversation.event_ingested",
    "conversation.tool.started",
    "conversation.tool.timeout",
    "conversation.execution.started",
    "conversation.execution.completed",
    "conversation.execution.failed",
    "conversation.strategy.started",
    "conversation.strategy.completed",
    "conversation.strategy.failed",
};

constexpr std::string_view kEnvelopeKeys[] = {
    "id",     "type",    "data", "meta",        "extensions",
    "source", "subject", "time", "specversion", "datacontenttype"};

absl::Status Invalid(const std::string& reason, const std::string& detail) {
  return absl::InvalidArgumentError(absl::StrCat(reason, ": ", detail));
}

bool IsEnvelopeKey(const std::string& key) {
  for (std::string_view k : kEnvelopeKeys) {
    if (k == key) return true;
  }
  return false;
}

// The first correlation id found, trimmed ("" when none).
absl::StatusOr<std::string> FindCorrelation(const nlohmann::json& meta,
                                            const nlohmann::json& data) {
  const nlohmann::json* found = nullptr;
  if (meta.contains("correlation_id")) {
    found = &meta["correlation_id"];
  } else if (data.contains("metadata") && data["metadata"].is_object() &&
             data["metadata"].contains("correlation_id")) {
    found = &data["metadata"]["correlation_id"];
  }
  if (found == nullptr || found->is_null()) return std::string();
  if (!found->is_string()) {
    return Invalid("invalid_correlation_id", "expected a string");
  }
  std::string id(absl::StripAsciiWhitespace(found->get<std::string>()));
  if (id.size() > kMaxCorrelationIdBytes) {
    return Invalid(
        "invalid_correlation_id",
        absl::StrCat("longer than ", kMaxCorrelationIdBytes, " bytes"));
  }
  for (const char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Invalid("invalid_correlation_id", "control characters");
    }
  }
  return id;
}

absl::Status CheckData(const Signal& signal) {
  const nlohmann::json& data = signal.data;
  if (signal.type == "conversation.user.message") {
    if (!data.contains("content") || !data["content"].is_string()) {
      return Invalid("invalid_signal_data", "data.content: expected a string");
    }
    if (data.contains("llm") && !data["llm"].is_object()) {
      return Invalid("invalid_signal_data", "data.llm: expected an object");
    }
  } else if (signal.type == "conversation.cancel") {
    if (data.contains("reason") && !data["reason"].is_string()) {
      return Invalid("invalid_signal_data", "data.reason: expected a string");
    }
  } else if (signal.type == "conversation.tool.requested") {
    if (!data.contains("name") || !data["name"].is_string() ||
        data["name"].get<std::string>().empty()) {
      return Invalid("invalid_signal_data",
                     "data.name: expected a non-empty string");
    }
    for (const char* key : {"args", "meta"}) {
      if (data.contains(key) && !data[key].is_null() &&
          !data[key].is_object()) {
        return Invalid("invalid_signal_data",
                       absl::StrCat("data.", key, ": expected an object"));
      }
    }
    if (data.contains("call_id") && !data["call_id"].is_string()) {
      return Invalid("invalid_signal_data", "data.call_id: expected a string");
    }
  }
  return absl::OkStatus();
}

// Bounded recursion: stops one level past the limit.
bool DeeperThan(const nlohmann::json& value, int limit) {
  if (!value.is_structured()) return false;
  if (limit == 0) return true;
  for (const nlohmann::json& child : value) {
    if (DeeperThan(child, limit - 1)) return true;
  }
  return false;
}

absl::Status TooDeep() {
  return Invalid("invalid_signal", absl::StrCat("nested deeper than ",
                                                kMaxSignalDepth, " levels"));
}

}  // namespace

absl::Status CheckSignalTextDepth(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxSignalDepth) return TooDeep();
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

bool IsCanonicalType(std::string_view type) {
  for (std::string_view t : kCanonical) {
    if (t == type) return true;
  }
  return false;
}

bool IsExternalType(std::string_view type) {
  return type == "conversation.user.message" || type == "conversation.cancel" ||
         type == "conversation.resume" || type == "conversation.tool.requested";
}

std::string NewSignalId() {
  // NewCorrelationId: "corr-" + 20 hex from getrandom(2).
  return absl::StrCat("sig-", NewCorrelationId().substr(5));
}

absl::StatusOr<Signal> NormalizeSignal(const nlohmann::json& raw) {
  if (!raw.is_object()) {
    return Invalid("invalid_signal", "expected a JSON object");
  }
  if (DeeperThan(raw, kMaxSignalDepth)) return TooDeep();
  if (!raw.contains("type")) return Invalid("missing_type", "type");
  if (!raw["type"].is_string()) {
    return Invalid("invalid_type", "type: expected a string");
  }
  Signal signal;
  signal.type =
      std::string(absl::StripAsciiWhitespace(raw["type"].get<std::string>()));
  if (absl::StartsWith(signal.type, "conversation.cmd.")) {
    return Invalid("reserved_type", signal.type);
  }
  if (!IsCanonicalType(signal.type)) {
    return Invalid("invalid_type", signal.type.substr(0, 128));
  }
  if (!IsExternalType(signal.type)) {
    return Invalid("external_type_not_allowed", signal.type);
  }
  for (const auto& [key, value] : raw.items()) {
    if (!IsEnvelopeKey(key)) {
      return Invalid(
          "missing_data_envelope",
          absl::StrCat("field '", key.substr(0, 64), "' must sit in data"));
    }
  }
  if (raw.contains("data") && !raw["data"].is_null()) {
    if (!raw["data"].is_object()) {
      return Invalid("missing_data_envelope", "data must be a JSON object");
    }
    signal.data = raw["data"];
  }
  for (const char* key : {"extensions", "meta"}) {  // meta wins
    if (!raw.contains(key) || raw[key].is_null()) continue;
    if (!raw[key].is_object()) {
      return Invalid("invalid_meta", absl::StrCat(key, ": expected an object"));
    }
    for (const auto& [k, v] : raw[key].items()) signal.meta[k] = v;
  }
  if (raw.contains("id") && !raw["id"].is_null()) {
    if (!raw["id"].is_string() || raw["id"].get<std::string>().empty() ||
        raw["id"].get<std::string>().size() > kMaxSignalIdBytes) {
      return Invalid("invalid_signal_id",
                     absl::StrCat("id: expected a string of 1..",
                                  kMaxSignalIdBytes, " bytes"));
    }
    signal.id = raw["id"].get<std::string>();
  } else {
    signal.id = NewSignalId();
  }
  absl::StatusOr<std::string> correlation =
      FindCorrelation(signal.meta, signal.data);
  if (!correlation.ok()) return correlation.status();
  signal.correlation_id =
      correlation->empty() ? NewCorrelationId() : *std::move(correlation);
  signal.meta["correlation_id"] = signal.correlation_id;
  if (absl::Status status = CheckData(signal); !status.ok()) return status;
  return signal;
}

}  // namespace jcs::runtime::conversation
