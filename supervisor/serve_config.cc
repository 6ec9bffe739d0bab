#include "supervisor/serve_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/text_format.h"
#include "protocol/http/http_io.h"
#include "runtime/project/runtime_options.h"
#include "runtime/project/runtime_options_error.h"
#include "runtime/project/value.h"

namespace jcs::supervisor {
namespace {

// A program gets longer than a connect and a write.
constexpr absl::Duration kDefaultAlertExecTimeout = absl::Seconds(5);

absl::Status Invalid(absl::string_view field, absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("config: ", field, ": expected ", expected));
}

bool AbsoluteClean(const std::string& path) {
  return !path.empty() && path[0] == '/' && !absl::StrContains(path, "/../") &&
         !absl::EndsWith(path, "/..") && path.find('\0') == std::string::npos;
}

absl::Status CheckOptions(absl::string_view field,
                          const runtime::OptionList& options) {
  absl::StatusOr<runtime::ValidatedOptions> validated =
      runtime::ValidateRuntimeOptions(options);
  if (validated.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("config: ", field, ": ", validated.status().message()));
}

// An exec sink's program is checked when the config loads: it runs in a
// jail (supervisor/alert_exec.h) that binds its directory at its own
// absolute path, and a typo should fail the load, not the first page.
absl::Status CheckAlertExec(const std::string& field,
                            const proto::AlertExec& exec) {
  if (exec.argv().empty()) {
    return Invalid(field + ".argv",
                   "the program's absolute path, then its arguments");
  }
  for (int i = 0; i < exec.argv_size(); ++i) {
    if (exec.argv(i).find('\0') != std::string::npos) {
      return Invalid(absl::StrCat(field, ".argv[", i, "]"),
                     "text without NUL bytes");
    }
  }
  const std::string& program = exec.argv(0);
  if (!AbsoluteClean(program) || absl::EndsWith(program, "/")) {
    return Invalid(field + ".argv[0]",
                   absl::StrCat("the program's absolute path without '..', "
                                "got '",
                                program, "'"));
  }
  // Its directory is bound into the jail and kept out of project roots;
  // "/" would hold every root.
  if (program.rfind('/') == 0) {
    return Invalid(
        field + ".argv[0]",
        absl::StrCat("a program in a directory other than /, got ", program));
  }
  struct stat st;
  if (stat(program.c_str(), &st) != 0) {
    return Invalid(
        field + ".argv[0]",
        absl::StrCat("an existing program, ", program, ": ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
    return Invalid(field + ".argv[0]",
                   absl::StrCat("an executable regular file, got ", program));
  }
  return absl::OkStatus();
}

// A config writes a set of runtime options either as JSON (`json_field`, the
// form `--options FILE` takes, read by the same function) or as the older
// RuntimeOptions message (`proto_field`). The JSON is moved into the message,
// so everything after this reads one form; `*written_as` is the field the
// person wrote, for the validator's errors. The caller clears the JSON
// afterwards, so finalizing a finalized config changes nothing.
absl::Status ResolveOptionsJson(const std::string& proto_field,
                                const std::string& json_field, bool has_proto,
                                bool has_json, const std::string& json,
                                proto::RuntimeOptions* options,
                                std::string* written_as) {
  *written_as = proto_field;
  if (!has_json) return absl::OkStatus();
  if (has_proto) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: ", proto_field, " and ", json_field,
        " are both set: write the options once (", json_field, ")"));
  }
  *written_as = json_field;
  absl::StatusOr<runtime::OptionList> parsed =
      runtime::ParseOptionsDocument(absl::StrCat("config: ", json_field), json);
  if (!parsed.ok()) return parsed.status();
  *options = runtime::OptionsToProto(*parsed);
  return absl::OkStatus();
}

