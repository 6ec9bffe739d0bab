#include "runtime/tools/tool_schema.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::string Msg(const json& schema, const json& args) {
  absl::Status s = ValidateToolArgs(schema, args);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

const json kSearchSchema = json::parse(R"({
  "type": "object",
  "required": ["query"],
  "properties": {"query": {"type": "string"}, "limit": {"type": "integer",
                 "minimum": 1}}
})");

const json kNestedSchema = json::parse(R"({
  "type": "object",
  "required": ["params", "inputs"],
  "properties": {
    "params": {"type": "object", "required": ["query"],
               "properties": {"query": {"type": "string"}}},
    "inputs": {"type": "object", "required": [" file_path "],
               "properties": {"file_path": {"type": "string"}}}
  }
})");

// Spec §4.3 pinned examples, mapped to the path grammar.
TEST(ToolSchemaTest, PinnedExamples) {
  EXPECT_EQ(Msg(kNestedSchema,
                {{"params", json::object()}, {"inputs", {{"file_path", "a"}}}}),
            "invalid_tool_args: params: missing required query");
  EXPECT_EQ(Msg(kNestedSchema,
                {{"params", {{"query", 5}}}, {"inputs", {{"file_path", "a"}}}}),
            "invalid_tool_args: params.query: expected string");
  EXPECT_EQ(Msg(kNestedSchema,
                {{"params", {{"query", "q"}}}, {"inputs", json::object()}}),
            "invalid_tool_args: inputs: missing required file_path");
  EXPECT_EQ(Msg(kSearchSchema, json::object()),
            "invalid_tool_args: $: missing required query");
  EXPECT_EQ(Msg(kNestedSchema, {{"params", {{"query", "q"}}},
                                {"inputs", {{"file_path", "a"}}}}),
            "OK");
}

TEST(ToolSchemaTest, DetailedPayload) {
  auto err = ValidateToolArgsDetailed(
      kNestedSchema,
      {{"params", {{"query", 5}}}, {"inputs", {{"file_path", "a"}}}});
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, ToolArgsErrorKind::kInvalidArgType);
  EXPECT_EQ(ToolArgsErrorKindName(err->kind), "invalid_arg_type");
  EXPECT_THAT(err->path,
              ElementsAre(ToolArgsPathSegment(std::string("params")),
                          ToolArgsPathSegment(std::string("query"))));
  EXPECT_EQ(err->expected_type, "string");
  EXPECT_THAT(err->keys, IsEmpty());

  err = ValidateToolArgsDetailed(kSearchSchema, json::object());
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, ToolArgsErrorKind::kMissingRequiredArgs);
  EXPECT_EQ(ToolArgsErrorKindName(err->kind), "missing_required_args");
  EXPECT_THAT(err->path, IsEmpty());
  EXPECT_THAT(err->keys, ElementsAre("query"));

  EXPECT_FALSE(
      ValidateToolArgsDetailed(kSearchSchema, {{"query", "x"}}).has_value());
}

TEST(ToolSchemaTest, RequiredInSchemaOrderTrimmedDeduped) {
  json schema = {{"type", "object"},
                 {"required", {"zeta", " alpha ", "mid", "zeta", 7, "  "}}};
  auto err = ValidateToolArgsDetailed(schema, {{"mid", 1}});
  ASSERT_TRUE(err.has_value());
  EXPECT_THAT(err->keys, ElementsAre("zeta", "alpha"));
  EXPECT_EQ(err->ToStatus().message(),
            "invalid_tool_args: $: missing required zeta, alpha");
  EXPECT_EQ(Msg(schema, {{"zeta", 1}, {"alpha", 2}, {"mid", 3}}), "OK");
}

TEST(ToolSchemaTest, AdditionalPropertiesFalse) {
  json schema = {{"type", "object"},
                 {"properties", {{"a", {{"type", "string"}}}}},
                 {"additionalProperties", false}};
  auto err = ValidateToolArgsDetailed(schema, {{"z", 1}, {"a", "x"}, {"b", 2}});
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, ToolArgsErrorKind::kUnexpectedArgs);
  EXPECT_THAT(err->keys, ElementsAre("b", "z"));
  EXPECT_EQ(err->ToStatus().message(), "invalid_tool_args: $: unexpected b, z");
  EXPECT_EQ(Msg(schema, {{"a", "x"}}), "OK");
  // Required is checked before unexpected keys.
  schema["required"] = {"a"};
  EXPECT_EQ(Msg(schema, {{"b", 1}}),
            "invalid_tool_args: $: missing required a");
  // Without the `false`, extra keys are fine; an object value is ignored.
  schema.erase("required");
  schema["additionalProperties"] = true;
  EXPECT_EQ(Msg(schema, {{"b", 1}}), "OK");
  schema["additionalProperties"] = json::object();
  EXPECT_EQ(Msg(schema, {{"b", 1}}), "OK");
  // Nested.
  json outer = {
      {"type", "object"},
      {"properties",
       {{"opts", {{"type", "object"}, {"additionalProperties", false}}}}}};
  EXPECT_EQ(Msg(outer, {{"opts", {{"x", 1}}}}),
            "invalid_tool_args: opts: unexpected x");
}

