#include "runtime/assets/frontmatter.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/assets/utf8.h"
#include "yaml-cpp/yaml.h"

namespace jcs::runtime::assets {
namespace {

using json = nlohmann::json;

// The line starting at `pos` without its "\n" / "\r\n"; *next is the start of
// the following line (text.size() at the end).
absl::string_view LineAt(absl::string_view text, size_t pos, size_t* next) {
  size_t end = text.find('\n', pos);
  if (end == absl::string_view::npos) {
    *next = text.size();
    end = text.size();
  } else {
    *next = end + 1;
  }
  absl::string_view line = text.substr(pos, end - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

absl::Status CheckText(const std::string& text) {
  if (text.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("a scalar holds a NUL byte");
  }
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("a scalar is not valid UTF-8");
  }
  return absl::OkStatus();
}

json Scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  // yaml-cpp tags quoted scalars "!": they are strings whatever they read.
  if (node.Tag() == "!") return text;
  if (text.empty() || text == "~" || text == "null" || text == "Null" ||
      text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  int64_t integer = 0;
  if (absl::SimpleAtoi(text, &integer) && text.find('.') == std::string::npos) {
    return integer;
  }
  double number = 0;
  if (text.find_first_of("0123456789") != std::string::npos &&
      text.find_first_not_of("0123456789+-.eE") == std::string::npos &&
      absl::SimpleAtod(text, &number)) {
    return number;
  }
  return text;
}

class Converter {
 public:
  absl::StatusOr<json> Convert(const YAML::Node& node, int depth) {
    if (++nodes_ > kMaxFrontmatterNodes) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", kMaxFrontmatterNodes, " nodes"));
    }
    if (depth > kMaxFrontmatterDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat("nested deeper than ", kMaxFrontmatterDepth));
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json(nullptr);
      case YAML::NodeType::Scalar:
        if (absl::Status text = CheckText(node.Scalar()); !text.ok()) {
          return text;
        }
        return Scalar(node);
      case YAML::NodeType::Sequence: {
        json out = json::array();
        for (const YAML::Node& item : node) {
          absl::StatusOr<json> value = Convert(item, depth + 1);
          if (!value.ok()) return value.status();
          out.push_back(*std::move(value));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        for (const auto& entry : node) {
          if (!entry.first.IsScalar()) {
            return absl::InvalidArgumentError("a mapping key is not a scalar");
          }
          if (absl::Status text = CheckText(entry.first.Scalar()); !text.ok()) {
            return text;
          }
          absl::StatusOr<json> value = Convert(entry.second, depth + 1);
          if (!value.ok()) return value.status();
          out[entry.first.Scalar()] = *std::move(value);
        }
        return out;
      }
    }
    return json(nullptr);
  }

 private:
  size_t nodes_ = 0;
};

}  // namespace

absl::StatusOr<Frontmatter> ParseFrontmatter(absl::string_view text) {
  Frontmatter out;
  size_t next = 0;
  // A UTF-8 byte order mark before the opening line is tolerated.
  size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  if (LineAt(text, start, &next) != "---") {
    out.body = std::string(text);
    return out;
  }
  out.present = true;
  const size_t yaml_begin = next;
  size_t pos = next;
  bool closed = false;
  size_t yaml_end = 0;
  while (pos < text.size()) {
    yaml_end = pos;
    absl::string_view line = LineAt(text, pos, &next);
    if (line == "---" || line == "...") {
      closed = true;
      break;
    }
    pos = next;
  }
  if (!closed) {
    return absl::InvalidArgumentError(
        "unterminated frontmatter (no closing --- line)");
  }
  out.body = std::string(text.substr(next));
  const std::string yaml(text.substr(yaml_begin, yaml_end - yaml_begin));
  if (yaml.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the frontmatter holds a NUL byte");
  }
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    // e.mark is relative to the YAML block: +2 makes it a line of the file
    // (1-based, after the opening ---).
    // The message may quote a byte of the input: kept valid UTF-8, as it
    // ends up in JSON documents.
    return absl::InvalidArgumentError(EscapeNonUtf8(
        e.mark.is_null() ? std::string(e.msg)
                         : absl::StrCat("line ", e.mark.line + 2, ", column ",
                                        e.mark.column + 1, ": ", e.msg)));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(EscapeNonUtf8(e.what()));
  }
  if (root.IsNull() || !root.IsDefined()) return out;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("frontmatter is not a mapping");
  }
  try {
    absl::StatusOr<json> data = Converter().Convert(root, 0);
    if (!data.ok()) return data.status();
    out.data = *std::move(data);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(EscapeNonUtf8(e.what()));
  }
  return out;
}

}  // namespace jcs::runtime::assets
