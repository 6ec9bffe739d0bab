// The asset-backed tools of one asset snapshot: command.run.<name> and
// workflow.run.<name> (runtime/assets/asset_definitions.h), as ToolSpecs the
// tool runtime's pipeline runs like the built-ins. Rebuilt at each applied
// load; a call holds the set it started with, so a reload never changes a
// running call's definition.
//
// A valid definition is sandboxed (it runs in the project's jail;
// exec.network's egress path when its frontmatter says network: true) and
// takes `env` (checked against tool_env_allowlist like exec's). An invalid
// one runs in-process in preview mode (PreviewOutcome): nothing executes.
#ifndef JCS_RUNTIME_TOOLS_ASSET_TOOL_SET_H_
#define JCS_RUNTIME_TOOLS_ASSET_TOOL_SET_H_

#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/assets/asset_definitions.h"
#include "runtime/assets/asset_store.h"
#include "runtime/assets/frontmatter.h"
#include "runtime/tools/tool_catalog.h"
#include "runtime/tools/tool_outcome.h"

namespace jcs::runtime {

class AssetToolSet {
 public:
  explicit AssetToolSet(std::shared_ptr<const assets::PublishedAssets> assets);
  AssetToolSet(const AssetToolSet&) = delete;
  AssetToolSet& operator=(const AssetToolSet&) = delete;

  // Sorted by name.
  const std::vector<ToolSpec>& tools() const { return specs_; }
  const ToolSpec* Find(std::string_view name) const;
  const assets::PublishedAssets& assets() const { return *assets_; }

 private:
  std::shared_ptr<const assets::PublishedAssets> assets_;
  std::vector<assets::Definition> definitions_;
  std::vector<ToolSpec> specs_;  // point into definitions_
};

// {type, name, path} of the definition's asset.
nlohmann::json DefinitionAsset(const assets::Definition& definition,
                               const assets::PublishedAssets& assets);

// The preview-mode result of an invalid definition: {asset, args, mode:
// "preview", note, reason}.
ToolOutcome PreviewOutcome(const assets::Definition& definition,
                           const assets::PublishedAssets& assets,
                           const nlohmann::json& args);

// The result of an executed definition around the jail's result: {asset,
// args, mode: "executed", runtime: "jcs_command"|"jcs_workflow",
// command|workflow: name, execution, [prompt]}. ResourceExhausted when the
// rendered prompt alone would exceed `max_prompt_bytes`.
absl::StatusOr<nlohmann::json> ExecutedResult(
    const assets::Definition& definition, const assets::PublishedAssets& assets,
    const nlohmann::json& args, nlohmann::json execution,
    size_t max_prompt_bytes);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOLS_ASSET_TOOL_SET_H_
