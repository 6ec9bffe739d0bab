#include "supervisor/serve_config.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/project/value.h"

namespace jcs::supervisor {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<proto::SupervisorConfig> config =
      ParseServeConfig(text, "serve.txtpb");
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(ServeConfigTest, EmbeddedDefaults) {
  const proto::SupervisorConfig config = DefaultServeConfig();
  EXPECT_EQ(config.socket_path(), "/run/jcs/jcs.sock");
  EXPECT_EQ(config.state_dir(), "/var/lib/jcs");
  EXPECT_EQ(config.socket_mode(), 0660u);
  EXPECT_EQ(config.drain_grace_ms(), 10000u);
  EXPECT_EQ(config.journal_max_age_hours(), 168u);
  EXPECT_EQ(config.journal_max_bytes(), uint64_t{256} << 20);
  ASSERT_EQ(config.alert_signal_events_size(), 2);
  EXPECT_EQ(config.alert_signal_events(0), "security.sandbox_violation");
}

TEST(ServeConfigTest, ParsesAFullConfig) {
  absl::StatusOr<proto::SupervisorConfig> config = ParseServeConfig(
      R"(socket_path: "/tmp/x.sock" socket_mode: 0600 allowed_uids: 1000
         state_dir: "/tmp/state" drain_grace_ms: 500
         default_options { options { key: "tool_timeout_ms" value { int_value: 1000 } } }
         projects { root: "/tmp" project_id: "p1" })",
      "serve.txtpb");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->socket_path(), "/tmp/x.sock");
  EXPECT_EQ(config->socket_mode(), 0600u);
  EXPECT_EQ(config->drain_grace_ms(), 500u);
  EXPECT_EQ(config->max_clients(), 1024u);
}

TEST(ServeConfigTest, ErrorsNameTheField) {
  EXPECT_THAT(ErrorOf("socket_path: \"relative.sock\""),
              HasSubstr("config: socket_path: expected an absolute path"));
  EXPECT_THAT(ErrorOf("socket_mode: 4095"), HasSubstr("socket_mode"));
  EXPECT_THAT(ErrorOf("state_dir: \"/var/../etc\""), HasSubstr("state_dir"));
  EXPECT_THAT(ErrorOf("max_frame_bytes: 10"), HasSubstr("max_frame_bytes"));
  EXPECT_THAT(ErrorOf("max_clients: 0"), HasSubstr("max_clients"));
  EXPECT_THAT(ErrorOf("journal_max_age_hours: 0"),
              HasSubstr("journal_max_age_hours: expected 1..87600"));
  EXPECT_THAT(ErrorOf("journal_max_bytes: 4096"),
              HasSubstr("journal_max_bytes: expected at least 1048576"));
  EXPECT_THAT(ErrorOf("alert_signal_events: \"\""),
              HasSubstr("alert_signal_events[0]"));
  EXPECT_THAT(
      ErrorOf("default_options { options { key: \"tool_timeout_ms\" value { "
              "int_value: -1 } } }"),
      HasSubstr("config: default_options: invalid_runtime_opt{key: "
                "\"tool_timeout_ms\", reason: \"expected_positive_integer\"}"));
  EXPECT_THAT(ErrorOf("projects { root: \"/tmp\" options { options { key: "
                      "\"bogus\" value { bool_value: true } } } }"),
              HasSubstr("projects[0].options: invalid_runtime_opt{key: "
                        "\"bogus\", reason: \"unknown_option\"}"));
  EXPECT_THAT(ErrorOf("projects { root: \"tmp\" }"),
              HasSubstr("projects[0].root"));
}

