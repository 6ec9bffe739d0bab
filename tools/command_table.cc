#include "tools/command_table.h"

#include <cstdio>
#include <optional>

#include "base/version.h"
#include "jail/spec.h"
#include "tools/bench_options.h"
#include "tools/client_common.h"
#include "tools/commands.h"

namespace jcs::tools {
namespace {

CommandGroup Single(const std::string& summary, const CommandSpec& spec) {
  return {spec.name, summary, {spec}, false};
}

CommandGroup Group(const std::string& name, const std::string& summary,
                   const std::vector<CommandSpec>& specs) {
  return {name, summary, specs, true};
}

// jcs run's table is jail/spec.cc's (each flag sets one JailSpec field); its
// usage text, printed from that table, is read back into a CommandSpec.
CommandSpec RunSpec() {
  const std::string usage = jail::RunUsage();
  return {"run", SynopsisFromUsageText(usage, "run"),
          SummaryFromUsageText(usage), FlagsFromUsageText(usage)};
}

}  // namespace

const CommandSpec& HelpSpec() {
  static const auto* spec = new CommandSpec{
      "help",
      "[COMMAND [SUBCOMMAND]]",
      "Prints the command list, or COMMAND's usage (as jcs COMMAND --help); "
      "or the jcs(1) man page, or a completion script, generated from the "
      "flag tables every command parses with.",
      {{"--man", "", "off", "print the jcs(1) man page (man(7) roff)"},
       {"--completion", "bash|zsh", "",
        "print the completion script for the shell"}}};
  return *spec;
}

const std::vector<CommandGroup>& AllCommands() {
  static const auto* groups = new std::vector<CommandGroup>{
      Single("run one program in a hardened jail", RunSpec()),
      Single("report which jail layers this host can enforce", DoctorSpec()),
      Single("run the supervisor daemon", ServeSpec()),
      Group("project", "start|stop|list projects on the daemon",
            ProjectSpecs()),
      Group("tool", "list|run|cancel|result a project's tools", ToolSpecs()),
      Group("conversation",
            "start|stop|send|cancel|resume|signal|state|watch conversations",
            ConversationSpecs()),
      Group("assets", "list|get|search|reload a project's assets",
            AssetSpecs()),
      Single("a project's diagnostics", DiagnosticsSpec()),
      Single("a conversation's incident timeline", TimelineSpec()),
      Single("stream a project's events as JSON lines", EventsSpec()),
      Single("serve a project's tools to an agent host over MCP (stdio)",
             McpSpec()),
      Single("the daemon's metrics (Prometheus text format)", MetricsSpec()),
      Single("exit 0 when the daemon answers (health checks)", PingSpec()),
      Single("the load harness: projects x conversations x events through the "
             "daemon",
             BenchSpec()),
      Single("jcs's version and the daemon's (also --version)", VersionSpec()),
      Single("this list; the man page and shell completion", HelpSpec()),
  };
  return *groups;
}

int HelpCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = HelpSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (!flags->positional.empty()) {
    return UsageError(spec, "unknown argument '" + flags->positional[0] + "'");
  }
  if (flags->Has("--man") && flags->Has("--completion")) {
    return UsageError(spec, "--man and --completion: give one");
  }
  if (flags->Has("--man")) {
    fputs(ManPage(AllCommands(), std::string("jcs ") + kJcsVersion).c_str(),
          stdout);
    return 0;
  }
  if (flags->Has("--completion")) {
    const std::string shell = flags->Get("--completion");
    if (shell == "bash") {
      fputs(BashCompletion(AllCommands()).c_str(), stdout);
    } else if (shell == "zsh") {
      fputs(ZshCompletion(AllCommands()).c_str(), stdout);
    } else {
      return UsageError(
          spec, "--completion: expected bash or zsh, got '" + shell + "'");
    }
    return 0;
  }
  fputs(FormatCommandList(AllCommands()).c_str(), stdout);
  return 0;
}

}  // namespace jcs::tools
