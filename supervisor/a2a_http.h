// The daemon's A2A gateway (issue 15): protocol/a2a's HTTP server whose
// backends are the control service's conversation requests, each posted to
// the event loop through a LoopBridge (supervisor/mcp_http.h) exactly like a
// control-socket request (authorization, protocol_allowlist, events), and
// whose streams get the conversations' events from an A2aEventHub the
// daemon's publisher feeds.
//
// The peer the control service sees: a Unix socket client's SO_PEERCRED
// credentials; a TCP client, which proved it holds the bearer token only the
// daemon's uid can read, acts as the daemon's uid (as MCP over HTTP). The
// token is MCP HTTP's (McpHttpToken: mcp_http_token_file or
// <state_dir>/mcp-http.token): one secret for the daemon's HTTP gateways.
#ifndef JCS_SUPERVISOR_A2A_HTTP_H_
#define JCS_SUPERVISOR_A2A_HTTP_H_

#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "proto/control.pb.h"
#include "proto/supervisor_config.pb.h"
#include "protocol/a2a/gateway.h"
#include "protocol/a2a/http_server.h"
#include "supervisor/mcp_http.h"

namespace jcs::supervisor {

// Conversation events for A2A streams. Publish runs on the event loop; each
// subscription holds at most max_queued events (the oldest are dropped: a
// stream's final state is read from the conversation, not from events).
// Thread-safe.
class A2aEventHub {
 public:
  explicit A2aEventHub(size_t max_queued = 1024) : max_queued_(max_queued) {}
  void Publish(const proto::Event& event);
  std::unique_ptr<protocol::a2a::Subscription> Subscribe(
      const std::string& project_id, const std::string& conversation_id);

 private:
  struct Queue;
  class Handle;
  const size_t max_queued_;
  std::mutex mu_;
  std::list<std::shared_ptr<Queue>> queues_;
};

// The A2A backend of project `project` as `peer`.
std::unique_ptr<protocol::a2a::Backend> MakeControlA2aBackend(
    LoopBridge* bridge, A2aEventHub* hub, std::string project,
    PeerCredentials peer);

// Starts the gateway the config asks for (nullptr when it asks for none).
absl::StatusOr<std::unique_ptr<protocol::a2a::A2aHttpServer>> StartA2aHttp(
    const proto::SupervisorConfig& config, const std::string& token,
    LoopBridge* bridge, A2aEventHub* hub);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_A2A_HTTP_H_
