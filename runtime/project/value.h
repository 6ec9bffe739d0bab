// A small dynamic value for project runtime options: null, bool, int64,
// double, string, list and map (string keys). Options arrive in three forms
// and every form is converted to an OptionList of these values first, so one
// validator (runtime/project/runtime_options.h) sees them all:
//   - JSON (an `--options FILE` object, or a JSON value): ParseOptionsJson,
//     FromJson;
//   - protobuf (the control API): OptionsFromProto / FromProto;
//   - `KEY=VALUE` strings (the CLI's `--opt`): ParseKeyValue.
#ifndef JCS_RUNTIME_VALUE_H_
#define JCS_RUNTIME_VALUE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "proto/runtime_options.pb.h"

namespace jcs::runtime {

class Value {
 public:
  enum class Kind { kNull, kBool, kInt, kDouble, kString, kList, kMap };
  using List = std::vector<Value>;
  using Map = std::map<std::string, Value>;

  Value() = default;  // null
  static Value Null() { return Value(); }
  static Value Bool(bool b) { return Value(Rep(std::in_place_index<1>, b)); }
  static Value Int(int64_t i) { return Value(Rep(std::in_place_index<2>, i)); }
  static Value Double(double d) {
    return Value(Rep(std::in_place_index<3>, d));
  }
  static Value String(std::string s) {
    return Value(Rep(std::in_place_index<4>, std::move(s)));
  }
  static Value ListOf(List l) {
    return Value(Rep(std::in_place_index<5>, std::move(l)));
  }
  static Value MapOf(Map m) {
    return Value(Rep(std::in_place_index<6>, std::move(m)));
  }
  // Convenience: a list of strings.
  static Value Strings(const std::vector<std::string>& items);

  Kind kind() const { return static_cast<Kind>(rep_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_double() const { return kind() == Kind::kDouble; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_map() const { return kind() == Kind::kMap; }

  // Accessors; calling one for another kind is a programming error (throws
  // std::bad_variant_access).
  bool bool_value() const { return std::get<1>(rep_); }
  int64_t int_value() const { return std::get<2>(rep_); }
  double double_value() const { return std::get<3>(rep_); }
  // int or double as a double.
  double number_value() const {
    return is_int() ? static_cast<double>(int_value()) : double_value();
  }
  const std::string& string_value() const { return std::get<4>(rep_); }
  const List& list_value() const { return std::get<5>(rep_); }
  const Map& map_value() const { return std::get<6>(rep_); }

  // Kinds are distinct: Int(1) != Double(1.0).
  friend bool operator==(const Value& a, const Value& b) {
    return a.rep_ == b.rep_;
  }
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

  // Compact JSON text (for messages and tests).
  std::string ToJsonText() const;

 private:
  using Rep = std::variant<std::monostate, bool, int64_t, double, std::string,
                           List, Map>;
  explicit Value(Rep rep) : rep_(std::move(rep)) {}
  Rep rep_;
};

// "null", "bool", "int", "double", "string", "list", "map".
absl::string_view KindName(Value::Kind kind);

// Runtime options in the order given (keys are not unique).
using OptionList = std::vector<std::pair<std::string, Value>>;

// ---- JSON ----
// Integers that fit int64 become Int; larger unsigned integers become Double
// (so they fail integer validation instead of wrapping). Binary values (never
// produced by the JSON parser) become null.
Value FromJson(const nlohmann::json& json);
nlohmann::json ToJson(const Value& value);
// Parses JSON text into a Value; InvalidArgument on malformed JSON.
absl::StatusOr<Value> ParseJson(absl::string_view text);
// Parses an options document: a JSON object whose members are options, kept
// in file order. InvalidArgument when the text is not JSON or not an object.
absl::StatusOr<OptionList> ParseOptionsJson(absl::string_view text);
// The one reader of an options document wherever a person writes one:
// `--options FILE` and the supervisor config's default_options_json and
// projects[].options_json. ParseOptionsJson, with every error prefixed by
// `source` (the flag and file, or the config field) and a syntax error's
// line and column: "SOURCE: invalid JSON at line 3, column 7: REASON".
absl::StatusOr<OptionList> ParseOptionsDocument(absl::string_view source,
                                                absl::string_view text);

// ---- KEY=VALUE (the CLI's --opt) ----
// Splits at the first '='. KEY is taken verbatim (no trimming). VALUE is
// parsed as JSON when the whole of it is valid JSON (numbers, true, false,
// null, "quoted strings", [lists], {maps}); otherwise it is taken as a plain
// string. So `tool_timeout_ms=500` gives Int(500), `watcher=true` Bool(true),
// `llm_model=null` null, `network_egress_policy=allow` String("allow"),
// `allow_tools=["a","b"]` a list, `llm_model="null"` String("null"), `x=`
// String(""), `x=1.5.2` String("1.5.2").
// An argument without '=' gives the invalid_runtime_opt error
// {key: <the whole argument>, reason: "expected_key_value_tuple"} (see
// runtime_options.h for the error form).
absl::StatusOr<std::pair<std::string, Value>> ParseKeyValue(
    absl::string_view arg);
// ParseKeyValue over every argument, in order; the first error wins.
absl::StatusOr<OptionList> ParseKeyValues(const std::vector<std::string>& args);

// ---- protobuf ----
// An OptionValue with no kind set is null.
Value FromProto(const proto::OptionValue& value);
proto::OptionValue ToProto(const Value& value);
OptionList OptionsFromProto(const proto::RuntimeOptions& options);
proto::RuntimeOptions OptionsToProto(const OptionList& options);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_VALUE_H_