TEST(ToolSchemaTest, Primitives) {
  auto schema_of = [](const std::string& type) {
    return json{{"type", "object"}, {"properties", {{"v", {{"type", type}}}}}};
  };
  struct Case {
    std::string type;
    json ok;
    json bad;
  };
  std::vector<Case> cases = {
      {"string", "s", 1},
      {"integer", -3, "3"},
      {"integer", 18446744073709551615ULL, true},
      {"number", 1.5, "1.5"},
      {"number", 2, nullptr},
      {"boolean", false, 0},
      {"null", nullptr, false},
      {"object", json::object(), json::array()},
      {"array", json::array(), json::object()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.type);
    EXPECT_EQ(Msg(schema_of(c.type), {{"v", c.ok}}), "OK");
    EXPECT_EQ(Msg(schema_of(c.type), {{"v", c.bad}}),
              "invalid_tool_args: v: expected " + c.type);
  }
}

TEST(ToolSchemaTest, IntegerVersusNumber) {
  json schema = {{"type", "object"},
                 {"properties", {{"n", {{"type", "integer"}}}}}};
  EXPECT_EQ(Msg(schema, json::parse(R"({"n": 2})")), "OK");
  // Decision: an integral float is an integer (JSON Schema semantics).
  EXPECT_EQ(Msg(schema, json::parse(R"({"n": 2.0})")), "OK");
  EXPECT_EQ(Msg(schema, json::parse(R"({"n": 1.5})")),
            "invalid_tool_args: n: expected integer");
  EXPECT_EQ(Msg(schema, json::parse(R"({"n": -0.25})")),
            "invalid_tool_args: n: expected integer");
  EXPECT_EQ(Msg(schema, json::parse(R"({"n": 1e300})")), "OK");
}

TEST(ToolSchemaTest, ArraysReportIndex) {
  json schema = json::parse(R"({
    "type": "object",
    "properties": {
      "files": {"type": "array", "items": {"type": "string"}},
      "rows": {"type": "array", "items": {"type": "object",
               "required": ["id"],
               "properties": {"id": {"type": "integer"},
                              "tags": {"type": "array",
                                       "items": {"type": "string"}}}}}
    }
  })");
  EXPECT_EQ(Msg(schema, {{"files", {"a", "b", 3}}}),
            "invalid_tool_args: files[2]: expected string");
  auto err = ValidateToolArgsDetailed(schema, {{"files", {"a", "b", 3}}});
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, ToolArgsErrorKind::kInvalidArrayItemType);
  EXPECT_EQ(ToolArgsErrorKindName(err->kind), "invalid_array_item_type");
  EXPECT_THAT(err->path, ElementsAre(ToolArgsPathSegment(std::string("files")),
                                     ToolArgsPathSegment(size_t{2})));

  EXPECT_EQ(Msg(schema, {{"files", "a"}}),
            "invalid_tool_args: files: expected array");
  EXPECT_EQ(Msg(schema, {{"rows", {{{"id", 1}}, json::object()}}}),
            "invalid_tool_args: rows[1]: missing required id");
  EXPECT_EQ(Msg(schema, {{"rows", {{{"id", 1}, {"tags", {"x", false}}}}}}),
            "invalid_tool_args: rows[0].tags[1]: expected string");
  EXPECT_EQ(Msg(schema, {{"rows", {{{"id", "1"}}}}}),
            "invalid_tool_args: rows[0].id: expected integer");
  EXPECT_EQ(Msg(schema, {{"rows", {{{"id", 1}, {"tags", {"x"}}}}},
                         {"files", json::array()}}),
            "OK");
}

TEST(ToolSchemaTest, TopLevelArraySchema) {
  json schema = {{"type", "array"}, {"items", {{"type", "integer"}}}};
  EXPECT_EQ(Msg(schema, {1, 2}), "OK");
  EXPECT_EQ(Msg(schema, {1, "x"}), "invalid_tool_args: [1]: expected integer");
  EXPECT_EQ(Msg(schema, json::object()),
            "invalid_tool_args: $: expected array");
  EXPECT_EQ(Msg(kSearchSchema, json::array()),
            "invalid_tool_args: $: expected object");
}

TEST(ToolSchemaTest, OnlyObjectAndArrayValidatedAtTopLevel) {
  EXPECT_EQ(Msg({{"type", "string"}}, 5), "OK");
  EXPECT_EQ(Msg({{"required", {"x"}}}, json::object()), "OK");  // no type
  EXPECT_EQ(Msg(json::object(), json::object()), "OK");
  EXPECT_EQ(Msg(nullptr, json::object()), "OK");
}

