// Every jcs command's flag table, in the order `jcs --help` lists them: the
// source of the command list, the man page and the shell completion
// (tools/reference.h). A new command adds its table here.
#ifndef JCS_TOOLS_COMMAND_TABLE_H_
#define JCS_TOOLS_COMMAND_TABLE_H_

#include <string>
#include <vector>

#include "tools/reference.h"

namespace jcs::tools {

const std::vector<CommandGroup>& AllCommands();

// `jcs help [--man | --completion bash|zsh]`.
const CommandSpec& HelpSpec();
int HelpCommand(const std::vector<std::string>& args);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_COMMAND_TABLE_H_
