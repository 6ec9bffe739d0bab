// `jcs serve` configuration: the SupervisorConfig proto (text format), its
// defaults (the embedded default config) and its validation. Errors name the
// field and what was expected.
#ifndef JCS_SUPERVISOR_SERVE_CONFIG_H_
#define JCS_SUPERVISOR_SERVE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/supervisor_config.pb.h"
#include "telemetry/alerts/router.h"

namespace jcs::supervisor {

inline constexpr char kDefaultSocketPath[] = "/run/jcs/jcs.sock";
inline constexpr char kDefaultStateDir[] = "/var/lib/jcs";

// Parses text format ("<path>:<line>:<column>: <message>" on syntax errors),
// fills defaults and validates (including the default runtime options and each
// boot project's options, which must pass the same validation as a
// StartProject request).
absl::StatusOr<proto::SupervisorConfig> ParseServeConfig(
    absl::string_view text, absl::string_view path);
// The embedded default config (every default filled in).
proto::SupervisorConfig DefaultServeConfig();
// Fills unset fields with defaults and validates.
absl::StatusOr<proto::SupervisorConfig> FinalizeServeConfig(
    proto::SupervisorConfig config);

// The alert router's configuration (alert_signal_events normalized, the
// validated alert_router sinks).
telemetry::alerts::RouterConfig AlertRouterConfig(
    const proto::SupervisorConfig& config);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_SERVE_CONFIG_H_
