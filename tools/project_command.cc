// `jcs project start|stop|list`.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "runtime/project/value.h"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"
#include "tools/option_flags.h"

namespace jcs::tools {
const std::vector<CommandSpec>& ProjectSpecs() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"project start",
       "ROOT",
       "Starts a project on the directory ROOT and prints its id. Options "
       "are validated by the daemon; the keys, types and defaults are in "
       "docs/runtime-options.md. Options jcs accepts but does not act on yet "
       "are named on stderr (and in --json as inert_options).",
       {{"--opt", "KEY=VALUE", "",
         "a runtime option; VALUE is JSON (5000, true, [\"a\"]) or else a "
         "string; later ones win",
         true},
        {"--options", "FILE", "", "a JSON object of runtime options"},
        {"--project-id", "ID", "project_N", "the project's id"},
        {"--data-dir", "DIR", ".jido", "the state directory, relative to ROOT"},
        {"--run-as", "UID[:GID]", "ROOT's owner (clients: themselves)",
         "who the tools run as (root or the daemon's uid only)"},
        SocketFlag(),
        JsonFlag("print {project_id, run_as, inert_options}")}},
      {"project stop",
       "ID",
       "Stops a project: its tool calls and conversations end.",
       {SocketFlag(), JsonFlag("print {\"stopped\": ID}")}},
      {"project list",
       "",
       "Lists the daemon's projects: id, conversations, start time (UTC, "
       "ISO 8601), root and data dir.",
       {SocketFlag(), JsonFlag("print the projects as a JSON array")}},
  };
  return *specs;
}

