#include "runtime/tools/asset_tool_set.h"

#include <algorithm>
#include <string>
#include <utility>

namespace jcs::runtime {
namespace {

using json = nlohmann::json;

const assets::Asset* AssetOf(const assets::Definition& d,
                             const assets::PublishedAssets& published) {
  return published.snapshot->Find(d.type, d.name);
}

}  // namespace

AssetToolSet::AssetToolSet(
    std::shared_ptr<const assets::PublishedAssets> published)
    : assets_(std::move(published)) {
  if (assets_ == nullptr) return;
  definitions_ = assets::BuildDefinitions(*assets_->snapshot);
  specs_.reserve(definitions_.size());
  for (const assets::Definition& d : definitions_) {
    ToolSpec spec;
    spec.name = d.tool_name;
    spec.description = d.description;
    spec.input_schema = d.input_schema;
    spec.kind = d.type == assets::AssetType::kWorkflow ? ToolKind::kWorkflowRun
                                                       : ToolKind::kCommandRun;
    spec.sandboxed = d.valid;
    spec.network_capable = d.valid && d.network;
    spec.takes_env = d.valid;
    spec.definition = &d;
    spec.llm_exposed = d.valid;
    spec.registration =
        d.valid ? json{{"status", "registered"}}
                : json{{"status", "invalid"}, {"reason", d.invalid_reason}};
    specs_.push_back(std::move(spec));
  }
}

const ToolSpec* AssetToolSet::Find(std::string_view name) const {
  auto it = std::lower_bound(
      specs_.begin(), specs_.end(), name,
      [](const ToolSpec& s, std::string_view n) { return s.name < n; });
  return it != specs_.end() && it->name == name ? &*it : nullptr;
}

json DefinitionAsset(const assets::Definition& d,
                     const assets::PublishedAssets& published) {
  const assets::Asset* asset = AssetOf(d, published);
  return {{"type", assets::AssetTypeName(d.type)},
          {"name", d.name},
          {"path", asset != nullptr ? asset->path : ""}};
}

ToolOutcome PreviewOutcome(const assets::Definition& d,
                           const assets::PublishedAssets& published,
                           const json& args) {
  const bool workflow = d.type == assets::AssetType::kWorkflow;
  return ToolOutcome::Ok(
      {{"asset", DefinitionAsset(d, published)},
       {"args", args},
       {"mode", "preview"},
       {"note", workflow ? "Workflow definition is invalid for the jcs "
                           "workflow runtime; running in preview "
                           "compatibility mode (nothing was executed)."
                         : "Command definition is invalid for the jcs "
                           "command runtime; running in preview "
                           "compatibility mode (nothing was executed)."},
       {"reason", d.invalid_reason}});
}

absl::StatusOr<json> ExecutedResult(const assets::Definition& d,
                                    const assets::PublishedAssets& published,
                                    const json& args, json execution,
                                    size_t max_prompt_bytes) {
  const bool workflow = d.type == assets::AssetType::kWorkflow;
  json out = {{"asset", DefinitionAsset(d, published)},
              {"args", args},
              {"mode", "executed"},
              {"runtime", workflow ? "jcs_workflow" : "jcs_command"},
              {workflow ? "workflow" : "command", d.name},
              {"execution", std::move(execution)}};
  if (!workflow) {
    if (const assets::Asset* asset = AssetOf(d, published)) {
      const json& params = args.contains("params") && args["params"].is_object()
                               ? args["params"]
                               : args;
      // The body after the frontmatter, rendered for people to read.
      absl::StatusOr<assets::Frontmatter> front =
          assets::ParseFrontmatter(asset->body);
      absl::StatusOr<std::string> prompt = assets::RenderPrompt(
          front.ok() ? front->body : asset->body, params, max_prompt_bytes);
      if (!prompt.ok()) return prompt.status();
      out["prompt"] = *std::move(prompt);
    }
  }
  return out;
}

}  // namespace jcs::runtime
