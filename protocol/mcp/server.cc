#include "protocol/mcp/server.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/json_fields.h"
#include "base/version.h"
#include "protocol/mcp/prompts.h"
#include "protocol/mcp/resources.h"
#include "protocol/mcp/tool_mapping.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

// RFC 5424's severities, the order MCP's logging levels use.
constexpr std::array<const char*, 8> kLogLevels = {
    "debug", "info",     "notice", "warning",
    "error", "critical", "alert",  "emergency"};

int LevelIndex(std::string_view level) {
  for (size_t i = 0; i < kLogLevels.size(); ++i) {
    if (level == kLogLevels[i]) return static_cast<int>(i);
  }
  return -1;
}

std::string IdKey(const json& id) { return id.dump(); }

// "reason" or "reason: {detail}" of an error document.
std::string Reason(const json& doc) {
  std::string text = json_fields::String(doc, "reason");
  if (doc.is_object() && doc.contains("detail") && doc["detail"].is_object() &&
      !doc["detail"].empty()) {
    absl::StrAppend(
        &text, ": ",
        doc["detail"].dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return text;
}

// The tool's own reason of a failed call: the runtime reports a tool's
// failure as "tool_failed" with the tool's reason in detail.reason
// (asset.get's asset_not_found, invalid_tool_args).
std::string ToolReason(const json& doc) {
  const std::string reason = json_fields::String(doc, "reason");
  if (reason != "tool_failed" || !doc.contains("detail")) return reason;
  return json_fields::String(doc["detail"], "reason");
}

}  // namespace

McpServer::McpServer(ToolBackend* backend,
                     std::function<void(std::string_view)> write,
                     std::chrono::milliseconds progress_interval)
    : McpServer(
          backend,
          MessageSink([write = std::move(write)](
                          const json&, std::string_view line) { write(line); }),
          progress_interval) {}

McpServer::McpServer(ToolBackend* backend, MessageSink sink,
                     std::chrono::milliseconds progress_interval)
    : backend_(backend),
      write_(std::move(sink)),
      progress_interval_(progress_interval) {}

McpServer::~McpServer() { Shutdown(); }

void McpServer::Send(const json& message) {
  const std::string line = SerializeLine(message);
  std::lock_guard<std::mutex> lock(write_mu_);
  write_(message, line);
}

void McpServer::Reply(const json& id, json result) {
  Send(ResultResponse(id, std::move(result)));
}

void McpServer::ReplyError(const json& id, int code, std::string message) {
  Send(ErrorResponse(id, RpcError{code, std::move(message)}));
}

void McpServer::Log(std::string_view level, json data) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (LevelIndex(level) < log_level_) return;
  }
  Send(Notification("notifications/message", {{"level", std::string(level)},
                                              {"logger", "jcs"},
                                              {"data", std::move(data)}}));
}

void McpServer::HandleOversized() {
  ReplyError(nullptr, kInvalidRequest,
             absl::StrCat("invalid request: message larger than ",
                          kMaxMessageBytes, " bytes"));
}

void McpServer::HandleLine(std::string_view line) {
  ParseResult parsed = ParseMessage(line);
  if (parsed.error.has_value()) {
    Send(ErrorResponse(parsed.error_id, *parsed.error));
    return;
  }
  switch (parsed.message->kind) {
    case Message::Kind::kRequest:
      HandleRequest(*parsed.message);
      return;
    case Message::Kind::kNotification:
      HandleNotification(*parsed.message);
      return;
    case Message::Kind::kResponse:
      // jcs sends no requests: a response answers nothing.
      return;
  }
}

