#include "runtime/project/runtime_options.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "runtime/project/runtime_options_error.h"
#include "runtime/project/value.h"

namespace jcs::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Value I(int64_t i) { return Value::Int(i); }
Value D(double d) { return Value::Double(d); }
Value S(std::string s) { return Value::String(std::move(s)); }
Value B(bool b) { return Value::Bool(b); }
Value N() { return Value::Null(); }
Value L(Value::List l) { return Value::ListOf(std::move(l)); }
Value M(Value::Map m) { return Value::MapOf(std::move(m)); }
Value SL(const std::vector<std::string>& s) { return Value::Strings(s); }

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// One option in isolation. `reason` empty: accepted, and the effective value
// rendered for `key` must equal `rendered` (unless the key is not rendered).
struct Case {
  std::string key;
  Value value;
  std::string reason;  // InvalidRuntimeOpt::ReasonString(), or "" for ok
  std::optional<Value> rendered;
};

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  const std::vector<std::string> positive = {
      "tool_timeout_ms",
      "tool_timeout_alert_threshold",
      "tool_max_output_bytes",
      "tool_max_artifact_bytes",
      "tool_max_concurrency",
      "llm_timeout_ms",
      "watcher_debounce_ms",
      "conversation_max_queue_size",
      "conversation_max_drain_steps",
      "subagent_max_children",
      "subagent_ttl_ms",
      "jail_pids",
  };
  for (const std::string& key : positive) {
    cases.push_back({key, I(1), "", I(1)});
    cases.push_back({key, I(86400000), "", I(86400000)});
    for (const Value& bad :
         {I(0), I(-1), D(1.0), D(1.5), S("5"), B(true), N(), L({}), M({})}) {
      cases.push_back({key, bad, "expected_positive_integer", std::nullopt});
    }
  }
  {
    const std::string key = "tool_max_concurrency_per_conversation";
    cases.push_back({key, I(0), "", I(0)});
    cases.push_back({key, I(4), "", I(4)});
    for (const Value& bad : {I(-1), D(0.0), S("0"), B(false), N()}) {
      cases.push_back(
          {key, bad, "expected_non_negative_integer", std::nullopt});
    }
  }
  for (const std::string key : {"watcher", "strict_asset_loading"}) {
    cases.push_back({key, B(true), "", B(true)});
    cases.push_back({key, B(false), "", B(false)});
    for (const Value& bad : {I(1), S("true"), N(), L({})}) {
      cases.push_back({key, bad, "expected_boolean", std::nullopt});
    }
  }
  const std::vector<std::string> string_lists = {
      "deny_tools",
      "network_allowlist",
      "network_allowed_schemes",
      "sensitive_path_denylist",
      "sensitive_path_allowlist",
      "tool_env_allowlist",
      "protocol_allowlist",
      "subagent_templates_allowlist",
  };
  for (const std::string& key : string_lists) {
    cases.push_back({key, SL({"a", "B"}), "", SL({"a", "B"})});
    cases.push_back({key, SL({}), "", SL({})});
    for (const Value& bad : {N(), S("a"), L({I(1)}), L({S("a"), N()}),
                             M({{"a", S("b")}}), B(true)}) {
      cases.push_back({key, bad, "expected_list_of_strings", std::nullopt});
    }
  }
  cases.push_back({"allow_tools", N(), "", N()});
  cases.push_back({"allow_tools", SL({"x.y"}), "", SL({"x.y"})});
  cases.push_back({"allow_tools", SL({}), "", SL({})});
  for (const Value& bad : {S("x"), L({I(1)}), B(false), M({})}) {
    cases.push_back({"allow_tools", bad, "expected_list_of_strings", {}});
  }
  cases.push_back({"network_egress_policy", S("allow"), "", S("allow")});
  cases.push_back({"network_egress_policy", S("deny"), "", S("deny")});
  for (const Value& bad :
       {S("ALLOW"), S(" allow"), S("Deny"), S(""), B(true), N(), I(1)}) {
    cases.push_back(
        {"network_egress_policy", bad, "expected_allow_or_deny", std::nullopt});
  }
  {
    const std::string key = "outside_root_allowlist";
    cases.push_back({key, L({}), "", L({})});
    cases.push_back(
        {key,
         L({M({{"path", S("/tmp/x")}, {"reason_code", S(" tmp_exchange ")}}),
            M({{"pattern", S("/var/cache/*")},
               {"reason_code", S("cache")},
               {"extra", I(1)}}),
            M({{"path", N()}, {"pattern", S("/p")}, {"reason_code", S("r")}}),
            M({{"path", S("/a")},
               {"pattern", S("/b")},
               {"reason_code", S("r")}})}),
         "",
         L({M({{"path", S("/tmp/x")}, {"reason_code", S("tmp_exchange")}}),
            M({{"pattern", S("/var/cache/*")}, {"reason_code", S("cache")}}),
            M({{"pattern", S("/p")}, {"reason_code", S("r")}}),
            M({{"path", S("/a")}, {"reason_code", S("r")}})})});
    for (const Value& bad : {S("x"), M({}), N(), I(1)}) {
      cases.push_back(
          {key, bad, "expected_list_of_reason_coded_maps", std::nullopt});
    }
    const Value good = M({{"path", S("/ok")}, {"reason_code", S("ok")}});
    const std::vector<std::pair<Value, std::string>> entries = {
        {S("/tmp"), "expected_map_entry"},
        {L({}), "expected_map_entry"},
        {N(), "expected_map_entry"},
        {M({{"reason_code", S("r")}}), "missing_path_or_pattern"},
        {M({{"path", N()}, {"reason_code", S("r")}}),
         "missing_path_or_pattern"},
        {M({{"path", S("")}, {"reason_code", S("r")}}),
         "empty_path_or_pattern"},
        {M({{"pattern", S("  ")}, {"reason_code", S("r")}}),
         "empty_path_or_pattern"},
        {M({{"path", I(1)}, {"reason_code", S("r")}}),
         "expected_path_or_pattern_string"},
        {M({{"pattern", SL({"/a"})}, {"reason_code", S("r")}}),
         "expected_path_or_pattern_string"},
        {M({{"path", S("/a")}}), "missing_reason_code"},
        {M({{"path", S("/a")}, {"reason_code", N()}}), "missing_reason_code"},
        {M({{"path", S("/a")}, {"reason_code", S("")}}), "empty_reason_code"},
        {M({{"path", S("/a")}, {"reason_code", S(" \t")}}),
         "empty_reason_code"},
        {M({{"path", S("/a")}, {"reason_code", I(3)}}),
         "expected_reason_code_string"},
        // Checked in order: the path problem is reported first.
        {M({{"path", I(1)}}), "expected_path_or_pattern_string"},
    };
    for (const auto& [entry, reason] : entries) {
      cases.push_back({key, L({entry}), "invalid_entry[0]: " + reason, {}});
      cases.push_back({key, L({good, good, entry, entry}),
                       "invalid_entry[2]: " + reason, std::nullopt});
    }
  }
  cases.push_back({"subagent_templates", L({}), "", L({})});
  cases.push_back({"subagent_templates", L({M({{"template_id", S("a")}})}), "",
                   L({M({{"template_id", S("a")}})})});
  for (const Value& bad : {S("x"), N(), M({}), I(0)}) {
    cases.push_back({"subagent_templates", bad, "expected_list", std::nullopt});
  }
  for (const Value& bad : {L({I(1)}), L({M({}), S("x")}), L({N()})}) {
    cases.push_back(
        {"subagent_templates", bad, "expected_list_of_maps", std::nullopt});
  }
  for (const std::string key : {"llm_model", "llm_system_prompt"}) {
    cases.push_back({key, N(), "", N()});
    cases.push_back({key, S("m"), "", S("m")});
    cases.push_back({key, S(""), "", S("")});
    for (const Value& bad : {I(1), B(true), SL({"m"}), M({})}) {
      cases.push_back({key, bad, "expected_string_or_nil", std::nullopt});
    }
  }
  cases.push_back({"llm_temperature", N(), "", N()});
  cases.push_back({"llm_temperature", D(0.5), "", D(0.5)});
  cases.push_back({"llm_temperature", I(1), "", D(1.0)});
  cases.push_back({"llm_temperature", D(-0.5), "", D(-0.5)});
  for (const Value& bad : {S("0.5"), B(true), D(kNaN), D(kInf), L({})}) {
    cases.push_back(
        {"llm_temperature", bad, "expected_number_or_nil", std::nullopt});
  }
  cases.push_back({"llm_max_tokens", N(), "", N()});
  cases.push_back({"llm_max_tokens", I(100), "", I(100)});
  for (const Value& bad : {I(0), I(-1), D(1.0), S("1"), B(true)}) {
    cases.push_back({"llm_max_tokens", bad, "expected_positive_integer_or_nil",
                     std::nullopt});
  }
  // The OpenAI-compatible adapter's keys.
  cases.push_back({"llm_base_url", S("https://api.openai.com/v1"), "",
                   S("https://api.openai.com/v1")});
  cases.push_back({"llm_base_url", S("http://127.0.0.1:8080/v1"), "",
                   S("http://127.0.0.1:8080/v1")});
  for (const Value& bad :
       {N(), S(""), S("ftp://x"), S("api.openai.com"), I(1)}) {
    cases.push_back({"llm_base_url", bad, "expected_http_url", std::nullopt});
  }
  cases.push_back({"llm_api_key_file", N(), "", N()});
  cases.push_back(
      {"llm_api_key_file", S("/etc/jcs/key"), "", S("/etc/jcs/key")});
  for (const Value& bad : {S(""), I(1), B(true), SL({"/k"})}) {
    cases.push_back(
        {"llm_api_key_file", bad, "expected_path_or_nil", std::nullopt});
  }
  cases.push_back({"llm_api_key_env", S("MY_KEY_2"), "", S("MY_KEY_2")});
  for (const Value& bad : {N(), S(""), S("2KEY"), S("A-B"), S("A B"), I(1)}) {
    cases.push_back(
        {"llm_api_key_env", bad, "expected_env_name", std::nullopt});
  }
  cases.push_back({"llm_stream", B(false), "", B(false)});
  for (const Value& bad : {N(), S("true"), I(1)}) {
    cases.push_back({"llm_stream", bad, "expected_boolean", std::nullopt});
  }
  const Value shell = S("workspace_shell");
  cases.push_back({"command_executor", N(), "", shell});
  cases.push_back({"command_executor", shell, "", shell});
  cases.push_back({"command_executor", S(" Workspace_SHELL\n"), "", shell});
  for (const Value& bad : {S("bash"), S(""), S("workspace shell")}) {
    cases.push_back({"command_executor", bad, "unsupported_command_executor",
                     std::nullopt});
  }
  for (const Value& bad : {I(1), B(true), SL({"workspace_shell"}), M({})}) {
    cases.push_back({"command_executor", bad,
                     "expected_command_executor_or_nil", std::nullopt});
  }
  cases.push_back({"jail_memory", S("512M"), "", I(512ll << 20)});
  cases.push_back({"jail_memory", S("1g"), "", I(1ll << 30)});
  cases.push_back({"jail_memory", S("4096"), "", I(4096)});
  cases.push_back({"jail_memory", I(1048576), "", I(1048576)});
  for (const Value& bad :
       {I(0), I(-1), S("0"), S("0M"), S(""), S("12Q"), S("M"), S("-5M"),
        S(" 5M"), S("8388608T"), D(1.5), B(true), N(), L({})}) {
    cases.push_back({"jail_memory", bad, "expected_size", std::nullopt});
  }
  // The jail's file size limit and /tmp size: sizes like jail_memory; /tmp
  // at least 1M (the jail refuses less).
  for (const std::string key : {"jail_fsize", "jail_tmp_bytes"}) {
    cases.push_back({key, S("200M"), "", I(200ll << 20)});
    cases.push_back({key, S("2G"), "", I(2ll << 30)});
    cases.push_back({key, I(1048576), "", I(1048576)});
    for (const Value& bad : {I(0), I(-1), S("0"), S(""), S("12Q"), S("-5M"),
                             S("8388608T"), D(1.5), B(true), N(), L({})}) {
      cases.push_back({key, bad, "expected_size", std::nullopt});
    }
  }
  cases.push_back({"jail_fsize", I(1), "", I(1)});
  cases.push_back({"jail_fsize", S("4096"), "", I(4096)});
  for (const Value& small : {I(1), I(1048575), S("1023K")}) {
    cases.push_back(
        {"jail_tmp_bytes", small, "expected_size_at_least_1M", std::nullopt});
  }
  cases.push_back({"jail_cpus", I(2), "", D(2.0)});
  cases.push_back({"jail_cpus", D(0.5), "", D(0.5)});
  for (const Value& bad :
       {I(0), I(-1), D(0.0), D(-0.5), D(kInf), D(kNaN), S("1"), N(), B(true)}) {
    cases.push_back({"jail_cpus", bad, "expected_positive_number", {}});
  }
  // The disk budget: positive integers only (a size string or a float would
  // be a silently different budget), unset = no budget.
  for (const std::string key : {"disk_quota_bytes", "disk_quota_inodes"}) {
    cases.push_back({key, I(1), "", I(1)});
    cases.push_back({key, I(8ll << 20), "", I(8ll << 20)});
    for (const Value& bad : {I(0), I(-1), D(8.0), D(1.5), S("8M"), S("100"),
                             B(true), N(), L({}), M({})}) {
      cases.push_back({key, bad, "expected_positive_integer", std::nullopt});
    }
  }
  for (const std::string key :
       {"llm_adapter", "conversation_default_mode",
        "conversation_mode_defaults", "conversation_mode_registry",
        "conversation_mode_unknown_key_policy", "tool_providers"}) {
    for (const Value& any : {N(), S("x"), I(-1), M({{"a", L({})}})}) {
      cases.push_back({key, any, "", any});
    }
  }
  for (const std::string key : {"project_id", "data_dir"}) {
    cases.push_back({key, S("x"), "", std::nullopt});
    cases.push_back({key, I(5), "", std::nullopt});  // StartProject checks it
  }
  for (const std::string key :
       {"alert_signal_events", "alert_router", "project_id_generator",
        "default_data_dir", "bogus", "Tool_Timeout_MS", " tool_timeout_ms",
        "tool_timeout_ms ", "", "jail_memory_bytes",
        "outside_root_allowlist[0]"}) {
    cases.push_back({key, I(1), "unknown_option", std::nullopt});
    cases.push_back({key, N(), "unknown_option", std::nullopt});
  }
  return cases;
}

