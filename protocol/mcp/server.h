// The MCP server (issue 15): the Model Context Protocol's methods over
// JSON-RPC 2.0 lines (json_rpc.h), on top of a project's tools reached
// through a ToolBackend (the daemon's control API for `jcs mcp --socket`,
// or a test's fake).
//
//   initialize            protocol version negotiation (kProtocolVersions:
//                         the client's version when jcs speaks it, else the
//                         newest), capabilities {tools, logging}, serverInfo
//                         {name "jcs", version base/version.h}
//   ping                  {}
//   tools/list            the project's policy-filtered catalog (McpTool)
//   tools/call            one call through the backend (the tool runtime's
//                         whole pipeline); its response document becomes a
//                         CallToolResult (failures and policy denials are
//                         isError results naming the reason); an unknown
//                         tool is -32602, as MCP specifies
//   logging/setLevel      the lowest level of notifications/message sent
//   resources/list, resources/read  the project's assets (resources.h),
//                         through asset.list and asset.get; a denied
//                         asset.list lists nothing, a missing asset is
//                         -32002
//   prompts/list, prompts/get  the project's command assets (prompts.h),
//                         through asset.list and asset.get; a denied
//                         asset.list lists nothing; an unknown prompt, bad
//                         arguments or a missing required one is -32602
//   notifications/{tools,prompts,resources}/list_changed  when the backend's
//                         WatchTools reports that the assets reloaded (Serve:
//                         when the backend offers a watch; then initialize
//                         advertises listChanged for the three)
//   notifications/cancelled  cancels the call of requestId: the backend
//                         kills its process tree and no response is sent
//   progress              a tools/call with _meta.progressToken gets
//                         notifications/progress every progress interval
//                         (default 1 s) while it runs, once the pipeline
//                         accepted it: progress = whole seconds elapsed (it
//                         only grows), message "call <id> running for Ns";
//                         none after its response
// Requests other than initialize and ping before initialize get -32600.
// protocol_allowlist: every request (initialize and ping included) is first
// authorized by the backend for its operation, the method with '/' as '.'
// ("tools.call", "resources.read", ...); a denial is error -32003
// (kProtocolDenied) naming the project's protocol_allowlist, and the request
// does nothing else. Notifications (a cancel of a call already allowed) are
// not asked about: they only stop work.
// Each tools/call runs on its own thread (at most kMaxConcurrentCalls), so
// pings, lists and cancels are answered while calls run. When the input ends
// every running call is cancelled (nobody is left to read its result).
#ifndef JCS_PROTOCOL_MCP_SERVER_H_
#define JCS_PROTOCOL_MCP_SERVER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "protocol/mcp/json_rpc.h"

namespace jcs::protocol::mcp {

// Newest first; initialize answers with the client's version when it is one
// of these.
inline constexpr const char* kProtocolVersions[] = {"2025-11-25", "2025-06-18",
                                                    "2025-03-26"};
inline constexpr size_t kMaxConcurrentCalls = 32;
// The requests jcs serves; each is authorized (protocol_allowlist) as the
// operation named by the method with '/' as '.'.
inline constexpr const char* kMcpMethods[] = {
    "initialize",       "ping",           "tools/list",     "tools/call",
    "logging/setLevel", "resources/list", "resources/read", "prompts/list",
    "prompts/get"};

// What the server needs of a project's tools. Every method may be called
// from several threads at once.
class ToolBackend {
 public:
  virtual ~ToolBackend() = default;
  // The visible tools: a JSON array of ToolToJson documents.
  virtual absl::StatusOr<nlohmann::json> ListTools() = 0;
  // Runs one call and blocks until it ends; its response document (status
  // ok or error). `started` is called with the call's id as soon as the
  // backend knows it (before the call ends), on the calling thread. A status
  // error means the call never reached the tool pipeline.
  virtual absl::StatusOr<nlohmann::json> RunTool(
      const std::string& name, const nlohmann::json& args,
      const nlohmann::json& meta,
      const std::function<void(const std::string& call_id)>& started) = 0;
  // Cancels a running call; returns once its process tree is dead.
  virtual absl::Status CancelTool(const std::string& call_id) = 0;
  // notifications/tools/list_changed: starts calling `changed` (from any
  // thread) whenever the project's tool list may have changed (its assets
  // reloaded), until StopWatchingTools. Unimplemented (the default): the
  // server does not advertise tools.listChanged.
  virtual absl::Status WatchTools(std::function<void()> changed) {
    return absl::UnimplementedError("no tool list watch");
  }
  virtual void StopWatchingTools() {}
  // Whether the project's protocol_allowlist lets MCP in for `operation`
  // (a kMcpMethods method with '/' as '.'): OK, PermissionDenied naming the
  // denial (the daemon emitted security.protocol_denied), or another error when
  // it could not be asked (refused as well: fail closed).
  virtual absl::Status AuthorizeProtocol(const std::string& operation) = 0;
};

class McpServer {
 public:
  // `write` sends one serialized line; it is called under the server's
  // write lock, so lines never interleave.
  McpServer(ToolBackend* backend, std::function<void(std::string_view)> write,
            std::chrono::milliseconds progress_interval =
                std::chrono::milliseconds(1000));
  // For transports that route each message (HTTP: a response to the request
  // that asked for it): `sink` gets the message and its serialized line,
  // under the same write lock. It must not call back into the server.
  using MessageSink =
      std::function<void(const nlohmann::json& message, std::string_view line)>;
  McpServer(ToolBackend* backend, MessageSink sink,
            std::chrono::milliseconds progress_interval =
                std::chrono::milliseconds(1000));
  ~McpServer();  // Shutdown()
  McpServer(const McpServer&) = delete;
  McpServer& operator=(const McpServer&) = delete;

