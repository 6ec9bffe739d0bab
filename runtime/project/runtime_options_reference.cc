#include "runtime/project/runtime_options_reference.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "runtime/project/value.h"

namespace jcs::runtime {

const std::vector<RuntimeOptionDoc>& RuntimeOptionDocs() {
  static const auto* docs = new std::vector<RuntimeOptionDoc>{
      {"tool_timeout_ms", "integer > 0",
       "Wall-clock limit of one tool call, in milliseconds; the call is "
       "killed (every process of its jail) and fails with a timeout."},
      {"tool_timeout_alert_threshold", "integer > 0",
       "Timeouts of one tool within the recent window that emit "
       "security.repeated_timeout_failures."},
      {"tool_max_output_bytes", "integer > 0",
       "Largest result document a tool call may return (canonical JSON "
       "size); a larger one fails with output_too_large."},
      {"tool_max_artifact_bytes", "integer > 0",
       "Largest artifact in a tool result (and fs.write content). Files an "
       "exec program writes are bounded by jail_fsize, jail_tmp_bytes and "
       "the disk budget instead."},
      {"tool_max_concurrency", "integer > 0",
       "Tool calls of the project that may run at once; more fail with "
       "max_concurrency_reached."},
      {"tool_max_concurrency_per_conversation", "integer >= 0",
       "Tool calls of one conversation that may run at once; more fail "
       "with conversation_max_concurrency_reached (0 blocks every call)."},
      {"llm_timeout_ms", "integer > 0",
       "Limit of one model request, in milliseconds."},
      {"watcher_debounce_ms", "integer > 0",
       "With watcher: how long the asset folders must be quiet, in "
       "milliseconds, before a change reloads the assets (each change "
       "restarts the wait)."},
      {"conversation_max_queue_size", "integer > 0",
       "Signals a conversation may queue before it refuses more."},
      {"conversation_max_drain_steps", "integer > 0",
       "Reducer steps a conversation runs per drain before it yields."},
      {"subagent_max_children", "integer > 0",
       "Subagents one conversation may start.", true},
      {"subagent_ttl_ms", "integer > 0",
       "Lifetime of a subagent, in milliseconds.", true},
      {"watcher", "boolean",
       "Watch the .jido asset folders (inotify) and reload the assets when "
       "they change (project.watcher_* events)."},
      {"strict_asset_loading", "boolean",
       "A .jido asset that does not load (invalid UTF-8, bad YAML "
       "frontmatter, a duplicate name, over a size cap, ...) fails the "
       "project start naming the file and reason, and refuses a reload, "
       "keeping the previous assets; off: the other assets load and the "
       "errors are in diagnostics' assets.errors."},
      {"network_allowlist", "list of strings",
       "Hosts (host, host:port, *.domain) a tool may reach when "
       "network_egress_policy is deny; enforced by the jail's egress "
       "proxy."},
      {"network_allowed_schemes", "list of strings",
       "URL schemes network tools may use."},
      {"sensitive_path_denylist", "list of strings",
       "Path patterns hidden from every tool and masked in the jail "
       "(credential files by their conventional names)."},
      {"sensitive_path_allowlist", "list of strings",
       "Exceptions to sensitive_path_denylist."},
      {"tool_env_allowlist", "list of strings",
       "Environment variables a tool's program may receive."},
      {"protocol_allowlist", "list of strings",
       "Protocols (mcp, a2a) that may reach the project, matched trimmed "
       "and case-insensitively; \"*\" allows all. Every MCP operation "
       "(jcs mcp, MCP over HTTP) is checked by the daemon: a denial is "
       "JSON-RPC error -32003 and a security.protocol_denied event."},
      {"network_egress_policy", "\"allow\" | \"deny\"",
       "Whether tools may reach the network beyond network_allowlist."},
      {"outside_root_allowlist", "list of {path | pattern, reason_code}",
       "Paths outside the project root tools may use, each with the reason "
       "it is needed."},
      {"subagent_templates", "list of maps", "Subagent templates.", true},
      {"command_executor", "null | \"workspace_shell\"",
       "How commands run; workspace_shell (the jail) is the only executor."},
      {"llm_adapter", "string",
       "The model adapter: \"deterministic\" (scripted, no network) or "
       "\"openai\" (an OpenAI-compatible API)."},
      {"jail_memory", "size (integer bytes or \"512M\")",
       "Memory limit of each tool jail (unset: 512M)."},
      {"jail_pids", "integer > 0",
       "Process limit of each tool jail (unset: 256)."},
      {"jail_cpus", "number > 0",
       "CPU quota of each tool jail (unset: no quota)."},
      {"jail_fsize", "size",
       "Largest file a jailed program may write "
       "(RLIMIT_FSIZE; unset: 1G)."},
      {"jail_tmp_bytes", "size >= 1M",
       "Size of the jail's private /tmp and /dev/shm (unset: 64M); counts "
       "towards jail_memory."},
      {"disk_quota_bytes", "integer > 0",
       "Kernel-enforced byte budget of the whole project tree (project "
       "quota); start fails if the filesystem cannot enforce it."},
      {"disk_quota_inodes", "integer > 0",
       "Kernel-enforced inode budget of the whole project tree."},
      {"allow_tools", "null | list of strings",
       "Tools the project exposes (null: all)."},
      {"deny_tools", "list of strings", "Tools the project hides."},
      {"subagent_templates_allowlist", "list of strings",
       "Subagent templates that may be used (unset: all).", true},
      {"llm_model", "null | string", "The model name sent to the adapter."},
      {"llm_system_prompt", "null | string", "The system prompt."},
      {"llm_temperature", "null | number", "Sampling temperature."},
      {"llm_max_tokens", "null | integer > 0", "Token limit of one answer."},
      {"llm_base_url", "http(s) URL",
       "Base URL of the OpenAI-compatible API (https unless loopback)."},
      {"llm_api_key_file", "null | path",
       "File holding the API key (else llm_api_key_env)."},
      {"llm_api_key_env", "environment variable name",
       "Variable of the daemon's environment holding the API key."},
      {"llm_stream", "boolean", "Stream model answers."},
      {"conversation_default_mode", "any (stored raw)",
       "Default conversation mode.", true},
      {"conversation_mode_defaults", "any (stored raw)",
       "Per-mode option defaults.", true},
      {"conversation_mode_registry", "any (stored raw)",
       "Registered conversation modes.", true},
      {"conversation_mode_unknown_key_policy", "any (stored raw)",
       "What to do with unknown mode keys.", true},
      {"tool_providers", "any (stored raw)", "External tool providers.", true},
      {"project_id", "string",
       "The project's id (also --project-id); must be unused.", false,
       "generated: project_N"},
      {"data_dir", "relative path",
       "The project's state directory below its root (also --data-dir).", false,
       "\".jido\""},
  };
  return *docs;
}

std::vector<std::string> InertOptions(const ValidatedOptions& options) {
  std::vector<std::string> out;
  for (const RuntimeOptionDoc& doc : RuntimeOptionDocs()) {
    if (doc.inert && options.explicit_keys.count(std::string(doc.key)) != 0) {
      out.emplace_back(doc.key);
    }
  }
  return out;
}

namespace {

// A table cell: '|' would end it.
std::string Cell(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string RuntimeOptionsMarkdown() {
  std::map<std::string, std::string> defaults;
  for (const auto& [key, value] : EffectiveOptionsEntries(ValidatedOptions{})) {
    defaults[key] = ToJson(value).dump();
  }
  std::string out =
      "# Runtime options\n\n"
      "<!-- Generated from runtime/project/runtime_options_reference.cc by\n"
      "     `bazel run //runtime/project:runtime_options_doc > "
      "docs/runtime-options.md`;\n"
      "     runtime_options_reference_test fails when this file is stale. "
      "-->\n\n"
      "A project's runtime options come from `jcs project start --opt "
      "KEY=VALUE` (VALUE is JSON, else a string), `--options FILE` (a JSON "
      "object), the control API's StartProjectRequest.options and the "
      "daemon config's `default_options_json` (the same JSON object as "
      "`--options FILE`, read by the same function: `default_options_json: "
      "'{\"tool_timeout_ms\": 30000, \"tool_max_concurrency\": 8}'`; a "
      "boot project's `options_json` likewise); one validator checks them "
      "all. "
      "An unknown key is refused with `unknown_option` and the nearest valid "
      "key. Keys marked *inert* are accepted but not acted on yet; a project "
      "that sets one lists it in `inert_options` (start response and "
      "diagnostics). A null default means unset.\n\n"
      "| key | type | default | meaning |\n"
      "|---|---|---|---|\n";
  for (const RuntimeOptionDoc& doc : RuntimeOptionDocs()) {
    std::string def = doc.default_text.empty() ? defaults[std::string(doc.key)]
                                               : std::string(doc.default_text);
    absl::StrAppend(&out, "| `", doc.key, "` | ", Cell(doc.type), " | `",
                    Cell(def), "` | ", doc.inert ? "*inert*: " : "",
                    Cell(doc.meaning), " |\n");
  }
  return out;
}

}  // namespace jcs::runtime
