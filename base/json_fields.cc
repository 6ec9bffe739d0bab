#include "base/json_fields.h"

#include <limits>

namespace jcs::json_fields {

using nlohmann::json;

const json& Member(const json& object, std::string_view key) {
  static const json* const kNull = new json();
  if (!object.is_object()) return *kNull;
  const auto it = object.find(key);
  return it == object.end() ? *kNull : *it;
}

std::string String(const json& object, std::string_view key,
                   std::string_view fallback) {
  const json& member = Member(object, key);
  return member.is_string() ? member.get<std::string>() : std::string(fallback);
}

bool Bool(const json& object, std::string_view key, bool fallback) {
  const json& member = Member(object, key);
  return member.is_boolean() ? member.get<bool>() : fallback;
}

int64_t Int(const json& object, std::string_view key, int64_t fallback) {
  const json& member = Member(object, key);
  if (member.is_number_unsigned()) {
    const uint64_t value = member.get<uint64_t>();
    return value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? fallback
               : static_cast<int64_t>(value);
  }
  return member.is_number_integer() ? member.get<int64_t>() : fallback;
}

json Object(const json& object, std::string_view key) {
  const json& member = Member(object, key);
  return member.is_object() ? member : json::object();
}

json Array(const json& object, std::string_view key) {
  const json& member = Member(object, key);
  return member.is_array() ? member : json::array();
}

}  // namespace jcs::json_fields
