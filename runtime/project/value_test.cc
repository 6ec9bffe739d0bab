#include "runtime/project/value.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "runtime/project/runtime_options_error.h"

namespace jcs::runtime {
namespace {

using ::testing::Eq;

Value Obj(Value::Map m) { return Value::MapOf(std::move(m)); }
Value Arr(Value::List l) { return Value::ListOf(std::move(l)); }

TEST(ValueTest, KindsAndEquality) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_TRUE(Value::Bool(false).is_bool());
  EXPECT_TRUE(Value::Int(3).is_int());
  EXPECT_TRUE(Value::Double(3).is_double());
  EXPECT_TRUE(Value::String("").is_string());
  EXPECT_TRUE(Arr({}).is_list());
  EXPECT_TRUE(Obj({}).is_map());
  EXPECT_NE(Value::Int(1), Value::Double(1.0));
  EXPECT_NE(Value::Int(1), Value::Bool(true));
  EXPECT_EQ(Arr({Value::Int(1), Value::String("a")}),
            Arr({Value::Int(1), Value::String("a")}));
  EXPECT_NE(Arr({Value::Int(1)}), Arr({Value::Int(2)}));
  EXPECT_EQ(Obj({{"a", Value::Null()}}), Obj({{"a", Value::Null()}}));
  EXPECT_NE(Obj({{"a", Value::Null()}}), Obj({{"b", Value::Null()}}));
  EXPECT_EQ(KindName(Value::Kind::kMap), "map");
  EXPECT_EQ(Value::Double(1.5).number_value(), 1.5);
  EXPECT_EQ(Value::Int(2).number_value(), 2.0);
}

TEST(ValueTest, ParseJsonEveryKind) {
  absl::StatusOr<Value> v = ParseJson(
      R"({"n": null, "b": true, "i": -7, "u": 18446744073709551615,
          "d": 0.25, "s": "x", "l": [1, "a"], "m": {"k": {}}})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v,
            Obj({{"n", Value::Null()},
                 {"b", Value::Bool(true)},
                 {"i", Value::Int(-7)},
                 // Too large for int64: a double, so it fails integer checks.
                 {"u", Value::Double(18446744073709551615.0)},
                 {"d", Value::Double(0.25)},
                 {"s", Value::String("x")},
                 {"l", Arr({Value::Int(1), Value::String("a")})},
                 {"m", Obj({{"k", Obj({})}})}}));
  EXPECT_FALSE(ParseJson("{").ok());
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson("allow").ok());
}

TEST(ValueTest, JsonRoundTrip) {
  Value v = Obj({{"a", Arr({Value::Int(1), Value::Double(2.5), Value::Null(),
                            Value::Bool(false), Value::String("s")})}});
  EXPECT_EQ(FromJson(ToJson(v)), v);
  EXPECT_EQ(v.ToJsonText(), R"({"a":[1,2.5,null,false,"s"]})");
}

TEST(ValueTest, ParseOptionsJsonKeepsFileOrder) {
  absl::StatusOr<OptionList> options =
      ParseOptionsJson(R"({"watcher": true, "tool_timeout_ms": 5, "a": "x"})");
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_EQ(options->size(), 3u);
  EXPECT_EQ((*options)[0].first, "watcher");
  EXPECT_EQ((*options)[0].second, Value::Bool(true));
  EXPECT_EQ((*options)[1].first, "tool_timeout_ms");
  EXPECT_EQ((*options)[1].second, Value::Int(5));
  EXPECT_EQ((*options)[2].first, "a");
  EXPECT_FALSE(ParseOptionsJson("[1, 2]").ok());
  EXPECT_FALSE(ParseOptionsJson("{nope").ok());
}

TEST(ValueTest, ParseOptionsDocumentNamesTheSourceLineAndColumn) {
  absl::StatusOr<OptionList> options = ParseOptionsDocument(
      "config: default_options_json", R"({"tool_timeout_ms": 5000})");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(*options, (OptionList{{"tool_timeout_ms", Value::Int(5000)}}));
  // The same document as ParseOptionsJson reads.
  EXPECT_EQ(*options, *ParseOptionsJson(R"({"tool_timeout_ms": 5000})"));

  absl::StatusOr<OptionList> syntax =
      ParseOptionsDocument("--options o.json", "{\n  \"a\": 1,\n  \"b\" 2\n}");
  ASSERT_FALSE(syntax.ok());
  EXPECT_THAT(std::string(syntax.status().message()),
              ::testing::StartsWith(
                  "--options o.json: invalid JSON at line 3, column 7: "));
  absl::StatusOr<OptionList> list = ParseOptionsDocument("src", "[1, 2]");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().message(),
            "src: options: expected a JSON object of option keys and values");
  EXPECT_FALSE(ParseOptionsDocument("src", "").ok());
}

