// The tools a project offers (spec §4.1): built-ins that run in-process
// (asset.list, asset.search, asset.get, fs.read, fs.write, fs.list) and the
// jailed `exec` / `exec.network`. The asset-backed command.run.<name> and
// workflow.run.<name> tools are built from the project's loaded assets
// (asset_tool_set.h) and go through the same pipeline.
#ifndef JCS_RUNTIME_TOOL_CATALOG_H_
#define JCS_RUNTIME_TOOL_CATALOG_H_

#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {

enum class ToolKind {
  kAssetList,
  kAssetSearch,
  kAssetGet,
  kFsRead,
  kFsWrite,
  kFsList,
  kExec,
  kCommandRun,
  kWorkflowRun,
};

namespace assets {
struct Definition;
}  // namespace assets

struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json input_schema;
  ToolKind kind;
  // Runs in the jail (else in the daemon, confined by openat2 and the
  // project's filesystem identity).
  bool sandboxed = false;
  // Reaches the network: hidden and denied unless network_egress_policy is
  // allow; its arguments go through the egress checks (§3.5).
  bool network_capable = false;
  // Its top-level `env` argument is checked against tool_env_allowlist and
  // reaches the program (§3.6).
  bool takes_env = false;
  // Asset-backed tools: the definition it runs (owned by its AssetToolSet),
  // whether a model may be offered it (false for an invalid definition), and
  // {status: registered|invalid, [reason]}.
  const assets::Definition* definition = nullptr;
  bool llm_exposed = true;
  nlohmann::json registration = nullptr;
};

// Every built-in, sorted by name.
const std::vector<ToolSpec>& BuiltinTools();
// nullptr for an unknown name.
const ToolSpec* FindTool(std::string_view name);
// "asset_list", "exec", ...
const char* ToolKindName(ToolKind kind);

// allow_tools / deny_tools (§3.1 step 1).
bool ToolAllowedByName(std::string_view name, const ValidatedOptions& options);
// list_tools: allowed by name, and network-capable tools only under egress
// policy allow (§3.5 visibility).
bool ToolVisible(const ToolSpec& tool, const ValidatedOptions& options);

// {name, description, input_schema, kind, safety: {sandboxed,
// network_capable}, llm_exposed}, plus {asset_name, registration} for asset
// tools.
nlohmann::json ToolToJson(const ToolSpec& tool);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOL_CATALOG_H_