namespace {

// "UID" or "UID:GID" (decimal) into the request; false on anything else.
bool ParseRunAs(const std::string& text, proto::StartProjectRequest* start) {
  const size_t colon = text.find(':');
  const std::string uid_text = text.substr(0, colon);
  uint32_t uid = 0;
  uint32_t gid = 0;
  if (uid_text.empty() ||
      uid_text.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(uid_text, &uid)) {
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

// A start error in words: which path, which rule. The daemon's reason
// leads and its detail atom (enoent, must_be_relative, ...) ends the line,
// so scripts can still match both.
std::string StartErrorText(const absl::Status& status, const std::string& root,
                           const std::string& data_dir) {
  std::optional<proto::Error> error = ErrorOf(status);
  if (!error.has_value()) return std::string(status.message());
  const std::string& reason = error->reason();
  const std::string& detail = error->detail();
  if (reason == "invalid_root_path") {
    std::string rule;
    if (detail == "enoent") {
      rule = "does not exist";
    } else if (detail == "not_directory") {
      rule = "is not a directory";
    } else if (detail == "enotdir") {
      rule = "has a component that is not a directory";
    } else if (detail == "eacces") {
      rule = "cannot be searched (permission denied)";
    } else if (detail == "expected_string") {
      return "invalid_root_path: ROOT must be a non-empty path "
             "(expected_string)";
    } else {
      rule = "cannot be used";
    }
    return absl::StrCat(reason, ": ", root, " ", rule, " (", detail, ")");
  }
  if (reason == "invalid_data_dir") {
    std::string rule;
    // The rule in words, the daemon's atom after it for scripts.
    if (detail == "must_be_relative") {
      rule = "must be relative to the project root";
    } else if (detail == "must_not_traverse") {
      rule = "must not contain a '..' segment";
    } else if (detail == "invalid_chars") {
      rule = "must not contain a NUL byte";
    } else if (detail == "expected_non_empty_string") {
      rule = "must be a non-empty string";
    } else {
      rule = detail;
    }
    return absl::StrCat(reason, ": ", data_dir.empty() ? "" : data_dir + ": ",
                        rule, rule == detail ? "" : " (" + detail + ")");
  }
  return std::string(status.message());
}

int Start(const CommandSpec& spec, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) {
    return UsageError(spec, "expected exactly one ROOT");
  }
  // The daemon resolves paths against its own directory: send an absolute
  // root, resolved against the caller's (or `bazel run`'s) directory.
  std::string root = flags.positional[0];
  if (!root.empty() && root[0] != '/') {
    const char* base = getenv("BUILD_WORKING_DIRECTORY");
    char cwd[PATH_MAX];
    if (base == nullptr || base[0] != '/') base = getcwd(cwd, sizeof(cwd));
    if (base == nullptr) {
      return Fail(spec.name, absl::FailedPreconditionError(
                                 "cannot read the current directory"));
    }
    root = absl::StrCat(base, "/", root);
  }
  absl::StatusOr<runtime::OptionList> options = GatherOptions(flags);
  if (!options.ok()) {
    return UsageError(spec, std::string(options.status().message()));
  }
  proto::StartProjectRequest start;
  start.set_root(root);
  *start.mutable_options() = runtime::OptionsToProto(*options);
  if (flags.Has("--project-id"))
    start.set_project_id(flags.Get("--project-id"));
  std::string data_dir;
  if (flags.Has("--data-dir")) {
    data_dir = flags.Get("--data-dir");
    start.set_data_dir(data_dir);
  } else {
    for (const auto& [key, value] : *options) {
      if (key == "data_dir" && value.is_string())
        data_dir = value.string_value();
    }
  }
  if (flags.Has("--run-as") && !ParseRunAs(flags.Get("--run-as"), &start)) {
    return UsageError(spec,
                      "--run-as: expected UID or UID:GID (decimal), got '" +
                          flags.Get("--run-as") + "'");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<proto::StartProjectResponse> started =
      (*client)->StartProject(std::move(start));
  if (!started.ok()) {
    return Fail(spec.name, absl::FailedPreconditionError(StartErrorText(
                               started.status(), root, data_dir)));
  }
  const std::vector<std::string> inert(started->inert_options().begin(),
                                       started->inert_options().end());
  if (!inert.empty()) {
    fprintf(stderr,
            "jcs project start: accepted but not acted on yet: %s (see "
            "docs/runtime-options.md)\n",
            absl::StrJoin(inert, ", ").c_str());
  }
  if (flags.Has("--json")) {
    printf("%s\n", nlohmann::json({{"project_id", started->project_id()},
                                   {"run_as", RunAsJson(started->run_as())},
                                   {"inert_options", inert}})
                       .dump()
                       .c_str());
  } else {
    printf("%s\n", started->project_id().c_str());
  }
  return 0;
}

int Stop(const CommandSpec& spec, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) {
    return UsageError(spec, "expected exactly one project ID");
  }
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::Status status = (*client)->StopProject(flags.positional[0]);
  if (!status.ok()) return Fail(spec.name, status);
  if (flags.Has("--json")) {
    printf("%s\n",
           nlohmann::json({{"stopped", flags.positional[0]}})
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
               .c_str());
  }
  return 0;
}

// The daemon's RFC 3339 time (nanoseconds, +00:00) as ISO 8601 UTC to the
// second: 2026-12-03T09:10:49Z. Unparseable text is shown as it came.
std::string IsoSeconds(const std::string& text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return text;
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

int List(const CommandSpec& spec, const ParsedFlags& flags) {
  if (!flags.positional.empty()) return UsageError(spec, "takes no arguments");
  absl::StatusOr<std::unique_ptr<ControlClient>> client =
      ControlClient::Connect(flags.Get("--socket", DefaultSocket()));
  if (!client.ok()) return Fail(spec.name, client.status());
  absl::StatusOr<std::vector<proto::ProjectSummary>> projects =
      (*client)->ListProjects();
  if (!projects.ok()) return Fail(spec.name, projects.status());
  if (flags.Has("--json")) {
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
    printf("%s\n",
           out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
               .c_str());
    return 0;
  }
  printf("%-24s %-13s %-20s %s\n", "PROJECT", "CONVERSATIONS", "STARTED (UTC)",
         "ROOT (DATA DIR)");
  for (const proto::ProjectSummary& p : *projects) {
    printf("%-24s %-13u %-20s %s (%s)\n", p.project_id().c_str(),
           p.conversation_count(), IsoSeconds(p.started_at()).c_str(),
           p.root_path().c_str(), p.data_dir().c_str());
  }
  return 0;
}

}  // namespace

int ProjectCommand(const std::vector<std::string>& args) {
  int exit_code = 0;
  const CommandSpec* spec =
      PickSubcommand("project", ProjectSpecs(), args, &exit_code);
  if (spec == nullptr) return exit_code;
  std::optional<ParsedFlags> flags =
      ParseOrExit(*spec, {args.begin() + 1, args.end()}, &exit_code);
  if (!flags.has_value()) return exit_code;
  if (spec->name == "project start") return Start(*spec, *flags);
  if (spec->name == "project stop") return Stop(*spec, *flags);
  return List(*spec, *flags);
}

}  // namespace jcs::tools
