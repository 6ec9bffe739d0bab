// The jcs CLI as a control API client: `jcs project start|stop|list`,
// `jcs tool list|run|cancel`, `jcs diagnostics` and `jcs ping`. Common flags:
// --socket PATH (default $JCS_SOCKET, else /run/jcs/jcs.sock) and --json.
// Errors print the daemon's reason on stderr and exit 1; bad command lines
// exit 2.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/project/value.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

constexpr int kFailed = 1;
constexpr int kUsage = 2;

struct CommonFlags {
  std::string socket;
  bool json = false;
  std::vector<std::string> positional;
  std::vector<std::string> opts;  // --opt KEY=VALUE
  std::string options_file;
  std::optional<std::string> project_id;
  std::optional<std::string> data_dir;
  std::string run_as;  // --run-as UID[:GID]
  // jcs tool run / cancel.
  std::string args_json;
  std::string meta_json;
  std::string conversation;
  std::string correlation;
  bool async = false;
  bool wait = false;  // jcs tool result
};

// Parses the flags every client command shares plus the start-only ones;
// `error` names the offending flag.
bool ParseFlags(const std::vector<std::string>& args, bool allow_start_flags,
                CommonFlags* flags, std::string* error,
                bool allow_tool_flags = false) {
  const char* env_socket = getenv("JCS_SOCKET");
  flags->socket = env_socket != nullptr && env_socket[0] != '\0'
                      ? env_socket
                      : "/run/jcs/jcs.sock";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) {
        *error = arg + ": missing value";
        return false;
      }
      *out = args[++i];
      return true;
    };
    std::string v;
    if (arg == "--json") {
      flags->json = true;
    } else if (arg == "--socket") {
      if (!value(&flags->socket)) return false;
    } else if (allow_start_flags && arg == "--opt") {
      if (!value(&v)) return false;
      flags->opts.push_back(v);
    } else if (allow_start_flags && arg == "--options") {
      if (!value(&flags->options_file)) return false;
    } else if (allow_start_flags && arg == "--project-id") {
      if (!value(&v)) return false;
      flags->project_id = v;
    } else if (allow_start_flags && arg == "--data-dir") {
      if (!value(&v)) return false;
      flags->data_dir = v;
    } else if (allow_start_flags && arg == "--run-as") {
      if (!value(&flags->run_as)) return false;
    } else if (allow_tool_flags && arg == "--args") {
      if (!value(&flags->args_json)) return false;
    } else if (allow_tool_flags && arg == "--meta") {
      if (!value(&flags->meta_json)) return false;
    } else if (allow_tool_flags && arg == "--conversation") {
      if (!value(&flags->conversation)) return false;
    } else if (allow_tool_flags && arg == "--correlation-id") {
      if (!value(&flags->correlation)) return false;
    } else if (allow_tool_flags && arg == "--async") {
      flags->async = true;
    } else if (allow_tool_flags && arg == "--wait") {
      flags->wait = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      *error = "unknown flag '" + arg + "'";
      return false;
    } else {
      flags->positional.push_back(arg);
    }
  }
  return true;
}

int Fail(const std::string& command, const absl::Status& status) {
  fprintf(stderr, "jcs %s: %s\n", command.c_str(),
          std::string(status.message()).c_str());
  return kFailed;
}

int Usage(const std::string& command, const std::string& error,
          const char* usage) {
  fprintf(stderr, "jcs %s: %s\nusage: %s\n", command.c_str(), error.c_str(),
          usage);
  return kUsage;
}

absl::StatusOr<runtime::OptionList> GatherOptions(const CommonFlags& flags) {
  runtime::OptionList options;
  if (!flags.options_file.empty()) {
    std::ifstream in(flags.options_file);
    if (!in) {
      return absl::InvalidArgumentError("--options: cannot read " +
                                        flags.options_file);
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<runtime::OptionList> file =
        runtime::ParseOptionsJson(text.str());
    if (!file.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--options ", flags.options_file, ": ", file.status().message()));
    }
    options = *std::move(file);
  }
  absl::StatusOr<runtime::OptionList> cli = runtime::ParseKeyValues(flags.opts);
  if (!cli.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--opt: ", cli.status().message()));
  }
  options.insert(options.end(), cli->begin(), cli->end());
  return options;
}

constexpr char kProjectUsage[] =
    "jcs project start ROOT [--opt KEY=VALUE]... [--options FILE] "
    "[--project-id ID] [--data-dir DIR] [--run-as UID[:GID]] | jcs project "
    "stop ID | jcs project list   (all: [--socket PATH] [--json])";

// "UID" or "UID:GID" (decimal) into the request; false on anything else.
bool ParseRunAs(const std::string& text, proto::StartProjectRequest* start) {
  const size_t colon = text.find(':');
  uint32_t uid = 0;
  uint32_t gid = 0;
  if (!absl::SimpleAtoi(text.substr(0, colon), &uid) ||
      text.substr(0, colon).find_first_not_of("0123456789") !=
          std::string::npos) {
    return false;
  }
  start->set_run_as_uid(uid);
  if (colon == std::string::npos) return true;
  const std::string gid_text = text.substr(colon + 1);
  if (gid_text.empty() ||
      gid_text.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(gid_text, &gid)) {
    return false;
  }
  start->set_run_as_gid(gid);
  return true;
}

nlohmann::json RunAsJson(const proto::RunAs& run_as) {
  return {{"uid", run_as.uid()},
          {"gid", run_as.gid()},
          {"source", run_as.source()}};
}

}  // namespace

