// jcs: the multi-command binary. Every command answers -h/--help with its
// usage, generated from the same flag table its parser reads.
#include <cstdio>
#include <string>
#include <vector>

#include "supervisor/serve.h"
#include "tools/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: jcs COMMAND [ARGS...]   (jcs COMMAND --help: its flags)\n\n"
    "commands:\n"
    "  run           run one program in a hardened jail\n"
    "  doctor        report which jail layers this host can enforce\n"
    "  serve         run the supervisor daemon\n"
    "  project       start|stop|list projects on the daemon\n"
    "  tool          list|run|cancel|result a project's tools\n"
    "  conversation  start|stop|send|cancel|resume|signal|state|watch\n"
    "                conversations\n"
    "  assets        list|get|search|reload a project's assets\n"
    "  diagnostics   a project's diagnostics\n"
    "  timeline      a conversation's incident timeline\n"
    "  events        stream a project's events as JSON lines\n"
    "  mcp           serve a project's tools to an agent host over MCP\n"
    "                (stdio)\n"
    "  metrics       the daemon's metrics (Prometheus text format)\n"
    "  ping          exit 0 when the daemon answers (health checks)\n"
    "  bench         the load harness: projects x conversations x events\n"
    "                through the daemon, latency and throughput\n"
    "  version       jcs's version and the daemon's (also --version)\n\n"
    "Runtime options: docs/runtime-options.md.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "run") return jcs::tools::RunCommand(args);
  if (command == "doctor") return jcs::tools::DoctorCommand(args);
  if (command == "serve") return jcs::supervisor::ServeMain(args);
  if (command == "project") return jcs::tools::ProjectCommand(args);
  if (command == "diagnostics") return jcs::tools::DiagnosticsCommand(args);
  if (command == "tool") return jcs::tools::ToolCommand(args);
  if (command == "assets") return jcs::tools::AssetsCommand(args);
  if (command == "timeline") return jcs::tools::TimelineCommand(args);
  if (command == "conversation") {
    return jcs::tools::ConversationCommand(args);
  }
  if (command == "events") return jcs::tools::EventsCommand(args);
  if (command == "ping") return jcs::tools::PingCommand(args);
  if (command == "mcp") return jcs::tools::McpCommand(args);
  if (command == "metrics") return jcs::tools::MetricsCommand(args);
  if (command == "bench") return jcs::tools::BenchCommand(args);
  if (command == "version" || command == "--version" || command == "-V") {
    return jcs::tools::VersionCommand(args);
  }
  if (command == "-h" || command == "--help" || command == "help") {
    fputs(kUsage, stdout);
    return 0;
  }
  fprintf(stderr, "jcs: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
