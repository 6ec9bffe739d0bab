// The tools a project offers (spec §4.1): built-ins that run in-process
// (asset.list, asset.search, asset.get, fs.read, fs.write, fs.list) and the
// jailed `exec` / `exec.network`. Asset-backed command.run.* and
// workflow.run.* tools join the same list later (ToolKind grows, the pipeline
// stays).
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
};

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
// network_capable}}.
nlohmann::json ToolToJson(const ToolSpec& tool);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOL_CATALOG_H_
