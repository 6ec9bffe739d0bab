// `jcs tool list|run|cancel|result`.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/json_fields.h"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

}  // namespace

const std::vector<CommandSpec>& ToolSpecs() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"tool list",
       "PROJECT",
       "Lists the project's tools: name, kind, where it runs, its "
       "description and its arguments (from its input schema).",
       {SocketFlag(), JsonFlag("print the daemon's JSON array")}},
      {"tool run",
       "PROJECT NAME",
       "Runs one tool call and prints its response document (status, result, "
       "...); a failed call exits 1 with its reason on stderr.",
       {{"--args", "JSON|@FILE|-", "{}",
         "the tool's arguments: a JSON object, @FILE to read it from FILE, - "
         "to read it from stdin"},
        {"--meta", "JSON", "{}", "call metadata (a JSON object)"},
        {"--conversation", "ID", "", "the conversation the call belongs to"},
        {"--correlation-id", "ID", "", "recorded on the call's events"},
        {"--async", "", "off",
         "return at once with the call id (jcs tool result fetches it)"},
        {"--timings", "", "off", "also print jcs's timing_us figures"},
        SocketFlag(),
        JsonFlag("print the daemon's document unchanged, timing_us "
                 "included")}},
      {"tool cancel",
       "PROJECT [CALL_ID]",
       "Cancels one running call, or with --conversation every call of a "
       "conversation, and says how many were cancelled.",
       {{"--conversation", "ID", "", "cancel this conversation's calls"},
        {"--correlation-id", "ID", "", "recorded on tool.cancelled"},
        SocketFlag(),
        JsonFlag("print {\"cancelled\": N}")}},
      {"tool result",
       "PROJECT CALL_ID",
       "Prints a finished call's response document (from the journal).",
       {{"--wait", "", "off", "wait for a running call to end"},
        SocketFlag(),
        JsonFlag("print the daemon's document unchanged")}},
  };
  return *specs;
}

namespace {

std::string TypeText(const nlohmann::json& schema) {
  if (!schema.is_object()) return "any";
  const auto type = schema.find("type");
  if (type == schema.end()) return "any";
  if (type->is_string() && *type == "array") {
    const auto items = schema.find("items");
    return items == schema.end() ? "array" : "array of " + TypeText(*items);
  }
  if (type->is_string()) return type->get<std::string>();
  return type->dump(-1, ' ', false, kReplace);
}

// Tool descriptions come from the daemon (and one day from project assets):
// control characters would drive the terminal.
std::string Printable(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out;
}

void PrintTool(const nlohmann::json& tool) {
  const nlohmann::json safety = json_fields::Object(tool, "safety");
  printf(
      "%s  (%s, %s%s)\n", Printable(json_fields::String(tool, "name")).c_str(),
      Printable(json_fields::String(tool, "kind")).c_str(),
      json_fields::Bool(safety, "sandboxed", false) ? "jailed" : "in-process",
      json_fields::Bool(safety, "network_capable", false) ? ", network" : "");
  if (const std::string d = json_fields::String(tool, "description");
      !d.empty()) {
    printf("    %s\n", Wrap(Printable(d), 80, 4).c_str());
  }
  const nlohmann::json schema = json_fields::Object(tool, "input_schema");
  const nlohmann::json properties =
      schema.is_object() ? json_fields::Object(schema, "properties")
                         : nlohmann::json::object();
  const nlohmann::json required = schema.is_object()
                                      ? json_fields::Array(schema, "required")
                                      : nlohmann::json::array();
  if (!properties.is_object() || properties.empty()) {
    printf("    args: none\n");
    return;
  }
  printf("    args:\n");
  for (const auto& [name, prop] : properties.items()) {
    bool is_required = false;
    for (const nlohmann::json& r : required) is_required |= r == name;
    const std::string text = absl::StrCat(
        name, " (", TypeText(prop), is_required ? ", required" : "", ")",
        prop.is_object() && prop.contains("description") &&
                prop["description"].is_string()
            ? ": " + prop["description"].get<std::string>()
            : "");
    printf("      %s\n", Wrap(Printable(text), 80, 8).c_str());
  }
}

int List(const CommandSpec& spec, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) {
    return UsageError(spec, "expected exactly one PROJECT");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<std::string> tools = (*client)->ListTools(flags.positional[0]);
  if (!tools.ok()) return Fail(spec.name, tools.status());
  if (flags.Has("--json")) {
    printf("%s\n", tools->c_str());
    return 0;
  }
  const nlohmann::json parsed = nlohmann::json::parse(*tools, nullptr, false);
  if (!parsed.is_array()) {
    return Fail(spec.name, absl::InternalError(
                               "the daemon's tool list is not a JSON array"));
  }
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (i > 0) printf("\n");
    if (parsed[i].is_object()) PrintTool(parsed[i]);
  }
  return 0;
}