int ProjectCommand(const std::vector<std::string>& args) {
  if (args.empty())
    return Usage("project", "missing subcommand", kProjectUsage);
  const std::string sub = args[0];
  const std::string command = "project " + sub;
  CommonFlags flags;
  std::string error;
  if (!ParseFlags({args.begin() + 1, args.end()}, sub == "start", &flags,
                  &error)) {
    return Usage(command, error, kProjectUsage);
  }
  if (sub == "start") {
    if (flags.positional.size() != 1) {
      return Usage(command, "expected exactly one ROOT", kProjectUsage);
    }
    // The daemon resolves paths against its own directory: send an absolute
    // root, resolved against the caller's (or `bazel run`'s) directory.
    std::string root = flags.positional[0];
    if (!root.empty() && root[0] != '/') {
      const char* base = getenv("BUILD_WORKING_DIRECTORY");
      char cwd[PATH_MAX];
      if (base == nullptr || base[0] != '/') {
        base = getcwd(cwd, sizeof(cwd));
      }
      if (base == nullptr) {
        return Fail(command, absl::FailedPreconditionError(
                                 "cannot read the current directory"));
      }
      root = absl::StrCat(base, "/", root);
    }
    absl::StatusOr<runtime::OptionList> options = GatherOptions(flags);
    if (!options.ok())
      return Usage(command, std::string(options.status().message()),
                   kProjectUsage);
    proto::StartProjectRequest start;
    start.set_root(root);
    *start.mutable_options() = runtime::OptionsToProto(*options);
    if (flags.project_id.has_value()) start.set_project_id(*flags.project_id);
    if (flags.data_dir.has_value()) start.set_data_dir(*flags.data_dir);
    if (!flags.run_as.empty() && !ParseRunAs(flags.run_as, &start)) {
      return Usage(command,
                   "--run-as: expected UID or UID:GID (decimal), got '" +
                       flags.run_as + "'",
                   kProjectUsage);
    }
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket);
    if (!client.ok()) return Fail(command, client.status());
    absl::StatusOr<proto::StartProjectResponse> started =
        (*client)->StartProject(std::move(start));
    if (!started.ok()) return Fail(command, started.status());
    if (flags.json) {
      printf("%s\n", nlohmann::json({{"project_id", started->project_id()},
                                     {"run_as", RunAsJson(started->run_as())}})
                         .dump()
                         .c_str());
    } else {
      printf("%s\n", started->project_id().c_str());
    }
    return 0;
  }
  if (sub == "stop") {
    if (flags.positional.size() != 1) {
      return Usage(command, "expected exactly one project ID", kProjectUsage);
    }
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket);
    if (!client.ok()) return Fail(command, client.status());
    absl::Status status = (*client)->StopProject(flags.positional[0]);
    if (!status.ok()) return Fail(command, status);
    if (flags.json)
      printf("{\"stopped\":\"%s\"}\n", flags.positional[0].c_str());
    return 0;
  }
  if (sub == "list") {
    if (!flags.positional.empty()) {
      return Usage(command, "takes no arguments", kProjectUsage);
    }
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket);
    if (!client.ok()) return Fail(command, client.status());
    absl::StatusOr<std::vector<proto::ProjectSummary>> projects =
        (*client)->ListProjects();
    if (!projects.ok()) return Fail(command, projects.status());
    if (flags.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const proto::ProjectSummary& p : *projects) {
        out.push_back({{"project_id", p.project_id()},
                       {"root_path", p.root_path()},
                       {"data_dir", p.data_dir()},
                       {"conversation_count", p.conversation_count()},
                       {"started_at", p.started_at()},
                       {"owner_uid", p.owner_uid()},
                       {"run_as", RunAsJson(p.run_as())}});
      }
      printf("%s\n", out.dump().c_str());
    } else {
      printf("%-24s %-13s %-24s %s\n", "PROJECT", "CONVERSATIONS", "STARTED",
             "ROOT (DATA DIR)");
      for (const proto::ProjectSummary& p : *projects) {
        printf("%-24s %-13u %-24s %s (%s)\n", p.project_id().c_str(),
               p.conversation_count(), p.started_at().c_str(),
               p.root_path().c_str(), p.data_dir().c_str());
      }
    }
    return 0;
  }
  return Usage("project", "unknown subcommand '" + sub + "'", kProjectUsage);
}