struct KeyValueCase {
  std::string arg;
  std::string key;
  Value value;
};

TEST(ValueTest, ParseKeyValue) {
  const std::vector<KeyValueCase> cases = {
      {"tool_timeout_ms=500", "tool_timeout_ms", Value::Int(500)},
      {"a=-3", "a", Value::Int(-3)},
      {"a=1.5", "a", Value::Double(1.5)},
      {"a=1e3", "a", Value::Double(1000)},
      {"watcher=true", "watcher", Value::Bool(true)},
      {"watcher=false", "watcher", Value::Bool(false)},
      {"llm_model=null", "llm_model", Value::Null()},
      {"llm_model=\"null\"", "llm_model", Value::String("null")},
      {"p=allow", "p", Value::String("allow")},
      {"p=True", "p", Value::String("True")},
      {"p=", "p", Value::String("")},
      {"p= 7 ", "p", Value::Int(7)},
      {"p=1.5.2", "p", Value::String("1.5.2")},
      {"p=512M", "p", Value::String("512M")},
      {"p=a=b", "p", Value::String("a=b")},
      {"p=[\"a\",\"b\"]", "p", Value::Strings({"a", "b"})},
      {"p=[\"a\",", "p", Value::String("[\"a\",")},
      {"p={\"path\":\"/x\"}", "p", Obj({{"path", Value::String("/x")}})},
      {"=1", "", Value::Int(1)},
      {" k =1", " k ", Value::Int(1)},
  };
  for (const KeyValueCase& c : cases) {
    absl::StatusOr<std::pair<std::string, Value>> kv = ParseKeyValue(c.arg);
    ASSERT_TRUE(kv.ok()) << c.arg << ": " << kv.status();
    EXPECT_EQ(kv->first, c.key) << c.arg;
    EXPECT_EQ(kv->second, c.value)
        << c.arg << " gave " << kv->second.ToJsonText();
  }
}

TEST(ValueTest, ParseKeyValueWithoutEqualsIsAnInvalidRuntimeOpt) {
  absl::StatusOr<std::pair<std::string, Value>> kv = ParseKeyValue("watcher");
  ASSERT_FALSE(kv.ok());
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.status().message(),
            R"(invalid_runtime_opt{key: "watcher", reason: )"
            R"("expected_key_value_tuple"})");
  EXPECT_THAT(
      GetInvalidRuntimeOpt(kv.status()),
      Eq(InvalidRuntimeOpt::Simple("watcher", "expected_key_value_tuple")));

  // A non-UTF-8 argument keeps its structured error, the key hex-escaped.
  kv = ParseKeyValue("watch\xe9r");
  ASSERT_FALSE(kv.ok());
  EXPECT_THAT(
      GetInvalidRuntimeOpt(kv.status()),
      Eq(InvalidRuntimeOpt::Simple("watch\\xe9r", "expected_key_value_tuple")));

  absl::StatusOr<OptionList> list =
      ParseKeyValues({"a=1", "broken", "also broken"});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(GetInvalidRuntimeOpt(list.status())->key, "broken");

  list = ParseKeyValues({"a=1", "b=x"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list,
            (OptionList{{"a", Value::Int(1)}, {"b", Value::String("x")}}));
}

TEST(ValueTest, ProtoRoundTrip) {
  Value v =
      Obj({{"n", Value::Null()},
           {"l", Arr({Value::Int(-1), Value::Double(0.5), Value::Bool(true),
                      Value::String("s"), Obj({{"x", Arr({})}})})}});
  proto::OptionValue p = ToProto(v);
  proto::OptionValue reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(p.SerializeAsString()));
  EXPECT_EQ(FromProto(reparsed), v);
}

TEST(ValueTest, ProtoFromTextAndUnsetKindIsNull) {
  proto::RuntimeOptions options;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        options {
          key: "a"
          value { int_value: 5 }
        }
        options { key: "b" }
        options {
          key: "c"
          value { null_value: OPTION_NULL }
        }
        options {
          key: "d"
          value {
            list_value {
              values { string_value: "x" }
              values {
                map_value {
                  fields {
                    key: "k"
                    value { bool_value: true }
                  }
                }
              }
            }
          }
        }
      )pb",
      &options));
  OptionList list = OptionsFromProto(options);
  EXPECT_EQ(
      list,
      (OptionList{
          {"a", Value::Int(5)},
          {"b", Value::Null()},
          {"c", Value::Null()},
          {"d", Arr({Value::String("x"), Obj({{"k", Value::Bool(true)}})})},
      }));
  EXPECT_EQ(OptionsFromProto(OptionsToProto(list)), list);
}

}  // namespace
}  // namespace jcs::runtime
