#include "runtime/tools/tool_catalog.h"

#include <algorithm>

namespace jcs::runtime {
namespace {

nlohmann::json ObjectSchema(nlohmann::json properties,
                            std::vector<std::string> required) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

nlohmann::json ExecSchema() {
  return ObjectSchema(
      {{"argv",
        {{"type", "array"},
         {"items", {{"type", "string"}}},
         {"description",
          "the program and its arguments; argv[0] is looked "
          "up in the jail's PATH"}}},
       {"stdin",
        {{"type", "string"}, {"description", "bytes for the program's stdin"}}},
       // No "type": the env check (invalid_env_payload, security.env_denied)
       // owns this argument's shape, as in the original (§3.6).
       {"env",
        {{"description",
          "extra environment: an object of string values; every key must be "
          "in tool_env_allowlist"}}},
       {"cwd",
        {{"type", "string"},
         {"description",
          "working directory: the project root (default) or below it"}}}},
      {"argv"});
}

std::vector<ToolSpec> MakeBuiltins() {
  const nlohmann::json type = {
      {"type", "string"},
      {"description", "skill, command, workflow or skill_graph"}};
  std::vector<ToolSpec> tools = {
      {"asset.list", "Lists the project's assets of one type.",
       ObjectSchema({{"type", type}}, {"type"}), ToolKind::kAssetList},
      {"asset.search",
       "Finds assets of one type whose name or content contains the query.",
       ObjectSchema({{"type", type}, {"query", {{"type", "string"}}}},
                    {"type", "query"}),
       ToolKind::kAssetSearch},
      {"asset.get", "Returns one asset by type and key.",
       ObjectSchema({{"type", type}, {"key", {{"type", "string"}}}},
                    {"type", "key"}),
       ToolKind::kAssetGet},
      {"fs.read", "Reads a file below the project root.",
       ObjectSchema({{"path", {{"type", "string"}}}}, {"path"}),
       ToolKind::kFsRead},
      {"fs.write", "Writes a file below the project root (atomically).",
       ObjectSchema({{"path", {{"type", "string"}}},
                     {"content", {{"type", "string"}}},
                     {"create_dirs", {{"type", "boolean"}}}},
                    {"path", "content"}),
       ToolKind::kFsWrite},
      {"fs.list", "Lists a directory below the project root.",
       ObjectSchema({{"path", {{"type", "string"}}}}, {}), ToolKind::kFsList},
      {"exec",
       "Runs a program in the project's jail (no network) and returns its "
       "exit status, stdout and stderr.",
       ExecSchema(), ToolKind::kExec, /*sandboxed=*/true,
       /*network_capable=*/false, /*takes_env=*/true},
      {"exec.network",
       "Runs a program in the project's jail with egress limited to the "
       "project's network allowlist.",
       ExecSchema(), ToolKind::kExec, /*sandboxed=*/true,
       /*network_capable=*/true, /*takes_env=*/true},
  };
  std::sort(
      tools.begin(), tools.end(),
      [](const ToolSpec& a, const ToolSpec& b) { return a.name < b.name; });
  return tools;
}

}  // namespace

const std::vector<ToolSpec>& BuiltinTools() {
  static const std::vector<ToolSpec>* const tools =
      new std::vector<ToolSpec>(MakeBuiltins());
  return *tools;
}

const ToolSpec* FindTool(std::string_view name) {
  for (const ToolSpec& tool : BuiltinTools()) {
    if (tool.name == name) return &tool;
  }
  return nullptr;
}

const char* ToolKindName(ToolKind kind) {
  switch (kind) {
    case ToolKind::kAssetList:
      return "asset_list";
    case ToolKind::kAssetSearch:
      return "asset_search";
    case ToolKind::kAssetGet:
      return "asset_get";
    case ToolKind::kFsRead:
      return "fs_read";
    case ToolKind::kFsWrite:
      return "fs_write";
    case ToolKind::kFsList:
      return "fs_list";
    case ToolKind::kExec:
      return "exec";
    case ToolKind::kCommandRun:
      return "command_run";
    case ToolKind::kWorkflowRun:
      return "workflow_run";
  }
  return "unknown";
}

bool ToolAllowedByName(std::string_view name, const ValidatedOptions& options) {
  const auto contains = [&](const std::vector<std::string>& list) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  if (contains(options.deny_tools)) return false;
  return !options.allow_tools.has_value() || contains(*options.allow_tools);
}

bool ToolVisible(const ToolSpec& tool, const ValidatedOptions& options) {
  if (!ToolAllowedByName(tool.name, options)) return false;
  return !tool.network_capable ||
         options.network_egress_policy == EgressPolicy::kAllow;
}

nlohmann::json ToolToJson(const ToolSpec& tool) {
  nlohmann::json out = {{"name", tool.name},
                        {"description", tool.description},
                        {"input_schema", tool.input_schema},
                        {"kind", ToolKindName(tool.kind)},
                        {"safety",
                         {{"sandboxed", tool.sandboxed},
                          {"network_capable", tool.network_capable}}},
                        {"llm_exposed", tool.llm_exposed}};
  if (!tool.registration.is_null()) {
    out["registration"] = tool.registration;
  }
  return out;
}

}  // namespace jcs::runtime
