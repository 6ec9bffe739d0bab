// The small client commands: `jcs diagnostics`, `jcs ping`, `jcs events`
// and `jcs version` (project and tool are in their own files). Errors print
// the daemon's reason on stderr and exit 1; bad command lines exit 2.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/version.h"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"

namespace jcs::tools {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

}  // namespace

const CommandSpec& DiagnosticsSpec() {
  static const auto* spec = new CommandSpec{
      "diagnostics",
      "PROJECT",
      "Prints a project's diagnostics document: options (runtime_opts, "
      "inert_options), policy, telemetry, tools, conversations, health.",
      {SocketFlag(), JsonFlag("print it compact, as the daemon sent it")}};
  return *spec;
}

const CommandSpec& PingSpec() {
  static const auto* spec = new CommandSpec{
      "ping",
      "",
      "Exits 0 when the daemon answers (a container health check) and "
      "prints its version; 1 with one line on stderr when it does not.",
      {{"--timeout", "SECONDS", "5",
        "give up after this long (connect and answer), in (0, 3600]"},
       SocketFlag(),
       JsonFlag("print the version and the event loop's figures")}};
  return *spec;
}

const CommandSpec& EventsSpec() {
  static const auto* spec = new CommandSpec{
      "events",
      "PROJECT",
      "Streams the project's events (the control API's Subscribe) as JSON "
      "lines {name, project_id, at, seq, durable, payload} until "
      "interrupted.",
      {{"--max-events", "N", "unlimited", "exit 0 after N events"},
       SocketFlag()}};
  return *spec;
}

const CommandSpec& VersionSpec() {
  static const auto* spec = new CommandSpec{
      "version",
      "",
      "Prints jcs's version and, when a daemon answers on the socket within "
      "a second, the daemon's.",
      {SocketFlag(), JsonFlag("print {\"client\": ..., \"daemon\": ...}")}};
  return *spec;
}

namespace {

absl::StatusOr<proto::PingResponse> Ping(const std::string& socket,
                                         absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(socket, timeout);
  if (!client.ok()) return client.status();
  proto::Request request;
  request.mutable_ping();
  absl::StatusOr<proto::Response> response = (*client)->Call(request);
  if (!response.ok()) return response.status();
  if (response->has_error()) return StatusFromError(response->error());
  if (!response->has_ping()) {
    return absl::InternalError("the daemon answered without a PingResponse");
  }
  return response->ping();
}

}  // namespace

int DiagnosticsCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = DiagnosticsSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (flags->positional.size() != 1) {
    return UsageError(spec, "expected exactly one PROJECT");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags->Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<std::string> doc =
      (*client)->Diagnostics(flags->positional[0]);
  if (!doc.ok()) return Fail(spec.name, doc.status());
  const nlohmann::json parsed = nlohmann::json::parse(*doc, nullptr, false);
  printf("%s\n", flags->Has("--json") || parsed.is_discarded()
                     ? doc->c_str()
                     : parsed.dump(2, ' ', false, kReplace).c_str());
  return 0;
}

int PingCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = PingSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  // --timeout: a health check must give up before the container runtime's
  // own probe timeout kills it without a message.
  double timeout_s = 5;
  if (flags->Has("--timeout") &&
      (!absl::SimpleAtod(flags->Get("--timeout"), &timeout_s) ||
       !(timeout_s > 0 && timeout_s <= 3600))) {
    return UsageError(spec, "--timeout: expected seconds in (0, 3600]");
  }
  if (!flags->positional.empty()) return UsageError(spec, "takes no arguments");
  absl::StatusOr<proto::PingResponse> ping =
      Ping(flags->Get("--socket", DefaultSocket()), absl::Seconds(timeout_s));
  if (!ping.ok()) return Fail(spec.name, ping.status());
  if (!flags->Has("--json")) {
    printf("%s\n", ping->version().c_str());
    return 0;
  }
  const proto::LoopStats& loop = ping->loop();
  nlohmann::json out = {
      {"version", ping->version()},
      {"loop",
       {{"rounds", loop.rounds()},
        {"max_cpu_us", loop.max_cpu_us()},
        {"max_wall_us", loop.max_wall_us()},
        {"cpu_us_log2", std::vector<uint64_t>(loop.cpu_us_log2().begin(),
                                              loop.cpu_us_log2().end())},
        {"wall_us_log2", std::vector<uint64_t>(loop.wall_us_log2().begin(),
                                               loop.wall_us_log2().end())}}}};
  printf("%s\n", out.dump(-1, ' ', false, kReplace).c_str());
  return 0;
}

int EventsCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = EventsSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (flags->positional.size() != 1) {
    return UsageError(spec, "expected exactly one PROJECT");
  }
  int64_t max_events = 0;
  if (flags->Has("--max-events") &&
      (!absl::SimpleAtoi(flags->Get("--max-events"), &max_events) ||
       max_events <= 0)) {
    return UsageError(spec, "--max-events: expected a positive integer");
  }
  const std::string& project = flags->positional[0];
  // An empty id would subscribe to every project.
  if (project.empty()) return UsageError(spec, "PROJECT must not be empty");
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags->Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  if (absl::Status status = (*client)->Subscribe(project); !status.ok()) {
    return Fail(spec.name, status);
  }
  for (int64_t seen = 0; max_events == 0 || seen < max_events;) {
    absl::StatusOr<proto::Event> event = (*client)->NextEvent(absl::Hours(1));
    if (!event.ok()) {
      if (absl::IsDeadlineExceeded(event.status())) continue;
      return Fail(spec.name, event.status());
    }
    if (event->project_id() != project) continue;
    nlohmann::json payload =
        nlohmann::json::parse(event->payload_json(), nullptr, false);
    if (payload.is_discarded()) payload = event->payload_json();
    printf("%s\n", nlohmann::json({{"name", event->name()},
                                   {"project_id", event->project_id()},
                                   {"at", event->at()},
                                   {"seq", event->seq()},
                                   {"durable", event->durable()},
                                   {"payload", payload}})
                       .dump(-1, ' ', false, kReplace)
                       .c_str());
    fflush(stdout);
    ++seen;
  }
  return 0;
}

int VersionCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = VersionSpec();
  int exit_code = 0;
  std::optional<ParsedFlags> flags = ParseOrExit(spec, args, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (!flags->positional.empty()) return UsageError(spec, "takes no arguments");
  const std::string client = absl::StrCat("jcs ", kJcsVersion);
  // Only when one answers: no daemon is the normal case for `jcs run`.
  absl::StatusOr<proto::PingResponse> ping =
      Ping(flags->Get("--socket", DefaultSocket()), absl::Seconds(1));
  if (flags->Has("--json")) {
    nlohmann::json out = {{"client", client}, {"daemon", nullptr}};
    if (ping.ok()) out["daemon"] = ping->version();
    printf("%s\n", out.dump(-1, ' ', false, kReplace).c_str());
    return 0;
  }
  printf("%s\n", client.c_str());
  if (ping.ok()) printf("daemon: %s\n", ping->version().c_str());
  return 0;
}

}  // namespace jcs::tools
