// `jcs mcp --project ID [--socket PATH]`: an MCP server on stdin/stdout
// (protocol/mcp/server.h) whose tools are a project of a running `jcs
// serve`, reached through the control API. The daemon authorizes the
// connection's peer as for any client, so an agent host gets exactly the
// projects its uid may use, and every call goes through the project's whole
// tool pipeline (policy, jail, caps).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "protocol/mcp/server.h"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

using nlohmann::json;

constexpr auto kReplace = json::error_handler_t::replace;

const CommandSpec& McpSpec() {
  static const auto* spec = new CommandSpec{
      "mcp",
      "--project ID",
      "Serves the Model Context Protocol (JSON-RPC 2.0, one message per line) "
      "on stdin and stdout for one project of a running jcs serve: its "
      "policy-filtered tools, every call jailed by the daemon. stdout carries "
      "only protocol messages; errors go to stderr. Register it in an agent "
      "host as a stdio server.",
      {{"--project", "ID", "", "the project whose tools to serve (required)"},
       SocketFlag()}};
  return *spec;
}

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
    if (parsed.value("status", "") != "accepted") return parsed;
    const std::string call_id = parsed.value("call_id", "");
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
  const std::string project = flags->Get("--project");
  if (project.empty()) return UsageError(spec, "--project: required");
  ControlToolBackend backend(flags->Get("--socket", DefaultSocket()), project);
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
  // A client that closes its end must not kill jcs mid-cancel: writes fail
  // with EPIPE instead and the server shuts down, cancelling running calls.
  signal(SIGPIPE, SIG_IGN);
  absl::Status served =
      protocol::mcp::McpServer::Serve(&backend, STDIN_FILENO, protocol_fd);
  close(protocol_fd);
  if (!served.ok()) return Fail(spec.name, served);
  return 0;
}

}  // namespace jcs::tools
