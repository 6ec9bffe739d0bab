#include "runtime/conversation/openai_tool_names.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace jcs::runtime::conversation {
namespace {

bool IsApiChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string Readable(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (!IsApiChar(c)) c = '_';
  }
  return out;
}

// FNV-1a: stable across runs and builds (std::hash is not), so a name the
// model saw in one turn maps back in the next.
uint32_t Fnv1a(const std::string& text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string Hashed(const std::string& name, uint32_t salt) {
  std::string suffix =
      absl::StrFormat("_%08x", Fnv1a(name) ^ (salt * 0x9e3779b9u));
  std::string base = Readable(name);
  if (base.size() > kMaxApiToolNameLength - suffix.size()) {
    base.resize(kMaxApiToolNameLength - suffix.size());
  }
  if (base.empty()) base = "tool";
  return base + suffix;
}

}  // namespace

bool IsValidApiToolName(const std::string& name) {
  if (name.empty() || name.size() > kMaxApiToolNameLength) return false;
  for (char c : name) {
    if (!IsApiChar(c)) return false;
  }
  return true;
}

ToolNameMap::ToolNameMap(const std::vector<std::string>& catalog_names) {
  // Names already valid keep themselves first, so a valid name is never
  // displaced by another tool's readable form.
  for (const std::string& name : catalog_names) {
    if (IsValidApiToolName(name) && !from_api_.count(name)) {
      to_api_[name] = name;
      from_api_[name] = name;
    }
  }
  for (const std::string& name : catalog_names) {
    if (to_api_.count(name)) continue;
    std::string api = Readable(name);
    for (uint32_t salt = 0; !IsValidApiToolName(api) || from_api_.count(api);
         ++salt) {
      api = Hashed(name, salt);
    }
    to_api_[name] = api;
    from_api_[api] = name;
  }
}

std::string ToolNameMap::ToApi(const std::string& catalog_name) const {
  auto it = to_api_.find(catalog_name);
  if (it != to_api_.end()) return it->second;
  std::string api = Readable(catalog_name);
  return IsValidApiToolName(api) ? api : Hashed(catalog_name, 0);
}

std::string ToolNameMap::FromApi(const std::string& api_name) const {
  auto it = from_api_.find(api_name);
  return it != from_api_.end() ? it->second : api_name;
}

}  // namespace jcs::runtime::conversation
