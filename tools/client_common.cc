#include "tools/client_common.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jcs::tools {

std::optional<ParsedFlags> ParseOrExit(const CommandSpec& spec,
                                       const std::vector<std::string>& args,
                                       int* exit_code) {
  absl::StatusOr<ParsedFlags> parsed = ParseCommandFlags(spec, args);
  if (!parsed.ok()) {
    *exit_code = UsageError(spec, std::string(parsed.status().message()));
    return std::nullopt;
  }
  if (parsed->help) {
    fputs(FormatUsage(spec).c_str(), stdout);
    *exit_code = 0;
    return std::nullopt;
  }
  return *std::move(parsed);
}

int UsageError(const CommandSpec& spec, const std::string& error) {
  fprintf(stderr, "jcs %s: %s\n%s", spec.name.c_str(), error.c_str(),
          FormatUsage(spec).c_str());
  return kExitUsage;
}

int Fail(const std::string& name, const absl::Status& status) {
  fprintf(stderr, "jcs %s: %s\n", name.c_str(),
          std::string(status.message()).c_str());
  return kExitFailed;
}

const CommandSpec* PickSubcommand(const std::string& group,
                                  const std::vector<CommandSpec>& subs,
                                  const std::vector<std::string>& args,
                                  int* exit_code) {
  const std::string sub = args.empty() ? "" : args[0];
  for (const CommandSpec& spec : subs) {
    if (spec.name == absl::StrCat(group, " ", sub)) return &spec;
  }
  std::vector<std::string> names;
  std::string all;
  for (const CommandSpec& spec : subs) {
    names.push_back(spec.name.substr(group.size() + 1));
    absl::StrAppend(&all, "\n", FormatUsage(spec));
  }
  const bool help = sub == "-h" || sub == "--help" || sub == "help";
  const std::string head =
      absl::StrCat("usage: jcs ", group, " ", absl::StrJoin(names, "|"),
                   " ... (jcs ", group, " SUBCOMMAND --help: one of them)\n");
  if (help) {
    fprintf(stdout, "%s%s", head.c_str(), all.c_str());
    *exit_code = 0;
  } else {
    fprintf(stderr, "jcs %s: %s\n%s%s", group.c_str(),
            sub.empty()
                ? "missing subcommand"
                : absl::StrCat("unknown subcommand '", sub, "'").c_str(),
            head.c_str(), all.c_str());
    *exit_code = kExitUsage;
  }
  return nullptr;
}

absl::StatusOr<nlohmann::json> ParseJsonText(const std::string& what,
                                             const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte: 1-based offset of the byte the parser stopped at.
    const size_t stop = e.byte == 0 ? 0 : std::min(e.byte - 1, text.size());
    size_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < stop; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    std::string reason = e.what();
    // nlohmann's text: "[json.exception.parse_error.101] parse error at
    // line L, column C: REASON"; keep only REASON.
    if (const size_t colon = reason.find(": "); colon != std::string::npos) {
      reason = reason.substr(colon + 2);
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": invalid JSON at line ", line, ", column ",
                     stop - line_start + 1, ": ", reason));
  }
}

absl::StatusOr<std::string> ReadJsonSource(const std::string& flag,
                                           const std::string& value) {
  if (value == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)),
                     std::istreambuf_iterator<char>());
    return text;
  }
  if (!value.empty() && value[0] == '@') {
    const std::string path = value.substr(1);
    std::ifstream in(path);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": cannot read ", path));
    }
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return value;
}

}  // namespace jcs::tools