std::string Describe(const Case& c) {
  return "{" + c.key + ", " + c.value.ToJsonText() + "}";
}

std::optional<Value> Rendered(const ValidatedOptions& options,
                              const std::string& key) {
  for (const auto& [k, v] : EffectiveOptionsEntries(options)) {
    if (k == key) return v;
  }
  return std::nullopt;
}

TEST(RuntimeOptionsTest, EveryKeyHappyPathAndFailureReason) {
  for (const Case& c : AllCases()) {
    SCOPED_TRACE(Describe(c));
    absl::StatusOr<ValidatedOptions> result =
        ValidateRuntimeOptions({{c.key, c.value}});
    if (c.reason.empty()) {
      ASSERT_TRUE(result.ok()) << result.status();
      std::optional<Value> rendered = Rendered(*result, c.key);
      if (c.rendered.has_value()) {
        ASSERT_TRUE(rendered.has_value());
        EXPECT_EQ(*rendered, *c.rendered) << rendered->ToJsonText();
      } else {
        EXPECT_FALSE(rendered.has_value());
      }
    } else {
      ASSERT_FALSE(result.ok());
      EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
      std::optional<InvalidRuntimeOpt> error =
          GetInvalidRuntimeOpt(result.status());
      ASSERT_TRUE(error.has_value());
      EXPECT_EQ(error->key, c.key);
      EXPECT_EQ(error->ReasonString(), c.reason);
      EXPECT_EQ(result.status().message(), FormatInvalidRuntimeOpt(*error));
      EXPECT_EQ(FirstInvalidRuntimeOpt({{c.key, c.value}}), error);
    }
  }
}

