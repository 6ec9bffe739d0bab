// Fuzzes the JSON-looking-string decoder both argument scanners use on
// untrusted strings. The first input byte picks the depth budget (0..15) so
// the cut path is reached; the rest is the string. Invariants beyond "no
// crash": nothing is decoded from text that does not start (after blanks)
// with '{', '[' or '"', and a decoded document never nests deeper than the
// budget.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nlohmann/json.hpp"
#include "runtime/policy/json_like.h"
#include "sanitizers/fuzz_check.h"

namespace {

// Levels of objects/arrays in `value` (a scalar is 0), without recursion
// deeper than `limit + 1` levels.
int Depth(const nlohmann::json& value, int limit) {
  if (!value.is_structured() || limit < 0) return 0;
  int deepest = 0;
  for (const nlohmann::json& child : value) {
    const int d = Depth(child, limit - 1);
    if (d > deepest) deepest = d;
  }
  return 1 + deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int max_depth = data[0] % 16;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  bool cut = false;
  const std::optional<nlohmann::json> decoded = jcs::runtime::DecodeJsonLike(
      text, /*max_bytes=*/1 << 20, max_depth, &cut);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos ||
      (text[first] != '{' && text[first] != '[' && text[first] != '"')) {
    FUZZ_CHECK(!decoded.has_value() && !cut);
    return 0;
  }
  if (!decoded.has_value()) return 0;
  FUZZ_CHECK(Depth(*decoded, max_depth + 1) <= max_depth);
  // The byte budget refuses rather than truncates.
  FUZZ_CHECK(!jcs::runtime::DecodeJsonLike(text, text.size() - 1, max_depth)
                  .has_value() ||
             text.empty());
  return 0;
}
