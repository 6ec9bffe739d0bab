#include "supervisor/control_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/json_fields.h"
#include "base/version.h"
#include "jail/project_quota.h"
#include "runtime/conversation/incident_timeline.h"
#include "runtime/project/protocol_allowlist.h"
#include "runtime/project/runtime_options.h"
#include "runtime/project/runtime_options_error.h"
#include "runtime/project/runtime_options_reference.h"
#include "runtime/tools/tool_catalog.h"
#include "supervisor/project_journal.h"
#include "telemetry/logging/event_log.h"
#include "telemetry/logging/line_writer.h"
#include "telemetry/redact.h"

namespace jcs::supervisor {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

std::string Dump(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, kReplace);
}

void SetError(proto::Response& response, const std::string& reason,
              const std::string& key, const std::string& detail,
              const std::string& message) {
  proto::Error* error = response.mutable_error();
  error->set_reason(reason);
  error->set_key(key);
  error->set_detail(detail);
  error->set_message(message);
}

// Parses an optional JSON object field of a request ("" means {}).
bool ParseObjectField(const std::string& text, const char* field,
                      nlohmann::json* out, proto::Response& response) {
  if (text.empty()) {
    *out = nlohmann::json::object();
    return true;
  }
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    SetError(response, "invalid_tool_call", field,
             parsed.is_discarded() ? "malformed_json" : "expected_object",
             absl::StrCat("invalid_tool_call: ", field,
                          parsed.is_discarded() ? " is not valid JSON"
                                                : " must be a JSON object"));
    return false;
  }
  *out = std::move(parsed);
  return true;
}

// The project's disk budget (runtime options disk_quota_bytes/_inodes).
jail::ProjectQuotaLimits DiskBudget(const runtime::ProjectSummary& summary) {
  jail::ProjectQuotaLimits limits;
  const runtime::ValidatedOptions& o = summary.options;
  if (o.disk_quota_bytes) {
    limits.bytes = static_cast<uint64_t>(*o.disk_quota_bytes);
  }
  if (o.disk_quota_inodes) {
    limits.inodes = static_cast<uint64_t>(*o.disk_quota_inodes);
  }
  return limits;
}

}  // namespace

proto::Error ErrorFromStatus(const absl::Status& status) {
  proto::Error error;
  error.set_message(std::string(status.message()));
  if (std::optional<runtime::InvalidRuntimeOpt> opt =
          runtime::GetInvalidRuntimeOpt(status)) {
    error.set_reason("invalid_runtime_opt");
    error.set_key(opt->key);
    error.set_detail(opt->ReasonString());
    if (opt->reason == "unknown_option") {
      error.set_hint(runtime::NearestRuntimeOption(opt->key).value_or(""));
    }
    return error;
  }
  const std::string reason = runtime::ProjectErrorReason(status);
  const std::string text =
      reason.empty() ? std::string(status.message()) : reason;
  const size_t colon = text.find(": ");
  if (colon == std::string::npos) {
    error.set_reason(reason.empty() ? "internal" : reason);
  } else {
    error.set_reason(text.substr(0, colon));
    error.set_detail(text.substr(colon + 2));
  }
  return error;
}

namespace {

// `path` is `dir` or beneath it.
bool Within(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, dir == "/" ? dir : dir + "/");
}

// A sink path with its directory resolved (project roots are canonical): a
// symlinked directory does not hide a sink inside a root. The file itself
// may not exist yet.
std::string CanonicalSinkPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  char* dir =
      realpath(slash == 0 ? "/" : path.substr(0, slash).c_str(), nullptr);
  if (dir == nullptr) return path;
  std::string out(dir);
  free(dir);
  return absl::StrCat(out == "/" ? "" : out, path.substr(slash));
}

std::string AlertProgramDir(const std::string& program) {
  const size_t slash = program.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/"
                                                  : program.substr(0, slash);
}

std::vector<std::string> SinkPaths(
    const telemetry::alerts::RouterConfig& config) {
  std::vector<std::string> paths;
  for (const telemetry::alerts::SinkConfig& sink : config.sinks) {
    if (!sink.path.empty()) paths.push_back(CanonicalSinkPath(sink.path));
    // An exec sink's program directory is bound into its jail: a project
    // that could write there could replace the program and read every
    // project's alerts.
    if (sink.kind == telemetry::alerts::SinkConfig::Kind::kExec &&
        !sink.argv.empty()) {
      paths.push_back(CanonicalSinkPath(AlertProgramDir(sink.argv[0])));
    }
  }
  return paths;
}

}  // namespace

