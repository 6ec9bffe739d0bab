// `jcs timeline PROJECT CONVERSATION [--correlation-id ID] [--limit N]
// [--json] [--socket PATH]`: a conversation's incident timeline (spec §5.5)
// as the runbook's incident-response step reads it. By default a table, one
// entry per line (time, source, event, correlation id, what it was about);
// --json prints the daemon's document.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/json_fields.h"
#include "nlohmann/json.hpp"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
const CommandSpec& TimelineSpec() {
  static const auto* spec = new CommandSpec{
      "timeline",
      "PROJECT CONVERSATION",
      "Prints a conversation's incident timeline (the journal's events of "
      "it and the telemetry about it, in time order) as a table.",
      {{"--correlation-id", "ID", "every entry",
        "only the entries of this correlation id"},
       {"--limit", "N", "the daemon's", "at most N entries"},
       SocketFlag(),
       JsonFlag("print the daemon's document")}};
  return *spec;
}

namespace {

constexpr size_t kMaxDetail = 100;

int Usage(const std::string& error) {
  return UsageError(TimelineSpec(), error);
}

// Payload text is whatever a model, a tool or a user put there: control
// characters (terminal escapes, newlines that forge rows) print as '?'.
std::string Printable(const std::string& text, size_t max) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out;
}

std::string Text(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

using json_fields::Member;

// What an entry was about, in a few key=value pairs: the tool, the reason
// and the triage fields of telemetry; the tool name, reason or text of a
// conversation signal's data.
std::string Detail(const nlohmann::json& entry) {
  const nlohmann::json& payload = Member(entry, "payload");
  const nlohmann::json& data = Member(payload, "data");
  std::vector<std::string> parts;
  const auto add = [&parts](const char* key, const nlohmann::json& value) {
    if (!value.is_null()) parts.push_back(absl::StrCat(key, "=", Text(value)));
  };
  add("tool", !Member(payload, "tool").is_null() ? Member(payload, "tool")
              : !Member(payload, "tool_name").is_null()
                  ? Member(payload, "tool_name")
                  : Member(data, "name"));
  add("reason", !Member(payload, "reason").is_null() ? Member(payload, "reason")
                                                     : Member(data, "reason"));
  for (const char* key : {"path", "resolved_path", "host", "port", "errno"}) {
    const nlohmann::json& detail = Member(payload, "detail");
    add(key, !Member(payload, key).is_null() ? Member(payload, key)
                                             : Member(detail, key));
  }
  add("text", !Member(data, "content").is_null() ? Member(data, "content")
                                                 : Member(data, "text"));
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += ' ';
    out += part;
  }
  return Printable(out, kMaxDetail);
}

}  // namespace

int TimelineCommand(const std::vector<std::string>& args) {
  int exit_code = 0;
  std::optional<ParsedFlags> flags =
      ParseOrExit(TimelineSpec(), args, &exit_code);
  if (!flags.has_value()) return exit_code;
  const std::string socket = flags->Get("--socket", DefaultSocket());
  const std::string correlation = flags->Get("--correlation-id");
  const bool json = flags->Has("--json");
  const std::vector<std::string>& positional = flags->positional;
  int64_t limit = 0;
  if (flags->Has("--limit") &&
      !absl::SimpleAtoi(flags->Get("--limit"), &limit)) {
    return Usage("--limit: expected an integer, got '" + flags->Get("--limit") +
                 "'");
  }
  if (positional.size() != 2) {
    return Usage("expected PROJECT and CONVERSATION");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(socket);
  if (!client.ok()) {
    fprintf(stderr, "jcs timeline: %s\n",
            std::string(client.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::string> doc = (*client)->IncidentTimeline(
      positional[0], positional[1], correlation, limit);
  if (!doc.ok()) {
    fprintf(stderr, "jcs timeline: %s\n",
            std::string(doc.status().message()).c_str());
    return 1;
  }
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  if (json || !parsed.is_object()) {
    printf("%s\n", doc->c_str());
    return 0;
  }
  const nlohmann::json& entries = Member(parsed, "entries");
  const size_t shown = entries.is_array() ? entries.size() : 0;
  printf(
      "conversation %s of project %s%s: %zu of %s entries (limit %s)\n",
      Printable(positional[1], 128).c_str(),
      Printable(positional[0], 128).c_str(),
      correlation.empty()
          ? ""
          : absl::StrCat(", correlation ", Printable(correlation, 128)).c_str(),
      shown, Text(Member(parsed, "total_entries")).c_str(),
      Text(Member(parsed, "limit")).c_str());
  printf("%-24s  %-12s  %-32s  %-26s  %s\n", "AT", "SOURCE", "EVENT",
         "CORRELATION", "DETAIL");
  for (size_t i = 0; i < shown; ++i) {
    const nlohmann::json& e = entries[i];
    printf("%-24s  %-12s  %-32s  %-26s  %s\n",
           Printable(Text(Member(e, "at")), 30).c_str(),
           Printable(Text(Member(e, "source")), 12).c_str(),
           Printable(Text(Member(e, "event")), 64).c_str(),
           Printable(Text(Member(e, "correlation_id")), 64).c_str(),
           Detail(e).c_str());
  }
  return 0;
}

}  // namespace jcs::tools