void McpServer::HandleRequest(const Message& message) {
  const std::string& method = message.method;
  // Only the methods jcs serves: an unknown one is -32601 below, and its
  // name (the client's text) never reaches an event.
  const bool known = std::any_of(std::begin(kMcpMethods), std::end(kMcpMethods),
                                 [&](const char* m) { return method == m; });
  std::string operation = method;
  std::replace(operation.begin(), operation.end(), '/', '.');
  if (absl::Status allowed =
          known ? backend_->AuthorizeProtocol(operation) : absl::OkStatus();
      !allowed.ok()) {
    if (absl::IsPermissionDenied(allowed)) {
      return ReplyError(message.id, kProtocolDenied,
                        std::string(allowed.message()));
    }
    return ReplyError(message.id, kInternalError,
                      absl::StrCat("internal error: checking the project's "
                                   "protocol_allowlist failed: ",
                                   allowed.message()));
  }
  if (method == "initialize") return Initialize(message);
  if (method == "ping") return Reply(message.id, json::object());
  bool initialized;
  {
    std::lock_guard<std::mutex> lock(mu_);
    initialized = initialized_;
  }
  if (!initialized) {
    return ReplyError(message.id, kInvalidRequest,
                      absl::StrCat("invalid request: ", method,
                                   " before initialize; send initialize "
                                   "first"));
  }
  if (method == "tools/list") return ListTools(message);
  if (method == "tools/call") return CallTool(message);
  if (method == "logging/setLevel") return SetLevel(message);
  if (method == "resources/list") return ListResources(message);
  if (method == "resources/read") return ReadResource(message);
  if (method == "prompts/list") return ListPrompts(message);
  if (method == "prompts/get") return GetPrompt(message);
  ReplyError(message.id, kMethodNotFound,
             absl::StrCat("method not found: ", method));
}

void McpServer::HandleNotification(const Message& message) {
  if (message.method == "notifications/cancelled" &&
      message.params.is_object()) {
    const auto it = message.params.find("requestId");
    if (it != message.params.end()) Cancel(*it);
  }
  // notifications/initialized and anything else: nothing to do.
}

void McpServer::Initialize(const Message& message) {
  const json& params = message.params;
  const auto version =
      params.is_object() ? params.find("protocolVersion") : params.end();
  if (!params.is_object() || version == params.end() || !version->is_string()) {
    return ReplyError(message.id, kInvalidParams,
                      "invalid params: initialize: params.protocolVersion: "
                      "expected a string");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (initialized_) {
      return ReplyError(message.id, kInvalidRequest,
                        "invalid request: already initialized");
    }
    initialized_ = true;
  }
  std::string chosen = kProtocolVersions[0];
  for (const char* supported : kProtocolVersions) {
    if (*version == supported) chosen = supported;
  }
  Reply(
      message.id,
      {{"protocolVersion", chosen},
       {"capabilities",
        {{"tools", {{"listChanged", list_changed_}}},
         {"prompts", {{"listChanged", list_changed_}}},
         {"resources", {{"listChanged", list_changed_}, {"subscribe", false}}},
         {"logging", json::object()}}},
       {"serverInfo", {{"name", "jcs"}, {"version", kJcsVersion}}},
       {"instructions",
        "jcs runs every tool call in a fresh jail under the project's "
        "policy. A denied or failed call is a result with isError set; its "
        "text names the reason."}});
}

void McpServer::NotifyListsChanged() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!initialized_ || shutting_down_) return;
  }
  for (const char* method : {"notifications/tools/list_changed",
                             "notifications/prompts/list_changed",
                             "notifications/resources/list_changed"}) {
    Send(Notification(method, json::object()));
  }
}

void McpServer::ListTools(const Message& message) {
  absl::StatusOr<json> tools = backend_->ListTools();
  if (!tools.ok()) {
    return ReplyError(message.id, kInternalError,
                      absl::StrCat("internal error: listing the project's "
                                   "tools failed: ",
                                   tools.status().message()));
  }
  json out = json::array();
  if (tools->is_array()) {
    for (const json& tool : *tools) out.push_back(McpTool(tool));
  }
  Reply(message.id, {{"tools", std::move(out)}});
}

void McpServer::SetLevel(const Message& message) {
  const json& params = message.params;
  const int level = params.is_object() && params.contains("level") &&
                            params["level"].is_string()
                        ? LevelIndex(params["level"].get<std::string>())
                        : -1;
  if (level < 0) {
    return ReplyError(
        message.id, kInvalidParams,
        absl::StrCat("invalid params: logging/setLevel: params.level: "
                     "expected one of ",
                     absl::StrJoin(kLogLevels, ", ")));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    log_level_ = level;
  }
  Reply(message.id, json::object());
}