ControlService::ControlService(runtime::EventLoop* loop,
                               ControlServiceOptions options)
    : loop_(loop),
      options_(std::move(options)),
      registry_(runtime::ProjectRegistry::Config{
          [this](absl::string_view name, const nlohmann::json& payload) {
            OnEvent(name, payload);
          },
          [] { return absl::Now(); }, options_.daemon_paths}) {
  router_ = std::make_unique<telemetry::alerts::Router>(options_.alerts);
  alert_sink_paths_ = SinkPaths(options_.alerts);
  bus_.AddSink([this](const telemetry::Event& e) {
    proto::Event event;
    event.set_name(e.name);
    event.set_project_id(e.project_id);
    std::string payload = Dump(e.payload);
    event.set_payload_json(payload);
    event.set_at(telemetry::Rfc3339(e.at));
    if (journal_ == nullptr) {
      Publish(std::move(event));
      return;
    }
    event.set_seq(journal_->Append(e, std::move(payload)));
    if (journal_failing_) {
      Publish(std::move(event));  // said not durable
      return;
    }
    held_events_.push_back(std::move(event));
    if (held_events_.size() > kMaxHeldEvents) {
      proto::Event oldest = std::move(held_events_.front());
      held_events_.pop_front();
      Publish(std::move(oldest));
    }
  });
  bus_.AddSink([this](const telemetry::Event& e) { OnAlertSignal(e); });
  alert_events_.insert(options_.alerts.signal_events.begin(),
                       options_.alerts.signal_events.end());
  bus_.AddSink([this](const telemetry::Event& e) {
    metrics_.Observe(e);
    if (log_ != nullptr) telemetry::logging::LogEvent(*log_, e, alert_events_);
  });
}

void ControlService::OnAlertSignal(const telemetry::Event& event) {
  router_->Route(event);
  for (telemetry::alerts::RuleAlert& alert : rules_.Observe(event)) {
    telemetry::logging::StderrLine(absl::StrFormat(
        "jcs: alert %s (project %s, %s)", alert.event_name.c_str(),
        alert.payload["project_id"].is_string()
            ? alert.payload["project_id"].get<std::string>().c_str()
            : "-",
        json_fields::String(alert.payload, "severity", "warning").c_str()));
    // Through the bus like any event: journaled, streamed to subscribers,
    // counted, and back in this sink, which routes alert.* events.
    bus_.Emit(alert.event_name, std::move(alert.payload));
  }
}

absl::Status ControlService::CheckAlertSinksOutside(
    const std::string& root) const {
  for (const std::string& path : alert_sink_paths_) {
    if (Within(path, root) || Within(root, path)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "root_contains_daemon_files: ", root, " holds the alert sink ", path,
          "; a jailed program could read or replace every project's "
          "alerts: pick a root that does not hold it"));
    }
  }
  return absl::OkStatus();
}

absl::Status ControlService::ReconfigureAlerts(
    telemetry::alerts::RouterConfig config) {
  std::vector<std::string> paths = SinkPaths(config);
  for (const runtime::ProjectSummary& project : registry_.ListProjects()) {
    for (const std::string& path : paths) {
      if (Within(path, project.root_path)) {
        return absl::FailedPreconditionError(
            absl::StrCat("alert sink ", path, " is inside the root of project ",
                         project.project_id,
                         ": its tools could read every project's alerts"));
      }
    }
  }
  alert_sink_paths_ = std::move(paths);
  alert_events_.clear();
  alert_events_.insert(config.signal_events.begin(),
                       config.signal_events.end());
  router_->Reconfigure(std::move(config));
  return absl::OkStatus();
}

void ControlService::Publish(proto::Event event) {
  if (publish_) publish_(event);
}

void ControlService::OnJournalDurable(uint64_t seq) {
  while (!held_events_.empty() && held_events_.front().seq() <= seq) {
    proto::Event event = std::move(held_events_.front());
    held_events_.pop_front();
    event.set_durable(true);
    Publish(std::move(event));
  }
}

void ControlService::OnJournalHealth(const absl::Status& status,
                                     size_t pending) {
  if (status.ok()) {
    journal_failing_ = false;
    bus_.Emit("journal.write_recovered", nlohmann::json::object());
    return;
  }
  journal_failing_ = true;
  // Nothing waits for a disk that is full: what was held goes out now, marked
  // not durable, like every event until writes work again.
  while (!held_events_.empty()) {
    proto::Event event = std::move(held_events_.front());
    held_events_.pop_front();
    Publish(std::move(event));
  }
  bus_.Emit("journal.write_failed", {{"reason", "journal_write_failed"},
                                     {"error", std::string(status.message())},
                                     {"pending", pending}});
}

ControlService::~ControlService() {
  drained_ = nullptr;
  conversations_.clear();  // stops every conversation
  tools_.clear();          // kills every running tool call
}

void ControlService::OnEvent(absl::string_view name,
                             const nlohmann::json& payload) {
  const std::string project =
      payload.contains("project_id") && payload["project_id"].is_string()
          ? payload["project_id"].get<std::string>()
          : std::string();
  // A project id that is reused starts with fresh counters.
  if (name == "project.started") {
    bus_.Forget(project);
    std::optional<runtime::ProjectSummary> summary =
        registry_.GetProject(project);
    if (summary.has_value()) owners_[project] = summary->owner_uid;
  }
  bus_.Emit(std::string_view(name.data(), name.size()), payload);
  if (name == "project.stopped") {
    bus_.Forget(project);
    owners_.erase(project);
  }
}

bool ControlService::Privileged(const PeerCredentials& peer) {
  return peer.uid == 0 || peer.uid == geteuid();
}