TEST(RuntimeOptionsTest, EveryKnownKeyIsCovered) {
  // Guards the table above: each accepted key has a happy and (except
  // passthrough keys) a failing case.
  std::vector<std::string> keys;
  for (const auto& [key, value] : EffectiveOptionsEntries(ValidatedOptions())) {
    keys.push_back(key);
  }
  // 37 spec tunables + 5 jail limits + 2 disk budget limits + 4 keys of the
  // OpenAI-compatible adapter
  EXPECT_EQ(keys.size(), 48u);
  for (const std::string& key : keys) {
    EXPECT_TRUE(IsKnownRuntimeOption(key)) << key;
    bool ok = false;
    for (const Case& c : AllCases())
      ok = ok || (c.key == key && c.reason == "");
    EXPECT_TRUE(ok) << key;
  }
  EXPECT_TRUE(IsKnownRuntimeOption("project_id"));
  EXPECT_TRUE(IsKnownRuntimeOption("data_dir"));
  EXPECT_FALSE(IsKnownRuntimeOption("default_data_dir"));
}

TEST(RuntimeOptionsTest, Defaults) {
  absl::StatusOr<ValidatedOptions> o = ValidateRuntimeOptions({});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->tool_timeout_ms, 30000);
  EXPECT_EQ(o->tool_timeout_alert_threshold, 3);
  EXPECT_EQ(o->tool_max_output_bytes, 262144);
  EXPECT_EQ(o->tool_max_artifact_bytes, 131072);
  EXPECT_EQ(o->tool_max_concurrency, 8);
  EXPECT_EQ(o->tool_max_concurrency_per_conversation, 4);
  EXPECT_EQ(o->llm_timeout_ms, 120000);
  EXPECT_EQ(o->watcher_debounce_ms, 250);
  EXPECT_EQ(o->conversation_max_queue_size, 10000);
  EXPECT_EQ(o->conversation_max_drain_steps, 128);
  EXPECT_EQ(o->subagent_max_children, 3);
  EXPECT_EQ(o->subagent_ttl_ms, 300000);
  EXPECT_FALSE(o->watcher);
  EXPECT_FALSE(o->strict_asset_loading);
  EXPECT_FALSE(o->allow_tools.has_value());
  EXPECT_THAT(o->deny_tools, IsEmpty());
  EXPECT_EQ(o->network_egress_policy, EgressPolicy::kDeny);
  EXPECT_THAT(o->network_allowlist, IsEmpty());
  EXPECT_THAT(o->network_allowed_schemes, ElementsAre("http", "https"));
  EXPECT_THAT(
      o->sensitive_path_denylist,
      ElementsAre(".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks",
                  "*.keystore", "*.ppk", "id_rsa", "id_dsa", "id_ecdsa",
                  "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss",
                  ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass",
                  ".git-credentials", ".aws/credentials", ".docker/config.json",
                  ".kube/config", ".config/gh/hosts.yml",
                  ".gnupg/private-keys-v1.d", ".gnupg/secring.gpg",
                  "credentials.json", "application_default_credentials.json"));
  EXPECT_THAT(o->sensitive_path_allowlist, IsEmpty());
  EXPECT_THAT(o->tool_env_allowlist, IsEmpty());
  EXPECT_THAT(o->protocol_allowlist, ElementsAre("mcp", "a2a"));
  EXPECT_THAT(o->outside_root_allowlist, IsEmpty());
  EXPECT_FALSE(o->subagent_templates_allowlist.has_value());
  EXPECT_THAT(o->subagent_templates, IsEmpty());
  EXPECT_FALSE(o->llm_model.has_value());
  EXPECT_FALSE(o->llm_system_prompt.has_value());
  EXPECT_FALSE(o->llm_temperature.has_value());
  EXPECT_FALSE(o->llm_max_tokens.has_value());
  EXPECT_EQ(o->llm_base_url, "https://api.openai.com/v1");
  EXPECT_FALSE(o->llm_api_key_file.has_value());
  EXPECT_EQ(o->llm_api_key_env, "OPENAI_API_KEY");
  EXPECT_TRUE(o->llm_stream);
  EXPECT_EQ(o->command_executor, "workspace_shell");
  EXPECT_EQ(o->llm_adapter, S("deterministic"));
  EXPECT_EQ(o->conversation_default_mode, S("coding"));
  EXPECT_EQ(o->conversation_mode_defaults, M({}));
  EXPECT_EQ(o->conversation_mode_registry, M({}));
  EXPECT_EQ(o->conversation_mode_unknown_key_policy, S("reject"));
  EXPECT_EQ(o->tool_providers, L({}));
  EXPECT_FALSE(o->jail_memory_bytes.has_value());
  EXPECT_FALSE(o->jail_pids.has_value());
  EXPECT_FALSE(o->jail_cpus.has_value());
  EXPECT_FALSE(o->jail_fsize_bytes.has_value());
  EXPECT_FALSE(o->jail_tmp_bytes.has_value());
  EXPECT_FALSE(o->disk_quota_bytes.has_value());
  EXPECT_FALSE(o->disk_quota_inodes.has_value());
  EXPECT_THAT(o->explicit_keys, IsEmpty());
  EXPECT_THAT(RuntimeOptsEntries(*o), IsEmpty());
  EXPECT_EQ(RuntimeOptsJson(*o), nlohmann::json::object());
  EXPECT_EQ(EffectiveOptionsJson(*o)["network_egress_policy"], "deny");
  EXPECT_EQ(EffectiveOptionsJson(*o)["allow_tools"], nullptr);
}

