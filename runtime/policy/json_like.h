// The one rule both argument scanners (path_policy, network_policy) use for
// strings that may carry a serialized document (spec §3.2, §3.5): a string
// whose first non-blank character is '{', '[' or '"' is decoded as JSON, with
// its nesting cut at a depth budget so a hostile argument cannot build an
// unbounded document.
#ifndef JCS_RUNTIME_JSON_LIKE_H_
#define JCS_RUNTIME_JSON_LIKE_H_

#include <optional>
#include <string_view>

#include "nlohmann/json.hpp"

namespace jcs::runtime {

// nullopt when `text` does not look like JSON, is longer than `max_bytes`, or
// does not parse. Objects and arrays nested deeper than `max_depth` levels
// are dropped from the result and *cut is set (when given).
std::optional<nlohmann::json> DecodeJsonLike(std::string_view text,
                                             size_t max_bytes, int max_depth,
                                             bool* cut = nullptr);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_JSON_LIKE_H_
