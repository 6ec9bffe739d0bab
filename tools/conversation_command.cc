// `jcs conversation ...`: the conversation requests of the control API.
//   start PROJECT [--id ID]                  prints the conversation id
//   stop PROJECT CONVERSATION
//   send PROJECT CONVERSATION --text TEXT [--llm JSON] [--correlation-id ID]
//        [--signal-id ID] [--async] [--timeout-ms N]
//                                            a conversation.user.message;
//                                            prints the settled snapshot
//                                            (--async: the ingest receipt)
//   cancel PROJECT CONVERSATION [--reason R] [--correlation-id ID]
//   resume PROJECT CONVERSATION [--correlation-id ID]
//   signal PROJECT CONVERSATION --signal JSON [--async] [--timeout-ms N]
//                                            any signal a client may send
//                                            (e.g. conversation.tool.requested)
//   state PROJECT CONVERSATION [--projection timeline|llm_context|
//        pending_tool_calls|diagnostics]
//   watch PROJECT CONVERSATION [--max-events N]
//                                            the conversation's events as JSON
//                                            lines, until interrupted (or N)
// Common: --socket PATH (default $JCS_SOCKET, else /run/jcs/jcs.sock). Output
// is JSON; daemon errors print "jcs conversation: REASON: DETAIL" and exit 1;
// bad command lines exit 2.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "nlohmann/json.hpp"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

// One table per subcommand (tools/flags.h): --help and parsing agree.
std::vector<FlagSpec> WithCommon(std::vector<FlagSpec> flags) {
  flags.push_back(SocketFlag());
  flags.push_back(JsonFlag("accepted for symmetry; the output is always JSON"));
  return flags;
}

const FlagSpec kCorrelation = {"--correlation-id", "ID", "",
                               "recorded on the signal's events"};
const FlagSpec kAsync = {"--async", "", "off",
                         "return the ingest receipt instead of waiting for "
                         "the conversation to settle"};
const FlagSpec kTimeout = {"--timeout-ms", "N", "the daemon's",
                           "how long to wait for it to settle"};

}  // namespace

const std::vector<CommandSpec>& ConversationSpecs() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"conversation start", "PROJECT",
       "Starts a conversation; prints {\"conversation_id\": ID}.",
       WithCommon({{"--id", "ID", "generated", "the conversation's id"}})},
      {"conversation stop", "PROJECT CONVERSATION", "Stops a conversation.",
       WithCommon({})},
      {"conversation send", "PROJECT CONVERSATION",
       "Sends a conversation.user.message and prints the settled snapshot.",
       WithCommon({{"--text", "TEXT", "", "the message (required)"},
                   {"--llm", "JSON", "",
                    "a directive for the deterministic adapter (an object)"},
                   kCorrelation,
                   {"--signal-id", "ID", "generated", "the signal's id"},
                   kAsync,
                   kTimeout})},
      {"conversation cancel", "PROJECT CONVERSATION",
       "Cancels the conversation's work (conversation.cancel).",
       WithCommon(
           {{"--reason", "R", "", "recorded on the signal"}, kCorrelation})},
      {"conversation resume", "PROJECT CONVERSATION",
       "Resumes a cancelled conversation (conversation.resume).",
       WithCommon({kCorrelation})},
      {"conversation signal", "PROJECT CONVERSATION",
       "Sends any signal a client may send (e.g. "
       "conversation.tool.requested).",
       WithCommon({{"--signal", "JSON", "", "the signal (required)"},
                   kAsync,
                   kTimeout})},
      {"conversation state", "PROJECT CONVERSATION",
       "Prints the conversation's state, or one projection of it.",
       WithCommon({{"--projection", "KEY", "the whole state",
                    "timeline, llm_context, pending_tool_calls or "
                    "diagnostics"}})},
      {"conversation watch", "PROJECT CONVERSATION",
       "Prints the conversation's events as JSON lines until interrupted.",
       WithCommon(
           {{"--max-events", "N", "unlimited", "exit 0 after N events"}})},
  };
  return *specs;
}