TEST(RuntimeOptionsTest, NormalizedFieldsAreTyped) {
  absl::StatusOr<ValidatedOptions> o = ValidateRuntimeOptions({
      {"tool_timeout_ms", I(500)},
      {"tool_max_concurrency_per_conversation", I(0)},
      {"network_egress_policy", S("allow")},
      {"allow_tools", SL({"a"})},
      {"outside_root_allowlist",
       L({M({{"path", S("/x")}, {"reason_code", S(" r ")}})})},
      {"llm_temperature", I(1)},
      {"jail_memory", S("64M")},
      {"jail_pids", I(32)},
      {"jail_cpus", D(1.5)},
      {"jail_fsize", S("2G")},
      {"jail_tmp_bytes", I(200 << 20)},
      {"disk_quota_bytes", I(8 << 20)},
      {"disk_quota_inodes", I(1000)},
  });
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->tool_timeout_ms, 500);
  EXPECT_EQ(o->tool_max_concurrency_per_conversation, 0);
  EXPECT_EQ(o->network_egress_policy, EgressPolicy::kAllow);
  EXPECT_THAT(*o->allow_tools, ElementsAre("a"));
  ASSERT_EQ(o->outside_root_allowlist.size(), 1u);
  EXPECT_EQ(o->outside_root_allowlist[0],
            (OutsideRootEntry{"/x", /*from_path=*/true, "r"}));
  EXPECT_EQ(*o->llm_temperature, 1.0);
  EXPECT_EQ(*o->jail_memory_bytes, 64u << 20);
  EXPECT_EQ(*o->jail_pids, 32);
  EXPECT_EQ(*o->jail_cpus, 1.5);
  EXPECT_EQ(*o->jail_fsize_bytes, 2ull << 30);
  EXPECT_EQ(*o->jail_tmp_bytes, 200u << 20);
  EXPECT_EQ(*o->disk_quota_bytes, 8 << 20);
  EXPECT_EQ(*o->disk_quota_inodes, 1000);
}

