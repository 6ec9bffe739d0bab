// Tool-argument validation against a tool's `input_schema` (spec §4.3,
// issue 4 pipeline step 1). The failure is `invalid_tool_args`.
//
// Rules:
//   - Top level: only `"type": "object"` and `"type": "array"` are validated;
//     any other or missing type passes. A top-level object schema requires
//     `args` to be an object, an array schema requires an array.
//   - Object schema, in order: `required` (missing keys, in schema order),
//     `additionalProperties: false` (keys not in `properties`, sorted), then
//     each present arg (in sorted key order) that has a property schema.
//     The first failure wins.
//   - Value schema by `type`: "object" -> must be an object, then the object
//     rules recurse; "array" -> must be an array, then each item is checked
//     against `items`; "string", "integer", "number", "boolean", "null".
//     Unknown or missing types pass. `minimum`, `enum`, `pattern` and every
//     other keyword are not enforced.
//   - "integer": JSON integers, and floats whose value is integral (2.0 is
//     an integer, 1.5 is not; JSON Schema semantics). NOTE: the original
//     rejected 2.0; no pinned case depends on it.
//   - Recursion is bounded: a value nested deeper than kMaxToolArgsDepth
//     below the root fails with "nesting too deep".
//
// Malformed schemas never crash and never fail validation by themselves:
//   - a schema (or property / items schema) that is not an object, or whose
//     `type` is not a string (including JSON Schema type arrays), is not
//     validated;
//   - `required` that is not an array is ignored; entries that are not
//     strings, or are empty after trimming, are skipped; duplicates are
//     reported once;
//   - `properties` that is not an object counts as no properties (so with
//     `additionalProperties: false` every key is unexpected);
//   - only the boolean `false` for `additionalProperties` restricts keys
//     (an object value there is ignored);
//   - missing or non-object `items` leaves items unchecked.
//
// Message grammar (Status is InvalidArgument, message is
// "invalid_tool_args: <reason>"):
//   <reason> := <path> ": missing required " <keys>
//             | <path> ": unexpected " <keys>
//             | <path> ": expected " <type>
//             | <path> ": nesting too deep"
//   <keys>   := <key> (", " <key>)*          ; missing: schema order,
//                                              unexpected: sorted
//   <path>   := "$"                           ; the root (args itself)
//             | <seg> ( "." <key> | "[" <index> "]" )*
//   <seg>    := <key> | "[" <index> "]"
//   <key>    := bare if it matches [A-Za-z0-9_-]+, otherwise a JSON string
//               literal (e.g. "a.b" or "" quoted), so paths stay unambiguous.
// Examples: `$: missing required query`, `params: missing required query`,
// `params.query: expected string`, `inputs: missing required file_path`,
// `files[2]: expected string`, `$: unexpected extra, other`.
#ifndef JCS_RUNTIME_TOOL_SCHEMA_H_
#define JCS_RUNTIME_TOOL_SCHEMA_H_

#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime {

inline constexpr int kMaxToolArgsDepth = 64;

enum class ToolArgsErrorKind {
  kMissingRequiredArgs,   // keys = missing keys (schema order)
  kUnexpectedArgs,        // keys = unexpected keys (sorted)
  kInvalidArgType,        // expected_type set; path ends in a key or is root
  kInvalidArrayItemType,  // expected_type set; path ends in an index
  kNestingTooDeep,        // path = the first segment past the limit
};

// "missing_required_args", "unexpected_args", "invalid_arg_type",
// "invalid_array_item_type", "nesting_too_deep".
absl::string_view ToolArgsErrorKindName(ToolArgsErrorKind kind);

// A key of an object, or an index into an array.
using ToolArgsPathSegment = std::variant<std::string, size_t>;
using ToolArgsPath = std::vector<ToolArgsPathSegment>;

struct ToolArgsError {
  ToolArgsErrorKind kind;
  ToolArgsPath path;              // empty = the root
  std::vector<std::string> keys;  // missing / unexpected keys
  std::string expected_type;      // for the two type kinds

  // The <reason> of the grammar above (without "invalid_tool_args: ").
  std::string Reason() const;
  // InvalidArgument("invalid_tool_args: " + Reason()).
  absl::Status ToStatus() const;
};

// Renders a path per the grammar above ("$" for the empty path).
std::string FormatToolArgsPath(const ToolArgsPath& path);

// nullopt when `args` satisfies `schema`.
std::optional<ToolArgsError> ValidateToolArgsDetailed(
    const nlohmann::json& schema, const nlohmann::json& args);

// OkStatus, or ValidateToolArgsDetailed(...)->ToStatus().
absl::Status ValidateToolArgs(const nlohmann::json& schema,
                              const nlohmann::json& args);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOL_SCHEMA_H_