absl::Status CheckAlertRouter(const proto::AlertRouter& router) {
  if (router.has_queue_capacity() &&
      (router.queue_capacity() < 1 || router.queue_capacity() > 65536)) {
    return Invalid("alert_router.queue_capacity", "1 to 65536");
  }
  for (int i = 0; i < router.sinks_size(); ++i) {
    const proto::AlertSink& sink = router.sinks(i);
    const std::string field = absl::StrCat("alert_router.sinks[", i, "]");
    switch (sink.sink_case()) {
      case proto::AlertSink::kFile:
        if (!AbsoluteClean(sink.file())) {
          return Invalid(field + ".file", "an absolute path without '..'");
        }
        break;
      case proto::AlertSink::kUnixSocket:
        if (!AbsoluteClean(sink.unix_socket()) ||
            sink.unix_socket().size() > 107) {
          return Invalid(field + ".unix_socket",
                         "an absolute path without '..' of at most 107 bytes");
        }
        break;
      case proto::AlertSink::kExec:
        if (absl::Status s = CheckAlertExec(field + ".exec", sink.exec());
            !s.ok()) {
          return s;
        }
        break;
      case proto::AlertSink::SINK_NOT_SET:
        return Invalid(field, "one of file, unix_socket, exec");
    }
    if (sink.has_timeout_ms() &&
        (sink.timeout_ms() < 1 || sink.timeout_ms() > 60000)) {
      return Invalid(field + ".timeout_ms", "1 to 60000");
    }
  }
  return absl::OkStatus();
}

}  // namespace

telemetry::alerts::RouterConfig AlertRouterConfig(
    const proto::SupervisorConfig& config) {
  telemetry::alerts::RouterConfig out;
  out.signal_events = telemetry::alerts::NormalizeSignalEvents(
      {config.alert_signal_events().begin(),
       config.alert_signal_events().end()});
  const proto::AlertRouter& router = config.alert_router();
  if (router.has_queue_capacity()) {
    out.queue_capacity = router.queue_capacity();
  }
  for (const proto::AlertSink& sink : router.sinks()) {
    telemetry::alerts::SinkConfig s;
    if (sink.has_unix_socket()) {
      s.kind = telemetry::alerts::SinkConfig::Kind::kUnixSocket;
      s.path = sink.unix_socket();
    } else if (sink.has_file()) {
      s.kind = telemetry::alerts::SinkConfig::Kind::kFile;
      s.path = sink.file();
    } else if (sink.has_exec()) {
      s.kind = telemetry::alerts::SinkConfig::Kind::kExec;
      s.argv = {sink.exec().argv().begin(), sink.exec().argv().end()};
      s.timeout = kDefaultAlertExecTimeout;
    } else {
      continue;  // refused by validation
    }
    s.extra_args = {sink.extra_args().begin(), sink.extra_args().end()};
    if (sink.has_timeout_ms())
      s.timeout = absl::Milliseconds(sink.timeout_ms());
    out.sinks.push_back(std::move(s));
  }
  return out;
}

proto::SupervisorConfig DefaultServeConfig() {
  absl::StatusOr<proto::SupervisorConfig> config =
      FinalizeServeConfig(proto::SupervisorConfig());
  return *config;  // the defaults always validate (tested)
}

