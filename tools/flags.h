// One flag table per command: parsing and `--help` both read it, so the
// usage text cannot drift from what the parser accepts.
//
// A command's table lists each flag once, with its value name (empty for a
// boolean switch), the default shown in --help and one line of meaning.
// ParseCommandFlags accepts `--flag VALUE`, `--flag=VALUE`, `--` (the rest
// is positional), and -h/--help anywhere; any other word starting with '-'
// is an unknown flag (a lone "-" is positional: stdin for --args).
#ifndef JCS_TOOLS_FLAGS_H_
#define JCS_TOOLS_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace jcs::tools {

struct FlagSpec {
  std::string name;        // "--socket"
  std::string value_name;  // "PATH"; empty: a switch
  std::string default_text;
  std::string help;
  bool repeatable = false;
};

struct CommandSpec {
  std::string name;      // "project start"
  std::string synopsis;  // "ROOT"
  std::string summary;   // one or two sentences
  std::vector<FlagSpec> flags;
};

struct ParsedFlags {
  bool help = false;
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // by flag name

  bool Has(const std::string& name) const { return values.count(name) != 0; }
  // The last value given (a switch: ""), else `fallback`.
  std::string Get(const std::string& name,
                  const std::string& fallback = "") const;
  std::vector<std::string> All(const std::string& name) const;
};

// --socket and --json, shared by every client command.
FlagSpec SocketFlag();
FlagSpec JsonFlag(const std::string& help = "print the daemon's JSON document");
// $JCS_SOCKET when set and non-empty, else /run/jcs/jcs.sock.
std::string DefaultSocket();

// Errors name the flag: "unknown flag '--x'", "--socket: missing value",
// "--json takes no value".
absl::StatusOr<ParsedFlags> ParseCommandFlags(
    const CommandSpec& spec, const std::vector<std::string>& args);

// "usage: jcs NAME SYNOPSIS [FLAGS]", the summary and one entry per flag
// with its default, wrapped to `width` columns.
std::string FormatUsage(const CommandSpec& spec, size_t width = 80);

// Greedy word wrap of `text` to `width` columns, every line after the first
// indented by `indent` spaces.
std::string Wrap(const std::string& text, size_t width, size_t indent);

// Wraps each line of a preformatted usage text longer than `width`: a flag
// line ("  --flag VALUE   text") continues under its text column, any
// other line under its own indentation.
std::string WrapUsageLines(const std::string& text, size_t width = 80);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_FLAGS_H_