int DiagnosticsCommand(const std::vector<std::string>& args) {
  constexpr char kUsageText[] =
      "jcs diagnostics PROJECT [--socket PATH] [--json]";
  CommonFlags flags;
  std::string error;
  if (!ParseFlags(args, false, &flags, &error)) {
    return Usage("diagnostics", error, kUsageText);
  }
  if (flags.positional.size() != 1) {
    return Usage("diagnostics", "expected exactly one PROJECT", kUsageText);
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.socket);
  if (!client.ok()) return Fail("diagnostics", client.status());
  absl::StatusOr<std::string> doc = (*client)->Diagnostics(flags.positional[0]);
  if (!doc.ok()) return Fail("diagnostics", doc.status());
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  printf("%s\n", flags.json || parsed.is_discarded() ? doc->c_str()
                                                     : parsed.dump(2).c_str());
  return 0;
}

int ToolCommand(const std::vector<std::string>& args) {
  constexpr char kToolUsage[] =
      "jcs tool list PROJECT | jcs tool run PROJECT NAME [--args JSON] "
      "[--meta JSON] [--conversation ID] [--correlation-id ID] [--async] | "
      "jcs tool cancel PROJECT (CALL_ID | --conversation ID) | "
      "jcs tool result PROJECT CALL_ID [--wait]   (all: "
      "[--socket PATH] [--json])";
  if (args.empty()) return Usage("tool", "missing subcommand", kToolUsage);
  const std::string sub = args[0];
  CommonFlags flags;
  std::string error;
  if (!ParseFlags(std::vector<std::string>(args.begin() + 1, args.end()), false,
                  &flags, &error, /*allow_tool_flags=*/true)) {
    return Usage("tool", error, kToolUsage);
  }
  const std::vector<std::string>& pos = flags.positional;
  if (sub == "list") {
    if (pos.size() != 1) {
      return Usage("tool", "list: expected exactly one PROJECT", kToolUsage);
    }
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket);
    if (!client.ok()) return Fail("tool", client.status());
    absl::StatusOr<std::string> tools = (*client)->ListTools(pos[0]);
    if (!tools.ok()) return Fail("tool", tools.status());
    if (flags.json) {
      printf("%s\n", tools->c_str());
      return 0;
    }
    for (const nlohmann::json& tool :
         nlohmann::json::parse(*tools, nullptr, false)) {
      printf("%-14s %-13s %s%s\n", tool.value("name", "").c_str(),
             tool.value("kind", "").c_str(),
             tool["safety"].value("sandboxed", false) ? "jailed" : "in-process",
             tool["safety"].value("network_capable", false) ? ", network" : "");
    }
    return 0;
  }
  if (sub == "run") {
    if (pos.size() != 2) {
      return Usage("tool", "run: expected PROJECT and NAME", kToolUsage);
    }
    nlohmann::json meta = nlohmann::json::object();
    if (!flags.meta_json.empty()) {
      meta = nlohmann::json::parse(flags.meta_json, nullptr, false);
      if (meta.is_discarded() || !meta.is_object()) {
        return Usage("tool", "--meta: expected a JSON object", kToolUsage);
      }
    }
    if (!flags.args_json.empty()) {
      const nlohmann::json parsed =
          nlohmann::json::parse(flags.args_json, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return Usage("tool", "--args: expected a JSON object", kToolUsage);
      }
    }
    if (!flags.conversation.empty())
      meta["conversation_id"] = flags.conversation;
    if (!flags.correlation.empty()) meta["correlation_id"] = flags.correlation;
    if (flags.async) meta["run_mode"] = "async";
    // A synchronous call waits as long as the tool runs (bounded by the
    // project's tool_timeout_ms on the daemon's side).
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket, absl::Hours(24 * 8));
    if (!client.ok()) return Fail("tool", client.status());
    absl::StatusOr<std::string> doc =
        (*client)->RunTool(pos[0], pos[1], flags.args_json, meta.dump());
    if (!doc.ok()) return Fail("tool", doc.status());
    const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
    printf("%s\n", flags.json || parsed.is_discarded()
                       ? doc->c_str()
                       : parsed
                             .dump(2, ' ', false,
                                   nlohmann::json::error_handler_t::replace)
                             .c_str());
    if (parsed.is_object() && parsed.value("status", "") == "error") {
      const std::string detail =
          parsed.contains("detail") && !parsed["detail"].empty()
              ? parsed["detail"].dump()
              : "";
      fprintf(stderr, "jcs tool: %s%s%s\n",
              parsed.value("reason", "error").c_str(),
              detail.empty() ? "" : ": ", detail.c_str());
      return kFailed;
    }
    return 0;
  }
  if (sub == "cancel") {
    if (!(pos.size() == 2 ||
          (pos.size() == 1 && !flags.conversation.empty()))) {
      return Usage("tool",
                   "cancel: expected PROJECT and CALL_ID (or "
                   "--conversation ID)",
                   kToolUsage);
    }
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket);
    if (!client.ok()) return Fail("tool", client.status());
    nlohmann::json meta = nlohmann::json::object();
    if (!flags.correlation.empty()) meta["correlation_id"] = flags.correlation;
    absl::StatusOr<uint32_t> cancelled = (*client)->CancelTool(
        pos[0], pos.size() == 2 ? pos[1] : "", flags.conversation, meta.dump());
    if (!cancelled.ok()) return Fail("tool", cancelled.status());
    if (flags.json) {
      printf("{\"cancelled\":%u}\n", *cancelled);
    } else {
      printf("%u\n", *cancelled);
    }
    return 0;
  }
  if (sub == "result") {
    // A finished call's response document (sync or async), from the journal;
    // --wait: a running call answers when it ends.
    if (pos.size() != 2) {
      return Usage("tool", "result: expected PROJECT and CALL_ID", kToolUsage);
    }
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(flags.socket, absl::Hours(24 * 8));
    if (!client.ok()) return Fail("tool", client.status());
    absl::StatusOr<std::string> doc =
        (*client)->GetToolResult(pos[0], pos[1], flags.wait);
    if (!doc.ok()) return Fail("tool", doc.status());
    const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
    printf("%s\n", flags.json || parsed.is_discarded()
                       ? doc->c_str()
                       : parsed
                             .dump(2, ' ', false,
                                   nlohmann::json::error_handler_t::replace)
                             .c_str());
    return 0;
  }
  return Usage("tool", "unknown subcommand '" + sub + "'", kToolUsage);
}