void McpServer::ListResources(const Message& message) {
  json resources = json::array();
  for (const char* type : kAssetTypes) {
    absl::StatusOr<json> doc =
        backend_->RunTool("asset.list", {{"type", type}}, json::object(),
                          [](const std::string&) {});
    if (!doc.ok()) {
      return ReplyError(message.id, kInternalError,
                        absl::StrCat("internal error: resources/list: ",
                                     doc.status().message()));
    }
    if (json_fields::String(*doc, "status") != "ok") {
      // The project's policy hides the asset tools: no resources either.
      if (json_fields::String(*doc, "reason") == "denied") break;
      return ReplyError(message.id, kInternalError,
                        absl::StrCat("internal error: resources/list: "
                                     "asset.list of ",
                                     type, " failed: ", Reason(*doc)));
    }
    const json items =
        json_fields::Array(json_fields::Member(*doc, "result"), "items");
    if (!items.is_array()) continue;
    for (const json& item : items) resources.push_back(AssetResource(item));
  }
  Reply(message.id, {{"resources", std::move(resources)}});
}

void McpServer::ReadResource(const Message& message) {
  const std::string uri = json_fields::String(message.params, "uri");
  std::optional<std::pair<std::string, std::string>> asset = ParseAssetUri(uri);
  if (!asset.has_value()) {
    return ReplyError(message.id, kInvalidParams,
                      "invalid params: resources/read: params.uri: expected "
                      "jcs://assets/TYPE/NAME (TYPE skill, command, workflow "
                      "or skill_graph)");
  }
  absl::StatusOr<json> doc = backend_->RunTool(
      "asset.get", {{"type", asset->first}, {"key", asset->second}},
      json::object(), [](const std::string&) {});
  if (!doc.ok()) {
    return ReplyError(message.id, kInternalError,
                      absl::StrCat("internal error: resources/read: ",
                                   doc.status().message()));
  }
  if (json_fields::String(*doc, "status") != "ok") {
    if (ToolReason(*doc) == "asset_not_found") {
      return ReplyError(message.id, kResourceNotFound,
                        absl::StrCat("resource not found: ", uri));
    }
    return ReplyError(message.id, kInternalError,
                      absl::StrCat("internal error: resources/read: asset.get "
                                   "failed: ",
                                   Reason(*doc)));
  }
  const json& result = (*doc)["result"];
  const json asset_doc = json_fields::Member(result, "asset");
  Reply(
      message.id,
      {{"contents",
        json::array({{{"uri", uri},
                      {"mimeType", "text/markdown"},
                      {"text", json_fields::String(asset_doc, "content")}}})}});
}

void McpServer::ListPrompts(const Message& message) {
  absl::StatusOr<json> doc =
      backend_->RunTool("asset.list", {{"type", "command"}}, json::object(),
                        [](const std::string&) {});
  if (!doc.ok()) {
    return ReplyError(
        message.id, kInternalError,
        absl::StrCat("internal error: prompts/list: ", doc.status().message()));
  }
  if (json_fields::String(*doc, "status") != "ok") {
    // The project's policy hides the asset tools: no prompts either.
    if (json_fields::String(*doc, "reason") == "denied") {
      return Reply(message.id, {{"prompts", json::array()}});
    }
    return ReplyError(message.id, kInternalError,
                      absl::StrCat("internal error: prompts/list: asset.list "
                                   "failed: ",
                                   Reason(*doc)));
  }
  const json items =
      json_fields::Array(json_fields::Member(*doc, "result"), "items");
  json prompts = json::array();
  for (const json& item : items.is_array() ? items : json::array()) {
    const std::string name = json_fields::String(item, "name");
    if (name.empty()) continue;
    absl::StatusOr<json> got =
        backend_->RunTool("asset.get", {{"type", "command"}, {"key", name}},
                          json::object(), [](const std::string&) {});
    if (!got.ok()) {
      return ReplyError(message.id, kInternalError,
                        absl::StrCat("internal error: prompts/list: ",
                                     got.status().message()));
    }
    // Gone since the list (a reload), or refused: not a prompt now.
    if (json_fields::String(*got, "status") != "ok" ||
        !(*got)["result"].is_object()) {
      continue;
    }
    prompts.push_back(CommandPrompt(
        json_fields::Member(json_fields::Member(*got, "result"), "asset")));
  }
  Reply(message.id, {{"prompts", std::move(prompts)}});
}

