// Entry points of the jcs subcommands; each returns the process exit status.
#ifndef JCS_TOOLS_COMMANDS_H_
#define JCS_TOOLS_COMMANDS_H_

#include <string>
#include <vector>

#include "tools/flags.h"

namespace jcs::tools {

int RunCommand(const std::vector<std::string>& args);
int DoctorCommand(const std::vector<std::string>& args);
int ProjectCommand(const std::vector<std::string>& args);
int DiagnosticsCommand(const std::vector<std::string>& args);
int ToolCommand(const std::vector<std::string>& args);
// `jcs timeline PROJECT CONVERSATION [--correlation-id ID] [--limit N]
// [--json]`: the conversation's incident timeline, a table by default.
int TimelineCommand(const std::vector<std::string>& args);
// `jcs conversation start|stop|send|cancel|resume|signal|state|watch`.
int ConversationCommand(const std::vector<std::string>& args);
// `jcs ping`: exit 0 when the daemon answers a Ping (a container health
// check), 1 with one line on stderr when it does not.
int PingCommand(const std::vector<std::string>& args);
// `jcs events PROJECT [--max-events N]`: the project's events as JSON lines.
int EventsCommand(const std::vector<std::string>& args);
// `jcs metrics`: the daemon's Prometheus scrape on stdout.
int MetricsCommand(const std::vector<std::string>& args);
// `jcs assets list|get|search|reload PROJECT ...`: a project's assets.
int AssetsCommand(const std::vector<std::string>& args);
// `jcs version` (and `jcs --version`): jcs's version and the daemon's.
int VersionCommand(const std::vector<std::string>& args);
// `jcs mcp --project ID [--socket PATH]`: an MCP server on stdio for one
// project of a running daemon.
int McpCommand(const std::vector<std::string>& args);
// `jcs bench [--projects N] [--conversations N] [--events N] ...`: the load
// harness; exit 0 when every event and projection check passed.
int BenchCommand(const std::vector<std::string>& args);

// `jcs serve [--config FILE] [--log-level LEVEL]`: the daemon
// (supervisor/serve.h), its flags read from ServeSpec().
int ServeCommand(const std::vector<std::string>& args);

// Each command's flag table: its parser, its --help, the man page and the
// shell completion all read these (tools/command_table.h lists them all).
const CommandSpec& DoctorSpec();
const CommandSpec& ServeSpec();
const std::vector<CommandSpec>& ProjectSpecs();
const std::vector<CommandSpec>& ToolSpecs();
const std::vector<CommandSpec>& ConversationSpecs();
const std::vector<CommandSpec>& AssetSpecs();
const CommandSpec& DiagnosticsSpec();
const CommandSpec& TimelineSpec();
const CommandSpec& EventsSpec();
const CommandSpec& McpSpec();
const CommandSpec& MetricsSpec();
const CommandSpec& PingSpec();
const CommandSpec& VersionSpec();

}  // namespace jcs::tools

#endif  // JCS_TOOLS_COMMANDS_H_
