#include "supervisor/serve_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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

TEST(ServeConfigTest, SyntaxErrorsHaveLineAndColumn) {
  EXPECT_THAT(ErrorOf("socket_path: \"/x\"\nnot_a_field: 1\n"),
              HasSubstr("serve.txtpb:2:"));
  EXPECT_THAT(ErrorOf("socket_path: \n}"), HasSubstr("serve.txtpb:2:1:"));
}

}  // namespace
}  // namespace jcs::supervisor
