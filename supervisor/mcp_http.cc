#include "supervisor/mcp_http.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "nlohmann/json.hpp"

namespace jcs::supervisor {
namespace {

using nlohmann::json;

constexpr auto kReplace = json::error_handler_t::replace;
constexpr size_t kMinTokenChars = 32;

absl::Status StatusFromError(const proto::Error& error) {
  const std::string message =
      error.message().empty() ? error.reason() : error.message();
  if (error.reason() == "project_not_found") {
    return absl::NotFoundError(message);
  }
  if (error.reason() == "unauthorized" || error.reason() == "protocol_denied") {
    return absl::PermissionDeniedError(message);
  }
  return absl::FailedPreconditionError(message);
}

class ControlToolBackend : public protocol::mcp::ToolBackend {
 public:
  ControlToolBackend(LoopBridge* bridge, std::string project,
                     PeerCredentials peer, AssetReloads* reloads)
      : bridge_(bridge),
        project_(std::move(project)),
        peer_(std::move(peer)),
        reloads_(reloads) {}
  ~ControlToolBackend() override { StopWatchingTools(); }

  // The session was opened for this project by this peer (ListTools
  // succeeded): it may learn that the project's assets reloaded.
  absl::Status WatchTools(std::function<void()> changed) override {
    if (reloads_ == nullptr) {
      return absl::UnimplementedError("no asset reload feed");
    }
    StopWatchingTools();
    watch_ = reloads_->Add(project_, std::move(changed));
    return absl::OkStatus();
  }

  void StopWatchingTools() override {
    if (watch_.has_value()) reloads_->Remove(*std::exchange(watch_, {}));
  }

  absl::StatusOr<json> ListTools() override {
    proto::Request request;
    request.mutable_list_tools()->set_project_id(project_);
    absl::StatusOr<proto::Response> response = CallOk(std::move(request));
    if (!response.ok()) return response.status();
    json tools =
        json::parse(response->list_tools().tools_json(), nullptr, false);
    if (!tools.is_array()) {
      return absl::InternalError("the project's tool list is not an array");
    }
    return tools;
  }

  // Started async, so the call id is known (and cancellable) while it runs,
  // then awaited: the same as `jcs mcp --project` does over the socket.
  absl::StatusOr<json> RunTool(
      const std::string& name, const json& args, const json& meta,
      const std::function<void(const std::string&)>& started) override {
    json call_meta = meta.is_object() ? meta : json::object();
    call_meta["run_mode"] = "async";
    proto::Request request;
    proto::RunToolRequest* run = request.mutable_run_tool();
    run->set_project_id(project_);
    run->set_name(name);
    run->set_args_json(args.dump(-1, ' ', false, kReplace));
    run->set_meta_json(call_meta.dump(-1, ' ', false, kReplace));
    absl::StatusOr<proto::Response> response = CallOk(std::move(request));
    if (!response.ok()) return response.status();
    json parsed = json::parse(response->run_tool().json(), nullptr, false);
    if (!parsed.is_object()) {
      return absl::InternalError("the tool response is not a JSON object");
    }
    // Refused before it ran (schema, env, policy, capacity): the answer.
    if (json_fields::String(parsed, "status") != "accepted") return parsed;
    const std::string call_id = json_fields::String(parsed, "call_id");
    started(call_id);
    proto::Request get;
    get.mutable_get_tool_result()->set_project_id(project_);
    get.mutable_get_tool_result()->set_call_id(call_id);
    get.mutable_get_tool_result()->set_wait(true);
    response = CallOk(std::move(get));
    if (!response.ok()) return response.status();
    parsed = json::parse(response->get_tool_result().json(), nullptr, false);
    if (!parsed.is_object()) {
      return absl::InternalError("the tool result is not a JSON object");
    }
    return parsed;
  }

  absl::Status AuthorizeProtocol(const std::string& operation) override {
    proto::Request request;
    proto::AuthorizeProtocolRequest* ask = request.mutable_authorize_protocol();
    ask->set_project_id(project_);
    ask->set_protocol("mcp");
    ask->set_operation(operation);
    return CallOk(std::move(request)).status();
  }

  absl::Status CancelTool(const std::string& call_id) override {
    proto::Request request;
    proto::CancelToolRequest* cancel = request.mutable_cancel_tool();
    cancel->set_project_id(project_);
    cancel->set_call_id(call_id);
    cancel->set_meta_json(R"({"correlation_id":"mcp-cancel"})");
    absl::StatusOr<proto::Response> response =
        bridge_->Call(std::move(request), peer_);
    if (!response.ok()) return response.status();
    // It ended meanwhile: nothing left to kill.
    if (response->has_error() &&
        response->error().reason() != "call_not_found") {
      return StatusFromError(response->error());
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<proto::Response> CallOk(proto::Request request) {
    absl::StatusOr<proto::Response> response =
        bridge_->Call(std::move(request), peer_);
    if (response.ok() && response->has_error()) {
      return StatusFromError(response->error());
    }
    return response;
  }

  LoopBridge* const bridge_;
  const std::string project_;
  const PeerCredentials peer_;
  AssetReloads* const reloads_;
  std::optional<uint64_t> watch_;
};

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("mcp_http_token_file: opening ", path));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "mcp_http_token_file: ", path,
        " must be a regular file owned by the daemon's uid with no group or "
        "other permissions (chmod 0600): anyone who reads it can use every "
        "project"));
  }
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > 4096) break;
  }
  close(fd);
  std::string token(absl::StripAsciiWhitespace(text));
  if (token.size() < kMinTokenChars || token.size() > 4096) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mcp_http_token_file: ", path, " must hold a token of ", kMinTokenChars,
        " to 4096 characters (e.g. `openssl rand -hex 32`)"));
  }
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::FailedPreconditionError(
          absl::StrCat("mcp_http_token_file: ", path,
                       ": the token must be printable ASCII without spaces"));
    }
  }
  return token;
}

}  // namespace