int Run(const CommandSpec& spec, const ParsedFlags& flags) {
  if (flags.positional.size() != 2) {
    return UsageError(spec, "expected PROJECT and NAME");
  }
  nlohmann::json meta = nlohmann::json::object();
  if (flags.Has("--meta")) {
    absl::StatusOr<nlohmann::json> parsed =
        ParseJsonText("--meta", flags.Get("--meta"));
    if (!parsed.ok())
      return UsageError(spec, std::string(parsed.status().message()));
    if (!parsed->is_object()) {
      return UsageError(spec, "--meta: expected a JSON object");
    }
    meta = *std::move(parsed);
  }
  std::string args_json;
  if (flags.Has("--args")) {
    absl::StatusOr<std::string> text =
        ReadJsonSource("--args", flags.Get("--args"));
    if (!text.ok())
      return UsageError(spec, std::string(text.status().message()));
    absl::StatusOr<nlohmann::json> parsed = ParseJsonText("--args", *text);
    if (!parsed.ok())
      return UsageError(spec, std::string(parsed.status().message()));
    if (!parsed->is_object()) {
      return UsageError(spec, "--args: expected a JSON object");
    }
    args_json = *std::move(text);  // sent as given, once known to parse
  }
  if (flags.Has("--conversation")) {
    meta["conversation_id"] = flags.Get("--conversation");
  }
  if (flags.Has("--correlation-id")) {
    meta["correlation_id"] = flags.Get("--correlation-id");
  }
  if (flags.Has("--async")) meta["run_mode"] = "async";
  // A synchronous call waits as long as the tool runs (bounded by the
  // project's tool_timeout_ms on the daemon's side).
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()),
                             absl::Hours(24 * 8));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<std::string> doc =
      (*client)->RunTool(flags.positional[0], flags.positional[1], args_json,
                         meta.dump(-1, ' ', false, kReplace));
  if (!doc.ok()) return Fail(spec.name, doc.status());
  nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  if (flags.Has("--json") || !parsed.is_object()) {
    printf("%s\n", doc->c_str());
  } else {
    nlohmann::json shown = parsed;
    if (!flags.Has("--timings")) shown.erase("timing_us");
    printf("%s\n", shown.dump(2, ' ', false, kReplace).c_str());
  }
  if (parsed.is_object() && json_fields::String(parsed, "status") == "error") {
    const std::string detail =
        parsed.contains("detail") && !parsed["detail"].empty()
            ? parsed["detail"].dump(-1, ' ', false, kReplace)
            : "";
    // "jcs tool: REASON": the prefix scripts and tests match.
    fprintf(stderr, "jcs tool: %s%s%s\n",
            json_fields::String(parsed, "reason", "error").c_str(),
            detail.empty() ? "" : ": ", detail.c_str());
    return kExitFailed;
  }
  return 0;
}

int Cancel(const CommandSpec& spec, const ParsedFlags& flags) {
  const std::vector<std::string>& pos = flags.positional;
  const std::string conversation = flags.Get("--conversation");
  if (!(pos.size() == 2 || (pos.size() == 1 && !conversation.empty()))) {
    return UsageError(spec,
                      "expected PROJECT and CALL_ID (or PROJECT and "
                      "--conversation ID)");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  nlohmann::json meta = nlohmann::json::object();
  if (flags.Has("--correlation-id")) {
    meta["correlation_id"] = flags.Get("--correlation-id");
  }
  const std::string call_id = pos.size() == 2 ? pos[1] : "";
  absl::StatusOr<uint32_t> cancelled = (*client)->CancelTool(
      pos[0], call_id, conversation, meta.dump(-1, ' ', false, kReplace));
  if (!cancelled.ok()) return Fail(spec.name, cancelled.status());
  if (flags.Has("--json")) {
    printf("{\"cancelled\":%u}\n", *cancelled);
    return 0;
  }
  const std::string what = call_id.empty()
                               ? "of conversation " + Printable(conversation)
                               : Printable(call_id);
  if (*cancelled == 0) {
    printf("nothing to cancel: no running call %s in project %s\n",
           what.c_str(), Printable(pos[0]).c_str());
  } else {
    printf("cancelled %u call%s %s in project %s\n", *cancelled,
           *cancelled == 1 ? "" : "s", what.c_str(), Printable(pos[0]).c_str());
  }
  return 0;
}

int Result(const CommandSpec& spec, const ParsedFlags& flags) {
  if (flags.positional.size() != 2) {
    return UsageError(spec, "expected PROJECT and CALL_ID");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()),
                             absl::Hours(24 * 8));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<std::string> doc = (*client)->GetToolResult(
      flags.positional[0], flags.positional[1], flags.Has("--wait"));
  if (!doc.ok()) return Fail(spec.name, doc.status());
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  printf("%s\n", flags.Has("--json") || parsed.is_discarded()
                     ? doc->c_str()
                     : parsed.dump(2, ' ', false, kReplace).c_str());
  return 0;
}

}  // namespace

int ToolCommand(const std::vector<std::string>& args) {
  int exit_code = 0;
  const CommandSpec* spec =
      PickSubcommand("tool", ToolSpecs(), args, &exit_code);
  if (spec == nullptr) return exit_code;
  std::optional<ParsedFlags> flags =
      ParseOrExit(*spec, {args.begin() + 1, args.end()}, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (spec->name == "tool list") return List(*spec, *flags);
  if (spec->name == "tool run") return Run(*spec, *flags);
  if (spec->name == "tool cancel") return Cancel(*spec, *flags);
  return Result(*spec, *flags);
}

}  // namespace jcs::tools
