#include "runtime/conversation/adapter_factory.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "runtime/conversation/deterministic_adapter.h"

namespace jcs::runtime::conversation {

std::string AdapterName(const ValidatedOptions& options) {
  if (!options.llm_adapter.is_string()) return "";
  return absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(options.llm_adapter.string_value()));
}

absl::StatusOr<std::unique_ptr<LlmAdapter>> MakeAdapter(
    EventLoop* loop, const ValidatedOptions& options) {
  const std::string name = AdapterName(options);
  if (name == "deterministic") {
    return std::make_unique<DeterministicAdapter>(loop);
  }
  if (name == "openai") {
    return absl::UnavailableError(
        "llm_adapter_unavailable: the openai adapter is not built into this "
        "daemon yet; use llm_adapter \"deterministic\"");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid_llm_adapter: ",
      name.empty() ? std::string("expected a string") : name.substr(0, 64),
      " (known: deterministic, openai)"));
}

}  // namespace jcs::runtime::conversation