LoopBridge::LoopBridge(runtime::EventLoop* loop, RequestHandler* handler)
    : loop_(loop), handler_(handler) {}

absl::StatusOr<proto::Response> LoopBridge::Call(proto::Request request,
                                                 const PeerCredentials& peer) {
  struct Slot {
    std::optional<proto::Response> response;
  };
  auto slot = std::make_shared<Slot>();
  std::shared_ptr<Shared> shared = shared_;
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    if (shared->closed) {
      return absl::UnavailableError("the daemon is stopping");
    }
  }
  absl::Status posted =
      loop_->Post([handler = handler_, request = std::move(request), peer, slot,
                   shared]() mutable {
        handler->Handle(request, peer, [slot, shared](proto::Response r) {
          std::lock_guard<std::mutex> lock(shared->mu);
          slot->response = std::move(r);
          shared->cv.notify_all();
        });
      });
  if (!posted.ok()) return posted;
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock,
                  [&] { return slot->response.has_value() || shared->closed; });
  if (!slot->response.has_value()) {
    return absl::UnavailableError("the daemon is stopping");
  }
  return *std::move(slot->response);
}

void LoopBridge::Close() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->closed = true;
  shared_->cv.notify_all();
}

std::unique_ptr<protocol::mcp::ToolBackend> MakeControlToolBackend(
    LoopBridge* bridge, std::string project, PeerCredentials peer,
    AssetReloads* reloads) {
  return std::make_unique<ControlToolBackend>(bridge, std::move(project),
                                              std::move(peer), reloads);
}

uint64_t AssetReloads::Add(std::string project, std::function<void()> changed) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  watches_[id] = Watch{std::move(project), std::move(changed), std::nullopt};
  return id;
}

void AssetReloads::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  watches_.erase(id);
}

size_t AssetReloads::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watches_.size();
}

void AssetReloads::Publish(const proto::Event& event) {
  if (event.name() != "project.assets_reloaded") return;
  const json payload = json::parse(event.payload_json(), nullptr, false);
  const int64_t generation = payload.is_object() &&
                                     payload.contains("generation") &&
                                     payload["generation"].is_number_integer()
                                 ? payload["generation"].get<int64_t>()
                                 : -1;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, watch] : watches_) {
    if (watch.project != event.project_id()) continue;
    // The same generation again (a reload that changed nothing).
    if (watch.generation == generation) continue;
    watch.generation = generation;
    watch.changed();
  }
}

absl::StatusOr<std::pair<std::string, std::string>> McpHttpToken(
    const proto::SupervisorConfig& config) {
  if (config.has_mcp_http_token_file()) {
    absl::StatusOr<std::string> token =
        ReadTokenFile(config.mcp_http_token_file());
    if (!token.ok()) return token.status();
    return std::make_pair(*std::move(token), config.mcp_http_token_file());
  }
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::ErrnoToStatus(errno, "getrandom");
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 15]);
  }
  const std::string path = config.state_dir() + "/mcp-http.token";
  // A new file each start: whatever was there (even a symlink planted in
  // the state dir) is replaced, never followed.
  unlink(path.c_str());
  const int fd = open(
      path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("writing ", path));
  }
  const std::string line = token + "\n";
  const bool ok =
      fchmod(fd, 0600) == 0 &&
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const int saved = errno;
  close(fd);
  if (!ok) return absl::ErrnoToStatus(saved, absl::StrCat("writing ", path));
  return std::make_pair(token, path);
}

absl::StatusOr<std::unique_ptr<protocol::mcp::McpHttpServer>> StartMcpHttp(
    const proto::SupervisorConfig& config, const std::string& token,
    LoopBridge* bridge, AssetReloads* reloads) {
  if (!config.has_mcp_http_address() && !config.has_mcp_http_socket()) {
    return std::unique_ptr<protocol::mcp::McpHttpServer>();
  }
  protocol::mcp::HttpOptions options;
  options.tcp_address = config.mcp_http_address();
  options.unix_path = config.mcp_http_socket();
  options.unix_mode = config.mcp_http_socket_mode();
  options.bearer_token = token;
  options.allowed_uids.insert(config.allowed_uids().begin(),
                              config.allowed_uids().end());
  options.allowed_gids.insert(config.allowed_gids().begin(),
                              config.allowed_gids().end());
  options.max_connections = config.mcp_http_max_connections();
  options.max_body_bytes = config.max_frame_bytes();
  return protocol::mcp::McpHttpServer::Start(
      std::move(options),
      [bridge, reloads](const std::string& project,
                        const protocol::mcp::HttpPeer& peer)
          -> absl::StatusOr<std::unique_ptr<protocol::mcp::ToolBackend>> {
        PeerCredentials creds;
        if (peer.unix_socket) {
          creds.pid = peer.pid;
          creds.uid = peer.uid;
          creds.gid = peer.gid;
          creds.groups = peer.groups;
        } else {
          // The token holder: only the daemon's uid can read the token.
          creds.uid = geteuid();
          creds.gid = getegid();
        }
        std::unique_ptr<protocol::mcp::ToolBackend> backend =
            MakeControlToolBackend(bridge, project, std::move(creds), reloads);
        // The project must exist and be this peer's: refused at initialize
        // with the control API's reason, not on the first call.
        if (absl::StatusOr<json> tools = backend->ListTools(); !tools.ok()) {
          return tools.status();
        }
        return backend;
      });
}

}  // namespace jcs::supervisor