TEST(RuntimeOptionsTest, FirstErrorWinsInListOrder) {
  struct OrderCase {
    OptionList options;
    InvalidRuntimeOpt expected;
  };
  const std::vector<OrderCase> cases = {
      {{{"tool_timeout_ms", I(0)}, {"bogus", I(1)}},
       InvalidRuntimeOpt::Simple("tool_timeout_ms",
                                 "expected_positive_integer")},
      {{{"bogus", I(1)}, {"tool_timeout_ms", I(0)}},
       InvalidRuntimeOpt::Simple("bogus", "unknown_option")},
      {{{"tool_timeout_ms", I(5)},
        {"watcher", S("yes")},
        {"tool_timeout_ms", I(0)}},
       InvalidRuntimeOpt::Simple("watcher", "expected_boolean")},
      {{{"outside_root_allowlist", L({M({})})},
        {"network_egress_policy", S("maybe")}},
       InvalidRuntimeOpt::Entry("outside_root_allowlist", 0,
                                "missing_path_or_pattern")},
      // A later occurrence of a valid key is still validated.
      {{{"tool_timeout_ms", I(5)}, {"tool_timeout_ms", I(-5)}},
       InvalidRuntimeOpt::Simple("tool_timeout_ms",
                                 "expected_positive_integer")},
  };
  for (const OrderCase& c : cases) {
    absl::StatusOr<ValidatedOptions> result = ValidateRuntimeOptions(c.options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(GetInvalidRuntimeOpt(result.status()), c.expected)
        << result.status();
  }
}

// Found by runtime_options_fuzz: a key that is not UTF-8 (`--opt`) made the
// error lose its structured payload (a proto3 string field must be UTF-8), so
// the control API could not name the field.
TEST(RuntimeOptionsTest, NonUtf8KeyIsNamedAndExplained) {
  const std::string key = "tool\xfftimeout";
  for (const OptionList& options :
       {OptionList{{key, I(5)}},
        OptionList{{"tool_timeout_ms", I(5)}, {key + "\xc3", I(5)}}}) {
    absl::StatusOr<ValidatedOptions> result = ValidateRuntimeOptions(options);
    ASSERT_FALSE(result.ok());
    const std::optional<InvalidRuntimeOpt> error =
        GetInvalidRuntimeOpt(result.status());
    ASSERT_TRUE(error.has_value()) << result.status();
    EXPECT_EQ(error->reason, "expected_utf8_key");
    EXPECT_EQ(error->key, absl::CHexEscape(options.back().first));
    EXPECT_EQ(result.status().message(), FormatInvalidRuntimeOpt(*error));
    EXPECT_EQ(FirstInvalidRuntimeOpt(options), error);
  }
  EXPECT_EQ(
      GetInvalidRuntimeOpt(ValidateRuntimeOptions({{key, I(5)}}).status())->key,
      "tool\\xfftimeout");
}

TEST(RuntimeOptionsTest, RepeatedKeyLastOccurrenceWins) {
  absl::StatusOr<ValidatedOptions> o = ValidateRuntimeOptions(
      {{"tool_timeout_ms", I(5)}, {"tool_timeout_ms", I(7)}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->tool_timeout_ms, 7);
  o = ValidateRuntimeOptions(
      {{"allow_tools", SL({"a"})}, {"allow_tools", N()}});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->allow_tools.has_value());
}

TEST(RuntimeOptionsTest, ErrorFormatting) {
  EXPECT_EQ(FormatInvalidRuntimeOpt(InvalidRuntimeOpt::Simple(
                "tool_timeout_ms", "expected_positive_integer")),
            "invalid_runtime_opt{key: \"tool_timeout_ms\", reason: "
            "\"expected_positive_integer\"}");
  EXPECT_EQ(FormatInvalidRuntimeOpt(InvalidRuntimeOpt::Entry(
                "outside_root_allowlist", 2, "missing_reason_code")),
            "invalid_runtime_opt{key: \"outside_root_allowlist\", reason: "
            "\"invalid_entry[2]: missing_reason_code\"}");
  // Untrusted keys are escaped.
  EXPECT_EQ(FormatInvalidRuntimeOpt(
                InvalidRuntimeOpt::Simple("a\"b\n", "unknown_option")),
            "invalid_runtime_opt{key: \"a\\\"b\\n\", reason: "
            "\"unknown_option\"}");
  InvalidRuntimeOpt entry = InvalidRuntimeOpt::Entry("outside_root_allowlist",
                                                     3, "empty_reason_code");
  absl::Status status = InvalidRuntimeOptStatus(entry);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetInvalidRuntimeOpt(status), entry);
  EXPECT_EQ(InvalidRuntimeOptFromProto(InvalidRuntimeOptToProto(entry)), entry);
  EXPECT_FALSE(GetInvalidRuntimeOpt(absl::InvalidArgumentError("x")));
  EXPECT_FALSE(GetInvalidRuntimeOpt(absl::OkStatus()));
}

