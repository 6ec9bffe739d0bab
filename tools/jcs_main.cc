// jcs: the multi-command binary. Every command answers -h/--help with its
// usage, generated from the same flag table its parser reads.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/command_table.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  // The command list is generated from the same table as the man page; only
  // when printed (jcs run starts once per jailed call).
  auto usage = [] {
    return jcs::tools::FormatCommandList(jcs::tools::AllCommands());
  };
  if (argc < 2) {
    fputs(usage().c_str(), stderr);
    return 2;
  }
  const std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "run") return jcs::tools::RunCommand(args);
  if (command == "doctor") return jcs::tools::DoctorCommand(args);
  if (command == "serve") return jcs::tools::ServeCommand(args);
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
  if (command == "version" || command == "--version" || command == "-V") {
    return jcs::tools::VersionCommand(args);
  }
  if (command == "help") return jcs::tools::HelpCommand(args);
  if (command == "-h" || command == "--help") {
    fputs(usage().c_str(), stdout);
    return 0;
  }
  fprintf(stderr, "jcs: unknown command '%s'\n%s", command.c_str(),
          usage().c_str());
  return 2;
}