bool ControlService::IsAdmin(const PeerCredentials& peer) const {
  if (Privileged(peer) || options_.admin_uids.count(peer.uid) > 0) return true;
  for (gid_t gid : options_.admin_gids) {
    if (peer.InGroup(gid)) return true;
  }
  return false;
}

std::optional<proto::Error> ControlService::AuthorizeProject(
    const PeerCredentials& peer, const std::string& project_id) const {
  auto it = owners_.find(project_id);
  if (it == owners_.end() || it->second == peer.uid || IsAdmin(peer)) {
    return std::nullopt;  // unknown ids get project_not_found
  }
  proto::Error error;
  error.set_reason("unauthorized");
  error.set_key("project_id");
  error.set_detail(absl::StrCat("uid ", peer.uid, " may not use project ",
                                project_id, " (started by another user)"));
  error.set_message(absl::StrCat("unauthorized: ", error.detail()));
  return error;
}

std::optional<proto::Error> ControlService::AuthorizeSubscribe(
    const PeerCredentials& peer, const std::string& project_id) {
  // "" (all): filtered per event by MaySee.
  if (project_id.empty()) return std::nullopt;
  return AuthorizeProject(peer, project_id);
}

bool ControlService::MaySee(const PeerCredentials& peer,
                            const proto::Event& event) {
  if (IsAdmin(peer)) return true;
  auto it = owners_.find(event.project_id());
  return it != owners_.end() && it->second == peer.uid;
}

absl::StatusOr<std::string> ControlService::StartProject(
    const std::string& root, const runtime::OptionList& options,
    const runtime::StartProjectParams& params, bool boot) {
  runtime::OptionList merged = options_.default_options;
  merged.insert(merged.end(), options.begin(), options.end());
  absl::StatusOr<std::string> id = registry_.StartProject(root, merged, params);
  if (!id.ok()) return id;
  std::optional<runtime::ProjectSummary> summary = registry_.GetProject(*id);
  // Alert sinks added by a SIGHUP reload are not in the registry's
  // daemon_paths (fixed at start): the same rule, checked here.
  if (summary.has_value()) {
    if (absl::Status s = CheckAlertSinksOutside(summary->root_path); !s.ok()) {
      (void)registry_.StopProject(*id);
      return s;
    }
  }
  // ---- disk budget (jail/project_quota.h): before any jail exists; fail
  // closed when the filesystem cannot enforce it.
  if (summary.has_value()) {
    absl::StatusOr<uint32_t> quota =
        jail::ApplyProjectQuota(summary->root_path, DiskBudget(*summary));
    if (!quota.ok()) {
      (void)registry_.StopProject(*id);
      return quota.status();
    }
  }
  // ---- end disk budget
  if (summary.has_value()) {
    runtime::ToolRuntimeConfig config;
    config.project_id = *id;
    config.root = summary->root_path;
    config.data_dir = summary->data_dir;
    config.options = summary->options;
    config.uid = summary->run_as.uid;
    config.gid = summary->run_as.gid;
    config.on_result = [this, project = *id](const std::string& call_id,
                                             const std::string& conversation,
                                             const nlohmann::json& response) {
      metrics_.ObserveToolResult(response);
      if (journal_ == nullptr) return;
      runtime::journal::StoredToolResult result;
      result.project_id = project;
      result.call_id = call_id;
      result.conversation_id = conversation;
      result.result_json = Dump(telemetry::Redacted(response));
      journal_->PutToolResult(std::move(result));
    };
    auto tools =
        std::make_unique<runtime::ToolRuntime>(loop_, &bus_, std::move(config));
    tools->set_on_idle([this] { CheckDrained(); });
    runtime::ToolRuntime* raw = tools.get();
    tools_[*id] = std::move(tools);
    // The assets are loaded before any tool can run (spec §6): with
    // strict_asset_loading a bad file fails the start, naming file and
    // reason.
    if (absl::Status loaded = raw->LoadAssets(); !loaded.ok()) {
      tools_.erase(*id);
      (void)registry_.StopProject(*id);
      return absl::FailedPreconditionError(
          absl::StrCat("start_project_failed: ", loaded.message()));
    }
    runtime::conversation::ConversationRuntimeConfig conversations;
    conversations.project_id = *id;
    conversations.loop = loop_;
    conversations.bus = &bus_;
    conversations.options = summary->options;
    conversations.tools.run = [raw](runtime::ToolCallRequest request,
                                    runtime::ToolRuntime::Respond respond) {
      raw->Run(std::move(request), std::move(respond));
    };
    conversations.tools.await_result =
        [raw](const std::string& call_id,
              runtime::ToolRuntime::Respond respond) {
          return raw->AwaitResult(call_id, std::move(respond));
        };
    conversations.tools.recent_result = [raw](const std::string& call_id) {
      return raw->RecentResult(call_id);
    };
    conversations.tools.cancel_conversation =
        [raw](const std::string& conversation, const nlohmann::json& meta) {
          return raw->CancelConversation(conversation, meta);
        };
    // A model is offered only the tools it may call (not invalid
    // command/workflow definitions, which run in preview mode).
    conversations.tools.list_tools = [raw] {
      nlohmann::json offered = nlohmann::json::array();
      for (nlohmann::json& tool : raw->ListTools()) {
        if (json_fields::Bool(tool, "llm_exposed", true))
          offered.push_back(std::move(tool));
      }
      return offered;
    };
    conversations_[*id] =
        std::make_unique<runtime::conversation::ConversationRuntime>(
            std::move(conversations));
  }
  if (journal_ != nullptr) {
    JournaledStart start{root, options, params, boot};
    start.params.project_id = *id;
    journal_->ProjectStarted(*id, JournaledStartToJson(start), absl::Now());
  }
  return id;
}