  // One line of input, and a line over the size bound. From one thread at a
  // time (it starts and reaps the call threads).
  void HandleLine(std::string_view line);
  void HandleOversized();
  // Advertise listChanged for tools, prompts and resources in initialize
  // (set before serving).
  void set_list_changed(bool on) { list_changed_ = on; }
  // notifications/tools/list_changed, prompts/list_changed and
  // resources/list_changed (the assets reloaded: the command.run.* tools,
  // the prompts and the resources follow them), once initialized (nothing
  // before: the client lists them after initialize anyway).
  void NotifyListsChanged();
  // Cancels every running call and waits for their threads.
  void Shutdown();

  // Reads `in_fd` to its end, answering on `out_fd` (EINTR retried); then
  // Shutdown(). Stops early when `out_fd` cannot be written, or when
  // `stop_fd` (if >= 0; e.g. a signalfd of SIGTERM) becomes readable: the
  // same as the input ending.
  static absl::Status Serve(ToolBackend* backend, int in_fd, int out_fd,
                            int stop_fd = -1);

 private:
  struct Call {
    nlohmann::json id;
    std::string call_id;  // the backend's, once known
    bool cancelled = false;
    nlohmann::json progress_token;                   // null: none asked for
    std::chrono::steady_clock::time_point accepted;  // when call_id came
    int64_t progress_sent = -1;  // the last progress value sent
  };

  void HandleRequest(const Message& message);
  void HandleNotification(const Message& message);
  void Send(const nlohmann::json& message);
  void Reply(const nlohmann::json& id, nlohmann::json result);
  void ReplyError(const nlohmann::json& id, int code, std::string message);
  // notifications/message at `level`, when the client asked for it.
  void Log(std::string_view level, nlohmann::json data);

  void Initialize(const Message& message);
  void ListTools(const Message& message);
  void CallTool(const Message& message);
  void SetLevel(const Message& message);
  void ListResources(const Message& message);
  void ReadResource(const Message& message);
  void ListPrompts(const Message& message);
  void GetPrompt(const Message& message);
  void Cancel(const nlohmann::json& request_id);
  void RunCall(const std::shared_ptr<Call>& call, const std::string& name,
               const nlohmann::json& args);
  void ReapWorkers(bool all);
  // The progress thread: wakes every progress interval while calls with a
  // progress token run.
  void ProgressLoop();

  ToolBackend* const backend_;
  const MessageSink write_;
  const std::chrono::milliseconds progress_interval_;
  bool list_changed_ = false;
  std::thread progress_thread_;  // started with the first token
  std::mutex write_mu_;

  // The call threads, joined once done (by the reading thread, the only
  // one that starts them) and all at Shutdown.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Worker> workers_;

  std::mutex mu_;  // guards everything below
  bool initialized_ = false;
  bool shutting_down_ = false;
  std::condition_variable progress_cv_;
  int log_level_ = 3;  // index into kLogLevels: warning
  // Running calls by their request id (id.dump(): 1 and "1" differ).
  std::map<std::string, std::shared_ptr<Call>> calls_;
};

}  // namespace jcs::protocol::mcp

#endif  // JCS_PROTOCOL_MCP_SERVER_H_
