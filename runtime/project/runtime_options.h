// Project runtime options (spec §2): validation, normalization, defaults and
// the diagnostics rendering (`runtime_opts`).
//
// Every source of options (protobuf from the control API, KEY=VALUE from the
// CLI, a JSON options file, boot-time projects in the supervisor config) is
// first converted to an OptionList (runtime/project/value.h) and then validated
// here, by ValidateRuntimeOptions only.
//
// Validation walks the list in order and the first failing entry wins; the
// error is an `invalid_runtime_opt` (runtime/project/runtime_options_error.h):
// InvalidArgument, message `invalid_runtime_opt{key: "K", reason: "R"}`,
// structured payload readable with GetInvalidRuntimeOpt.
//
// Keys and reasons (integers are Value ints: 5.0, "5" and true are not
// integers; "number" is an int or a finite double):
//   tool_timeout_ms, tool_timeout_alert_threshold, tool_max_output_bytes,
//   tool_max_artifact_bytes, tool_max_concurrency, llm_timeout_ms,
//   watcher_debounce_ms, conversation_max_queue_size,
//   conversation_max_drain_steps, subagent_max_children, subagent_ttl_ms,
//   jail_pids                     integer > 0   expected_positive_integer
//   tool_max_concurrency_per_conversation
//                                 integer >= 0  expected_non_negative_integer
//   watcher, strict_asset_loading bool          expected_boolean
//   allow_tools                   null | [string...]  expected_list_of_strings
//   deny_tools, network_allowlist, network_allowed_schemes,
//   sensitive_path_denylist, sensitive_path_allowlist, tool_env_allowlist,
//   protocol_allowlist, subagent_templates_allowlist
//                                 [string...] (null rejected)
//                                               expected_list_of_strings
//   network_egress_policy         "allow" | "deny" (exact)
//                                               expected_allow_or_deny
//   outside_root_allowlist        [{path|pattern, reason_code}...]
//     not a list:   expected_list_of_reason_coded_maps
//     entry i bad:  invalid_entry[i]: <r> (i zero-based), r one of
//     expected_map_entry, missing_path_or_pattern,
//     expected_path_or_pattern_string, empty_path_or_pattern,
//     missing_reason_code, expected_reason_code_string, empty_reason_code
//     (checked in this order; a key whose value is null counts as missing)
//   subagent_templates            [map...]  not a list: expected_list;
//                                   a non-map element: expected_list_of_maps
//   llm_model, llm_system_prompt  null | string expected_string_or_nil
//   llm_base_url                  string starting http:// or https://
//                                   expected_http_url (the adapter checks
//                                   the rest when it starts: https unless
//                                   the host is loopback, no user info)
//   llm_api_key_file              null | non-empty string (a path)
//                                   expected_path_or_nil
//   llm_api_key_env               an environment variable name
//                                   [A-Za-z_][A-Za-z0-9_]*  expected_env_name
//   llm_stream                    bool          expected_boolean
//   llm_temperature               null | number expected_number_or_nil
//   llm_max_tokens                null | integer > 0
//                                          expected_positive_integer_or_nil
//   command_executor              null | "workspace_shell" (trimmed,
//                                   case-insensitive): another string gives
//                                   unsupported_command_executor, another
//                                   type expected_command_executor_or_nil
//   jail_memory                   integer bytes > 0 | size string "512M"
//                                   (digits, optional K/M/G/T suffix,
//                                   powers of 1024) > 0    expected_size
//   jail_fsize                    size as jail_memory     expected_size
//                                   (RLIMIT_FSIZE in the exec jail: the
//                                   largest file a program may write)
//   jail_tmp_bytes                size as jail_memory     expected_size;
//                                   below 1M: expected_size_at_least_1M
//                                   (size of the jail's private /tmp and
//                                   /dev/shm; tmpfs pages count towards
//                                   the jail's memory limit)
//   jail_cpus                     number > 0    expected_positive_number
//   disk_quota_bytes, disk_quota_inodes
//                                 integer > 0   expected_positive_integer
//                                   (a kernel-enforced budget for the whole
//                                   project tree: jail/project_quota.h)
//   llm_adapter, conversation_default_mode, conversation_mode_defaults,
//   conversation_mode_registry, conversation_mode_unknown_key_policy,
//   tool_providers                passthrough (any value, stored raw)
//   project_id, data_dir          passthrough here; StartProject validates
//                                   them (runtime/project/project_registry.h)
//   anything else (also the application-env-only alert_signal_events,
//   alert_router, project_id_generator, default_data_dir; keys are
//   case-sensitive and not trimmed)               unknown_option
//
// Decisions on the spec's [quirk]s and open points:
//   1. One set of defaults (below) for everything: policy options
//      (network_egress_policy, network_allowlist, deny_tools, ...) fall back to
//      the same defaults as every other option (quirk 7); jcs has no separate
//      application env.
//   2. subagent_max_children / subagent_ttl_ms are honoured: the validated
//      values are the ones consumers must read (quirk 6).
//   3. A repeated key: every occurrence is validated (first error wins); the
//      last occurrence takes effect, so `--opt` after `--options FILE`
//      overrides the file.
//   4. network_egress_policy accepts exactly "allow" / "deny" (no trimming or
//      case folding; a security switch should not guess) and is normalized to
//      the enum.
//   5. protocol_allowlist is stored raw (as given) and shown raw in
//      runtime_opts; ProtocolAllowed() matches it trimmed and
//      case-insensitively, "*" allows every protocol.
//   6. outside_root_allowlist: entry indexes are zero-based; when an entry has
//      both `path` and `pattern`, `path` is used; extra keys are ignored; the
//      reason code is stored trimmed, the path/pattern verbatim (Policy
//      expands it against the root).
//   7. llm_temperature rejects NaN and infinities (they can arrive through
//      protobuf doubles) as expected_number_or_nil; jail_cpus likewise.
//   8. Passthrough keys are accepted with any value and stored raw; their
//      consumers validate them on use.
//   9. runtime_opts (diagnostics) lists only the options that were explicitly
//      passed, restricted to the spec's 25 keys plus jcs's jail_memory,
//      jail_pids, jail_cpus, jail_fsize, jail_tmp_bytes and the disk budget,
//      in that fixed order, with normalized values.
//  10. jail_memory / jail_pids / jail_cpus / jail_fsize / jail_tmp_bytes
//      unset mean "the jail's own default" (512M, 256 pids, no CPU quota,
//      1G, 64M; see jail/spec.h).
//  11. tool_max_artifact_bytes caps the artifacts in a tool's result (and
//      fs.write's content), not the files an exec program writes: those are
//      bounded by jail_fsize, jail_tmp_bytes and the disk budget, so a
//      build, `git gc` or a package install works with the defaults.
#ifndef JCS_RUNTIME_RUNTIME_OPTIONS_H_
#define JCS_RUNTIME_RUNTIME_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "proto/runtime_options.pb.h"
#include "runtime/project/runtime_options_error.h"
#include "runtime/project/value.h"

