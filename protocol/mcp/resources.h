// The project's assets as MCP resources: each asset (asset_tools.h) of type
// skill, command, workflow or skill_graph is the resource
//   jcs://assets/<type>/<name>
// with the name's bytes outside [A-Za-z0-9._~-] percent-encoded ("/" kept for
// skill_graph's nested names), read as text/markdown. resources/list and
// resources/read run asset.list and asset.get through the tool pipeline, so
// the project's policy (deny_tools, sensitive paths) holds for them too.
#ifndef JCS_PROTOCOL_MCP_RESOURCES_H_
#define JCS_PROTOCOL_MCP_RESOURCES_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "nlohmann/json.hpp"

namespace jcs::protocol::mcp {

inline constexpr const char* kAssetTypes[] = {"skill", "command", "workflow",
                                              "skill_graph"};

std::string AssetUri(std::string_view type, std::string_view name);

// {type, name} of a jcs://assets/ URI whose type is one of kAssetTypes and
// whose name is non-empty, has no empty, "." or ".." segment and no NUL
// (asset.get checks the name again); nullopt for anything else.
std::optional<std::pair<std::string, std::string>> ParseAssetUri(
    std::string_view uri);

// The Resource of one asset.list item {type, name, path}.
nlohmann::json AssetResource(const nlohmann::json& item);

}  // namespace jcs::protocol::mcp

#endif  // JCS_PROTOCOL_MCP_RESOURCES_H_