int ControlService::RestoreProjects(const std::set<std::string>& boot_ids) {
  if (journal_ == nullptr) return 0;
  absl::StatusOr<std::vector<runtime::journal::StoredProject>> running =
      journal_->RunningProjects();
  if (!running.ok()) {
    telemetry::logging::StderrLine(absl::StrFormat(
        "jcs serve: journal: cannot read the running projects: %s",
        std::string(running.status().message()).c_str()));
    return 0;
  }
  int restored = 0;
  for (const runtime::journal::StoredProject& stored : *running) {
    absl::StatusOr<JournaledStart> start =
        JournaledStartFromJson(stored.spec_json);
    absl::Status status = start.status();
    if (start.ok() && (start->boot || boot_ids.count(stored.project_id) > 0)) {
      // The config starts it again (maybe under another generated id).
      journal_->ProjectStopped(stored.project_id);
      continue;
    }
    if (start.ok()) {
      status =
          StartProject(start->root, start->options, start->params).status();
    }
    if (status.ok()) {
      ++restored;
      continue;
    }
    telemetry::logging::StderrLine(absl::StrFormat(
        "jcs serve: project %s did not come back: %s",
        stored.project_id.c_str(), std::string(status.message()).c_str()));
    journal_->ProjectStopped(stored.project_id);
    bus_.Emit("project.restore_failed",
              {{"project_id", stored.project_id},
               {"root_path", start.ok() ? start->root : ""},
               {"reason", ErrorFromStatus(status).reason()},
               {"error", std::string(status.message())}});
  }
  return restored;
}

size_t ControlService::running_tool_calls() const {
  size_t running = 0;
  for (const auto& [id, tools] : tools_) running += tools->running();
  return running;
}

void ControlService::CheckDrained() {
  if (!draining_ || !drained_ || running_tool_calls() > 0) return;
  std::function<void()> drained = std::move(drained_);
  drained_ = nullptr;
  // Not inline: this may run inside a tool runtime's bookkeeping.
  (void)loop_->Post([drained] { drained(); });
}

void ControlService::Drain(absl::Duration grace,
                           std::function<void()> drained) {
  draining_ = true;
  drained_ = std::move(drained);
  if (running_tool_calls() == 0) {
    CheckDrained();
    return;
  }
  (void)loop_->Timeout(grace, [this](int res) {
    if (res < 0) return;
    for (auto& [id, tools] : tools_) tools->KillAll("drain_timeout");
    CheckDrained();
  });
}