namespace jcs::runtime {

enum class EgressPolicy { kAllow, kDeny };
absl::string_view EgressPolicyName(EgressPolicy policy);  // "allow" / "deny"

struct OutsideRootEntry {
  std::string pattern;      // the `path` or `pattern` value, verbatim
  bool from_path = false;   // true when it was given as `path`
  std::string reason_code;  // trimmed, non-empty
  friend bool operator==(const OutsideRootEntry& a, const OutsideRootEntry& b) {
    return a.pattern == b.pattern && a.from_path == b.from_path &&
           a.reason_code == b.reason_code;
  }
};

// Every runtime option with its spec default.
struct ValidatedOptions {
  int64_t tool_timeout_ms = 30000;
  int64_t tool_timeout_alert_threshold = 3;
  int64_t tool_max_output_bytes = 262144;
  int64_t tool_max_artifact_bytes = 131072;
  int64_t tool_max_concurrency = 8;
  int64_t tool_max_concurrency_per_conversation = 4;  // 0 blocks every call
  int64_t llm_timeout_ms = 120000;
  int64_t watcher_debounce_ms = 250;
  int64_t conversation_max_queue_size = 10000;
  int64_t conversation_max_drain_steps = 128;
  int64_t subagent_max_children = 3;
  int64_t subagent_ttl_ms = 300000;
  bool watcher = false;
  bool strict_asset_loading = false;

