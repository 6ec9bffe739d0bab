#include "runtime/tools/tool_schema.h"

#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;

bool IsBareKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

std::string RenderKey(const std::string& key) {
  if (IsBareKey(key)) return key;
  return json(key).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The schema's string `type`, or "" when absent / not a string / not an
// object schema.
std::string TypeOf(const json& schema) {
  if (!schema.is_object()) return "";
  auto it = schema.find("type");
  if (it == schema.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool IsIntegral(const json& v) {
  if (v.is_number_integer()) return true;  // signed and unsigned
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

// Returns whether `value` matches the primitive/container `type`; unknown
// types match.
bool MatchesType(const std::string& type, const json& value) {
  if (type == "string") return value.is_string();
  if (type == "integer") return IsIntegral(value);
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "null") return value.is_null();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  return true;
}

class Validator {
 public:
  std::optional<ToolArgsError> Value(const json& schema, const json& value) {
    const std::string type = TypeOf(schema);
    if (!MatchesType(type, value)) {
      bool item =
          !path_.empty() && std::holds_alternative<size_t>(path_.back());
      return ToolArgsError{item ? ToolArgsErrorKind::kInvalidArrayItemType
                                : ToolArgsErrorKind::kInvalidArgType,
                           path_,
                           {},
                           type};
    }
    if (type == "object") return Object(schema, value);
    if (type == "array") return Array(schema, value);
    return std::nullopt;
  }

 private:
  std::optional<ToolArgsError> Object(const json& schema, const json& args) {
    // required
    auto req = schema.find("required");
    if (req != schema.end() && req->is_array()) {
      std::vector<std::string> missing;
      std::set<std::string> seen;
      for (const json& k : *req) {
        if (!k.is_string()) continue;
        std::string key(absl::StripAsciiWhitespace(k.get<std::string>()));
        if (key.empty() || !seen.insert(key).second) continue;
        if (!args.contains(key)) missing.push_back(std::move(key));
      }
      if (!missing.empty()) {
        return ToolArgsError{ToolArgsErrorKind::kMissingRequiredArgs, path_,
                             std::move(missing), ""};
      }
    }
    static const json kNoProperties = json::object();
    auto props_it = schema.find("properties");
    const json& props = (props_it != schema.end() && props_it->is_object())
                            ? *props_it
                            : kNoProperties;
    // additionalProperties: false
    auto addl = schema.find("additionalProperties");
    if (addl != schema.end() && addl->is_boolean() && !addl->get<bool>()) {
      std::vector<std::string> unexpected;
      for (auto it = args.begin(); it != args.end(); ++it) {
        if (!props.contains(it.key())) unexpected.push_back(it.key());
      }
      if (!unexpected.empty()) {
        return ToolArgsError{ToolArgsErrorKind::kUnexpectedArgs, path_,
                             std::move(unexpected), ""};
      }
    }
    // present args with a property schema (sorted key order)
    for (auto it = args.begin(); it != args.end(); ++it) {
      auto p = props.find(it.key());
      if (p == props.end()) continue;
      if (auto err = Child(it.key(), *p, it.value())) return err;
    }
    return std::nullopt;
  }

  std::optional<ToolArgsError> Array(const json& schema, const json& items) {
    auto it = schema.find("items");
    if (it == schema.end() || !it->is_object()) return std::nullopt;
    for (size_t i = 0; i < items.size(); ++i) {
      if (auto err = Child(i, *it, items[i])) return err;
    }
    return std::nullopt;
  }

  std::optional<ToolArgsError> Child(ToolArgsPathSegment seg,
                                     const json& schema, const json& value) {
    path_.push_back(std::move(seg));
    std::optional<ToolArgsError> err;
    if (static_cast<int>(path_.size()) > kMaxToolArgsDepth) {
      // Only values that have a schema are visited, so the bound applies to
      // the schema-driven walk, not to unchecked subtrees.
      err = ToolArgsError{ToolArgsErrorKind::kNestingTooDeep, path_, {}, ""};
    } else {
      err = Value(schema, value);
    }
    path_.pop_back();
    return err;
  }

  ToolArgsPath path_;
};

}  // namespace

absl::string_view ToolArgsErrorKindName(ToolArgsErrorKind kind) {
  switch (kind) {
    case ToolArgsErrorKind::kMissingRequiredArgs:
      return "missing_required_args";
    case ToolArgsErrorKind::kUnexpectedArgs:
      return "unexpected_args";
    case ToolArgsErrorKind::kInvalidArgType:
      return "invalid_arg_type";
    case ToolArgsErrorKind::kInvalidArrayItemType:
      return "invalid_array_item_type";
    case ToolArgsErrorKind::kNestingTooDeep:
      return "nesting_too_deep";
  }
  return "unknown";
}

std::string FormatToolArgsPath(const ToolArgsPath& path) {
  if (path.empty()) return "$";
  std::string out;
  for (const ToolArgsPathSegment& seg : path) {
    if (const size_t* index = std::get_if<size_t>(&seg)) {
      absl::StrAppend(&out, "[", *index, "]");
    } else {
      if (!out.empty()) out.push_back('.');
      out += RenderKey(std::get<std::string>(seg));
    }
  }
  return out;
}

std::string ToolArgsError::Reason() const {
  std::string p = FormatToolArgsPath(path);
  auto render_keys = [this] {
    std::vector<std::string> rendered;
    rendered.reserve(keys.size());
    for (const std::string& k : keys) rendered.push_back(RenderKey(k));
    return absl::StrJoin(rendered, ", ");
  };
  switch (kind) {
    case ToolArgsErrorKind::kMissingRequiredArgs:
      return absl::StrCat(p, ": missing required ", render_keys());
    case ToolArgsErrorKind::kUnexpectedArgs:
      return absl::StrCat(p, ": unexpected ", render_keys());
    case ToolArgsErrorKind::kInvalidArgType:
    case ToolArgsErrorKind::kInvalidArrayItemType:
      return absl::StrCat(p, ": expected ", expected_type);
    case ToolArgsErrorKind::kNestingTooDeep:
      return absl::StrCat(p, ": nesting too deep");
  }
  return p;
}

absl::Status ToolArgsError::ToStatus() const {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid_tool_args: ", Reason()));
}

std::optional<ToolArgsError> ValidateToolArgsDetailed(const json& schema,
                                                      const json& args) {
  const std::string type = TypeOf(schema);
  if (type != "object" && type != "array") return std::nullopt;
  return Validator().Value(schema, args);
}

absl::Status ValidateToolArgs(const json& schema, const json& args) {
  if (auto err = ValidateToolArgsDetailed(schema, args)) {
    return err->ToStatus();
  }
  return absl::OkStatus();
}

}  // namespace jcs::runtime
