// Fuzzes the YAML frontmatter parser: asset files are written by the
// project's user (and by anything that can write into the tree). Invariants
// beyond "no crash, no runaway allocation": a result converts to JSON text
// (nlohmann would throw on invalid UTF-8 from valid UTF-8 input), the body is
// a suffix of the input, and text without a leading "---" line is all body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "runtime/assets/asset_loader.h"
#include "runtime/assets/frontmatter.h"
#include "sanitizers/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<jcs::runtime::assets::Frontmatter> f =
      jcs::runtime::assets::ParseFrontmatter(in);
  if (!f.ok()) {
    FUZZ_CHECK(!f.status().message().empty());
    // Errors end up in JSON documents (diagnostics, asset.get).
    FUZZ_CHECK(jcs::runtime::assets::IsValidUtf8(f.status().message()));
    return 0;
  }
  FUZZ_CHECK(absl::EndsWith(in, f->body));
  if (!f->present) FUZZ_CHECK(f->body == in);
  FUZZ_CHECK(f->data.is_object());
  if (jcs::runtime::assets::IsValidUtf8(in)) {
    (void)f->data.dump();  // throws (aborts) on invalid UTF-8
  }
  return 0;
}
