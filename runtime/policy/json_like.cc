#include "runtime/policy/json_like.h"

namespace jcs::runtime {

std::optional<nlohmann::json> DecodeJsonLike(std::string_view text,
                                             size_t max_bytes, int max_depth,
                                             bool* cut) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text.size() > max_bytes) {
    return std::nullopt;
  }
  const char c = text[first];
  if (c != '{' && c != '[' && c != '"') return std::nullopt;
  bool was_cut = false;
  nlohmann::json::parser_callback_t limit =
      [max_depth, &was_cut](int depth, nlohmann::json::parse_event_t event,
                            nlohmann::json&) {
        if ((event == nlohmann::json::parse_event_t::object_start ||
             event == nlohmann::json::parse_event_t::array_start) &&
            depth >= max_depth) {
          was_cut = true;
          return false;
        }
        return true;
      };
  nlohmann::json decoded =
      nlohmann::json::parse(text.begin(), text.end(), limit,
                            /*allow_exceptions=*/false);
  if (decoded.is_discarded()) return std::nullopt;
  if (cut != nullptr && was_cut) *cut = true;
  return decoded;
}

}  // namespace jcs::runtime
