// Conversation signals (spec §7): the canonical event names and the
// normalization of a signal that enters through the control API.
//
// A signal is a JSON object {type, id?, data?, meta?, extensions?, source?,
// subject?, time?, specversion?, datacontenttype?}. Its payload sits in
// `data`; any other top-level field is a flat payload field and is refused
// (missing_data_envelope), so a caller cannot smuggle fields past the
// envelope. Errors are InvalidArgument statuses "<reason>: <detail>":
//   invalid_signal          not a JSON object, or nested deeper than
//                           kMaxSignalDepth
//   missing_type            no `type`
//   invalid_type            `type` not a string, or not a canonical name
//   reserved_type           conversation.cmd.* (the runtime's own commands)
//   external_type_not_allowed  canonical, but not one a client may send
//   missing_data_envelope   a flat field, or `data` not an object
//   invalid_signal_id / invalid_meta / invalid_correlation_id
//   invalid_signal_data     the type's required data fields (below)
// Clients may send conversation.user.message ({content: string, llm?}),
// conversation.cancel ({reason?: string}), conversation.resume and
// conversation.tool.requested ({name, args?, meta?, call_id?}: an agent that
// drives its own model and wants jcs to run a tool; it goes through the same
// policy as RunTool, so it grants nothing RunTool does not).
//
// The correlation id comes from meta.correlation_id, else
// extensions.correlation_id, else data.metadata.correlation_id; when none is
// given one is generated ("corr-" + 20 hex, as the tool runtime does).
#ifndef JCS_RUNTIME_CONVERSATION_SIGNAL_H_
#define JCS_RUNTIME_CONVERSATION_SIGNAL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime::conversation {

inline constexpr size_t kMaxSignalIdBytes = 128;
inline constexpr size_t kMaxCorrelationIdBytes = 128;
// Arrays and objects nest at most this deep in a signal: copying, dumping and
// redacting a JSON document recurse, and a 256 KiB signal of brackets would
// otherwise take the daemon's stack.
inline constexpr int kMaxSignalDepth = 64;

struct Signal {
  std::string id;
  std::string type;  // canonical, "conversation."-prefixed
  nlohmann::json data = nlohmann::json::object();
  nlohmann::json meta = nlohmann::json::object();  // extensions merged in
  std::string correlation_id;
};

// True for every canonical conversation.* name of spec §7.
bool IsCanonicalType(std::string_view type);
// The types a client may send (see the file comment).
bool IsExternalType(std::string_view type);

// Refuses (invalid_signal: nested deeper than 64 levels) a deeper document.
absl::StatusOr<Signal> NormalizeSignal(const nlohmann::json& raw);

// The same check on JSON text before it is parsed (a linear scan, no
// recursion): what the daemon runs on every signal it receives.
absl::Status CheckSignalTextDepth(std::string_view text);

// "sig-" + 20 hex from the kernel's CSPRNG.
std::string NewSignalId();

}  // namespace jcs::runtime::conversation

#endif  // JCS_RUNTIME_CONVERSATION_SIGNAL_H_
