// Tool names for the OpenAI-compatible API, which accepts only function
// names matching ^[a-zA-Z0-9_-]{1,64}$, while jcs's catalog names have dots
// ("fs.read", "git.status").
//
// The mapping is built per request from the tool catalog sent with it, so it
// is a bijection over that catalog: "fs.read" -> "fs_read" (every character
// outside the pattern becomes '_'), and when that name is taken by another
// catalog tool, is empty, or is longer than 64 characters, the name is cut
// and suffixed with '_' and 8 hex digits of a hash of the original, so two
// tools never share an API name. A readable name matters: the model chooses
// tools by their names.
#ifndef JCS_RUNTIME_CONVERSATION_OPENAI_TOOL_NAMES_H_
#define JCS_RUNTIME_CONVERSATION_OPENAI_TOOL_NAMES_H_

#include <map>
#include <string>
#include <vector>

namespace jcs::runtime::conversation {

inline constexpr size_t kMaxApiToolNameLength = 64;

// True for a name the API accepts.
bool IsValidApiToolName(const std::string& name);

class ToolNameMap {
 public:
  explicit ToolNameMap(const std::vector<std::string>& catalog_names);

  // The API name of a catalog tool. A name not in the catalog (e.g. one in an
  // older assistant turn of the history) is mapped the same readable way.
  std::string ToApi(const std::string& catalog_name) const;
  // The catalog name of an API name the model returned. A name that no
  // catalog tool maps to is returned unchanged: the tool runtime then
  // rejects it as an unknown tool, and the model is told so.
  std::string FromApi(const std::string& api_name) const;

 private:
  std::map<std::string, std::string> to_api_;
  std::map<std::string, std::string> from_api_;
};

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_OPENAI_TOOL_NAMES_H_