// Runtime options as JSON: the same document as `--options FILE`, the same
// values as `--opt KEY=VALUE`, the same validator.
TEST(ServeConfigTest, DefaultOptionsJsonIsTheOptionsFileDocument) {
  // The documented example (README, deploy/jcs.conf).
  const std::string doc =
      R"({"tool_timeout_ms": 30000, "tool_max_concurrency": 8})";
  absl::StatusOr<proto::SupervisorConfig> config =
      ParseServeConfig(absl::StrCat("default_options_json: '", doc, "'\n",
                                    "projects { root: \"/tmp\" options_json: "
                                    "'{\"watcher\": true}' }"),
                       "serve.txtpb");
  ASSERT_TRUE(config.ok()) << config.status();
  const runtime::OptionList from_config =
      runtime::OptionsFromProto(config->default_options());
  EXPECT_EQ(from_config, *runtime::ParseOptionsDocument("--options f", doc));
  EXPECT_EQ(from_config, *runtime::ParseKeyValues({"tool_timeout_ms=30000",
                                                   "tool_max_concurrency=8"}));
  EXPECT_EQ(runtime::OptionsFromProto(config->projects(0).options()),
            (runtime::OptionList{{"watcher", runtime::Value::Bool(true)}}));
  // Moved into the message: a finalized config holds one form, and
  // finalizing it again changes nothing.
  EXPECT_FALSE(config->has_default_options_json());
  EXPECT_FALSE(config->projects(0).has_options_json());
  absl::StatusOr<proto::SupervisorConfig> again = FinalizeServeConfig(*config);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->DebugString(), config->DebugString());
  // The older form gives the same options.
  absl::StatusOr<proto::SupervisorConfig> old = ParseServeConfig(
      "default_options { options { key: \"tool_timeout_ms\" value { "
      "int_value: 30000 } } options { key: \"tool_max_concurrency\" value { "
      "int_value: 8 } } }",
      "serve.txtpb");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(runtime::OptionsFromProto(old->default_options()), from_config);
}

TEST(ServeConfigTest, DefaultOptionsJsonErrorsNameTheFieldAndTheKey) {
  EXPECT_EQ(ErrorOf(R"(default_options_json: '{"tool_timeout_ms": -1}')"),
            "serve.txtpb: config: default_options_json: "
            "invalid_runtime_opt{key: \"tool_timeout_ms\", reason: "
            "\"expected_positive_integer\"}");
  EXPECT_THAT(ErrorOf(R"(default_options_json: '{"tool_timeout": 5}')"),
              HasSubstr("config: default_options_json: invalid_runtime_opt{"
                        "key: \"tool_timeout\", reason: \"unknown_option\""));
  EXPECT_THAT(ErrorOf("default_options_json: '{\"tool_timeout_ms\": }'"),
              HasSubstr("config: default_options_json: invalid JSON at line 1, "
                        "column 21: "));
  EXPECT_THAT(ErrorOf("default_options_json: '[1]'"),
              HasSubstr("config: default_options_json: options: expected a "
                        "JSON object"));
  EXPECT_THAT(
      ErrorOf("projects { root: \"/tmp\" options_json: '{\"bogus\": 1}' }"),
      HasSubstr("config: projects[0].options_json: invalid_runtime_opt{key: "
                "\"bogus\", reason: \"unknown_option\"}"));
  // One form per set of options: both would leave it unclear which wins.
  EXPECT_EQ(
      ErrorOf("default_options_json: '{}' default_options { options { key: "
              "\"watcher\" value { bool_value: true } } }"),
      "serve.txtpb: config: default_options and default_options_json are "
      "both set: write the options once (default_options_json)");
  EXPECT_THAT(ErrorOf("projects { root: \"/tmp\" options_json: '{}' options "
                      "{ } }"),
              HasSubstr("config: projects[0].options and "
                        "projects[0].options_json are both set"));
}

// The image's config writes its default options in the documented form.
TEST(ServeConfigTest, ImageConfigParses) {
  const char* srcdir = getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  std::ifstream in(absl::StrCat(srcdir, "/jcs/deploy/jcs.conf"));
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("default_options_json: '{"));
  absl::StatusOr<proto::SupervisorConfig> config =
      ParseServeConfig(text.str(), "jcs.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(
      runtime::OptionsFromProto(config->default_options()),
      *runtime::ParseOptionsDocument(
          "doc", R"({"tool_timeout_ms": 30000, "tool_max_concurrency": 8})"));
}

