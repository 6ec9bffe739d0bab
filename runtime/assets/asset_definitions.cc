#include "runtime/assets/asset_definitions.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"

namespace jcs::runtime::assets {
namespace {

using json = nlohmann::json;

using json_fields::Member;

bool ValidParamName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// The JSON-schema type of a frontmatter type word; "" when unknown.
std::string SchemaType(const json& type) {
  if (type.is_null()) return "string";
  if (!type.is_string()) return "";
  const std::string t = type.get<std::string>();
  if (t == "string" || t == "atom") return "string";
  if (t == "integer") return "integer";
  if (t == "float" || t == "number") return "number";
  if (t == "boolean") return "boolean";
  if (t == "map" || t == "object") return "object";
  if (t == "list" || t == "array") return "array";
  return "";
}

json PermissiveSchema() {
  return {{"type", "object"},
          {"properties", json::object()},
          {"additionalProperties", true}};
}

struct Field {
  std::string name;
  json schema;
  bool required = false;
};

// One declared field; "" on success, else why the definition is invalid.
std::string AddField(const std::string& name, const json& spec,
                     std::vector<Field>* fields) {
  if (!ValidParamName(name)) {
    return absl::StrCat("invalid_param_name: ", name);
  }
  if (!spec.is_object() && !spec.is_null()) {
    return absl::StrCat("invalid_param_spec: ", name);
  }
  const std::string type = SchemaType(Member(spec, "type"));
  if (type.empty()) {
    return absl::StrCat("unknown_param_type: ", name, ": ",
                        Member(spec, "type").dump());
  }
  Field field{name, {{"type", type}}, Member(spec, "required") == true};
  for (const char* key : {"doc", "description"}) {
    if (Member(spec, key).is_string()) {
      field.schema["description"] = Member(spec, key);
    }
  }
  if (spec.is_object() && spec.contains("default")) {
    field.schema["default"] = spec["default"];
  }
  for (const Field& f : *fields) {
    if (f.name == name) return absl::StrCat("duplicate_param: ", name);
  }
  fields->push_back(std::move(field));
  return "";
}

json BuildSchema(const char* nest, const std::vector<Field>& fields) {
  json properties = json::object();
  json required = json::array();
  for (const Field& f : fields) {
    properties[f.name] = f.schema;
    if (f.required) required.push_back(f.name);
  }
  json top = properties;
  top[nest] = {{"type", "object"},
               {"properties", properties},
               {"required", required},
               {"additionalProperties", true}};
  return {{"type", "object"},
          {"properties", std::move(top)},
          {"additionalProperties", true}};
}

// The program of a command: `argv` (a non-empty list of strings) or `run`
// (a non-empty script for /bin/sh -c).
std::string CommandProgram(const json& front, std::vector<std::string>* argv) {
  const json& list = Member(front, "argv");
  const json& run = Member(front, "run");
  if (!list.is_null() && !run.is_null()) return "both_run_and_argv";
  if (!list.is_null()) {
    if (!list.is_array() || list.empty()) return "invalid_argv";
    for (const json& arg : list) {
      if (!arg.is_string() ||
          arg.get<std::string>().find('\0') != std::string::npos) {
        return "invalid_argv";
      }
      argv->push_back(arg.get<std::string>());
    }
    return "";
  }
  if (!run.is_string() || run.get<std::string>().empty()) return "missing_run";
  *argv = {"/bin/sh", "-c", run.get<std::string>(), "jcs-command"};
  return "";
}

std::string WorkflowProgram(const std::string& name, const json& front,
                            std::vector<std::string>* argv) {
  if (Member(front, "enabled") == false) return "disabled";
  const json& steps = Member(front, "steps");
  if (!steps.is_array() || steps.empty()) return "missing_steps";
  *argv = {"/bin/sh", "-c", kWorkflowDriver,
           absl::StrCat("jcs-workflow-", name)};
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& step = steps[i];
    const json& run = Member(step, "run");
    if (!run.is_string() || run.get<std::string>().empty()) {
      return absl::StrCat("invalid_step: ", i);
    }
    const json& step_name = Member(step, "name");
    argv->push_back(step_name.is_string() ? step_name.get<std::string>()
                                          : absl::StrCat("step-", i + 1));
    argv->push_back(run.get<std::string>());
  }
  return "";
}

std::string ParamText(const json& value) {
  return value.is_string()
             ? value.get<std::string>()
             : value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

const char kWorkflowDriver[] =
    "set -u\n"
    "input=$(mktemp) || exit 125\n"
    "cat > \"$input\"\n"
    "while [ $# -ge 2 ]; do\n"
    "  printf '== step %s\\n' \"$1\" >&2\n"
    "  /bin/sh -c \"$2\" \"jcs-step-$1\" < \"$input\"\n"
    "  rc=$?\n"
    "  if [ $rc -ne 0 ]; then\n"
    "    printf '== step %s failed: exit %d\\n' \"$1\" $rc >&2\n"
    "    exit $rc\n"
    "  fi\n"
    "  shift 2\n"
    "done\n";

Definition BuildDefinition(const Asset& asset) {
  Definition d;
  d.type = asset.type;
  d.name = asset.name;
  const bool workflow = asset.type == AssetType::kWorkflow;
  d.tool_name =
      absl::StrCat(workflow ? "workflow.run." : "command.run.", asset.name);
  const json& front = asset.frontmatter;
  d.description =
      Member(front, "description").is_string()
          ? Member(front, "description").get<std::string>()
          : absl::StrCat(workflow ? "Runs the workflow " : "Runs the command ",
                         asset.name, " (", asset.path, ").");
  d.input_schema = PermissiveSchema();
  const auto invalid = [&d](std::string reason) {
    d.valid = false;
    d.invalid_reason = std::move(reason);
    d.argv.clear();
    return d;
  };
  if (!asset.frontmatter_error.empty()) {
    return invalid(
        absl::StrCat("invalid_frontmatter: ", asset.frontmatter_error));
  }
  std::vector<Field> fields;
  if (workflow) {
    const json& inputs = Member(front, "inputs");
    if (!inputs.is_null() && !inputs.is_array()) {
      return invalid("invalid_inputs");
    }
    for (const json& input : inputs.is_array() ? inputs : json::array()) {
      const json& name = Member(input, "name");
      if (!name.is_string()) return invalid("invalid_inputs");
      json spec = input;
      if (std::string r = AddField(name.get<std::string>(), spec, &fields);
          !r.empty()) {
        return invalid(r);
      }
    }
  } else {
    const json& schema = Member(Member(front, "jido"), "schema");
    if (!schema.is_null() && !schema.is_object()) {
      return invalid("invalid_schema");
    }
    const json fields_spec = schema.is_object() ? schema : json::object();
    for (auto it = fields_spec.begin(); it != fields_spec.end(); ++it) {
      if (std::string r = AddField(it.key(), it.value(), &fields); !r.empty()) {
        return invalid(r);
      }
    }
  }
  const std::string problem = workflow
                                  ? WorkflowProgram(asset.name, front, &d.argv)
                                  : CommandProgram(front, &d.argv);
  if (!problem.empty()) return invalid(problem);
  d.network = Member(front, "network") == true;
  d.input_schema = BuildSchema(workflow ? "inputs" : "params", fields);
  for (const Field& f : fields) d.params.push_back(f.name);
  d.valid = true;
  return d;
}

std::vector<Definition> BuildDefinitions(const AssetSnapshot& snapshot) {
  std::vector<Definition> out;
  for (AssetType type : {AssetType::kCommand, AssetType::kWorkflow}) {
    for (const Asset& asset : snapshot.Of(type)) {
      out.push_back(BuildDefinition(asset));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Definition& a, const Definition& b) {
              return a.tool_name < b.tool_name;
            });
  return out;
}

absl::StatusOr<Invocation> BuildInvocation(const Definition& definition,
                                           const json& args,
                                           const std::string& correlation_id) {
  const bool workflow = definition.type == AssetType::kWorkflow;
  const char* nest = workflow ? "inputs" : "params";
  Invocation inv;
  const json& nested = Member(args, nest);
  if (nested.is_object()) {
    inv.params = nested;
  } else {
    inv.params = json::object();
    for (const auto& [key, value] : args.items()) {
      if (key != nest && key != "env") inv.params[key] = value;
    }
  }
  std::vector<std::string> stdin_only;
  for (const std::string& name : definition.params) {
    const json& value = Member(inv.params, name.c_str());
    if (value.is_null()) continue;
    const std::string text = ParamText(value);
    if (text.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          nest, ".", name,
          ": contains a NUL byte, which an environment variable cannot carry "
          "(pass binary data another way, e.g. base64)"));
    }
    if (text.size() > kMaxEnvParamBytes) {
      stdin_only.push_back(name);
      continue;
    }
    inv.env.emplace_back(
        absl::StrCat("JCS_PARAM_", absl::AsciiStrToUpper(name)), text);
  }
  if (!stdin_only.empty()) {
    std::string list;
    for (const std::string& name : stdin_only) {
      absl::StrAppend(&list, list.empty() ? "" : ",", name);
    }
    inv.env.emplace_back("JCS_PARAMS_STDIN_ONLY", list);
  }
  json doc = {{workflow ? "workflow" : "command", definition.name},
              {nest, inv.params},
              {"correlation_id", correlation_id}};
  inv.stdin_json =
      doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return inv;
}

absl::StatusOr<std::string> RenderPrompt(const std::string& body,
                                         const json& params, size_t max_bytes) {
  std::string out;
  const auto append = [&](absl::string_view text) {
    if (text.size() > max_bytes - out.size()) return false;
    out.append(text.data(), text.size());
    return true;
  };
  const auto too_large = [max_bytes] {
    return absl::ResourceExhaustedError(
        absl::StrCat("the rendered prompt exceeds ", max_bytes,
                     " bytes (fewer placeholders or shorter parameters)"));
  };
  const absl::string_view text(body);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) break;
    const std::string key(
        absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2)));
    if (!append(text.substr(pos, open - pos))) return too_large();
    const json& value = Member(params, key.c_str());
    // An unknown placeholder stays as written.
    const std::string replacement =
        value.is_null() ? std::string(text.substr(open, close + 2 - open))
                        : ParamText(value);
    if (!append(replacement)) return too_large();
    pos = close + 2;
  }
  if (!append(text.substr(pos))) return too_large();
  return out;
}

}  // namespace jcs::runtime::assets
