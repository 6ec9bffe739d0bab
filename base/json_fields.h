// Reading one member of a JSON object that came from outside (a client's
// request, a tool's result, a journal row) without ever throwing.
//
// nlohmann's `object.value(key, fallback)` throws type_error when the key is
// present with another type (302) or when `object` is not an object (306).
// The daemon does not catch exceptions, so one A2A request with
// `"kind": []` aborted it (found by //protocol/a2a:rpc_fuzz). These return
// the fallback instead: a member of the wrong type reads as absent, and the
// caller's own check (a required field, an expected value) then names it.
#ifndef JCS_BASE_JSON_FIELDS_H_
#define JCS_BASE_JSON_FIELDS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace jcs::json_fields {

// object[key] when `object` is an object that has `key`; else a null.
const nlohmann::json& Member(const nlohmann::json& object,
                             std::string_view key);

// object[key] when it is a string; else `fallback`.
std::string String(const nlohmann::json& object, std::string_view key,
                   std::string_view fallback = "");

// object[key] when it is a boolean; else `fallback`.
bool Bool(const nlohmann::json& object, std::string_view key, bool fallback);

// object[key] when it is an integer that fits int64_t; else `fallback`.
int64_t Int(const nlohmann::json& object, std::string_view key,
            int64_t fallback);

// object[key] when it is an object; else an empty object.
nlohmann::json Object(const nlohmann::json& object, std::string_view key);

// object[key] when it is an array; else an empty array.
nlohmann::json Array(const nlohmann::json& object, std::string_view key);

}  // namespace jcs::json_fields

#endif  // JCS_BASE_JSON_FIELDS_H_
