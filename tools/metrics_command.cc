// `jcs metrics`: the daemon's metrics in the Prometheus text format, as the
// control API's Metrics request returns them (README "Metrics and logs").
#include <cstdio>
#include <string>
#include <vector>

#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
const CommandSpec& MetricsSpec() {
  static const auto* spec = new CommandSpec{
      "metrics",
      "",
      "Prints the daemon's metrics in the Prometheus text exposition format "
      "(0.0.4): event counters per project, tool-call latency per tool, jail "
      "setup time, warm-jail pool hits and misses, queue depths, journal "
      "commit latency, running calls and conversations. They cover every "
      "project: admins only.",
      {SocketFlag()}};
  return *spec;
}

int MetricsCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = MetricsSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (!flags->positional.empty()) return UsageError(spec, "takes no arguments");
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags->Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<std::string> text = (*client)->Metrics();
  if (!text.ok()) return Fail(spec.name, text.status());
  fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}

}  // namespace jcs::tools
