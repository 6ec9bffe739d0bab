#include "runtime/project/runtime_options.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "jail/spec.h"

namespace jcs::runtime {
namespace {

// The jail refuses a private /tmp smaller than this (jail/spec.cc).
constexpr uint64_t kMinJailTmpBytes = 1 << 20;

// A failed check: the reason (and entry details) without the key.
using Failure = std::optional<InvalidRuntimeOpt>;

Failure Fail(absl::string_view reason) {
  return InvalidRuntimeOpt::Simple("", std::string(reason));
}

struct OptionSpec {
  absl::string_view key;
  // Validates `value` and stores the normalized result; nullopt on success.
  std::function<Failure(const Value&, ValidatedOptions&)> apply;
  // The effective value, for rendering.
  std::function<Value(const ValidatedOptions&)> render;
  bool in_runtime_opts;  // shown in diagnostics runtime_opts when explicit
};

// An environment variable name as shells accept it.
bool IsEnvName(absl::string_view name) {
  if (name.empty() ||
      absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

bool IsFiniteNumber(const Value& v) {
  return v.is_int() || (v.is_double() && std::isfinite(v.double_value()));
}

std::optional<std::vector<std::string>> AsStringList(const Value& v) {
  if (!v.is_list()) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(v.list_value().size());
  for (const Value& item : v.list_value()) {
    if (!item.is_string()) return std::nullopt;
    out.push_back(item.string_value());
  }
  return out;
}

Value OptionalStrings(const std::optional<std::vector<std::string>>& v) {
  return v.has_value() ? Value::Strings(*v) : Value::Null();
}

OptionSpec PositiveInt(absl::string_view key, int64_t ValidatedOptions::*field,
                       bool in_runtime_opts = true) {
  return {key,
          [field](const Value& v, ValidatedOptions& o) -> Failure {
            if (!v.is_int() || v.int_value() <= 0) {
              return Fail("expected_positive_integer");
            }
            o.*field = v.int_value();
            return std::nullopt;
          },
          [field](const ValidatedOptions& o) { return Value::Int(o.*field); },
          in_runtime_opts};
}

// An integer > 0 kept optional (unset = no limit of that kind).
OptionSpec OptionalPositiveInt(
    absl::string_view key, std::optional<int64_t> ValidatedOptions::*field) {
  return {key,
          [field](const Value& v, ValidatedOptions& o) -> Failure {
            if (!v.is_int() || v.int_value() <= 0) {
              return Fail("expected_positive_integer");
            }
            o.*field = v.int_value();
            return std::nullopt;
          },
          [field](const ValidatedOptions& o) {
            return (o.*field).has_value() ? Value::Int(*(o.*field))
                                          : Value::Null();
          },
          true};
}

// A byte size: an integer > 0 or a size string ("512M": digits, optional
// K/M/G/T suffix, powers of 1024) > 0 that fits an int64; at least
// `min_bytes` (else `below_min_reason`). Unset = the jail's own default.
OptionSpec Size(absl::string_view key,
                std::optional<uint64_t> ValidatedOptions::*field,
                uint64_t min_bytes = 1,
                absl::string_view below_min_reason = "expected_size") {
  return {key,
          [key, field, min_bytes, below_min_reason](
              const Value& v, ValidatedOptions& o) -> Failure {
            uint64_t bytes = 0;
            if (v.is_int()) {
              if (v.int_value() <= 0) return Fail("expected_size");
              bytes = static_cast<uint64_t>(v.int_value());
            } else if (v.is_string()) {
              absl::StatusOr<uint64_t> parsed =
                  jail::ParseSize(v.string_value(), key);
              if (!parsed.ok() || *parsed == 0 ||
                  *parsed > static_cast<uint64_t>(
                                std::numeric_limits<int64_t>::max())) {
                return Fail("expected_size");
              }
              bytes = *parsed;
            } else {
              return Fail("expected_size");
            }
            if (bytes < min_bytes) return Fail(below_min_reason);
            o.*field = bytes;
            return std::nullopt;
          },
          [field](const ValidatedOptions& o) {
            return (o.*field).has_value()
                       ? Value::Int(static_cast<int64_t>(*(o.*field)))
                       : Value::Null();
          },
          true};
}

OptionSpec Boolean(absl::string_view key, bool ValidatedOptions::*field) {
  return {key,
          [field](const Value& v, ValidatedOptions& o) -> Failure {
            if (!v.is_bool()) return Fail("expected_boolean");
            o.*field = v.bool_value();
            return std::nullopt;
          },
          [field](const ValidatedOptions& o) { return Value::Bool(o.*field); },
          true};
}

OptionSpec StringList(absl::string_view key,
                      std::vector<std::string> ValidatedOptions::*field,
                      bool in_runtime_opts) {
  return {
      key,
      [field](const Value& v, ValidatedOptions& o) -> Failure {
        std::optional<std::vector<std::string>> list = AsStringList(v);
        if (!list.has_value()) return Fail("expected_list_of_strings");
        o.*field = *std::move(list);
        return std::nullopt;
      },
      [field](const ValidatedOptions& o) { return Value::Strings(o.*field); },
      in_runtime_opts};
}

OptionSpec OptionalString(absl::string_view key,
                          std::optional<std::string> ValidatedOptions::*field) {
  return {key,
          [field](const Value& v, ValidatedOptions& o) -> Failure {
            if (v.is_null()) {
              (o.*field).reset();
            } else if (v.is_string()) {
              o.*field = v.string_value();
            } else {
              return Fail("expected_string_or_nil");
            }
            return std::nullopt;
          },
          [field](const ValidatedOptions& o) {
            return (o.*field).has_value() ? Value::String(*(o.*field))
                                          : Value::Null();
          },
          false};
}

OptionSpec Passthrough(absl::string_view key, Value ValidatedOptions::*field,
                       bool in_runtime_opts) {
  return {key,
          [field](const Value& v, ValidatedOptions& o) -> Failure {
            o.*field = v;
            return std::nullopt;
          },
          [field](const ValidatedOptions& o) { return o.*field; },
          in_runtime_opts};
}

// project_id / data_dir: accepted here, validated by StartProject.
OptionSpec StartParameter(absl::string_view key) {
  return {
      key,
      [](const Value&, ValidatedOptions&) -> Failure { return std::nullopt; },
      nullptr, false};
}

Failure ValidateOutsideRootEntry(const Value& entry, OutsideRootEntry* out) {
  if (!entry.is_map()) return Fail("expected_map_entry");
  const Value::Map& map = entry.map_value();
  auto present = [&map](const char* key) -> const Value* {
    auto it = map.find(key);
    if (it == map.end() || it->second.is_null()) return nullptr;
    return &it->second;
  };
  const Value* target = present("path");
  out->from_path = target != nullptr;
  if (target == nullptr) target = present("pattern");
  if (target == nullptr) return Fail("missing_path_or_pattern");
  if (!target->is_string()) return Fail("expected_path_or_pattern_string");
  if (absl::StripAsciiWhitespace(target->string_value()).empty()) {
    return Fail("empty_path_or_pattern");
  }
  const Value* reason = present("reason_code");
  if (reason == nullptr) return Fail("missing_reason_code");
  if (!reason->is_string()) return Fail("expected_reason_code_string");
  absl::string_view code = absl::StripAsciiWhitespace(reason->string_value());
  if (code.empty()) return Fail("empty_reason_code");
  out->pattern = target->string_value();
  out->reason_code = std::string(code);
  return std::nullopt;
}

Value RenderOutsideRoot(const std::vector<OutsideRootEntry>& entries) {
  Value::List list;
  for (const OutsideRootEntry& entry : entries) {
    Value::Map map;
    map[entry.from_path ? "path" : "pattern"] = Value::String(entry.pattern);
    map["reason_code"] = Value::String(entry.reason_code);
    list.push_back(Value::MapOf(std::move(map)));
  }
  return Value::ListOf(std::move(list));
}

// The option table, in the rendering order: the 25 diagnostics keys of the
// spec first, then jcs's jail limits, then the rest.
const std::vector<OptionSpec>& Table() {
  static const auto* table = new std::vector<OptionSpec>{
      PositiveInt("tool_timeout_ms", &ValidatedOptions::tool_timeout_ms),
      PositiveInt("tool_timeout_alert_threshold",
                  &ValidatedOptions::tool_timeout_alert_threshold),
      PositiveInt("tool_max_output_bytes",
                  &ValidatedOptions::tool_max_output_bytes),
      PositiveInt("tool_max_artifact_bytes",
                  &ValidatedOptions::tool_max_artifact_bytes),
      PositiveInt("tool_max_concurrency",
                  &ValidatedOptions::tool_max_concurrency),
      {"tool_max_concurrency_per_conversation",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_int() || v.int_value() < 0) {
           return Fail("expected_non_negative_integer");
         }
         o.tool_max_concurrency_per_conversation = v.int_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return Value::Int(o.tool_max_concurrency_per_conversation);
       },
       true},
      PositiveInt("llm_timeout_ms", &ValidatedOptions::llm_timeout_ms),
      PositiveInt("watcher_debounce_ms",
                  &ValidatedOptions::watcher_debounce_ms),
      PositiveInt("conversation_max_queue_size",
                  &ValidatedOptions::conversation_max_queue_size),
      PositiveInt("conversation_max_drain_steps",
                  &ValidatedOptions::conversation_max_drain_steps),
      PositiveInt("subagent_max_children",
                  &ValidatedOptions::subagent_max_children),
      PositiveInt("subagent_ttl_ms", &ValidatedOptions::subagent_ttl_ms),
      Boolean("watcher", &ValidatedOptions::watcher),
      Boolean("strict_asset_loading", &ValidatedOptions::strict_asset_loading),
      StringList("network_allowlist", &ValidatedOptions::network_allowlist,
                 true),
      StringList("network_allowed_schemes",
                 &ValidatedOptions::network_allowed_schemes, true),
      StringList("sensitive_path_denylist",
                 &ValidatedOptions::sensitive_path_denylist, true),
      StringList("sensitive_path_allowlist",
                 &ValidatedOptions::sensitive_path_allowlist, true),
      StringList("tool_env_allowlist", &ValidatedOptions::tool_env_allowlist,
                 true),
      StringList("protocol_allowlist", &ValidatedOptions::protocol_allowlist,
                 true),
      {"network_egress_policy",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (v.is_string() && v.string_value() == "allow") {
           o.network_egress_policy = EgressPolicy::kAllow;
         } else if (v.is_string() && v.string_value() == "deny") {
           o.network_egress_policy = EgressPolicy::kDeny;
         } else {
           return Fail("expected_allow_or_deny");
         }
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return Value::String(
             std::string(EgressPolicyName(o.network_egress_policy)));
       },
       true},
      {"outside_root_allowlist",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_list()) return Fail("expected_list_of_reason_coded_maps");
         std::vector<OutsideRootEntry> entries;
         const Value::List& list = v.list_value();
         for (size_t i = 0; i < list.size(); ++i) {
           OutsideRootEntry entry;
           Failure failure = ValidateOutsideRootEntry(list[i], &entry);
           if (failure.has_value()) {
             return InvalidRuntimeOpt::Entry("", static_cast<int64_t>(i),
                                             failure->reason);
           }
           entries.push_back(std::move(entry));
         }
         o.outside_root_allowlist = std::move(entries);
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return RenderOutsideRoot(o.outside_root_allowlist);
       },
       true},
      {"subagent_templates",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_list()) return Fail("expected_list");
         for (const Value& item : v.list_value()) {
           if (!item.is_map()) return Fail("expected_list_of_maps");
         }
         o.subagent_templates = v.list_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return Value::ListOf(o.subagent_templates);
       },
       true},
      {"command_executor",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (v.is_null()) {
           o.command_executor = "workspace_shell";
           return std::nullopt;
         }
         if (!v.is_string()) return Fail("expected_command_executor_or_nil");
         std::string name = absl::AsciiStrToLower(
             absl::StripAsciiWhitespace(v.string_value()));
         if (name != "workspace_shell") {
           return Fail("unsupported_command_executor");
         }
         o.command_executor = name;
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return Value::String(o.command_executor);
       },
       true},
      Passthrough("llm_adapter", &ValidatedOptions::llm_adapter, true),
      // jcs's own jail limits.
      Size("jail_memory", &ValidatedOptions::jail_memory_bytes),
      {"jail_pids",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_int() || v.int_value() <= 0) {
           return Fail("expected_positive_integer");
         }
         o.jail_pids = v.int_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return o.jail_pids.has_value() ? Value::Int(*o.jail_pids)
                                        : Value::Null();
       },
       true},
      {"jail_cpus",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!IsFiniteNumber(v) || v.number_value() <= 0) {
           return Fail("expected_positive_number");
         }
         o.jail_cpus = v.number_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return o.jail_cpus.has_value() ? Value::Double(*o.jail_cpus)
                                        : Value::Null();
       },
       true},
      Size("jail_fsize", &ValidatedOptions::jail_fsize_bytes),
      Size("jail_tmp_bytes", &ValidatedOptions::jail_tmp_bytes,
           kMinJailTmpBytes, "expected_size_at_least_1M"),
      OptionalPositiveInt("disk_quota_bytes",
                          &ValidatedOptions::disk_quota_bytes),
      OptionalPositiveInt("disk_quota_inodes",
                          &ValidatedOptions::disk_quota_inodes),
      // Not shown in runtime_opts.
      {"allow_tools",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (v.is_null()) {
           o.allow_tools.reset();
           return std::nullopt;
         }
         std::optional<std::vector<std::string>> list = AsStringList(v);
         if (!list.has_value()) return Fail("expected_list_of_strings");
         o.allow_tools = *std::move(list);
         return std::nullopt;
       },
       [](const ValidatedOptions& o) { return OptionalStrings(o.allow_tools); },
       false},
      StringList("deny_tools", &ValidatedOptions::deny_tools, false),
      {"subagent_templates_allowlist",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         std::optional<std::vector<std::string>> list = AsStringList(v);
         if (!list.has_value()) return Fail("expected_list_of_strings");
         o.subagent_templates_allowlist = *std::move(list);
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return OptionalStrings(o.subagent_templates_allowlist);
       },
       false},
      OptionalString("llm_model", &ValidatedOptions::llm_model),
      OptionalString("llm_system_prompt", &ValidatedOptions::llm_system_prompt),
      {"llm_temperature",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (v.is_null()) {
           o.llm_temperature.reset();
         } else if (IsFiniteNumber(v)) {
           o.llm_temperature = v.number_value();
         } else {
           return Fail("expected_number_or_nil");
         }
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return o.llm_temperature.has_value()
                    ? Value::Double(*o.llm_temperature)
                    : Value::Null();
       },
       false},
      {"llm_max_tokens",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (v.is_null()) {
           o.llm_max_tokens.reset();
         } else if (v.is_int() && v.int_value() > 0) {
           o.llm_max_tokens = v.int_value();
         } else {
           return Fail("expected_positive_integer_or_nil");
         }
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return o.llm_max_tokens.has_value() ? Value::Int(*o.llm_max_tokens)
                                             : Value::Null();
       },
       false},
      {"llm_base_url",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_string() ||
             !(absl::StartsWith(v.string_value(), "http://") ||
               absl::StartsWith(v.string_value(), "https://"))) {
           return Fail("expected_http_url");
         }
         o.llm_base_url = v.string_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) { return Value::String(o.llm_base_url); },
       false},
      {"llm_api_key_file",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (v.is_null()) {
           o.llm_api_key_file.reset();
         } else if (v.is_string() && !v.string_value().empty()) {
           o.llm_api_key_file = v.string_value();
         } else {
           return Fail("expected_path_or_nil");
         }
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return o.llm_api_key_file.has_value()
                    ? Value::String(*o.llm_api_key_file)
                    : Value::Null();
       },
       false},
      {"llm_api_key_env",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_string() || !IsEnvName(v.string_value())) {
           return Fail("expected_env_name");
         }
         o.llm_api_key_env = v.string_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) {
         return Value::String(o.llm_api_key_env);
       },
       false},
      {"llm_stream",
       [](const Value& v, ValidatedOptions& o) -> Failure {
         if (!v.is_bool()) return Fail("expected_boolean");
         o.llm_stream = v.bool_value();
         return std::nullopt;
       },
       [](const ValidatedOptions& o) { return Value::Bool(o.llm_stream); },
       false},
      Passthrough("conversation_default_mode",
                  &ValidatedOptions::conversation_default_mode, false),
      Passthrough("conversation_mode_defaults",
                  &ValidatedOptions::conversation_mode_defaults, false),
      Passthrough("conversation_mode_registry",
                  &ValidatedOptions::conversation_mode_registry, false),
      Passthrough("conversation_mode_unknown_key_policy",
                  &ValidatedOptions::conversation_mode_unknown_key_policy,
                  false),
      Passthrough("tool_providers", &ValidatedOptions::tool_providers, false),
      StartParameter("project_id"),
      StartParameter("data_dir"),
  };
  return *table;
}