TEST(RuntimeOptionsTest, RuntimeOptsShowsExplicitDiagnosticsKeysNormalized) {
  absl::StatusOr<ValidatedOptions> o = ValidateRuntimeOptions({
      {"protocol_allowlist", SL({"MCP"})},
      {"network_egress_policy", S("allow")},
      {"allow_tools", SL({"a"})},  // policy-only: not in runtime_opts
      {"llm_model", S("m")},       // not in runtime_opts
      {"project_id", S("p")},      // not an option at all
      {"command_executor", S(" WORKSPACE_SHELL ")},
      {"tool_timeout_ms", I(10)},
      {"disk_quota_inodes", I(500)},
      {"jail_cpus", I(2)},
      {"jail_tmp_bytes", S("200M")},
  });
  ASSERT_TRUE(o.ok()) << o.status();
  // Fixed order (the table's), normalized values, protocol list raw.
  EXPECT_EQ(RuntimeOptsEntries(*o),
            (OptionList{{"tool_timeout_ms", I(10)},
                        {"protocol_allowlist", SL({"MCP"})},
                        {"network_egress_policy", S("allow")},
                        {"command_executor", S("workspace_shell")},
                        {"jail_cpus", D(2.0)},
                        {"jail_tmp_bytes", I(200 << 20)},
                        {"disk_quota_inodes", I(500)}}));
  EXPECT_EQ(RuntimeOptsJson(*o),
            nlohmann::json::parse(R"({"tool_timeout_ms": 10,
              "protocol_allowlist": ["MCP"], "network_egress_policy": "allow",
              "command_executor": "workspace_shell", "jail_cpus": 2.0,
              "jail_tmp_bytes": 209715200, "disk_quota_inodes": 500})"));
  EXPECT_EQ(OptionsFromProto(RuntimeOptsProto(*o)), RuntimeOptsEntries(*o));
  // Matched case-insensitively.
  EXPECT_TRUE(o->ProtocolAllowed("mcp"));
  EXPECT_TRUE(o->ProtocolAllowed(" Mcp "));
  EXPECT_FALSE(o->ProtocolAllowed("a2a"));
  ValidatedOptions star;
  star.protocol_allowlist = {"*"};
  EXPECT_TRUE(star.ProtocolAllowed("anything"));
  EXPECT_TRUE(ValidatedOptions().ProtocolAllowed("A2A"));
}

