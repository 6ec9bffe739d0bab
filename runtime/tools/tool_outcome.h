// The outcome of one tool's own work (an in-process tool or a jailed run),
// before the runtime adds the response envelope (project, correlation id,
// duration, risk flags).
#ifndef JCS_RUNTIME_TOOL_OUTCOME_H_
#define JCS_RUNTIME_TOOL_OUTCOME_H_

#include <string>
#include <utility>

#include "nlohmann/json.hpp"

namespace jcs::runtime {

struct ToolOutcome {
  bool ok = false;
  // The tool's result document (ok only).
  nlohmann::json result = nlohmann::json::object();
  // Stable machine reason when !ok: "asset_not_found", "not_found",
  // "output_too_large", ...
  std::string reason;
  // Structured detail for the failure (field names, sizes, limits).
  nlohmann::json detail = nlohmann::json::object();

  static ToolOutcome Ok(nlohmann::json result) {
    ToolOutcome outcome;
    outcome.ok = true;
    outcome.result = std::move(result);
    return outcome;
  }
  static ToolOutcome Fail(std::string reason,
                          nlohmann::json detail = nlohmann::json::object()) {
    ToolOutcome outcome;
    outcome.reason = std::move(reason);
    outcome.detail = std::move(detail);
    return outcome;
  }
};

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOL_OUTCOME_H_