  std::optional<std::vector<std::string>> allow_tools;  // nullopt: all
  std::vector<std::string> deny_tools;
  EgressPolicy network_egress_policy = EgressPolicy::kDeny;
  std::vector<std::string> network_allowlist;
  std::vector<std::string> network_allowed_schemes = {"http", "https"};
  // Credential files by their conventional names, matched by
  // IsSensitivePath (runtime/policy/path_policy.h: ASCII case-insensitive, `/`
  // patterns anywhere in the tree). Every entry hides files from every tool
  // and masks them in the jail, so a false positive breaks a real project:
  // only names that hold secrets by convention are here (README.md,
  // "Sensitive paths", says what was left out and why).
  std::vector<std::string> sensitive_path_denylist = {
      // dotenv files.
      ".env", ".env.*",
      // Private keys and key stores (PEM, PKCS#12, Java, PuTTY).
      "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",
      // OpenSSH private keys of every type; the public halves (*.pub) are
      // not secrets and stay readable.
      "id_rsa", "id_dsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519",
      "id_ed25519_sk", "id_xmss",
      // Credential stores of common tools.
      ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", ".git-credentials",
      ".aws/credentials", ".docker/config.json", ".kube/config",
      ".config/gh/hosts.yml", ".gnupg/private-keys-v1.d", ".gnupg/secring.gpg",
      "credentials.json", "application_default_credentials.json"};
  std::vector<std::string> sensitive_path_allowlist;
  std::vector<std::string> tool_env_allowlist;
  std::vector<std::string> protocol_allowlist = {"mcp", "a2a"};  // raw
  std::vector<OutsideRootEntry> outside_root_allowlist;
  // nullopt: every template allowed.
  std::optional<std::vector<std::string>> subagent_templates_allowlist;
  std::vector<Value> subagent_templates;  // each a map

  std::optional<std::string> llm_model;
  std::optional<std::string> llm_system_prompt;
  std::optional<double> llm_temperature;
  std::optional<int64_t> llm_max_tokens;
  std::string command_executor = "workspace_shell";  // the only executor
  // The OpenAI-compatible adapter (runtime/conversation/llm_openai.h).
  std::string llm_base_url = "https://api.openai.com/v1";
  std::optional<std::string> llm_api_key_file;  // else the env variable
  std::string llm_api_key_env = "OPENAI_API_KEY";
  bool llm_stream = true;

  // Passthrough (not validated), with the spec's defaults.
  Value llm_adapter = Value::String("deterministic");
  Value conversation_default_mode = Value::String("coding");
  Value conversation_mode_defaults = Value::MapOf({});
  Value conversation_mode_registry = Value::MapOf({});
  Value conversation_mode_unknown_key_policy = Value::String("reject");
  Value tool_providers = Value::ListOf({});

  // jcs's jail limits; nullopt = the jail's default.
  std::optional<uint64_t> jail_memory_bytes;
  std::optional<int64_t> jail_pids;
  std::optional<double> jail_cpus;
  // RLIMIT_FSIZE for exec (bytes) and the size of its private /tmp.
  std::optional<uint64_t> jail_fsize_bytes;
  std::optional<uint64_t> jail_tmp_bytes;

  // The project's disk budget (bytes, inodes) as project quota limits;
  // nullopt = no budget of that kind (jail/project_quota.h).
  std::optional<int64_t> disk_quota_bytes;
  std::optional<int64_t> disk_quota_inodes;

  // Keys that were passed explicitly (project_id and data_dir excluded).
  std::set<std::string> explicit_keys;

  // protocol_allowlist matched trimmed and case-insensitively; "*" allows all.
  bool ProtocolAllowed(absl::string_view protocol) const;
};

// Validates and normalizes `options` (in order, first error wins). On error
// returns the invalid_runtime_opt status described above.
absl::StatusOr<ValidatedOptions> ValidateRuntimeOptions(
    const OptionList& options);

// The same on the error side only: the first error as a struct, or nullopt.
std::optional<InvalidRuntimeOpt> FirstInvalidRuntimeOpt(
    const OptionList& options);

// True for every key ValidateRuntimeOptions accepts.
bool IsKnownRuntimeOption(absl::string_view key);

// Every key ValidateRuntimeOptions accepts, in its table order.
std::vector<std::string> RuntimeOptionKeys();

// For an unknown key: the valid key nearest to it (edit distance, ASCII
// case-insensitive, at most max(2, size/4) edits; the first in table order
// on a tie), e.g. tool_timeout -> tool_timeout_ms. nullopt when none is
// that close. The status message of ValidateRuntimeOptions stays exactly
// FormatInvalidRuntimeOpt; the control API carries this as Error.hint.
std::optional<std::string> NearestRuntimeOption(absl::string_view key);

// Diagnostics `runtime_opts`: the explicitly passed options among the
// diagnostics keys (decision 9), normalized, in a fixed order.
OptionList RuntimeOptsEntries(const ValidatedOptions& options);
nlohmann::json RuntimeOptsJson(const ValidatedOptions& options);  // object
proto::RuntimeOptions RuntimeOptsProto(const ValidatedOptions& options);

// Every option with its effective (normalized or default) value, in a fixed
// order; null for unset optionals. For `project list` / debugging.
OptionList EffectiveOptionsEntries(const ValidatedOptions& options);
nlohmann::json EffectiveOptionsJson(const ValidatedOptions& options);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_RUNTIME_OPTIONS_H_