// The CLI (KEY=VALUE) and the control API (protobuf) must give identical
// results: each row states the same input in both forms, written
// independently.
TEST(RuntimeOptionsTest, KeyValueAndProtoAgreeOnHandWrittenInputs) {
  struct Row {
    std::vector<std::string> cli;
    std::string proto_text;
    std::string expected;  // formatted error, or "" for ok
  };
  const std::vector<Row> rows = {
      {{"tool_timeout_ms=500"},
       R"pb(options {
              key: "tool_timeout_ms"
              value { int_value: 500 }
            })pb",
       ""},
      {{"tool_timeout_ms=0"},
       R"pb(options {
              key: "tool_timeout_ms"
              value { int_value: 0 }
            })pb",
       "expected_positive_integer"},
      {{"tool_timeout_ms=1.5"},
       R"pb(options {
              key: "tool_timeout_ms"
              value { double_value: 1.5 }
            })pb",
       "expected_positive_integer"},
      {{"tool_timeout_ms=abc"},
       R"pb(options {
              key: "tool_timeout_ms"
              value { string_value: "abc" }
            })pb",
       "expected_positive_integer"},
      {{"network_egress_policy=allow"},
       R"pb(options {
              key: "network_egress_policy"
              value { string_value: "allow" }
            })pb",
       ""},
      {{"network_egress_policy=maybe"},
       R"pb(options {
              key: "network_egress_policy"
              value { string_value: "maybe" }
            })pb",
       "expected_allow_or_deny"},
      {{"watcher=true", "strict_asset_loading=1"},
       R"pb(options {
              key: "watcher"
              value { bool_value: true }
            }
            options {
              key: "strict_asset_loading"
              value { int_value: 1 }
            })pb",
       "expected_boolean"},
      {{"allow_tools=null"},
       R"pb(options {
              key: "allow_tools"
              value { null_value: OPTION_NULL }
            })pb",
       ""},
      {{"allow_tools=[\"a\",\"b\"]"},
       R"pb(options {
              key: "allow_tools"
              value {
                list_value {
                  values { string_value: "a" }
                  values { string_value: "b" }
                }
              }
            })pb",
       ""},
      {{"deny_tools=null"},
       R"pb(options {
              key: "deny_tools"
              value {}
            })pb",
       "expected_list_of_strings"},
      {{"outside_root_allowlist=[{\"path\":\"/tmp\",\"reason_code\":\"t\"},"
        "{\"path\":\"/x\"}]"},
       R"pb(options {
              key: "outside_root_allowlist"
              value {
                list_value {
                  values {
                    map_value {
                      fields {
                        key: "path"
                        value { string_value: "/tmp" }
                      }
                      fields {
                        key: "reason_code"
                        value { string_value: "t" }
                      }
                    }
                  }
                  values {
                    map_value {
                      fields {
                        key: "path"
                        value { string_value: "/x" }
                      }
                    }
                  }
                }
              }
            })pb",
       "invalid_entry[1]: missing_reason_code"},
      {{"jail_memory=512M", "jail_cpus=0.5", "jail_pids=64"},
       R"pb(options {
              key: "jail_memory"
              value { string_value: "512M" }
            }
            options {
              key: "jail_cpus"
              value { double_value: 0.5 }
            }
            options {
              key: "jail_pids"
              value { int_value: 64 }
            })pb",
       ""},
      {{"llm_model=null", "llm_temperature=0.2", "llm_max_tokens=0"},
       R"pb(options {
              key: "llm_model"
              value { null_value: OPTION_NULL }
            }
            options {
              key: "llm_temperature"
              value { double_value: 0.2 }
            }
            options {
              key: "llm_max_tokens"
              value { int_value: 0 }
            })pb",
       "expected_positive_integer_or_nil"},
      {{"command_executor=Workspace_Shell"},
       R"pb(options {
              key: "command_executor"
              value { string_value: "Workspace_Shell" }
            })pb",
       ""},
      {{"alert_router=x"},
       R"pb(options {
              key: "alert_router"
              value { string_value: "x" }
            })pb",
       "unknown_option"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.cli[0]);
    absl::StatusOr<OptionList> from_cli = ParseKeyValues(row.cli);
    ASSERT_TRUE(from_cli.ok()) << from_cli.status();
    proto::RuntimeOptions message;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(row.proto_text,
                                                              &message));
    absl::StatusOr<ValidatedOptions> cli = ValidateRuntimeOptions(*from_cli);
    absl::StatusOr<ValidatedOptions> api =
        ValidateRuntimeOptions(OptionsFromProto(message));
    ASSERT_EQ(cli.ok(), api.ok()) << cli.status() << " vs " << api.status();
    if (row.expected.empty()) {
      ASSERT_TRUE(cli.ok()) << cli.status();
      EXPECT_EQ(EffectiveOptionsJson(*cli), EffectiveOptionsJson(*api));
      EXPECT_EQ(cli->explicit_keys, api->explicit_keys);
    } else {
      EXPECT_EQ(cli.status(), api.status());
      EXPECT_EQ(GetInvalidRuntimeOpt(cli.status())->ReasonString(),
                row.expected);
    }
  }
}