std::optional<nlohmann::json> ControlService::Diagnostics(
    const std::string& project_id) const {
  std::optional<runtime::ProjectSummary> summary =
      registry_.GetProject(project_id);
  if (!summary.has_value()) return std::nullopt;
  nlohmann::json doc = runtime::SummaryToJson(*summary);
  doc["inert_options"] = runtime::InertOptions(summary->options);
  doc["telemetry"] = bus_.Snapshot(project_id);
  const runtime::ValidatedOptions& o = summary->options;
  nlohmann::json outside = nlohmann::json::array();
  for (const runtime::OutsideRootEntry& e : o.outside_root_allowlist) {
    outside.push_back({{"pattern", e.pattern}, {"reason_code", e.reason_code}});
  }
  const auto sorted = [](std::vector<std::string> list) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    return list;
  };
  nlohmann::json policy = {
      {"project_id", project_id},
      {"root_path", summary->root_path},
      // §3.7: sorted, [] when allow_tools is not set (every tool allowed by
      // name); allow_tools_set tells the two apart.
      {"allow_tools", o.allow_tools.has_value() ? sorted(*o.allow_tools)
                                                : std::vector<std::string>()},
      {"allow_tools_set", o.allow_tools.has_value()},
      {"deny_tools", sorted(o.deny_tools)},
      {"network_egress_policy",
       std::string(runtime::EgressPolicyName(o.network_egress_policy))},
      {"network_allowlist", sorted(o.network_allowlist)},
      {"network_allowed_schemes", sorted(o.network_allowed_schemes)},
      {"sensitive_path_denylist", sorted(o.sensitive_path_denylist)},
      {"sensitive_path_allowlist", sorted(o.sensitive_path_allowlist)},
      {"outside_root_allowlist", outside},
      {"tool_env_allowlist", o.tool_env_allowlist}};
  if (auto it = tools_.find(project_id); it != tools_.end()) {
    nlohmann::json tools = it->second->Diagnostics();
    // Decisions quote the call's arguments (a path, a host): redacted like
    // every other payload a client sees.
    policy["recent_decisions"] = telemetry::Redacted(tools["recent_decisions"]);
    doc["tools"] = {{"running_calls", tools["running_calls"]},
                    {"timeout_counts", tools["timeout_counts"]},
                    {"sensitive_index", tools["sensitive_index"]}};
  }
  doc["policy"] = policy;
  if (auto it = tools_.find(project_id); it != tools_.end()) {
    // §5.4's assets block; the loader's errors name files of the root (the
    // peer's own), never their contents.
    doc["assets"] = it->second->assets().Diagnostics();
    doc["assets"]["strict"] = o.strict_asset_loading;
    doc["assets"]["watcher"] = it->second->WatcherDiagnostics();
    // Spec §5.4 (quirk 5 fixed): true when the watcher really runs.
    doc["watcher_enabled"] =
        json_fields::Bool(doc["assets"]["watcher"], "watching", false);
  }
  // ---- disk budget: limits and usage as the kernel accounts them.
  if (jail::ProjectQuotaLimits budget = DiskBudget(*summary); budget.any()) {
    doc["disk_quota"] =
        jail::ProjectQuotaDiagnostics(summary->root_path, budget);
  }
  // ---- end disk budget
  size_t conversation_count = 0;
  doc["conversations"] = nlohmann::json::array();
  if (auto it = conversations_.find(project_id); it != conversations_.end()) {
    conversation_count = it->second->count();
    doc["conversations"] = telemetry::Redacted(it->second->Diagnostics());
  }
  doc["conversation_count"] = conversation_count;
  // Health is what an operator pages on: degraded while a runbook rule
  // fires (telemetry/alerts/rules.h), not whenever the error ring holds an
  // expected denial. error_count is kept (spec §5.4).
  const absl::Time now = absl::Now();
  const nlohmann::json& errors = doc["telemetry"]["recent_errors"];
  nlohmann::json firing = rules_.FiringRules(project_id, now);
  doc["health"] = {{"status", firing.empty() ? "ok" : "degraded"},
                   {"error_count", errors.size()},
                   {"firing_rules", std::move(firing)},
                   {"conversation_count", conversation_count}};
  doc["alerts"] = {{"rules", rules_.Rules(project_id, now)},
                   {"router", router_->Diagnostics()}};
  if (journal_ != nullptr) {
    doc["journal"] = journal_->Diagnostics();
    // What happens now is not being kept: an operator must know.
    if (journal_failing_) {
      doc["health"]["status"] = "degraded";
      doc["health"]["journal"] = "write_failed";
    }
  }
  return doc;
}