void McpServer::GetPrompt(const Message& message) {
  const json& params = message.params;
  if (!params.is_object() || !params.contains("name") ||
      !params["name"].is_string() || params["name"].empty()) {
    return ReplyError(message.id, kInvalidParams,
                      "invalid params: prompts/get: params.name: expected a "
                      "prompt's name (prompts/list)");
  }
  const std::string name = params["name"].get<std::string>();
  absl::StatusOr<json> doc =
      backend_->RunTool("asset.get", {{"type", "command"}, {"key", name}},
                        json::object(), [](const std::string&) {});
  if (!doc.ok()) {
    return ReplyError(
        message.id, kInternalError,
        absl::StrCat("internal error: prompts/get: ", doc.status().message()));
  }
  if (json_fields::String(*doc, "status") != "ok") {
    const std::string reason = ToolReason(*doc);
    // A sensitive name is refused before the lookup: as unknown as a
    // missing one, which it may be.
    if (reason == "asset_not_found" || reason == "sensitive_path_denied" ||
        reason == "invalid_tool_args") {
      return ReplyError(message.id, kInvalidParams,
                        absl::StrCat("invalid params: prompts/get: unknown "
                                     "prompt: ",
                                     name));
    }
    if (reason == "denied") {
      return ReplyError(message.id, kInvalidParams,
                        absl::StrCat("invalid params: prompts/get: the "
                                     "project's policy denies asset.get, "
                                     "which serves the prompt ",
                                     name));
    }
    return ReplyError(message.id, kInternalError,
                      absl::StrCat("internal error: prompts/get: asset.get "
                                   "failed: ",
                                   Reason(*doc)));
  }
  const json& result = (*doc)["result"];
  absl::StatusOr<json> prompt =
      GetCommandPrompt(json_fields::Member(result, "asset"),
                       json_fields::Member(params, "arguments"));
  if (!prompt.ok()) {
    return ReplyError(message.id, kInvalidParams,
                      absl::StrCat("invalid params: prompts/get: ",
                                   prompt.status().message()));
  }
  Reply(message.id, *std::move(prompt));
}

void McpServer::CallTool(const Message& message) {
  const json& params = message.params;
  if (!params.is_object() || !params.contains("name") ||
      !params["name"].is_string()) {
    return ReplyError(message.id, kInvalidParams,
                      "invalid params: tools/call: params.name: expected a "
                      "string");
  }
  json args = json_fields::Member(params, "arguments");
  if (args.is_null()) args = json::object();
  if (!args.is_object()) {
    return ReplyError(message.id, kInvalidParams,
                      "invalid params: tools/call: params.arguments: "
                      "expected an object");
  }
  auto call = std::make_shared<Call>();
  call->id = message.id;
  if (const json meta = json_fields::Member(params, "_meta");
      meta.is_object() && meta.contains("progressToken") &&
      (meta["progressToken"].is_string() ||
       meta["progressToken"].is_number_integer())) {
    call->progress_token = meta["progressToken"];
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return;
    if (calls_.count(IdKey(message.id)) > 0) {
      return ReplyError(message.id, kInvalidRequest,
                        absl::StrCat("invalid request: id ", IdKey(message.id),
                                     " is already used by a running call"));
    }
    if (calls_.size() >= kMaxConcurrentCalls) {
      return Reply(
          message.id,
          CallToolResult({{"status", "error"},
                          {"tool", params["name"]},
                          {"reason", "mcp_max_concurrent_calls"},
                          {"detail", {{"limit", kMaxConcurrentCalls}}}}));
    }
    calls_[IdKey(message.id)] = call;
  }
  ReapWorkers(/*all=*/false);
  if (!call->progress_token.is_null() && !progress_thread_.joinable()) {
    progress_thread_ = std::thread([this] { ProgressLoop(); });
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  workers_.push_back(Worker{
      std::thread([this, call, done, name = params["name"].get<std::string>(),
                   args = std::move(args)] {
        RunCall(call, name, args);
        done->store(true);
      }),
      done});
}

void McpServer::RunCall(const std::shared_ptr<Call>& call,
                        const std::string& name, const json& args) {
  const auto started = [this, &call](const std::string& call_id) {
    bool cancel_now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->call_id = call_id;
      call->accepted = std::chrono::steady_clock::now();
      cancel_now = call->cancelled;
    }
    // The cancel came before the id was known: Cancel() left it to us.
    if (cancel_now) {
      if (absl::Status s = backend_->CancelTool(call_id); !s.ok()) {
        Log("warning", {{"message", "cancelling a tool call failed"},
                        {"call_id", call_id},
                        {"error", std::string(s.message())}});
      }
    }
  };
  absl::StatusOr<json> response =
      backend_->RunTool(name, args, json::object(), started);
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(IdKey(call->id));
    cancelled = call->cancelled;
  }
  // MCP: a cancelled request gets no response.
  if (cancelled) return;
  if (!response.ok()) {
    Log("error", {{"message", "a tool call did not reach the tool pipeline"},
                  {"tool", name},
                  {"error", std::string(response.status().message())}});
    return ReplyError(call->id, kInternalError,
                      absl::StrCat("internal error: the call did not reach "
                                   "the tool pipeline: ",
                                   response.status().message()));
  }
  if (json_fields::String(*response, "status") == "error" &&
      json_fields::String(*response, "reason") == "unknown_tool") {
    return ReplyError(call->id, kInvalidParams,
                      absl::StrCat("invalid params: unknown tool: ", name));
  }
  Reply(call->id, CallToolResult(*response));
}

