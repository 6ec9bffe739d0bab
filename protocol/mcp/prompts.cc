#include "protocol/mcp/prompts.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "runtime/assets/asset_definitions.h"
#include "runtime/assets/frontmatter.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

using json_fields::Member;

// The parameters the command's frontmatter declares (jido.schema), as
// PromptArguments.
json Arguments(const json& asset) {
  json out = json::array();
  const json& schema =
      Member(Member(Member(asset, "frontmatter"), "jido"), "schema");
  if (!schema.is_object()) return out;
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    json argument = {{"name", it.key()},
                     {"required", Member(it.value(), "required") == true}};
    for (const char* key : {"doc", "description"}) {
      if (Member(it.value(), key).is_string()) {
        argument["description"] = Member(it.value(), key);
      }
    }
    out.push_back(std::move(argument));
  }
  return out;
}

std::string Description(const json& asset) {
  const std::string described =
      json_fields::String(Member(asset, "frontmatter"), "description");
  if (!described.empty()) return described;
  return absl::StrCat("The command ", json_fields::String(asset, "name"), " (",
                      json_fields::String(asset, "path"), ").");
}

}  // namespace

json CommandPrompt(const json& asset) {
  json prompt = {{"name", json_fields::String(asset, "name")},
                 {"description", Description(asset)}};
  json arguments = Arguments(asset);
  if (!arguments.empty()) prompt["arguments"] = std::move(arguments);
  return prompt;
}

absl::StatusOr<json> GetCommandPrompt(const json& asset,
                                      const json& arguments) {
  const json given = arguments.is_null() ? json::object() : arguments;
  if (!given.is_object()) {
    return absl::InvalidArgumentError(
        "params.arguments: expected an object of strings");
  }
  size_t longest = 0;
  for (auto it = given.begin(); it != given.end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("params.arguments.", it.key(), ": expected a string"));
    }
    longest =
        std::max(longest, it.value().get_ref<const std::string&>().size());
  }
  for (const json& declared : Arguments(asset)) {
    const std::string name = declared["name"].get<std::string>();
    if (declared["required"] == true && !given.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("params.arguments.", name, ": missing (the prompt ",
                       json_fields::String(asset, "name"), " requires it)"));
    }
  }
  const std::string content = json_fields::String(asset, "content");
  absl::StatusOr<runtime::assets::Frontmatter> front =
      runtime::assets::ParseFrontmatter(content);
  const std::string& body = front.ok() ? front->body : content;
  // At most every "{{" becomes the longest argument: refused before
  // rendering what could be far larger than the body and the arguments.
  size_t placeholders = 0;
  for (size_t at = body.find("{{"); at != std::string::npos;
       at = body.find("{{", at + 2)) {
    ++placeholders;
  }
  if (longest > 0 &&
      placeholders > (kMaxRenderedPromptBytes -
                      std::min(body.size(), kMaxRenderedPromptBytes)) /
                         longest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "params.arguments: the prompt ", json_fields::String(asset, "name"),
        " has ", placeholders, " placeholders; with an argument of ", longest,
        " bytes its text could exceed ", kMaxRenderedPromptBytes,
        " bytes (send shorter arguments)"));
  }
  absl::StatusOr<std::string> text =
      runtime::assets::RenderPrompt(body, given, kMaxRenderedPromptBytes);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "params.arguments: the prompt ", json_fields::String(asset, "name"),
        ": ", text.status().message()));
  }
  return json{
      {"description", Description(asset)},
      {"messages",
       json::array(
           {{{"role", "user"},
             {"content", {{"type", "text"}, {"text", *std::move(text)}}}}})}};
}

}  // namespace jcs::protocol::mcp
