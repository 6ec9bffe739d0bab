// The A2A methods over one project's conversations (issue 15), for one
// client: a Backend reaches the project (the daemon's control API in
// supervisor/a2a_http.cc, a fake in tests).
//
// Every operation first asks Backend::Authorize with its label (the
// original's, spec §8): agent.card (GET of the card), task.create
// (message/send or message/stream without a taskId), message.send
// (message/send, message/stream), task.subscribe (message/stream,
// tasks/resubscribe), task.get (tasks/get), task.cancel (tasks/cancel). A
// PermissionDenied answer is JSON-RPC error kProtocolDenied and nothing else
// happens. task.unsubscribe has no A2A 0.3 method: a client unsubscribes by
// closing the stream, which needs no permission.
#ifndef JCS_PROTOCOL_A2A_GATEWAY_H_
#define JCS_PROTOCOL_A2A_GATEWAY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "protocol/a2a/mapping.h"
#include "protocol/a2a/rpc.h"

namespace jcs::protocol::a2a {

// A conversation's events, oldest first, bounded (the oldest are dropped
// past the bound: the final state is read from the conversation anyway).
class Subscription {
 public:
  virtual ~Subscription() = default;
  // The next event's payload, or nullopt after `timeout`.
  virtual std::optional<nlohmann::json> Next(absl::Duration timeout) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // OK, PermissionDenied (the project's protocol_allowlist refuses A2A), or
  // another error.
  virtual absl::Status Authorize(const std::string& operation) = 0;
  // The project's tools [{name, description, input_schema}] and asset counts
  // {skills, commands, workflows}.
  virtual absl::StatusOr<nlohmann::json> Tools() = 0;
  virtual absl::StatusOr<nlohmann::json> AssetCounts() = 0;
  // AlreadyExists when the conversation exists.
  virtual absl::Status StartConversation(const std::string& id) = 0;
  // The conversation's status (running, idle, cancelled, stopped); NotFound
  // when there is none.
  virtual absl::StatusOr<std::string> Status(const std::string& id) = 0;
  virtual absl::StatusOr<nlohmann::json> Timeline(const std::string& id) = 0;
  // Ingests `signal` and waits until the conversation settled.
  virtual absl::Status Call(const std::string& id,
                            const nlohmann::json& signal) = 0;
  // Ingests `signal` without waiting.
  virtual absl::Status Cast(const std::string& id,
                            const nlohmann::json& signal) = 0;
  // The conversation's events from now on.
  virtual std::unique_ptr<Subscription> Subscribe(const std::string& id) = 0;
};

// Whether `method` answers with an SSE stream.
bool Streams(Method method);

struct GatewayOptions {
  // How often a resubscribed stream checks whether the task still runs.
  absl::Duration poll_every = absl::Milliseconds(200);
  // New task ids: "a2a-" and this many random bytes in hex.
  int task_id_random_bytes = 12;
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options = {}) : options_(options) {}

  // The agent card for `info` (tools and asset counts filled in from
  // `backend`), or the JSON-RPC error document when refused.
  absl::StatusOr<nlohmann::json> Card(Backend& backend, AgentInfo info) const;

  // Serves `request`. `emit` writes one JSON-RPC response: the only one, or
  // (Streams()) one SSE event; it returns false once the client is gone,
  // which ends a stream.
  void Handle(const Request& request, Backend& backend,
              const std::function<bool(const nlohmann::json&)>& emit) const;

 private:
  const GatewayOptions options_;
};

// A JSON-RPC error document.
nlohmann::json ErrorDocument(const nlohmann::json& id, int code,
                             const std::string& message);

}  // namespace jcs::protocol::a2a

#endif  // JCS_PROTOCOL_A2A_GATEWAY_H_
