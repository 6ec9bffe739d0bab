// Commands and workflows as tools (spec §4.1, issue 14): a command asset
// becomes `command.run.<name>`, a workflow `workflow.run.<name>`, with an
// input_schema built from the frontmatter, and a program the tool runtime
// runs in the project's jail.
//
// A command's frontmatter:
//   description: one line
//   jido:
//     schema:                     # the parameters
//       query: {type: string, required: true, doc: "what to look for"}
//       limit: {type: integer, default: 10}
//   run: |                        # a shell script (/bin/sh -c), or
//     grep -rn -- "$JCS_PARAM_QUERY" . | head -n "${JCS_PARAM_LIMIT:-10}"
//   argv: [git, diff, --stat]     # a program and its arguments, no shell
//   network: true                 # optional: run behind the egress proxy
// A workflow's frontmatter: name, version, description, enabled, inputs
// ([{name, type, required, description, default}]) and steps ([{name,
// run}]), run in order in one jail; the first step that fails ends it.
//
// Parameters never become program text. A call's parameters (args.params
// when it is an object, else the args without `params` and `env`; a
// workflow's args.inputs, else the args without `inputs` and `env`) reach the
// program as
//   - environment variables JCS_PARAM_<NAME> (the name upper-cased; a string
//     as is, anything else as its JSON text), for the parameters the
//     definition declares, each at most kMaxEnvParamBytes (a longer value
//     is only on stdin, and its name is listed in JCS_PARAMS_STDIN_ONLY);
//   - one JSON document on stdin: {"command"|"workflow": name, "params"|
//     "inputs": {...every parameter...}, "correlation_id"}.
// A value with a NUL byte cannot be an environment variable: the call is
// refused (invalid_tool_args) instead of cutting it short.
//
// Schema (spec §4.1): {"type": "object", "additionalProperties": true,
// "properties": {"params": {"type": "object", "properties": P, "required":
// R, "additionalProperties": true}} ∪ P}; field types string->string,
// integer->integer, float->number, boolean->boolean, map->object,
// list->array, atom->string; `doc` -> description; `required` only inside
// `params` (`inputs` for workflows).
//
// A definition that does not validate (frontmatter that does not parse, no
// run/argv/steps, an unknown field type, a parameter name that is not
// [A-Za-z_][A-Za-z0-9_]*, a workflow with enabled: false) stays listed with
// registration {status: "invalid", reason}, llm_exposed false and a
// permissive schema, and runs in preview mode: nothing is executed.
#ifndef JCS_RUNTIME_ASSETS_ASSET_DEFINITIONS_H_
#define JCS_RUNTIME_ASSETS_ASSET_DEFINITIONS_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/assets/asset_snapshot.h"

namespace jcs::runtime::assets {

inline constexpr size_t kMaxEnvParamBytes = 64 * 1024;

struct Definition {
  AssetType type = AssetType::kCommand;
  std::string name;       // the asset's name
  std::string tool_name;  // command.run.<name> | workflow.run.<name>
  std::string description;
  nlohmann::json input_schema;
  std::vector<std::string> params;  // declared parameter names, in order
  bool valid = false;
  std::string invalid_reason;
  bool network = false;
  // The program (valid definitions): argv[0] is looked up in the jail's PATH.
  std::vector<std::string> argv;
};

// Built for every command and workflow asset of a snapshot, sorted by tool
// name.
std::vector<Definition> BuildDefinitions(const AssetSnapshot& snapshot);
Definition BuildDefinition(const Asset& asset);

struct Invocation {
  nlohmann::json params;  // every parameter of the call
  std::vector<std::pair<std::string, std::string>> env;
  std::string stdin_json;
};

// InvalidArgument "params.<name>: contains a NUL byte ..." for a value that
// cannot be passed.
absl::StatusOr<Invocation> BuildInvocation(const Definition& definition,
                                           const nlohmann::json& args,
                                           const std::string& correlation_id);

// The body with each {{name}} replaced by the parameter's text (for people
// and models to read; never executed). ResourceExhausted, before anything
// larger is built, when the text would exceed `max_bytes`: a short body with
// many placeholders and one long parameter renders to far more than either.
absl::StatusOr<std::string> RenderPrompt(const std::string& body,
                                         const nlohmann::json& params,
                                         size_t max_bytes);

// The constant driver of workflows: `sh -c kWorkflowDriver jcs-workflow
// NAME1 SCRIPT1 NAME2 SCRIPT2 ...` keeps stdin in a file under the jail's
// /tmp and runs each script with it.
extern const char kWorkflowDriver[];

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_ASSET_DEFINITIONS_H_