namespace {

const CommandSpec* current_spec = nullptr;

int Usage(const std::string& error) { return UsageError(*current_spec, error); }

int Fail(const absl::Status& status) {
  return tools::Fail(current_spec->name, status);
}

struct Flags {
  std::string socket;
  std::vector<std::string> positional;
  ParsedFlags parsed;
  bool async = false;
};

std::string Value(const Flags& flags, const std::string& name) {
  return flags.parsed.Get(name);
}

void Print(const std::string& doc) {
  printf("%s\n", doc.c_str());
  fflush(stdout);
}

// Sends `signal` as a call (waits to settle) or a cast (--async).
int Send(ControlClient& client, const Flags& flags,
         const nlohmann::json& signal) {
  const std::string& project = flags.positional[0];
  const std::string& conversation = flags.positional[1];
  uint32_t timeout_ms = 0;
  if (const std::string t = Value(flags, "--timeout-ms");
      !t.empty() && (!absl::SimpleAtoi(t, &timeout_ms) || timeout_ms == 0)) {
    return Usage("--timeout-ms: expected a positive integer");
  }
  const std::string text = signal.dump();
  absl::StatusOr<std::string> doc =
      flags.async
          ? client.ConversationCast(project, conversation, text)
          : client.ConversationCall(project, conversation, text, timeout_ms);
  if (!doc.ok()) return Fail(doc.status());
  Print(*doc);
  return 0;
}

int Watch(ControlClient& client, const Flags& flags) {
  int64_t max_events = 0;
  if (const std::string m = Value(flags, "--max-events");
      !m.empty() && (!absl::SimpleAtoi(m, &max_events) || max_events <= 0)) {
    return Usage("--max-events: expected a positive integer");
  }
  const std::string& conversation = flags.positional[1];
  if (absl::Status status = client.Subscribe(flags.positional[0]);
      !status.ok()) {
    return Fail(status);
  }
  int64_t seen = 0;
  while (max_events == 0 || seen < max_events) {
    absl::StatusOr<proto::Event> event = client.NextEvent(absl::Hours(1));
    if (!event.ok()) {
      if (event.status().code() == absl::StatusCode::kDeadlineExceeded) {
        continue;
      }
      return Fail(event.status());
    }
    nlohmann::json payload =
        nlohmann::json::parse(event->payload_json(), nullptr, false);
    if (!payload.is_object() ||
        json_fields::String(payload, "conversation_id") != conversation) {
      continue;
    }
    Print(nlohmann::json({{"name", event->name()},
                          {"at", event->at()},
                          {"seq", event->seq()},
                          {"durable", event->durable()},
                          {"payload", payload}})
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    ++seen;
  }
  return 0;
}

}  // namespace

int ConversationCommand(const std::vector<std::string>& args) {
  int exit_code = 0;
  const CommandSpec* spec =
      PickSubcommand("conversation", ConversationSpecs(), args, &exit_code);
  if (spec == nullptr) return exit_code;
  current_spec = spec;
  const std::string sub = args[0];
  std::optional<ParsedFlags> parsed =
      ParseOrExit(*spec, {args.begin() + 1, args.end()}, &exit_code);
  if (!parsed.has_value()) return exit_code;
  Flags flags;
  flags.socket = parsed->Get("--socket", DefaultSocket());
  flags.positional = parsed->positional;
  flags.async = parsed->Has("--async");
  flags.parsed = *std::move(parsed);
  const size_t want = sub == "start" ? 1 : 2;
  if (flags.positional.size() != want) {
    return Usage(sub + ": expected " +
                 (want == 1 ? "PROJECT" : "PROJECT and CONVERSATION"));
  }
  // Calls wait as long as the conversation takes to settle (bounded by the
  // daemon), watch as long as it is interrupted.
  absl::StatusOr<std::unique_ptr<ControlClient>> connected =
      ControlClient::Connect(flags.socket, absl::Hours(24));
  if (!connected.ok()) return Fail(connected.status());
  ControlClient& client = **connected;
  const std::string& project = flags.positional[0];
  nlohmann::json meta = nlohmann::json::object();
  if (const std::string c = Value(flags, "--correlation-id"); !c.empty()) {
    meta["correlation_id"] = c;
  }
  if (sub == "start") {
    absl::StatusOr<std::string> id =
        client.StartConversation(project, Value(flags, "--id"));
    if (!id.ok()) return Fail(id.status());
    Print(nlohmann::json({{"conversation_id", *id}}).dump());
    return 0;
  }
  const std::string& conversation = flags.positional[1];
  if (sub == "stop") {
    absl::Status status = client.StopConversation(project, conversation);
    if (!status.ok()) return Fail(status);
    Print(nlohmann::json({{"stopped", conversation}}).dump());
    return 0;
  }
  if (sub == "send") {
    if (!flags.parsed.Has("--text")) return Usage("send: give --text");
    nlohmann::json data = {{"content", Value(flags, "--text")}};
    if (const std::string llm = Value(flags, "--llm"); !llm.empty()) {
      nlohmann::json directive = nlohmann::json::parse(llm, nullptr, false);
      if (!directive.is_object()) return Usage("--llm: expected a JSON object");
      data["llm"] = std::move(directive);
    }
    nlohmann::json signal = {
        {"type", "conversation.user.message"}, {"data", data}, {"meta", meta}};
    if (const std::string id = Value(flags, "--signal-id"); !id.empty()) {
      signal["id"] = id;
    }
    return Send(client, flags, signal);
  }
  if (sub == "cancel" || sub == "resume") {
    nlohmann::json data = nlohmann::json::object();
    if (const std::string r = Value(flags, "--reason"); !r.empty()) {
      data["reason"] = r;
    }
    return Send(
        client, flags,
        {{"type", "conversation." + sub}, {"data", data}, {"meta", meta}});
  }
  if (sub == "signal") {
    nlohmann::json signal =
        nlohmann::json::parse(Value(flags, "--signal"), nullptr, false);
    if (signal.is_discarded()) return Usage("--signal: expected JSON");
    return Send(client, flags, signal);
  }
  if (sub == "state") {
    const std::string key = Value(flags, "--projection");
    absl::StatusOr<std::string> doc =
        key.empty() ? client.ConversationState(project, conversation)
                    : client.ConversationProjection(project, conversation, key);
    if (!doc.ok()) return Fail(doc.status());
    Print(*doc);
    return 0;
  }
  if (sub == "watch") return Watch(client, flags);
  return Usage("unknown subcommand '" + sub + "'");
}

}  // namespace jcs::tools
