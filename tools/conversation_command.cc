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
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

constexpr char kUsageText[] =
    "jcs conversation start PROJECT [--id ID] | stop PROJECT CONV | "
    "send PROJECT CONV --text TEXT [--llm JSON] [--correlation-id ID] "
    "[--signal-id ID] [--async] [--timeout-ms N] | cancel PROJECT CONV "
    "[--reason R] [--correlation-id ID] | resume PROJECT CONV "
    "[--correlation-id ID] | signal PROJECT CONV --signal JSON [--async] "
    "[--timeout-ms N] | state PROJECT CONV [--projection KEY] | watch PROJECT "
    "CONV [--max-events N]   (all: [--socket PATH])";

int Usage(const std::string& error) {
  fprintf(stderr, "jcs conversation: %s\nusage: %s\n", error.c_str(),
          kUsageText);
  return 2;
}

int Fail(const absl::Status& status) {
  fprintf(stderr, "jcs conversation: %s\n",
          std::string(status.message()).c_str());
  return 1;
}

struct Flags {
  std::string socket;
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  bool async = false;
};

bool Parse(const std::vector<std::string>& args, Flags* flags,
           std::string* error) {
  const char* env_socket = getenv("JCS_SOCKET");
  flags->socket = env_socket != nullptr && env_socket[0] != '\0'
                      ? env_socket
                      : "/run/jcs/jcs.sock";
  static const char* kValued[] = {
      "--id",         "--text",       "--llm",    "--correlation-id",
      "--signal-id",  "--timeout-ms", "--reason", "--signal",
      "--projection", "--max-events", "--socket"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--async") {
      flags->async = true;
      continue;
    }
    if (arg == "--json") continue;  // output is always JSON
    bool valued = false;
    for (const char* name : kValued) valued = valued || arg == name;
    if (valued) {
      if (i + 1 >= args.size()) {
        *error = arg + ": missing value";
        return false;
      }
      if (arg == "--socket") {
        flags->socket = args[++i];
      } else {
        flags->values[arg] = args[++i];
      }
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      *error = "unknown flag '" + arg + "'";
      return false;
    }
    flags->positional.push_back(arg);
  }
  return true;
}

std::string Value(const Flags& flags, const std::string& name) {
  auto it = flags.values.find(name);
  return it == flags.values.end() ? "" : it->second;
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
        payload.value("conversation_id", "") != conversation) {
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
  if (args.empty()) return Usage("missing subcommand");
  const std::string sub = args[0];
  Flags flags;
  std::string error;
  if (!Parse({args.begin() + 1, args.end()}, &flags, &error)) {
    return Usage(error);
  }
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
    if (flags.values.count("--text") == 0) return Usage("send: give --text");
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
