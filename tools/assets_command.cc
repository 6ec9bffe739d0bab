// `jcs assets list|get|search|reload`: a project's assets (the .jido
// skills, commands, workflows and skill graph) as its tools see them. list,
// get and search run the asset.* tools through the daemon (the project's
// policy applies: allow_tools may refuse them); reload asks the daemon to
// read the tree again (ReloadAssetsRequest).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "nlohmann/json.hpp"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
const char* const kTypes[] = {"skill", "command", "workflow", "skill_graph"};

}  // namespace

const std::vector<CommandSpec>& AssetSpecs() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"assets list",
       "PROJECT [TYPE]",
       "Lists the project's assets of TYPE (skill, command, workflow, "
       "skill_graph), or of every type: type, name and path.",
       {SocketFlag(), JsonFlag("print the asset.list results as JSON")}},
      {"assets get",
       "PROJECT TYPE NAME",
       "Prints one asset's content.",
       {SocketFlag(), JsonFlag("print the asset.get document")}},
      {"assets search",
       "PROJECT TYPE QUERY",
       "Lists the assets of TYPE whose name, path or content contains QUERY "
       "(case-insensitive).",
       {SocketFlag(), JsonFlag("print the asset.search result")}},
      {"assets reload",
       "PROJECT",
       "Reads the project's asset tree again and says what was loaded. With "
       "strict_asset_loading a bad file refuses the reload (exit 1, naming "
       "the file and reason) and the previous assets stay.",
       {SocketFlag(), JsonFlag("print the project.assets_reloaded payload")}},
  };
  return *specs;
}

