#include "runtime/project/value.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/project/runtime_options_error.h"

namespace jcs::runtime {
namespace {

template <typename Json>
Value FromAnyJson(const Json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      return Value::Bool(json.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::Int(json.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = json.template get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Value::Double(static_cast<double>(u));
      }
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::Double(json.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::String(json.template get<std::string>());
    case nlohmann::json::value_t::array: {
      Value::List list;
      list.reserve(json.size());
      for (const auto& item : json) list.push_back(FromAnyJson(item));
      return Value::ListOf(std::move(list));
    }
    case nlohmann::json::value_t::object: {
      Value::Map map;
      for (auto it = json.begin(); it != json.end(); ++it) {
        map.insert_or_assign(it.key(), FromAnyJson(it.value()));
      }
      return Value::MapOf(std::move(map));
    }
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  return Value::Null();
}

// The members of an options document, in file order.
absl::StatusOr<OptionList> OptionsFromJsonObject(
    const nlohmann::ordered_json& json) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        "options: expected a JSON object of option keys and values");
  }
  OptionList options;
  for (auto it = json.begin(); it != json.end(); ++it) {
    options.emplace_back(it.key(), FromAnyJson(it.value()));
  }
  return options;
}

}  // namespace

Value Value::Strings(const std::vector<std::string>& items) {
  List list;
  list.reserve(items.size());
  for (const std::string& item : items) list.push_back(String(item));
  return ListOf(std::move(list));
}

std::string Value::ToJsonText() const { return ToJson(*this).dump(); }

absl::string_view KindName(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kDouble:
      return "double";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kMap:
      return "map";
  }
  return "unknown";
}

Value FromJson(const nlohmann::json& json) { return FromAnyJson(json); }

nlohmann::json ToJson(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kNull:
      return nullptr;
    case Value::Kind::kBool:
      return value.bool_value();
    case Value::Kind::kInt:
      return value.int_value();
    case Value::Kind::kDouble:
      return value.double_value();
    case Value::Kind::kString:
      return value.string_value();
    case Value::Kind::kList: {
      nlohmann::json list = nlohmann::json::array();
      for (const Value& item : value.list_value()) list.push_back(ToJson(item));
      return list;
    }
    case Value::Kind::kMap: {
      nlohmann::json map = nlohmann::json::object();
      for (const auto& [key, item] : value.map_value()) map[key] = ToJson(item);
      return map;
    }
  }
  return nullptr;
}

absl::StatusOr<Value> ParseJson(absl::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(),
                                              /*cb=*/nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("malformed JSON");
  }
  return FromJson(json);
}

absl::StatusOr<OptionList> ParseOptionsJson(absl::string_view text) {
  nlohmann::ordered_json json = nlohmann::ordered_json::parse(
      text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("options: malformed JSON");
  }
  return OptionsFromJsonObject(json);
}

absl::StatusOr<OptionList> ParseOptionsDocument(absl::string_view source,
                                                absl::string_view text) {
  nlohmann::ordered_json json;
  try {
    json = nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte: the 1-based offset of the byte the parser stopped at.
    const size_t stop = e.byte == 0 ? 0 : std::min(e.byte - 1, text.size());
    size_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < stop; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    // nlohmann's text: "[json.exception.parse_error.101] parse error at
    // line L, column C: REASON"; keep only REASON.
    std::string reason = e.what();
    if (const size_t colon = reason.find(": "); colon != std::string::npos) {
      reason = reason.substr(colon + 2);
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": invalid JSON at line ", line, ", column ",
                     stop - line_start + 1, ": ", reason));
  }
  absl::StatusOr<OptionList> options = OptionsFromJsonObject(json);
  if (!options.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", options.status().message()));
  }
  return options;
}

absl::StatusOr<std::pair<std::string, Value>> ParseKeyValue(
    absl::string_view arg) {
  const size_t eq = arg.find('=');
  if (eq == absl::string_view::npos) {
    return InvalidRuntimeOptStatus(InvalidRuntimeOpt::Simple(
        std::string(arg), "expected_key_value_tuple"));
  }
  std::string key(arg.substr(0, eq));
  absl::string_view text = arg.substr(eq + 1);
  absl::StatusOr<Value> parsed = ParseJson(text);
  if (parsed.ok()) return std::make_pair(std::move(key), *std::move(parsed));
  return std::make_pair(std::move(key), Value::String(std::string(text)));
}

absl::StatusOr<OptionList> ParseKeyValues(
    const std::vector<std::string>& args) {
  OptionList options;
  options.reserve(args.size());
  for (const std::string& arg : args) {
    absl::StatusOr<std::pair<std::string, Value>> option = ParseKeyValue(arg);
    if (!option.ok()) return option.status();
    options.push_back(*std::move(option));
  }
  return options;
}

Value FromProto(const proto::OptionValue& value) {
  switch (value.kind_case()) {
    case proto::OptionValue::kBoolValue:
      return Value::Bool(value.bool_value());
    case proto::OptionValue::kIntValue:
      return Value::Int(value.int_value());
    case proto::OptionValue::kDoubleValue:
      return Value::Double(value.double_value());
    case proto::OptionValue::kStringValue:
      return Value::String(value.string_value());
    case proto::OptionValue::kListValue: {
      Value::List list;
      list.reserve(value.list_value().values_size());
      for (const proto::OptionValue& item : value.list_value().values()) {
        list.push_back(FromProto(item));
      }
      return Value::ListOf(std::move(list));
    }
    case proto::OptionValue::kMapValue: {
      Value::Map map;
      for (const auto& [key, item] : value.map_value().fields()) {
        map.insert_or_assign(key, FromProto(item));
      }
      return Value::MapOf(std::move(map));
    }
    case proto::OptionValue::kNullValue:
    case proto::OptionValue::KIND_NOT_SET:
      break;
  }
  return Value::Null();
}

proto::OptionValue ToProto(const Value& value) {
  proto::OptionValue out;
  switch (value.kind()) {
    case Value::Kind::kNull:
      out.set_null_value(proto::OPTION_NULL);
      break;
    case Value::Kind::kBool:
      out.set_bool_value(value.bool_value());
      break;
    case Value::Kind::kInt:
      out.set_int_value(value.int_value());
      break;
    case Value::Kind::kDouble:
      out.set_double_value(value.double_value());
      break;
    case Value::Kind::kString:
      out.set_string_value(value.string_value());
      break;
    case Value::Kind::kList: {
      proto::OptionList* list = out.mutable_list_value();
      for (const Value& item : value.list_value()) {
        *list->add_values() = ToProto(item);
      }
      break;
    }
    case Value::Kind::kMap: {
      auto* fields = out.mutable_map_value()->mutable_fields();
      for (const auto& [key, item] : value.map_value()) {
        (*fields)[key] = ToProto(item);
      }
      break;
    }
  }
  return out;
}

OptionList OptionsFromProto(const proto::RuntimeOptions& options) {
  OptionList out;
  out.reserve(options.options_size());
  for (const proto::RuntimeOption& option : options.options()) {
    out.emplace_back(option.key(), FromProto(option.value()));
  }
  return out;
}

proto::RuntimeOptions OptionsToProto(const OptionList& options) {
  proto::RuntimeOptions out;
  for (const auto& [key, value] : options) {
    proto::RuntimeOption* option = out.add_options();
    option->set_key(key);
    *option->mutable_value() = ToProto(value);
  }
  return out;
}

}  // namespace jcs::runtime
