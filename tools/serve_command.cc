// `jcs serve`: the daemon's command line, on the flag table like every other
// command (so --help, the man page and the completion list the same flags);
// the daemon itself is supervisor/serve.h.
#include <optional>
#include <string>
#include <vector>

#include "supervisor/serve.h"
#include "tools/client_common.h"
#include "tools/commands.h"

namespace jcs::tools {

const CommandSpec& ServeSpec() {
  static const auto* spec = new CommandSpec{
      "serve",
      "",
      "Runs the supervisor daemon: the control API on its Unix socket, the "
      "configured boot projects, PID-1 duty (reaps orphans; SIGTERM/SIGINT "
      "drain). Exit 0 after a drain, 2 for an invalid config, 1 when it "
      "cannot start.",
      {{"--config", "FILE",
        "none: socket /run/jcs/jcs.sock, state /var/lib/jcs",
        "a jcs.proto.SupervisorConfig in protobuf text format "
        "(proto/supervisor_config.proto)"},
       {"--log-level", "LEVEL", "info",
        "debug, info, warn or error: the structured log's level (overrides "
        "the config's log_level)"}}};
  return *spec;
}

int ServeCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = ServeSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (!flags->positional.empty()) {
    return UsageError(spec, "unknown argument '" + flags->positional[0] + "'");
  }
  std::optional<std::string> log_level;
  if (flags->Has("--log-level")) log_level = flags->Get("--log-level");
  return supervisor::ServeMain(flags->Get("--config"), log_level);
}

}  // namespace jcs::tools