void McpServer::Cancel(const json& request_id) {
  std::string call_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = calls_.find(IdKey(request_id));
    // Unknown or finished: MCP says to ignore it.
    if (it == calls_.end() || it->second->cancelled) return;
    it->second->cancelled = true;
    call_id = it->second->call_id;
  }
  if (call_id.empty()) return;  // the call's thread cancels once it knows
  if (absl::Status s = backend_->CancelTool(call_id); !s.ok()) {
    Log("warning", {{"message", "cancelling a tool call failed"},
                    {"call_id", call_id},
                    {"error", std::string(s.message())}});
  }
}

void McpServer::ProgressLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutting_down_) {
    progress_cv_.wait_for(lock, progress_interval_,
                          [this] { return shutting_down_; });
    if (shutting_down_) break;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [key, call] : calls_) {
      if (call->progress_token.is_null() || call->cancelled ||
          call->call_id.empty()) {
        continue;
      }
      const int64_t seconds =
          std::chrono::duration_cast<std::chrono::seconds>(now - call->accepted)
              .count();
      // MCP: progress must grow with every notification.
      const int64_t progress = std::max(seconds, call->progress_sent + 1);
      call->progress_sent = progress;
      // Sent with mu_ held: RunCall removes the call under mu_ before it
      // answers, so no progress follows the response.
      Send(Notification(
          "notifications/progress",
          {{"progressToken", call->progress_token},
           {"progress", progress},
           {"message", absl::StrCat("call ", call->call_id, " running for ",
                                    seconds, "s")}}));
    }
  }
}

void McpServer::ReapWorkers(bool all) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || it->done->load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void McpServer::Shutdown() {
  std::vector<std::string> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    for (auto& [key, call] : calls_) {
      if (call->cancelled) continue;
      call->cancelled = true;
      if (!call->call_id.empty()) running.push_back(call->call_id);
    }
  }
  progress_cv_.notify_all();
  if (progress_thread_.joinable()) progress_thread_.join();
  for (const std::string& call_id : running) {
    (void)backend_->CancelTool(call_id);
  }
  ReapWorkers(/*all=*/true);
}

absl::Status McpServer::Serve(ToolBackend* backend, int in_fd, int out_fd,
                              int stop_fd) {
  std::atomic<bool> broken{false};
  McpServer server(backend, [out_fd, &broken](std::string_view line) {
    while (!line.empty() && !broken.load()) {
      const ssize_t n = write(out_fd, line.data(), line.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        broken.store(true);
        return;
      }
      line.remove_prefix(static_cast<size_t>(n));
    }
  });
  if (backend->WatchTools([&server] { server.NotifyListsChanged(); }).ok()) {
    server.set_list_changed(true);
  }
  LineReader reader;
  std::vector<char> buffer(64 * 1024);
  absl::Status status = absl::OkStatus();
  while (!broken.load()) {
    pollfd fds[2] = {{in_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int ready = poll(fds, stop_fd >= 0 ? 2 : 1, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      status = absl::ErrnoToStatus(errno, "poll");
      break;
    }
    if (stop_fd >= 0 && fds[1].revents != 0) break;
    const ssize_t n = read(in_fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::ErrnoToStatus(errno, "reading the MCP client's input");
      break;
    }
    if (n == 0) break;
    reader.Feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
    while (std::optional<LineReader::Item> item = reader.Next()) {
      if (item->oversized) {
        server.HandleOversized();
      } else {
        server.HandleLine(item->line);
      }
    }
  }
  backend->StopWatchingTools();  // before the server goes
  server.Shutdown();
  if (status.ok() && broken.load()) {
    status = absl::UnavailableError(
        "writing to the MCP client failed (its end of stdout is closed)");
  }
  return status;
}

}  // namespace jcs::protocol::mcp
