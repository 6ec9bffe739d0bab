// The daemon's MCP Streamable HTTP transport (issue 15): protocol/mcp's
// McpHttpServer whose sessions' tools are the control service's, each call
// going through RequestHandler::Handle on the event loop exactly like a
// control-socket request (authorization, policy, jail, caps, events).
//
// The peer the control service sees: a Unix socket client's SO_PEERCRED
// credentials (so it gets exactly the projects it could use through the
// control socket); a TCP client, which proved it holds the bearer token that
// only the daemon's uid can read, acts as the daemon's uid.
#ifndef JCS_SUPERVISOR_MCP_HTTP_H_
#define JCS_SUPERVISOR_MCP_HTTP_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "loop/event_loop.h"
#include "proto/control.pb.h"
#include "proto/supervisor_config.pb.h"
#include "protocol/mcp/http_transport.h"
#include "supervisor/control_server.h"

namespace jcs::supervisor {

// Runs control requests on the loop from other threads and waits for their
// answers. Thread-safe.
class LoopBridge {
 public:
  LoopBridge(runtime::EventLoop* loop, RequestHandler* handler);
  // Blocks until the handler responds, or Close() (Unavailable).
  absl::StatusOr<proto::Response> Call(proto::Request request,
                                       const PeerCredentials& peer);
  // Every waiting and later Call fails at once: the loop has stopped (or is
  // about to), nothing would answer them.
  void Close();

 private:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;
  };
  runtime::EventLoop* const loop_;
  RequestHandler* const handler_;
  // Shared with the response callbacks, which may outlive the bridge.
  const std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

// The MCP sessions' watches of their projects' asset reloads (the daemon's
// side of ToolBackend::WatchTools): the daemon publishes each durable event
// here as it does to control subscribers, and every watch of the event's
// project whose project.assets_reloaded generation differs from the last one
// it saw is called. Thread-safe.
class AssetReloads {
 public:
  // Calls `changed` (on the publishing thread) for each new generation of
  // `project`'s assets, until Remove(id).
  uint64_t Add(std::string project, std::function<void()> changed);
  // Returns once no call of that watch runs or will run.
  void Remove(uint64_t id);
  void Publish(const proto::Event& event);
  size_t size() const;

 private:
  struct Watch {
    std::string project;
    std::function<void()> changed;
    std::optional<int64_t> generation;  // the last one seen
  };
  // Held while the watches are called, so Remove waits for them.
  mutable std::mutex mu_;
  std::map<uint64_t, Watch> watches_;
  uint64_t next_id_ = 1;
};

// The tool backend of one MCP session: `project` as `peer`, through `bridge`;
// its WatchTools is a watch in `reloads` (none when null).
std::unique_ptr<protocol::mcp::ToolBackend> MakeControlToolBackend(
    LoopBridge* bridge, std::string project, PeerCredentials peer,
    AssetReloads* reloads = nullptr);

// The bearer token: read from config.mcp_http_token_file (owned by the
// daemon's euid, no group or other permission bits, at least 32
// characters), or, when unset, a new random one written to
// <state_dir>/mcp-http.token (0600). Returns the token and the file.
absl::StatusOr<std::pair<std::string, std::string>> McpHttpToken(
    const proto::SupervisorConfig& config);

// Starts the transport the config asks for (nullptr when it asks for none).
// Its sessions' list_changed notifications follow `reloads` (none when null).
absl::StatusOr<std::unique_ptr<protocol::mcp::McpHttpServer>> StartMcpHttp(
    const proto::SupervisorConfig& config, const std::string& token,
    LoopBridge* bridge, AssetReloads* reloads = nullptr);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_MCP_HTTP_H_