TEST(ServeConfigTest, AlertRouterSinksAreValidatedAndConverted) {
  absl::StatusOr<proto::SupervisorConfig> config = ParseServeConfig(
      R"(alert_signal_events: " Security.Network_Denied "
         alert_signal_events: "security.network_denied"
         alert_router {
           queue_capacity: 8
           sinks { file: "/var/log/jcs/alerts.jsonl" extra_args: "team-a" }
           sinks { unix_socket: "/run/pager.sock" timeout_ms: 500 }
         })",
      "serve.txtpb");
  ASSERT_TRUE(config.ok()) << config.status();
  const telemetry::alerts::RouterConfig router = AlertRouterConfig(*config);
  EXPECT_EQ(router.signal_events,
            std::set<std::string>({"security.network_denied"}));
  EXPECT_EQ(router.queue_capacity, 8u);
  ASSERT_EQ(router.sinks.size(), 2u);
  EXPECT_EQ(router.sinks[0].kind, telemetry::alerts::SinkConfig::Kind::kFile);
  EXPECT_EQ(router.sinks[0].path, "/var/log/jcs/alerts.jsonl");
  EXPECT_EQ(router.sinks[0].extra_args, std::vector<std::string>{"team-a"});
  EXPECT_EQ(router.sinks[1].kind,
            telemetry::alerts::SinkConfig::Kind::kUnixSocket);
  EXPECT_EQ(router.sinks[1].timeout, absl::Milliseconds(500));
  // The defaults: the two escalation events, no sinks.
  const telemetry::alerts::RouterConfig defaults =
      AlertRouterConfig(DefaultServeConfig());
  EXPECT_EQ(defaults.signal_events,
            std::set<std::string>({"security.repeated_timeout_failures",
                                   "security.sandbox_violation"}));
  EXPECT_TRUE(defaults.sinks.empty());
  EXPECT_EQ(defaults.queue_capacity, 1024u);

  EXPECT_THAT(ErrorOf("alert_router { sinks { file: \"alerts.jsonl\" } }"),
              HasSubstr("alert_router.sinks[0].file: expected an absolute"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { unix_socket: \"/" +
                      std::string(120, 'x') + "\" } }"),
              HasSubstr("alert_router.sinks[0].unix_socket"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { } }"),
              HasSubstr("alert_router.sinks[0]: expected one of file"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { file: \"/a\" timeout_ms: 0 } }"),
              HasSubstr("alert_router.sinks[0].timeout_ms: expected 1 to"));
  EXPECT_THAT(ErrorOf("alert_router { queue_capacity: 0 }"),
              HasSubstr("alert_router.queue_capacity"));
  // Exec sinks: the program is checked when the config loads.
  EXPECT_THAT(ErrorOf("alert_router { sinks { exec { } } }"),
              HasSubstr("alert_router.sinks[0].exec.argv: expected the "
                        "program's absolute path"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { exec { argv: \"cat\" } } }"),
              HasSubstr("alert_router.sinks[0].exec.argv[0]: expected the "
                        "program's absolute path without '..', got 'cat'"));
  EXPECT_THAT(
      ErrorOf("alert_router { sinks { exec { argv: \"/bin/../bin/cat\" } } }"),
      HasSubstr("exec.argv[0]: expected the program's absolute path"));
  EXPECT_THAT(
      ErrorOf("alert_router { sinks { exec { argv: \"/nonexistent/pager\" } } "
              "}"),
      HasSubstr("exec.argv[0]: expected an existing program, "
                "/nonexistent/pager: No such file or directory"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { exec { argv: \"/etc/passwd\" } "
                      "} }"),
              HasSubstr("exec.argv[0]: expected an executable regular file, "
                        "got /etc/passwd"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { exec { argv: \"/bin\" } } }"),
              HasSubstr("exec.argv[0]: expected a program in a directory other "
                        "than /, got /bin"));
  EXPECT_THAT(ErrorOf("alert_router { sinks { exec { argv: \"/usr/bin\" } } }"),
              HasSubstr("exec.argv[0]: expected an executable regular file"));
  absl::StatusOr<proto::SupervisorConfig> exec = ParseServeConfig(
      R"(alert_router { sinks { exec { argv: "/bin/cat" argv: "-u" }
                               extra_args: "oncall" } })",
      "serve.txtpb");
  ASSERT_TRUE(exec.ok()) << exec.status();
  const telemetry::alerts::RouterConfig routed = AlertRouterConfig(*exec);
  ASSERT_EQ(routed.sinks.size(), 1u);
  EXPECT_EQ(routed.sinks[0].kind, telemetry::alerts::SinkConfig::Kind::kExec);
  EXPECT_EQ(routed.sinks[0].argv, (std::vector<std::string>{"/bin/cat", "-u"}));
  EXPECT_EQ(routed.sinks[0].extra_args, std::vector<std::string>{"oncall"});
  EXPECT_EQ(routed.sinks[0].timeout, absl::Seconds(5));  // exec's default
  // Not configured here: the daemon adds its jailed runner (serve.cc).
  EXPECT_FALSE(routed.exec_runner);
}

TEST(ServeConfigTest, LogAndMetricsFields) {
  const proto::SupervisorConfig defaults = DefaultServeConfig();
  EXPECT_EQ(defaults.log_level(), "info");
  EXPECT_FALSE(defaults.has_log_file());  // stderr
  EXPECT_FALSE(defaults.has_metrics_textfile());
  EXPECT_EQ(defaults.metrics_textfile_period_ms(), 15000u);
  absl::StatusOr<proto::SupervisorConfig> config = ParseServeConfig(
      R"(log_file: "/var/log/jcs/jcs.log" log_level: "debug"
         metrics_textfile: "/var/lib/node_exporter/jcs.prom"
         metrics_textfile_period_ms: 5000)",
      "serve.txtpb");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level(), "debug");
  EXPECT_EQ(ErrorOf("log_level: \"verbose\""),
            "serve.txtpb: config: log_level: expected one of debug, info, "
            "warn, error; got 'verbose'");
  EXPECT_THAT(ErrorOf("log_file: \"jcs.log\""),
              HasSubstr("config: log_file: expected an absolute path"));
  EXPECT_THAT(ErrorOf("metrics_textfile: \"/tmp/jcs.txt\""),
              HasSubstr("metrics_textfile: expected an absolute path without "
                        "'..' ending in .prom"));
  EXPECT_THAT(ErrorOf("metrics_textfile_period_ms: 10"),
              HasSubstr("metrics_textfile_period_ms: expected 1000 to"));
}

TEST(ServeConfigTest, McpHttpFields) {
  absl::StatusOr<proto::SupervisorConfig> config = ParseServeConfig(
      R"(mcp_http_address: "127.0.0.1:8765" mcp_http_socket: "/run/jcs/mcp.sock"
         mcp_http_token_file: "/etc/jcs/mcp.token")",
      "serve.txtpb");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->mcp_http_socket_mode(), 0660u);
  EXPECT_EQ(config->mcp_http_max_connections(), 64u);
  EXPECT_TRUE(ParseServeConfig(R"(mcp_http_address: "[::1]:0")", "s").ok());
  // Anything but loopback is refused at load, naming the field and why.
  for (const char* address :
       {"0.0.0.0:8765", "192.168.1.2:80", "[::]:80", "localhost:8765"}) {
    const std::string error =
        ErrorOf(absl::StrCat("mcp_http_address: \"", address, "\""));
    EXPECT_THAT(error, HasSubstr("mcp_http_address")) << address;
    EXPECT_THAT(error, HasSubstr("loopback")) << address;
  }
  EXPECT_THAT(ErrorOf(R"(mcp_http_address: "127.0.0.1")"),
              HasSubstr("mcp_http_address"));
  EXPECT_THAT(ErrorOf(R"(mcp_http_socket: "rel.sock")"),
              HasSubstr("mcp_http_socket"));
  EXPECT_THAT(ErrorOf(R"(mcp_http_token_file: "t")"),
              HasSubstr("mcp_http_token_file"));
  EXPECT_THAT(ErrorOf(R"(mcp_http_max_connections: 0)"),
              HasSubstr("mcp_http_max_connections"));
}

TEST(ServeConfigTest, SyntaxErrorsHaveLineAndColumn) {
  EXPECT_THAT(ErrorOf("socket_path: \"/x\"\nnot_a_field: 1\n"),
              HasSubstr("serve.txtpb:2:"));
  EXPECT_THAT(ErrorOf("socket_path: \n}"), HasSubstr("serve.txtpb:2:1:"));
}

}  // namespace
}  // namespace jcs::supervisor