void ControlService::Handle(const proto::Request& request,
                            const PeerCredentials& peer, Respond respond) {
  proto::Response response;
  response.set_id(request.id());
  auto fail = [&](const absl::Status& status) {
    *response.mutable_error() = ErrorFromStatus(status);
  };
  switch (request.body_case()) {
    case proto::Request::kStartProject: {
      const proto::StartProjectRequest& start = request.start_project();
      runtime::StartProjectParams params;
      if (start.has_project_id()) params.project_id = start.project_id();
      if (start.has_data_dir()) params.data_dir = start.data_dir();
      if (start.has_run_as_uid()) params.run_as_uid = start.run_as_uid();
      if (start.has_run_as_gid()) params.run_as_gid = start.run_as_gid();
      params.requester = {peer.uid, peer.gid, peer.groups, Privileged(peer)};
      absl::StatusOr<std::string> id = StartProject(
          start.root(), runtime::OptionsFromProto(start.options()), params);
      std::optional<runtime::ProjectSummary> summary;
      if (id.ok()) summary = registry_.GetProject(*id);
      if (summary.has_value()) {
        proto::StartProjectResponse* out = response.mutable_start_project();
        out->set_project_id(*id);
        out->mutable_run_as()->set_uid(summary->run_as.uid);
        out->mutable_run_as()->set_gid(summary->run_as.gid);
        out->mutable_run_as()->set_source(summary->run_as.source);
        for (const std::string& key : runtime::InertOptions(summary->options)) {
          out->add_inert_options(key);
        }
      } else if (!id.ok()) {
        fail(id.status());
      } else {
        fail(absl::InternalError("the project stopped while starting"));
      }
      if (id.ok() && journal_ != nullptr) {
        // Answered once the start is durable: a project its requester saw
        // start comes back after a crash.
        journal_->Flush([reply = std::move(respond),
                         response](const absl::Status&) { reply(response); });
        return;
      }
      break;
    }
    case proto::Request::kStopProject: {
      const std::string& id = request.stop_project().project_id();
      if (std::optional<proto::Error> refused = AuthorizeProject(peer, id)) {
        *response.mutable_error() = *std::move(refused);
        break;
      }
      // Conversations stop first (conversation.stopped; their calls are
      // cancelled), then running tool calls are killed (their callers get
      // project_stopped), then the project goes.
      if (registry_.GetProject(id).has_value()) {
        conversations_.erase(id);
        tools_.erase(id);
      }
      absl::Status status = registry_.StopProject(id);
      if (status.ok() && journal_ != nullptr) {
        // Answered once the stop is durable: a stopped project stays
        // stopped across a crash.
        journal_->ProjectStopped(id);
        response.mutable_stop_project();
        journal_->Flush([reply = std::move(respond),
                         response](const absl::Status&) { reply(response); });
        return;
      }
      if (status.ok()) {
        response.mutable_stop_project();
      } else {
        fail(status);
      }
      break;
    }
    case proto::Request::kListProjects: {
      proto::ListProjectsResponse* list = response.mutable_list_projects();
      const bool admin = IsAdmin(peer);
      for (const runtime::ProjectSummary& s : registry_.ListProjects()) {
        if (!admin && s.owner_uid != peer.uid) continue;
        proto::ProjectSummary* out = list->add_projects();
        out->set_owner_uid(s.owner_uid);
        out->mutable_run_as()->set_uid(s.run_as.uid);
        out->mutable_run_as()->set_gid(s.run_as.gid);
        out->mutable_run_as()->set_source(s.run_as.source);
        out->set_project_id(s.project_id);
        out->set_root_path(s.root_path);
        out->set_data_dir(s.data_dir);
        auto conversations = conversations_.find(s.project_id);
        out->set_conversation_count(
            static_cast<uint32_t>(conversations == conversations_.end()
                                      ? 0
                                      : conversations->second->count()));
        // The same rendering as diagnostics (runtime::SummaryToJson).
        out->set_started_at(
            runtime::SummaryToJson(s)["started_at"].get<std::string>());
      }
      break;
    }
    case proto::Request::kDiagnostics: {
      const std::string& id = request.diagnostics().project_id();
      if (std::optional<proto::Error> refused = AuthorizeProject(peer, id)) {
        *response.mutable_error() = *std::move(refused);
        break;
      }
      std::optional<nlohmann::json> doc = Diagnostics(id);
      if (doc.has_value()) {
        response.mutable_diagnostics()->set_json(doc->dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        proto::Error* error = response.mutable_error();
        error->set_reason("project_not_found");
        error->set_detail(id);
        error->set_message(absl::StrCat("project_not_found: ", id));
      }
      break;
    }
    case proto::Request::kAuthorizeProtocol: {
      const proto::AuthorizeProtocolRequest& ask = request.authorize_protocol();
      if (std::optional<proto::Error> refused =
              AuthorizeProject(peer, ask.project_id())) {
        *response.mutable_error() = *std::move(refused);
        break;
      }
      std::optional<runtime::ProjectSummary> summary =
          registry_.GetProject(ask.project_id());
      if (!summary.has_value()) {
        fail(absl::NotFoundError(
            absl::StrCat("project_not_found: ", ask.project_id())));
        break;
      }
      const std::string protocol = absl::AsciiStrToLower(ask.protocol());
      if (runtime::ProtocolAllowed(summary->options.protocol_allowlist,
                                   protocol)) {
        response.mutable_authorize_protocol();
        break;
      }
      // The runbook's signal: a gateway reached a project that opted out.
      OnEvent("security.protocol_denied", {{"project_id", ask.project_id()},
                                           {"protocol", protocol},
                                           {"operation", ask.operation()}});
      SetError(
          response, "protocol_denied", "protocol_allowlist", protocol,
          absl::StrCat("protocol_denied: ", protocol, " is not in project ",
                       ask.project_id(), "'s protocol_allowlist (operation ",
                       ask.operation(), ")"));
      break;
    }
    case proto::Request::kReloadAssets: {
      const std::string& id = request.reload_assets().project_id();
      if (std::optional<proto::Error> refused = AuthorizeProject(peer, id)) {
        *response.mutable_error() = *std::move(refused);
        break;
      }
      auto it = tools_.find(id);
      if (it == tools_.end()) {
        fail(absl::NotFoundError(absl::StrCat("project_not_found: ", id)));
        break;
      }
      // Answered when the reload, read off the loop, is done.
      it->second->ReloadAssets(
          "reload_assets",
          [response, respond = std::move(respond)](
              absl::StatusOr<nlohmann::json> reloaded) mutable {
            if (reloaded.ok()) {
              response.mutable_reload_assets()->set_json(reloaded->dump(
                  -1, ' ', false, nlohmann::json::error_handler_t::replace));
            } else {
              *response.mutable_error() = ErrorFromStatus(reloaded.status());
            }
            respond(std::move(response));
          });
      return;
    }
    case proto::Request::kListTools:
    case proto::Request::kRunTool:
    case proto::Request::kCancelTool:
      if (std::optional<proto::Error> refused = AuthorizeProject(
              peer, request.has_list_tools() ? request.list_tools().project_id()
                    : request.has_run_tool()
                        ? request.run_tool().project_id()
                        : request.cancel_tool().project_id())) {
        *response.mutable_error() = *std::move(refused);
        break;
      }
      HandleToolRequest(request, response, respond);
      if (!respond) return;  // answered later (a running tool call)
      break;
    case proto::Request::kStartConversation:
    case proto::Request::kStopConversation:
    case proto::Request::kConversationCall:
    case proto::Request::kConversationCast:
    case proto::Request::kConversationState:
    case proto::Request::kConversationProjection:
      HandleConversationRequest(request, peer, response, respond);
      if (!respond) return;  // answered later (a call waiting to settle)
      break;
    case proto::Request::kGetToolResult:
      HandleGetToolResult(request, peer, response, respond);
      if (!respond) return;  // answered later (a running call, the journal)
      break;
    case proto::Request::kIncidentTimeline:
      HandleIncidentTimeline(request, peer, response, respond);
      if (!respond) return;  // answered once the journal has read it
      break;
    case proto::Request::kMetrics: {
      // Every project's ids, tools and counts: admins only.
      if (!IsAdmin(peer)) {
        SetError(response, "unauthorized", "",
                 absl::StrCat("uid ", peer.uid,
                              " may not read the metrics (they cover every "
                              "project): admins only (admin_uids, "
                              "admin_gids)"),
                 absl::StrCat("unauthorized: uid ", peer.uid,
                              " may not read the daemon's metrics"));
        break;
      }
      proto::MetricsResponse* metrics = response.mutable_metrics();
      metrics->set_text(MetricsText());
      metrics->set_content_type(telemetry::metrics::kContentType);
      break;
    }
    case proto::Request::kPing: {
      proto::PingResponse* ping = response.mutable_ping();
      ping->set_version(absl::StrCat("jcs ", kJcsVersion));
      const runtime::EventLoop::Stats& stats = loop_->stats();
      proto::LoopStats* loop = ping->mutable_loop();
      loop->set_rounds(stats.rounds);
      loop->set_max_cpu_us(stats.max_cpu_us);
      loop->set_max_wall_us(stats.max_wall_us);
      for (const uint64_t n : stats.cpu_us_log2) loop->add_cpu_us_log2(n);
      for (const uint64_t n : stats.wall_us_log2) loop->add_wall_us_log2(n);
      break;
    }
    case proto::Request::kDaemonRun: {
      // Served by supervisor/daemon_run.h when switched on (the control
      // server hands such connections over before they get here).
      proto::Error* error = response.mutable_error();
      error->set_reason("daemon_run_disabled");
      error->set_message(
          "this daemon does not serve jcs run --daemon (daemon_run: true in "
          "its config switches it on)");
      break;
    }
    default: {
      proto::Error* error = response.mutable_error();
      error->set_reason("unknown_request");
      error->set_message("this daemon does not handle that request type");
    }
  }
  respond(std::move(response));
}

void ControlService::HandleToolRequest(const proto::Request& request,
                                       proto::Response& response,
                                       Respond& respond) {
  const std::string& project_id =
      request.has_list_tools() ? request.list_tools().project_id()
      : request.has_run_tool() ? request.run_tool().project_id()
                               : request.cancel_tool().project_id();
  auto it = tools_.find(project_id);
  if (it == tools_.end()) {
    SetError(response, "project_not_found", "project_id", project_id,
             absl::StrCat("project_not_found: ", project_id));
    return;
  }
  runtime::ToolRuntime& tools = *it->second;
  if (request.has_list_tools()) {
    response.mutable_list_tools()->set_tools_json(Dump(tools.ListTools()));
    return;
  }
  if (request.has_cancel_tool()) {
    const proto::CancelToolRequest& cancel = request.cancel_tool();
    nlohmann::json meta;
    if (!ParseObjectField(cancel.meta_json(), "meta_json", &meta, response)) {
      return;
    }
    if (!cancel.call_id().empty()) {
      absl::Status status = tools.Cancel(cancel.call_id(), meta);
      if (!status.ok()) {
        SetError(response, "call_not_found", "call_id", cancel.call_id(),
                 std::string(status.message()));
        return;
      }
      response.mutable_cancel_tool()->set_cancelled(1);
    } else if (!cancel.conversation_id().empty()) {
      response.mutable_cancel_tool()->set_cancelled(static_cast<uint32_t>(
          tools.CancelConversation(cancel.conversation_id(), meta)));
    } else {
      SetError(response, "invalid_request", "call_id", "missing",
               "cancel_tool: give call_id or conversation_id");
    }
    return;
  }
  const proto::RunToolRequest& run = request.run_tool();
  runtime::ToolCallRequest call;
  call.name = run.name();
  if (!ParseObjectField(run.args_json(), "args_json", &call.args, response) ||
      !ParseObjectField(run.meta_json(), "meta_json", &call.meta, response)) {
    return;
  }
  if (draining_) {
    SetError(response, "draining", "", "",
             "draining: the supervisor is shutting down and takes no new "
             "tool calls");
    return;
  }
  const uint64_t id = request.id();
  Respond reply = std::move(respond);
  respond = nullptr;
  tools.Run(std::move(call), [id, reply](nlohmann::json doc) {
    proto::Response out;
    out.set_id(id);
    out.mutable_run_tool()->set_json(Dump(doc));
    reply(std::move(out));
  });
}

// A finished call's document: from the tool runtime while it is recent,
// else from the journal; with `wait`, a running call answers when it ends.
void ControlService::HandleGetToolResult(const proto::Request& request,
                                         const PeerCredentials& peer,
                                         proto::Response& response,
                                         Respond& respond) {
  const proto::GetToolResultRequest& get = request.get_tool_result();
  const std::string& project_id = get.project_id();
  const std::string& call_id = get.call_id();
  if (call_id.empty()) {
    SetError(response, "invalid_request", "call_id", "missing",
             "get_tool_result: give call_id");
    return;
  }
  if (owners_.count(project_id) > 0) {
    if (std::optional<proto::Error> refused =
            AuthorizeProject(peer, project_id)) {
      *response.mutable_error() = *std::move(refused);
      return;
    }
  } else if (!IsAdmin(peer)) {
    // A stopped project's owner is no longer known: its results are for
    // admins only, and others learn nothing about it.
    SetError(response, "project_not_found", "project_id", project_id,
             absl::StrCat("project_not_found: ", project_id));
    return;
  }
  const uint64_t id = request.id();
  const auto answer = [id](const std::string& json) {
    proto::Response out;
    out.set_id(id);
    out.mutable_get_tool_result()->set_json(json);
    return out;
  };
  if (auto it = tools_.find(project_id); it != tools_.end()) {
    runtime::ToolRuntime& tools = *it->second;
    if (std::optional<nlohmann::json> recent = tools.RecentResult(call_id)) {
      response = answer(Dump(telemetry::Redacted(*std::move(recent))));
      return;
    }
    if (tools.IsRunning(call_id)) {
      if (!get.wait()) {
        SetError(response, "call_running", "call_id", call_id,
                 absl::StrCat("call_running: ", call_id,
                              " has not finished (pass wait to wait for it)"));
        return;
      }
      Respond reply = std::move(respond);
      respond = nullptr;
      tools.AwaitResult(call_id, [reply, answer](nlohmann::json doc) {
        reply(answer(Dump(telemetry::Redacted(std::move(doc)))));
      });
      return;
    }
  }
  if (journal_ == nullptr) {
    SetError(response, "call_not_found", "call_id", call_id,
             absl::StrCat("call_not_found: ", call_id));
    return;
  }
  Respond reply = std::move(respond);
  respond = nullptr;
  journal_->QueryToolResult(
      project_id, call_id,
      [id, reply, answer, call_id](
          absl::StatusOr<std::optional<runtime::journal::StoredToolResult>>
              found) {
        proto::Response out;
        out.set_id(id);
        if (!found.ok()) {
          SetError(
              out, "journal_unavailable", "", "",
              absl::StrCat("journal_unavailable: ", found.status().message()));
        } else if (!found->has_value()) {
          SetError(out, "call_not_found", "call_id", call_id,
                   absl::StrCat("call_not_found: ", call_id));
        } else {
          out = answer((*found)->result_json);
        }
        reply(std::move(out));
      });
}

// Served from the journal, which holds the events of live and stopped
// conversations alike (and of a project that has stopped: those are for
// admins only, as its tool results are).
void ControlService::HandleIncidentTimeline(const proto::Request& request,
                                            const PeerCredentials& peer,
                                            proto::Response& response,
                                            Respond& respond) {
  const proto::IncidentTimelineRequest& get = request.incident_timeline();
  const std::string& project_id = get.project_id();
  if (project_id.empty() || get.conversation_id().empty()) {
    const char* field = project_id.empty() ? "project_id" : "conversation_id";
    SetError(response, "invalid_request", field, "missing",
             absl::StrCat("incident_timeline: give ", field));
    return;
  }
  if (owners_.count(project_id) > 0) {
    if (std::optional<proto::Error> refused =
            AuthorizeProject(peer, project_id)) {
      *response.mutable_error() = *std::move(refused);
      return;
    }
  } else if (!IsAdmin(peer)) {
    SetError(response, "project_not_found", "project_id", project_id,
             absl::StrCat("project_not_found: ", project_id));
    return;
  }
  if (journal_ == nullptr) {
    SetError(response, "journal_unavailable", "", "",
             "journal_unavailable: the incident timeline is read from the "
             "journal, which this daemon does not have (it opens one in its "
             "state directory)");
    return;
  }
  runtime::conversation::TimelineQuery query;
  query.project_id = project_id;
  query.conversation_id = get.conversation_id();
  query.correlation_id = get.correlation_id();
  query.limit = get.limit();
  const uint64_t id = request.id();
  Respond reply = std::move(respond);
  respond = nullptr;
  runtime::conversation::QueryIncidentTimeline(
      journal_, std::move(query),
      [id, reply, conversation_id = get.conversation_id()](
          absl::StatusOr<nlohmann::json> timeline) {
        proto::Response out;
        out.set_id(id);
        if (timeline.ok()) {
          out.mutable_incident_timeline()->set_json(Dump(*timeline));
        } else if (timeline.status().code() == absl::StatusCode::kNotFound) {
          SetError(out, "conversation_not_found", "conversation_id",
                   conversation_id,
                   absl::StrCat("conversation_not_found: ", conversation_id));
        } else {
          SetError(out, "journal_unavailable", "", "",
                   absl::StrCat("journal_unavailable: ",
                                timeline.status().message()));
        }
        reply(std::move(out));
      });
}

}  // namespace jcs::supervisor