const OptionSpec* FindOption(absl::string_view key) {
  for (const OptionSpec& spec : Table()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

// Shared by ValidateRuntimeOptions and FirstInvalidRuntimeOpt.
Failure Validate(const OptionList& options, ValidatedOptions* out) {
  for (const auto& [key, value] : options) {
    if (Failure bad = NonUtf8KeyError(key)) return bad;
    const OptionSpec* spec = FindOption(key);
    if (spec == nullptr)
      return InvalidRuntimeOpt::Simple(key, "unknown_option");
    Failure failure = spec->apply(value, *out);
    if (failure.has_value()) {
      failure->key = key;
      return failure;
    }
    if (spec->render != nullptr) out->explicit_keys.insert(key);
  }
  return std::nullopt;
}

}  // namespace

absl::string_view EgressPolicyName(EgressPolicy policy) {
  return policy == EgressPolicy::kAllow ? "allow" : "deny";
}

bool ValidatedOptions::ProtocolAllowed(absl::string_view protocol) const {
  absl::string_view wanted = absl::StripAsciiWhitespace(protocol);
  for (const std::string& entry : protocol_allowlist) {
    absl::string_view allowed = absl::StripAsciiWhitespace(entry);
    if (allowed == "*" || absl::EqualsIgnoreCase(allowed, wanted)) return true;
  }
  return false;
}

absl::StatusOr<ValidatedOptions> ValidateRuntimeOptions(
    const OptionList& options) {
  ValidatedOptions out;
  Failure failure = Validate(options, &out);
  if (failure.has_value()) return InvalidRuntimeOptStatus(*failure);
  return out;
}

std::optional<InvalidRuntimeOpt> FirstInvalidRuntimeOpt(
    const OptionList& options) {
  ValidatedOptions scratch;
  return Validate(options, &scratch);
}

bool IsKnownRuntimeOption(absl::string_view key) {
  return FindOption(key) != nullptr;
}

std::vector<std::string> RuntimeOptionKeys() {
  std::vector<std::string> keys;
  for (const OptionSpec& spec : Table()) keys.emplace_back(spec.key);
  return keys;
}

std::optional<std::string> NearestRuntimeOption(absl::string_view key) {
  // Bounded: keys come from untrusted input, the table's keys are short.
  if (key.size() > 128) return std::nullopt;
  const std::string wanted = absl::AsciiStrToLower(key);
  const size_t limit = std::max<size_t>(2, wanted.size() / 4);
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const OptionSpec& spec : Table()) {
    // Levenshtein distance, one row at a time.
    const absl::string_view candidate = spec.key;
    std::vector<size_t> row(candidate.size() + 1);
    for (size_t j = 0; j <= candidate.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= wanted.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= candidate.size(); ++j) {
        const size_t above = row[j];
        row[j] =
            std::min({row[j] + 1, row[j - 1] + 1,
                      diagonal + (wanted[i - 1] == candidate[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    if (row[candidate.size()] < best_distance) {
      best_distance = row[candidate.size()];
      best = std::string(candidate);
    }
  }
  return best;
}

OptionList RuntimeOptsEntries(const ValidatedOptions& options) {
  OptionList out;
  for (const OptionSpec& spec : Table()) {
    if (!spec.in_runtime_opts) continue;
    if (options.explicit_keys.count(std::string(spec.key)) == 0) continue;
    out.emplace_back(std::string(spec.key), spec.render(options));
  }
  return out;
}

nlohmann::json RuntimeOptsJson(const ValidatedOptions& options) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : RuntimeOptsEntries(options)) {
    out[key] = ToJson(value);
  }
  return out;
}

proto::RuntimeOptions RuntimeOptsProto(const ValidatedOptions& options) {
  return OptionsToProto(RuntimeOptsEntries(options));
}

OptionList EffectiveOptionsEntries(const ValidatedOptions& options) {
  OptionList out;
  for (const OptionSpec& spec : Table()) {
    if (spec.render == nullptr) continue;
    out.emplace_back(std::string(spec.key), spec.render(options));
  }
  return out;
}

nlohmann::json EffectiveOptionsJson(const ValidatedOptions& options) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : EffectiveOptionsEntries(options)) {
    out[key] = ToJson(value);
  }
  return out;
}

}  // namespace jcs::runtime
