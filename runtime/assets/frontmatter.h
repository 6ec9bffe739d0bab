// YAML frontmatter of a Markdown asset (spec §6): an optional block between a
// first line "---" and the next line "---" (or "..."), parsed with yaml-cpp
// and converted to JSON, and the Markdown body after it.
//
// Conversion: mappings -> objects (keys are the scalar text; a non-scalar key
// is an error), sequences -> arrays, scalars -> null ("~", "null", empty
// plain), true/false, integers (decimal, within int64), numbers, else
// strings; a quoted scalar is always a string. The frontmatter must be a
// mapping (or empty, giving {}).
//
// Text: a NUL byte anywhere in the frontmatter is an error, and so is a
// scalar or key that yaml-cpp hands back as invalid UTF-8 (escapes such as
// "\\xA0" or a NUL inside quotes would otherwise make JSON that cannot be
// serialized).
//
// Bounds (the file is hostile): a YAML alias expands to a copy of its anchor,
// so a few lines of aliases can describe billions of nodes ("billion
// laughs"); conversion stops with an error past kMaxFrontmatterNodes nodes or
// kMaxFrontmatterDepth levels, before allocating them.
#ifndef JCS_RUNTIME_ASSETS_FRONTMATTER_H_
#define JCS_RUNTIME_ASSETS_FRONTMATTER_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime::assets {

inline constexpr size_t kMaxFrontmatterNodes = 10000;
inline constexpr int kMaxFrontmatterDepth = 32;

struct Frontmatter {
  bool present = false;  // the text starts with a "---" line
  nlohmann::json data = nlohmann::json::object();
  std::string body;  // the text after the closing line (all of it if absent)
};

// InvalidArgument naming the problem ("unterminated frontmatter", "line 3,
// column 5: ...", "frontmatter is not a mapping", "more than 10000 nodes").
absl::StatusOr<Frontmatter> ParseFrontmatter(absl::string_view text);

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_FRONTMATTER_H_
