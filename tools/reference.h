// The command-line reference generated from the flag tables (tools/flags.h):
// the `jcs --help` command list, the jcs(1) man page and the bash and zsh
// completion scripts. Everything here is a pure function of the tables, so
// docs/man/jcs.1 and docs/completion/* cannot drift from what the parsers
// accept (tests/reference_docs_test regenerates them and diffs).
#ifndef JCS_TOOLS_REFERENCE_H_
#define JCS_TOOLS_REFERENCE_H_

#include <string>
#include <vector>

#include "tools/flags.h"

namespace jcs::tools {

// One top-level command: a single spec ("doctor") or a group of subcommands
// whose specs are named "GROUP SUB" ("project start").
struct CommandGroup {
  std::string name;
  std::string summary;  // one line, for the command list
  std::vector<CommandSpec> specs;
  bool has_subcommands = false;
};

// `jcs --help`: every command with its one-line summary, wrapped to `width`.
std::string FormatCommandList(const std::vector<CommandGroup>& groups,
                              size_t width = 80);

// jcs(1) in man(7) roff: a section per command with every flag, its value,
// meaning and default.
std::string ManPage(const std::vector<CommandGroup>& groups,
                    const std::string& version);

// Bash completion: `jcs <TAB>` commands, subcommands, each command's flags,
// the words of a flag whose value is "a|b|c", file names otherwise.
std::string BashCompletion(const std::vector<CommandGroup>& groups);
// The same for zsh (#compdef jcs), with each flag's meaning.
std::string ZshCompletion(const std::vector<CommandGroup>& groups);

// The flags of a usage text printed from a table in another form (jcs run's
// flag table lives in jail/spec.cc): every line "  --name [VALUE]  help" (or
// "  -x, --name ..."), continuation lines joined. VALUE is the word after the
// names when it looks like one (capitals, or a|b choices).
std::vector<FlagSpec> FlagsFromUsageText(const std::string& usage);
// The usage line's synopsis ("usage: jcs run [flags] -- PROGRAM" with
// command "run": "[flags] -- PROGRAM") and the prose around the flag list.
std::string SynopsisFromUsageText(const std::string& usage,
                                  const std::string& command);
std::string SummaryFromUsageText(const std::string& usage);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_REFERENCE_H_
