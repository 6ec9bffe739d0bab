// `jcs mcp`: an MCP server on stdin/stdout (protocol/mcp/server.h) whose
// tools are one project's, every call through the daemon's whole tool
// pipeline (policy, jail, caps):
//   --project ID [--socket PATH]  a project of a running `jcs serve`, reached
//       through the control API; the daemon authorizes the connection's peer
//       as for any client, so an agent host gets exactly the projects its uid
//       may use.
//   --root DIR [--opt K=V]... [--options FILE] [--data-dir DIR]  a project on
//       DIR in a private `jcs serve` of this command's own
//       (tools/private_daemon.h), drained when the command ends.
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "nlohmann/json.hpp"
#include "protocol/mcp/server.h"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"
#include "tools/option_flags.h"
#include "tools/private_daemon.h"

namespace jcs::tools {
namespace {

using nlohmann::json;

constexpr auto kReplace = json::error_handler_t::replace;

}  // namespace

const CommandSpec& McpSpec() {
  static const auto* spec = new CommandSpec{
      "mcp",
      "(--project ID | --root DIR)",
      "Serves the Model Context Protocol (JSON-RPC 2.0, one message per line) "
      "on stdin and stdout: one project's policy-filtered tools, every call "
      "jailed. --project serves a project of a running jcs serve; --root "
      "starts a private jcs serve for this command, a project on DIR in it, "
      "and drains it at the end. stdout carries only protocol messages; "
      "errors go to stderr. Register it in an agent host as a stdio server.",
      {{"--project", "ID", "", "a project of the running daemon"},
       SocketFlag(),
       {"--root", "DIR", "", "a project on DIR, in a private daemon"},
       {"--opt", "KEY=VALUE", "",
        "with --root: a runtime option; VALUE is JSON or else a string; "
        "later ones win",
        true},
       {"--options", "FILE", "",
        "with --root: a JSON object of runtime options"},
       {"--data-dir", "DIR", ".jido",
        "with --root: the state directory, relative to the root"}}};
  return *spec;
}

namespace {

// One control connection per operation: calls run on their own threads and
// a connection answers one request at a time.
class ControlToolBackend : public protocol::mcp::ToolBackend {
 public:
  ControlToolBackend(std::string socket, std::string project)
      : socket_(std::move(socket)), project_(std::move(project)) {}

  absl::StatusOr<json> ListTools() override {
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket_);
    if (!client.ok()) return client.status();
    absl::StatusOr<std::string> tools = (*client)->ListTools(project_);
    if (!tools.ok()) return tools.status();
    json parsed = json::parse(*tools, nullptr, false);
    if (!parsed.is_array()) {
      return absl::InternalError("the daemon's tool list is not a JSON array");
    }
    return parsed;
  }

  // Started async, so the call id is known (and cancellable) while it runs,
  // then awaited: the response document is the one a synchronous call gets.
  absl::StatusOr<json> RunTool(
      const std::string& name, const json& args, const json& meta,
      const std::function<void(const std::string&)>& started) override {
    // As long as the call runs (tool_timeout_ms bounds it on the daemon).
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket_, absl::Hours(24 * 8));
    if (!client.ok()) return client.status();
    json call_meta = meta.is_object() ? meta : json::object();
    call_meta["run_mode"] = "async";
    absl::StatusOr<std::string> doc =
        (*client)->RunTool(project_, name, args.dump(-1, ' ', false, kReplace),
                           call_meta.dump(-1, ' ', false, kReplace));
    if (!doc.ok()) return doc.status();
    json parsed = json::parse(*doc, nullptr, false);
    if (!parsed.is_object()) {
      return absl::InternalError("the daemon's response is not a JSON object");
    }
    // Refused before it ran (schema, env, policy, capacity): the answer.
    if (json_fields::String(parsed, "status") != "accepted") return parsed;
    const std::string call_id = json_fields::String(parsed, "call_id");
    started(call_id);
    absl::StatusOr<std::string> result =
        (*client)->GetToolResult(project_, call_id, /*wait=*/true);
    if (!result.ok()) return result.status();
    parsed = json::parse(*result, nullptr, false);
    if (!parsed.is_object()) {
      return absl::InternalError("the daemon's result is not a JSON object");
    }
    return parsed;
  }

