// jcs: the multi-command binary. Every command answers -h/--help with its
// usage, generated from the same flag table its parser reads.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/command_table.h"
#include "tools/commands.h"

namespace {

// The command list is generated from the same table as the man page; only
// when printed (jcs run starts once per jailed call).
std::string Usage() {
  return jcs::tools::FormatCommandList(jcs::tools::AllCommands());
}

int Dispatch(const std::string& command, std::vector<std::string> args) {
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
  if (command == "bench") return jcs::tools::BenchCommand(args);
  if (command == "version" || command == "--version" || command == "-V") {
    return jcs::tools::VersionCommand(args);
  }
  if (command == "help") {
    // `jcs help COMMAND [SUB]` is `jcs COMMAND [SUB] --help`.
    if (!args.empty() && args[0].rfind('-', 0) != 0) {
      const std::string target = args[0];
      args.erase(args.begin());
      if (target == "help") return jcs::tools::HelpCommand({"--help"});
      args.push_back("--help");
      return Dispatch(target, std::move(args));
    }
    return jcs::tools::HelpCommand(args);
  }
  if (command == "-h" || command == "--help") {
    fputs(Usage().c_str(), stdout);
    return 0;
  }
  fprintf(stderr, "jcs: unknown command '%s'\n%s", command.c_str(),
          Usage().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fputs(Usage().c_str(), stderr);
    return 2;
  }
  return Dispatch(argv[1], std::vector<std::string>(argv + 2, argv + argc));
}
