#include "tools/flags.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace jcs::tools {
namespace {

const FlagSpec* Find(const CommandSpec& spec, const std::string& name) {
  for (const FlagSpec& flag : spec.flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

}  // namespace

std::string ParsedFlags::Get(const std::string& name,
                             const std::string& fallback) const {
  auto it = values.find(name);
  return it == values.end() || it->second.empty() ? fallback
                                                  : it->second.back();
}

std::vector<std::string> ParsedFlags::All(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

std::string DefaultSocket() {
  const char* env = getenv("JCS_SOCKET");
  return env != nullptr && env[0] != '\0' ? env : "/run/jcs/jcs.sock";
}

FlagSpec SocketFlag() {
  return {"--socket", "PATH", "$JCS_SOCKET, else /run/jcs/jcs.sock",
          "the daemon's control socket"};
}

FlagSpec JsonFlag(const std::string& help) {
  return {"--json", "", "off", help};
}

absl::StatusOr<ParsedFlags> ParseCommandFlags(
    const CommandSpec& spec, const std::vector<std::string>& args) {
  ParsedFlags out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.positional.insert(out.positional.end(), args.begin() + i + 1,
                            args.end());
      break;
    }
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const FlagSpec* flag = Find(spec, name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", name, "'"));
    }
    std::string value;
    if (flag->value_name.empty()) {
      if (eq != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " takes no value"));
      }
    } else if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": missing value (expected ", flag->value_name, ")"));
    }
    std::vector<std::string>& slot = out.values[name];
    if (!flag->repeatable) slot.clear();
    slot.push_back(std::move(value));
  }
  return out;
}

std::string Wrap(const std::string& text, size_t width, size_t indent) {
  std::string out;
  size_t column = 0;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (column > indent && column + 1 + word.size() > width) {
      absl::StrAppend(&out, "\n", std::string(indent, ' '));
      column = indent;
    } else if (!out.empty()) {
      out += ' ';
      ++column;
    }
    absl::StrAppend(&out, word);
    column += word.size();
  }
  return out;
}

std::string WrapUsageLines(const std::string& text, size_t width) {
  std::string out;
  size_t text_column = 0;  // of the last flag line that had one
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!out.empty() || line.data() != text.data()) out += '\n';
    if (line.size() <= width) {
      absl::StrAppend(&out, line);
      continue;
    }
    // The text column: after the first run of two or more spaces that
    // follows the flag; else the line's own indentation.
    const size_t lead = line.find_first_not_of(' ');
    size_t column = lead == absl::string_view::npos ? 0 : lead;
    if (const size_t gap = line.find("  ", column);
        gap != absl::string_view::npos && gap < width / 2) {
      const size_t next = line.find_first_not_of(' ', gap);
      if (next != absl::string_view::npos) column = next;
      text_column = column;
    } else if (absl::StartsWith(line.substr(column), "-") && text_column != 0) {
      // A flag too long for its padding: continue under the other flags'
      // text.
      column = text_column;
    }
    if (column == 0) {  // no indentation to keep: plain wrapping
      absl::StrAppend(&out, Wrap(std::string(line), width, 0));
      continue;
    }
    const std::string head(line.substr(0, column));
    const std::string wrapped =
        Wrap(std::string(column, 'x') + " " + std::string(line.substr(column)),
             width, column);
    absl::StrAppend(&out, head, wrapped.substr(column + 1));
  }
  return out;
}

std::string FormatUsage(const CommandSpec& spec, size_t width) {
  std::string out = Wrap(
      absl::StrCat("usage: jcs ", spec.name, spec.synopsis.empty() ? "" : " ",
                   spec.synopsis, spec.flags.empty() ? "" : " [FLAGS]"),
      width, 6);
  absl::StrAppend(&out, "\n\n", Wrap(spec.summary, width, 0), "\n");
  if (spec.flags.empty()) return out;
  absl::StrAppend(&out, "\nflags:\n");
  constexpr size_t kHelpColumn = 26;
  for (const FlagSpec& flag : spec.flags) {
    std::string head = absl::StrCat("  ", flag.name);
    if (!flag.value_name.empty()) absl::StrAppend(&head, " ", flag.value_name);
    std::string text = flag.help;
    if (flag.repeatable) absl::StrAppend(&text, " (repeatable)");
    absl::StrAppend(&text, " [default: ",
                    flag.default_text.empty() ? "none" : flag.default_text,
                    "]");
    // A long flag name gets its text on the next line.
    std::string line = head;
    if (head.size() + 2 > kHelpColumn) {
      absl::StrAppend(&line, "\n", std::string(kHelpColumn, ' '));
    } else {
      line.resize(kHelpColumn, ' ');
    }
    // Wrap the text as if it started at the help column.
    const std::string wrapped =
        Wrap(std::string(kHelpColumn, 'x') + " " + text, width, kHelpColumn);
    absl::StrAppend(&out, line, wrapped.substr(kHelpColumn + 1), "\n");
  }
  absl::StrAppend(&out, "  -h, --help", std::string(kHelpColumn - 12, ' '),
                  "this help\n");
  return out;
}

}  // namespace jcs::tools