  // A subscription to the project's events: each project.assets_reloaded
  // whose generation differs from the last one seen may have changed the
  // command.run.* / workflow.run.* tools.
  absl::Status WatchTools(std::function<void()> changed) override {
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket_);
    if (!client.ok()) return client.status();
    if (absl::Status s = (*client)->Subscribe(project_); !s.ok()) return s;
    watcher_ = std::thread([this, client = *std::move(client),
                            changed = std::move(changed)] {
      std::optional<int64_t> last;
      while (!stop_watching_.load()) {
        absl::StatusOr<proto::Event> event =
            client->NextEvent(absl::Milliseconds(200));
        if (!event.ok()) {
          if (absl::IsDeadlineExceeded(event.status())) continue;
          return;  // the daemon went away: nothing more to watch
        }
        if (event->name() != "project.assets_reloaded") continue;
        const json payload = json::parse(event->payload_json(), nullptr, false);
        const int64_t generation =
            payload.is_object() && payload.contains("generation") &&
                    payload["generation"].is_number_integer()
                ? payload["generation"].get<int64_t>()
                : -1;
        if (last.has_value() && *last == generation) continue;
        last = generation;
        changed();
      }
    });
    return absl::OkStatus();
  }

  void StopWatchingTools() override {
    stop_watching_.store(true);
    if (watcher_.joinable()) watcher_.join();
  }

  ~ControlToolBackend() override { StopWatchingTools(); }

  // The daemon holds the option and emits the denial's event.
  absl::Status AuthorizeProtocol(const std::string& operation) override {
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket_);
    if (!client.ok()) return client.status();
    absl::Status allowed =
        (*client)->AuthorizeProtocol(project_, "mcp", operation);
    if (std::optional<proto::Error> error = ErrorOf(allowed);
        error.has_value() && error->reason() == "protocol_denied") {
      return absl::PermissionDeniedError(error->message());
    }
    return allowed;
  }

  absl::Status CancelTool(const std::string& call_id) override {
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket_);
    if (!client.ok()) return client.status();
    absl::StatusOr<uint32_t> cancelled = (*client)->CancelTool(
        project_, call_id, "", R"({"correlation_id":"mcp-cancel"})");
    if (!cancelled.ok()) {
      // It ended meanwhile: nothing left to kill.
      if (std::optional<proto::Error> error = ErrorOf(cancelled.status());
          error.has_value() && error->reason() == "call_not_found") {
        return absl::OkStatus();
      }
      return cancelled.status();
    }
    return absl::OkStatus();
  }

 private:
  const std::string socket_;
  const std::string project_;
  std::thread watcher_;
  std::atomic<bool> stop_watching_{false};
};

}  // namespace

int McpCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = McpSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (!flags->positional.empty()) {
    return UsageError(spec,
                      "unexpected argument '" + flags->positional[0] + "'");
  }
  const bool private_daemon = flags->Has("--root");
  if (private_daemon == flags->Has("--project")) {
    return UsageError(spec, "give exactly one of --project and --root");
  }
  if (private_daemon ? flags->Has("--socket")
                     : (flags->Has("--opt") || flags->Has("--options") ||
                        flags->Has("--data-dir"))) {
    return UsageError(spec, private_daemon
                                ? "--socket: only with --project"
                                : "--opt, --options and --data-dir: only "
                                  "with --root");
  }
  runtime::OptionList options;
  if (private_daemon) {
    absl::StatusOr<runtime::OptionList> gathered = GatherOptions(*flags);
    if (!gathered.ok()) {
      return UsageError(spec, std::string(gathered.status().message()));
    }
    options = *std::move(gathered);
  }
  // SIGTERM, SIGINT and SIGHUP (the host stopping the server) end serving
  // like the end of input: running calls are cancelled and a private daemon
  // drained. Blocked before any thread or child exists, so they all inherit
  // it and only the signalfd sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, sig);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int stop_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (stop_fd < 0) {
    return Fail(spec.name, absl::ErrnoToStatus(errno, "signalfd"));
  }
  // A client that closes its end must not kill jcs mid-cancel: writes fail
  // with EPIPE instead and the server shuts down, cancelling running calls.
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<PrivateDaemon> daemon;
  std::string socket = flags->Get("--socket", DefaultSocket());
  std::string project = flags->Get("--project");
  if (private_daemon) {
    absl::StatusOr<std::unique_ptr<PrivateDaemon>> started =
        PrivateDaemon::Start();
    if (!started.ok()) return Fail(spec.name, started.status());
    daemon = *std::move(started);
    socket = daemon->socket_path();
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket);
    if (!client.ok()) return Fail(spec.name, client.status());
    std::optional<std::string> data_dir;
    if (flags->Has("--data-dir")) data_dir = flags->Get("--data-dir");
    absl::StatusOr<std::string> id =
        (*client)->StartProject(flags->Get("--root"), options, "mcp", data_dir);
    if (!id.ok()) return Fail(spec.name, id.status());
    project = *id;
  }
  if (project.empty()) return UsageError(spec, "--project: empty");
  ControlToolBackend backend(socket, project);
  // Fail at start, with the daemon's reason, rather than on the first call:
  // an agent host shows a server that exits with its stderr.
  if (absl::StatusOr<json> tools = backend.ListTools(); !tools.ok()) {
    return Fail(spec.name, tools.status());
  }
  // stdout is the protocol's alone: the server writes to a private copy and
  // anything else that would print to fd 1 lands on stderr.
  const int protocol_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (protocol_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    return Fail(spec.name, absl::ErrnoToStatus(errno, "redirecting stdout"));
  }
  absl::Status served = protocol::mcp::McpServer::Serve(&backend, STDIN_FILENO,
                                                        protocol_fd, stop_fd);
  close(protocol_fd);
  daemon.reset();  // drains the private daemon
  if (!served.ok()) return Fail(spec.name, served);
  return 0;
}

}  // namespace jcs::tools
