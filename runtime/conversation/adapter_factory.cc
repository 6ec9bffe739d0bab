#include "runtime/conversation/adapter_factory.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "runtime/conversation/deterministic_adapter.h"
#include "runtime/conversation/llm_openai.h"

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
    // A missing key or a bad base URL is the operator's to fix: every model
    // turn fails with llm_adapter_unavailable and says which option.
    absl::StatusOr<OpenAiOptions> openai = OpenAiOptionsFromRuntime(
        options, [](const char* variable) { return std::getenv(variable); });
    if (!openai.ok()) {
      return absl::UnavailableError(
          absl::StrCat("llm_adapter_unavailable: ", openai.status().message()));
    }
    absl::StatusOr<std::unique_ptr<OpenAiAdapter>> adapter =
        OpenAiAdapter::Create(loop, *std::move(openai));
    if (!adapter.ok()) {
      return absl::UnavailableError(absl::StrCat("llm_adapter_unavailable: ",
                                                 adapter.status().message()));
    }
    return std::unique_ptr<LlmAdapter>(*std::move(adapter));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid_llm_adapter: ",
      name.empty() ? std::string("expected a string") : name.substr(0, 64),
      " (known: deterministic, openai)"));
}

}  // namespace jcs::runtime::conversation