TEST(ToolSchemaTest, UnknownTypesAndKeywordsPass) {
  json schema = json::parse(R"({
    "type": "object",
    "properties": {
      "a": {"type": "uuid"},
      "b": {"type": ["string", "null"]},
      "c": {},
      "n": {"type": "integer", "minimum": 10},
      "e": {"type": "string", "enum": ["x"]},
      "p": {"type": "string", "pattern": "^z$"}
    }
  })");
  EXPECT_EQ(
      Msg(schema,
          {{"a", 1}, {"b", 1}, {"c", 1}, {"n", 1}, {"e", "y"}, {"p", "q"}}),
      "OK");
}

bool TypeIs(const json& schema, const std::string& type) {
  return schema.is_object() && schema.value("type", json()) == type;
}

TEST(ToolSchemaTest, MalformedSchemasDoNotCrash) {
  std::vector<json> schemas = {
      {{"type", "object"}, {"required", "query"}},
      {{"type", "object"}, {"required", {{{"k", 1}}, nullptr, 3}}},
      {{"type", "object"}, {"properties", "nope"}},
      {{"type", "object"}, {"properties", {{"q", "string"}}}},
      {{"type", "object"}, {"properties", {{"q", {{"type", 1}}}}}},
      {{"type", "object"}, {"additionalProperties", "false"}},
      {{"type", "array"}, {"items", "string"}},
      {{"type", "array"}, {"items", {1, 2}}},
      {{"type", 7}},
      json::array({1, 2}),
      "object",
  };
  for (const json& schema : schemas) {
    SCOPED_TRACE(schema.dump());
    const json args = TypeIs(schema, "array")
                          ? json::array({1, "a", json::object()})
                          : json{{"q", 1}, {"x", {1, 2}}};
    EXPECT_EQ(Msg(schema, args), "OK");
  }
  // `properties` not an object counts as empty for additionalProperties.
  json strict = {{"type", "object"},
                 {"properties", "nope"},
                 {"additionalProperties", false}};
  EXPECT_EQ(Msg(strict, {{"q", 1}}), "invalid_tool_args: $: unexpected q");
}

TEST(ToolSchemaTest, OddKeysAreQuoted) {
  json schema = {{"type", "object"},
                 {"required", {"a.b", "ok_key-1"}},
                 {"properties", {{"x y", {{"type", "string"}}}}}};
  EXPECT_EQ(Msg(schema, json::object()),
            "invalid_tool_args: $: missing required \"a.b\", ok_key-1");
  EXPECT_EQ(Msg(schema, {{"a.b", 1}, {"ok_key-1", 1}, {"x y", 1}}),
            "invalid_tool_args: \"x y\": expected string");
  EXPECT_EQ(FormatToolArgsPath({std::string("a"), size_t{0}, std::string("")}),
            "a[0].\"\"");
  EXPECT_EQ(FormatToolArgsPath({}), "$");
}

json DeepSchema(int levels) {
  json schema = {{"type", "string"}};
  for (int i = 0; i < levels; ++i) {
    schema = {{"type", "object"}, {"properties", {{"a", schema}}}};
  }
  return schema;
}

json DeepArgs(int levels) {
  json args = "leaf";
  for (int i = 0; i < levels; ++i) args = {{"a", args}};
  return args;
}

TEST(ToolSchemaTest, DeepNestingBounded) {
  // kMaxToolArgsDepth levels below the root are fine.
  EXPECT_EQ(Msg(DeepSchema(kMaxToolArgsDepth), DeepArgs(kMaxToolArgsDepth)),
            "OK");
  auto err = ValidateToolArgsDetailed(DeepSchema(kMaxToolArgsDepth + 1),
                                      DeepArgs(kMaxToolArgsDepth + 1));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, ToolArgsErrorKind::kNestingTooDeep);
  EXPECT_EQ(err->path.size(), static_cast<size_t>(kMaxToolArgsDepth + 1));
  std::string msg(err->ToStatus().message());
  EXPECT_EQ(msg.rfind("invalid_tool_args: a.a.a.", 0), 0u) << msg;
  EXPECT_THAT(msg, EndsWith(": nesting too deep"));

  // Very deep input with a deep schema: bounded, no crash.
  EXPECT_NE(Msg(DeepSchema(500), DeepArgs(500)), "OK");
  // Deep args without a matching schema are not walked.
  EXPECT_EQ(Msg(DeepSchema(2), DeepArgs(500)),
            "invalid_tool_args: a.a: expected string");

  // Self-similar arrays.
  json arr_schema = {{"type", "array"}};
  json arr = json::array();
  for (int i = 0; i < 100; ++i) {
    arr_schema = {{"type", "array"}, {"items", arr_schema}};
    arr = json::array({arr});
  }
  EXPECT_THAT(Msg(arr_schema, arr),
              AllOf(StartsWith("invalid_tool_args: [0][0][0]"),
                    EndsWith(": nesting too deep")));
}

}  // namespace
}  // namespace jcs::runtime