namespace {

// Asset names and paths come from the project's files: control characters
// would drive the terminal.
std::string Printable(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out;
}

// Runs one asset tool; its result object, or the exit code after printing
// the failure ("jcs assets: REASON: DETAIL").
int RunAssetTool(ControlClient& client, const std::string& project,
                 const std::string& tool, const nlohmann::json& args,
                 nlohmann::json* result) {
  absl::StatusOr<std::string> doc =
      client.RunTool(project, tool, args.dump(-1, ' ', false, kReplace), "");
  if (!doc.ok()) return Fail("assets", doc.status());
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  if (!parsed.is_object()) {
    fprintf(stderr, "jcs assets: unexpected response: %s\n", doc->c_str());
    return kExitFailed;
  }
  if (json_fields::String(parsed, "status") != "ok") {
    const nlohmann::json detail = json_fields::Object(parsed, "detail");
    fprintf(
        stderr, "jcs assets: %s%s%s\n",
        json_fields::String(parsed, "reason", "error").c_str(),
        detail.empty() ? "" : ": ",
        detail.empty() ? "" : detail.dump(-1, ' ', false, kReplace).c_str());
    return kExitFailed;
  }
  *result = json_fields::Object(parsed, "result");
  return 0;
}

void PrintItems(const nlohmann::json& items) {
  for (const nlohmann::json& item : items) {
    printf("%-12s  %-32s  %s\n",
           Printable(json_fields::String(item, "type")).c_str(),
           Printable(json_fields::String(item, "name")).c_str(),
           Printable(json_fields::String(item, "path")).c_str());
  }
}

int List(const CommandSpec& spec, const ParsedFlags& flags,
         ControlClient& client) {
  const std::vector<std::string>& pos = flags.positional;
  if (pos.empty() || pos.size() > 2) {
    return UsageError(spec, "expected PROJECT and an optional TYPE");
  }
  std::vector<std::string> types(std::begin(kTypes), std::end(kTypes));
  if (pos.size() == 2) types = {pos[1]};
  nlohmann::json all = nlohmann::json::object();
  for (const std::string& type : types) {
    nlohmann::json result;
    if (int rc = RunAssetTool(client, pos[0], "asset.list", {{"type", type}},
                              &result);
        rc != 0) {
      return rc;
    }
    all[type] = std::move(result);
  }
  if (flags.Has("--json")) {
    printf("%s\n", all.dump(2, ' ', false, kReplace).c_str());
    return 0;
  }
  printf("%-12s  %-32s  %s\n", "TYPE", "NAME", "PATH");
  for (const std::string& type : types) {
    PrintItems(json_fields::Array(all[type], "items"));
  }
  return 0;
}

int Get(const CommandSpec& spec, const ParsedFlags& flags,
        ControlClient& client) {
  const std::vector<std::string>& pos = flags.positional;
  if (pos.size() != 3) return UsageError(spec, "expected PROJECT TYPE NAME");
  nlohmann::json result;
  if (int rc = RunAssetTool(client, pos[0], "asset.get",
                            {{"type", pos[1]}, {"key", pos[2]}}, &result);
      rc != 0) {
    return rc;
  }
  if (flags.Has("--json")) {
    printf("%s\n", result.dump(2, ' ', false, kReplace).c_str());
    return 0;
  }
  // The content as it is in the file, like cat.
  const std::string content =
      json_fields::String(json_fields::Object(result, "asset"), "content");
  fwrite(content.data(), 1, content.size(), stdout);
  return 0;
}

int Search(const CommandSpec& spec, const ParsedFlags& flags,
           ControlClient& client) {
  const std::vector<std::string>& pos = flags.positional;
  if (pos.size() != 3) return UsageError(spec, "expected PROJECT TYPE QUERY");
  nlohmann::json result;
  if (int rc = RunAssetTool(client, pos[0], "asset.search",
                            {{"type", pos[1]}, {"query", pos[2]}}, &result);
      rc != 0) {
    return rc;
  }
  if (flags.Has("--json")) {
    printf("%s\n", result.dump(2, ' ', false, kReplace).c_str());
    return 0;
  }
  const nlohmann::json items = json_fields::Array(result, "items");
  if (items.empty()) {
    printf("no %s matches '%s'\n", Printable(pos[1]).c_str(),
           Printable(pos[2]).c_str());
    return 0;
  }
  printf("%-12s  %-32s  %s\n", "TYPE", "NAME", "PATH");
  PrintItems(items);
  return 0;
}

int Reload(const CommandSpec& spec, const ParsedFlags& flags,
           ControlClient& client) {
  if (flags.positional.size() != 1) return UsageError(spec, "expected PROJECT");
  absl::StatusOr<std::string> doc = client.ReloadAssets(flags.positional[0]);
  if (!doc.ok()) return Fail(spec.name, doc.status());
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  if (flags.Has("--json") || !parsed.is_object()) {
    printf("%s\n", doc->c_str());
    return 0;
  }
  const nlohmann::json counts = json_fields::Object(parsed, "counts");
  printf(
      "reloaded project %s: generation %s, %s skills, %s commands, %s "
      "workflows, %s skill graph nodes, %s errors%s\n",
      Printable(flags.positional[0]).c_str(),
      json_fields::Member(parsed, "generation").dump().c_str(),
      json_fields::Member(counts, "skill").dump().c_str(),
      json_fields::Member(counts, "command").dump().c_str(),
      json_fields::Member(counts, "workflow").dump().c_str(),
      json_fields::Member(counts, "skill_graph_nodes").dump().c_str(),
      json_fields::Member(parsed, "error_count").dump().c_str(),
      json_fields::Int(parsed, "error_count", 0) > 0
          ? " (jcs diagnostics PROJECT: assets.errors)"
          : "");
  return 0;
}

}  // namespace

int AssetsCommand(const std::vector<std::string>& args) {
  int exit_code = 0;
  const CommandSpec* spec =
      PickSubcommand("assets", AssetSpecs(), args, &exit_code);
  if (spec == nullptr) return exit_code;
  std::optional<ParsedFlags> flags =
      ParseOrExit(*spec, {args.begin() + 1, args.end()}, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (flags->positional.empty()) return UsageError(*spec, "expected PROJECT");
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags->Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec->name, client.status());
  if (spec->name == "assets list") return List(*spec, *flags, **client);
  if (spec->name == "assets get") return Get(*spec, *flags, **client);
  if (spec->name == "assets search") return Search(*spec, *flags, **client);
  return Reload(*spec, *flags, **client);
}

}  // namespace jcs::tools