int PingCommand(const std::vector<std::string>& args) {
  constexpr char kPingUsage[] =
      "jcs ping [--socket PATH] [--json] [--timeout SECONDS]";
  // --timeout is ping's own flag: a health check must give up before the
  // container runtime's own probe timeout kills it without a message.
  std::vector<std::string> rest;
  double timeout_s = 5;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--timeout") {
      rest.push_back(args[i]);
      continue;
    }
    if (i + 1 >= args.size() || !absl::SimpleAtod(args[i + 1], &timeout_s) ||
        !(timeout_s > 0 && timeout_s <= 3600)) {
      return Usage("ping", "--timeout: expected seconds in (0, 3600]",
                   kPingUsage);
    }
    ++i;
  }
  CommonFlags flags;
  std::string error;
  if (!ParseFlags(rest, false, &flags, &error)) {
    return Usage("ping", error, kPingUsage);
  }
  if (!flags.positional.empty()) {
    return Usage("ping", "takes no arguments", kPingUsage);
  }
  // The timeout bounds both the connect and the answer.
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.socket, absl::Seconds(timeout_s));
  if (!client.ok()) return Fail("ping", client.status());
  proto::Request request;
  request.mutable_ping();
  absl::StatusOr<proto::Response> response = (*client)->Call(request);
  if (!response.ok()) return Fail("ping", response.status());
  if (response->has_error()) {
    return Fail("ping", StatusFromError(response->error()));
  }
  if (!response->has_ping()) {
    return Fail("ping", absl::InternalError(
                            "the daemon answered without a PingResponse"));
  }
  const proto::PingResponse& ping = response->ping();
  if (!flags.json) {
    printf("%s\n", ping.version().c_str());
    return 0;
  }
  const proto::LoopStats& loop = ping.loop();
  nlohmann::json out = {
      {"version", ping.version()},
      {"loop",
       {{"rounds", loop.rounds()},
        {"max_cpu_us", loop.max_cpu_us()},
        {"max_wall_us", loop.max_wall_us()},
        {"cpu_us_log2", std::vector<uint64_t>(loop.cpu_us_log2().begin(),
                                              loop.cpu_us_log2().end())},
        {"wall_us_log2", std::vector<uint64_t>(loop.wall_us_log2().begin(),
                                               loop.wall_us_log2().end())}}}};
  printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace jcs::tools