// Property over every case of the main table: the value sent through the
// protobuf wire form and through a KEY=VALUE string (its JSON text) validates
// to the same result as the value itself.
TEST(RuntimeOptionsTest, KeyValueAndProtoAgreeOnEveryTableCase) {
  int checked = 0;
  for (const Case& c : AllCases()) {
    const Value& v = c.value;
    // JSON has no NaN/inf; those travel only through protobuf.
    if (v.is_double() && !std::isfinite(v.double_value())) continue;
    SCOPED_TRACE(Describe(c));
    proto::RuntimeOptions message = OptionsToProto({{c.key, v}});
    proto::RuntimeOptions wire;
    ASSERT_TRUE(wire.ParseFromString(message.SerializeAsString()));
    std::vector<std::string> args = {c.key + "=" + v.ToJsonText()};
    // Strings that are not JSON themselves can also be given bare.
    if (v.is_string() && !ParseJson(v.string_value()).ok()) {
      args.push_back(c.key + "=" + v.string_value());
    }
    absl::StatusOr<ValidatedOptions> direct =
        ValidateRuntimeOptions({{c.key, v}});
    absl::StatusOr<ValidatedOptions> api =
        ValidateRuntimeOptions(OptionsFromProto(wire));
    for (const std::string& arg : args) {
      absl::StatusOr<OptionList> parsed = ParseKeyValues({arg});
      ASSERT_TRUE(parsed.ok()) << arg;
      absl::StatusOr<ValidatedOptions> cli = ValidateRuntimeOptions(*parsed);
      ASSERT_EQ(cli.ok(), api.ok()) << arg;
      if (cli.ok()) {
        EXPECT_EQ(EffectiveOptionsJson(*cli), EffectiveOptionsJson(*api));
      } else {
        EXPECT_EQ(cli.status(), api.status()) << arg;
      }
      ++checked;
    }
    ASSERT_EQ(direct.ok(), api.ok());
    if (!direct.ok()) {
      EXPECT_EQ(direct.status(), api.status());
    }
  }
  EXPECT_GT(checked, 300);
}

}  // namespace
}  // namespace jcs::runtime