absl::StatusOr<proto::SupervisorConfig> FinalizeServeConfig(
    proto::SupervisorConfig config) {
  if (!config.has_socket_path()) config.set_socket_path(kDefaultSocketPath);
  if (!config.has_socket_mode()) config.set_socket_mode(0660);
  if (!config.has_state_dir()) config.set_state_dir(kDefaultStateDir);
  if (config.alert_signal_events().empty()) {
    config.add_alert_signal_events("security.sandbox_violation");
    config.add_alert_signal_events("security.repeated_timeout_failures");
  }
  if (!config.has_drain_grace_ms()) config.set_drain_grace_ms(10000);
  if (!config.has_max_frame_bytes()) config.set_max_frame_bytes(4 << 20);
  if (!config.has_max_clients()) config.set_max_clients(1024);
  if (!config.has_journal_max_age_hours()) {
    config.set_journal_max_age_hours(168);
  }
  if (!config.has_journal_max_bytes()) {
    config.set_journal_max_bytes(uint64_t{256} << 20);
  }
  if (!config.has_max_send_queue_bytes()) {
    config.set_max_send_queue_bytes(8 << 20);
  }
  if (!config.has_log_level()) config.set_log_level("info");
  if (!config.has_metrics_textfile_period_ms()) {
    config.set_metrics_textfile_period_ms(15000);
  }
  if (!config.has_daemon_run()) config.set_daemon_run(false);
  if (!config.has_daemon_run_max_concurrent()) {
    config.set_daemon_run_max_concurrent(64);
  }
  if (!config.has_daemon_run_warm_shapes()) {
    config.set_daemon_run_warm_shapes(8);
  }

  if (!AbsoluteClean(config.socket_path()) ||
      config.socket_path().size() > 107) {
    return Invalid("socket_path",
                   "an absolute path without '..' of at most 107 bytes");
  }
  if (config.socket_mode() > 0777) {
    return Invalid("socket_mode", "permission bits between 0 and 0777");
  }
  if (!AbsoluteClean(config.state_dir())) {
    return Invalid("state_dir", "an absolute path without '..'");
  }
  for (int i = 0; i < config.alert_signal_events_size(); ++i) {
    if (config.alert_signal_events(i).empty()) {
      return Invalid(absl::StrCat("alert_signal_events[", i, "]"),
                     "a non-empty event name");
    }
  }
  if (absl::Status s = CheckAlertRouter(config.alert_router()); !s.ok()) {
    return s;
  }
  if (config.journal_max_age_hours() < 1 ||
      config.journal_max_age_hours() > 87600) {
    return Invalid("journal_max_age_hours", "1..87600 (ten years)");
  }
  if (config.journal_max_bytes() < (uint64_t{1} << 20)) {
    return Invalid("journal_max_bytes", "at least 1048576 (1 MiB)");
  }
  if (config.drain_grace_ms() > 3'600'000) {
    return Invalid("drain_grace_ms", "at most 3600000 (one hour)");
  }
  if (config.max_frame_bytes() < 1024 ||
      config.max_frame_bytes() > (64 << 20)) {
    return Invalid("max_frame_bytes", "1024 to 67108864");
  }
  if (config.max_clients() < 1 || config.max_clients() > 65536) {
    return Invalid("max_clients", "1 to 65536");
  }
  if (config.daemon_run_max_concurrent() < 1 ||
      config.daemon_run_max_concurrent() > 4096) {
    return Invalid("daemon_run_max_concurrent", "1 to 4096");
  }
  if (config.daemon_run_warm_shapes() > 64) {
    return Invalid("daemon_run_warm_shapes", "0 to 64");
  }
  if (config.max_send_queue_bytes() < config.max_frame_bytes()) {
    return Invalid("max_send_queue_bytes", "at least max_frame_bytes");
  }
  if (config.log_level() != "debug" && config.log_level() != "info" &&
      config.log_level() != "warn" && config.log_level() != "error") {
    return Invalid("log_level",
                   absl::StrCat("one of debug, info, warn, error; got '",
                                config.log_level(), "'"));
  }
  if (config.has_log_file() && !AbsoluteClean(config.log_file())) {
    return Invalid("log_file", "an absolute path without '..'");
  }
  if (config.has_metrics_textfile() &&
      (!AbsoluteClean(config.metrics_textfile()) ||
       !absl::EndsWith(config.metrics_textfile(), ".prom"))) {
    return Invalid("metrics_textfile",
                   "an absolute path without '..' ending in .prom (the "
                   "textfile collector reads only *.prom)");
  }
  if (config.metrics_textfile_period_ms() < 1000 ||
      config.metrics_textfile_period_ms() > 3'600'000) {
    return Invalid("metrics_textfile_period_ms", "1000 to 3600000");
  }
  if (!config.has_mcp_http_socket_mode()) config.set_mcp_http_socket_mode(0660);
  if (!config.has_mcp_http_max_connections()) {
    config.set_mcp_http_max_connections(64);
  }
  if (config.has_mcp_http_address()) {
    if (absl::Status s =
            protocol::http::CheckLoopbackAddress(config.mcp_http_address());
        !s.ok()) {
      return Invalid(
          "mcp_http_address",
          absl::StrCat("'", config.mcp_http_address(), "': ", s.message()));
    }
  }
  if (config.has_mcp_http_socket() &&
      (!AbsoluteClean(config.mcp_http_socket()) ||
       config.mcp_http_socket().size() > 107 ||
       config.mcp_http_socket() == config.socket_path())) {
    return Invalid("mcp_http_socket",
                   "an absolute path without '..' of at most 107 bytes, "
                   "other than socket_path");
  }
  if (config.mcp_http_socket_mode() > 0777) {
    return Invalid("mcp_http_socket_mode",
                   "permission bits between 0 and 0777");
  }
  if (config.has_mcp_http_token_file() &&
      !AbsoluteClean(config.mcp_http_token_file())) {
    return Invalid("mcp_http_token_file", "an absolute path without '..'");
  }
  if (config.mcp_http_max_connections() < 1 ||
      config.mcp_http_max_connections() > 1024) {
    return Invalid("mcp_http_max_connections", "1 to 1024");
  }
  if (!config.has_a2a_http_socket_mode()) config.set_a2a_http_socket_mode(0660);
  if (!config.has_a2a_http_max_connections()) {
    config.set_a2a_http_max_connections(64);
  }
  if (config.has_a2a_http_address()) {
    if (absl::Status s =
            protocol::http::CheckLoopbackAddress(config.a2a_http_address());
        !s.ok()) {
      return Invalid(
          "a2a_http_address",
          absl::StrCat("'", config.a2a_http_address(), "': ", s.message()));
    }
  }
  if (config.has_a2a_http_socket() &&
      (!AbsoluteClean(config.a2a_http_socket()) ||
       config.a2a_http_socket().size() > 107 ||
       config.a2a_http_socket() == config.socket_path() ||
       config.a2a_http_socket() == config.mcp_http_socket())) {
    return Invalid("a2a_http_socket",
                   "an absolute path without '..' of at most 107 bytes, "
                   "other than socket_path and mcp_http_socket");
  }
  if (config.a2a_http_socket_mode() > 0777) {
    return Invalid("a2a_http_socket_mode",
                   "permission bits between 0 and 0777");
  }
  if (config.a2a_http_max_connections() < 1 ||
      config.a2a_http_max_connections() > 1024) {
    return Invalid("a2a_http_max_connections", "1 to 1024");
  }
  // Presence is read before mutable_*() creates the message.
  const bool has_defaults = config.has_default_options();
  std::string defaults_field;
  absl::Status status = ResolveOptionsJson(
      "default_options", "default_options_json", has_defaults,
      config.has_default_options_json(), config.default_options_json(),
      config.mutable_default_options(), &defaults_field);
  if (!status.ok()) return status;
  config.clear_default_options_json();
  const runtime::OptionList defaults =
      runtime::OptionsFromProto(config.default_options());
  status = CheckOptions(defaults_field, defaults);
  if (!status.ok()) return status;
  for (int i = 0; i < config.projects_size(); ++i) {
    proto::BootProject& project = *config.mutable_projects(i);
    const std::string field = absl::StrCat("projects[", i, "]");
    if (!AbsoluteClean(project.root())) {
      return Invalid(field + ".root", "an absolute path without '..'");
    }
    const bool has_options = project.has_options();
    std::string options_field;
    status = ResolveOptionsJson(field + ".options", field + ".options_json",
                                has_options, project.has_options_json(),
                                project.options_json(),
                                project.mutable_options(), &options_field);
    if (!status.ok()) return status;
    project.clear_options_json();
    runtime::OptionList merged = defaults;
    const runtime::OptionList own =
        runtime::OptionsFromProto(project.options());
    merged.insert(merged.end(), own.begin(), own.end());
    status = CheckOptions(options_field, merged);
    if (!status.ok()) return status;
  }
  return config;
}

absl::StatusOr<proto::SupervisorConfig> ParseServeConfig(
    absl::string_view text, absl::string_view path) {
  proto::SupervisorConfig config;
  if (absl::Status status = proto::ParseTextProto(text, path, &config);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<proto::SupervisorConfig> final_config =
      FinalizeServeConfig(std::move(config));
  if (!final_config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", final_config.status().message()));
  }
  return final_config;
}

}  // namespace jcs::supervisor
