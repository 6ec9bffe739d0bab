// The runtime options reference (docs/runtime-options.md is generated from
// it): each key's type, meaning and whether jcs acts on it yet. Defaults are
// not written here: they come from ValidatedOptions' initializers, so the
// document shows what the validator really applies.
//
// runtime_options_reference_test checks that this table and the validator
// list the same keys, and that docs/runtime-options.md is what
// RuntimeOptionsMarkdown renders.
#ifndef JCS_RUNTIME_RUNTIME_OPTIONS_REFERENCE_H_
#define JCS_RUNTIME_RUNTIME_OPTIONS_REFERENCE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {

struct RuntimeOptionDoc {
  absl::string_view key;
  absl::string_view type;
  absl::string_view meaning;
  // Accepted and validated, but nothing in jcs reads it yet: a project that
  // sets it is told so (inert_options) instead of silently ignored.
  bool inert = false;
  // For keys whose default is not a ValidatedOptions field (project_id,
  // data_dir): the default as text.
  absl::string_view default_text = "";
};

// In the validator's order.
const std::vector<RuntimeOptionDoc>& RuntimeOptionDocs();

// The explicitly set options (options.explicit_keys) that are inert, in
// table order.
std::vector<std::string> InertOptions(const ValidatedOptions& options);

// The whole reference as Markdown (docs/runtime-options.md).
std::string RuntimeOptionsMarkdown();

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_RUNTIME_OPTIONS_REFERENCE_H_
