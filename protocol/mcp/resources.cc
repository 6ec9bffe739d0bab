#include "protocol/mcp/resources.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace jcs::protocol::mcp {
namespace {

constexpr std::string_view kPrefix = "jcs://assets/";

bool Unreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '~' || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = HexValue(text[i + 1]);
    const int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

std::string AssetUri(std::string_view type, std::string_view name) {
  std::string uri = std::string(kPrefix) + std::string(type) + "/";
  for (const char c : name) {
    if (Unreserved(c) || c == '/') {
      uri += c;
    } else {
      absl::StrAppend(&uri, "%",
                      absl::AsciiStrToUpper(absl::StrCat(absl::Hex(
                          static_cast<unsigned char>(c), absl::kZeroPad2))));
    }
  }
  return uri;
}

std::optional<std::pair<std::string, std::string>> ParseAssetUri(
    std::string_view uri) {
  if (uri.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  uri.remove_prefix(kPrefix.size());
  const size_t slash = uri.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string type(uri.substr(0, slash));
  if (std::find(std::begin(kAssetTypes), std::end(kAssetTypes), type) ==
      std::end(kAssetTypes)) {
    return std::nullopt;
  }
  // Each segment decoded on its own: "%2F" is a byte of a name, never a
  // separator.
  std::string name;
  const std::string_view rest = uri.substr(slash + 1);
  for (absl::string_view segment :
       absl::StrSplit(absl::string_view(rest.data(), rest.size()), '/')) {
    std::optional<std::string> decoded =
        PercentDecode(std::string_view(segment.data(), segment.size()));
    if (!decoded.has_value() || decoded->empty() || *decoded == "." ||
        *decoded == ".." || decoded->find('/') != std::string::npos ||
        decoded->find('\0') != std::string::npos) {
      return std::nullopt;
    }
    if (!name.empty()) name += '/';
    name += *decoded;
  }
  if (name.empty() ||
      (type != "skill_graph" && name.find('/') != std::string::npos)) {
    return std::nullopt;
  }
  return std::make_pair(type, name);
}

nlohmann::json AssetResource(const nlohmann::json& item) {
  const auto field = [&item](const char* key) -> std::string {
    if (!item.is_object()) return "";
    const auto it = item.find(key);
    return it != item.end() && it->is_string() ? it->get<std::string>() : "";
  };
  const std::string type = field("type");
  const std::string name = field("name");
  const std::string path = field("path");
  return {
      {"uri", AssetUri(type, name)},
      {"name", absl::StrCat(type, "/", name)},
      {"description", absl::StrCat("the project's ", type, " asset ", path)},
      {"mimeType", "text/markdown"}};
}

}  // namespace jcs::protocol::mcp
