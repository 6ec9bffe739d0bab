// The project's command assets as MCP prompts (issue 15): each command asset
// (<data_dir>/commands/NAME.md) is the prompt NAME, described by its
// frontmatter's `description`, taking the parameters its frontmatter declares
// under jido.schema (asset_definitions.h) as the prompt's arguments (`doc` or
// `description` the argument's description, `required: true` required).
// prompts/get renders the command's body (the text after the frontmatter)
// with runtime/assets' RenderPrompt, the rendering command.run.NAME's
// result carries as its `prompt`: each {{name}} becomes the argument's text.
// The server reads the assets through asset.list and asset.get, so the
// project's policy (deny_tools, sensitive paths) holds for prompts too.
#ifndef JCS_PROTOCOL_MCP_PROMPTS_H_
#define JCS_PROTOCOL_MCP_PROMPTS_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace jcs::protocol::mcp {

// The most text a prompts/get may render: a body with many {{x}} and a long
// argument would otherwise multiply the argument's size.
inline constexpr size_t kMaxRenderedPromptBytes = 1 << 20;

// The Prompt {name, description, arguments} of an asset.get document
// {name, path, content, frontmatter, ...} of a command asset.
nlohmann::json CommandPrompt(const nlohmann::json& asset);

// The GetPromptResult {description, messages: [{role: "user", content:
// {type: "text", text}}]} of a command asset for `arguments` (null or an
// object of strings). InvalidArgument naming the field for arguments that
// are not an object of strings, a missing required argument, or a rendering
// that could exceed kMaxRenderedPromptBytes.
absl::StatusOr<nlohmann::json> GetCommandPrompt(
    const nlohmann::json& asset, const nlohmann::json& arguments);

}  // namespace jcs::protocol::mcp

#endif  // JCS_PROTOCOL_MCP_PROMPTS_H_
