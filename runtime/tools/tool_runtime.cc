#include "runtime/tools/tool_runtime.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/json_fields.h"
#include "jail/runner.h"
#include "runtime/policy/env_policy.h"
#include "runtime/policy/network_policy.h"
#include "runtime/policy/path_policy.h"
#include "runtime/policy/sensitive_mask.h"
#include "runtime/policy/sensitive_scan.h"
#include "runtime/tools/asset_tools.h"
#include "runtime/tools/fs_tools.h"
#include "runtime/tools/tool_call.h"
#include "runtime/tools/tool_catalog.h"
#include "runtime/tools/tool_outcome.h"
#include "runtime/tools/tool_schema.h"

namespace jcs::runtime {
namespace {

constexpr nlohmann::json::error_handler_t kReplace =
    nlohmann::json::error_handler_t::replace;

std::string Trimmed(const nlohmann::json& value) {
  if (!value.is_string()) return "";
  std::string s = value.get<std::string>();
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const size_t last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// The size of a result as jcs measures it: its canonical (compact) JSON.
size_t CanonicalSize(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, kReplace).size();
}

// Depth-first over every "artifacts" list (§4.5): the index is the position
// in the flattened list, the size an artifact's canonical JSON (a string
// artifact: its bytes).
void CollectArtifacts(const nlohmann::json& value,
                      std::vector<const nlohmann::json*>* out, int depth) {
  if (depth > 64) return;
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      if (key == "artifacts" && child.is_array()) {
        for (const nlohmann::json& artifact : child) {
          out->push_back(&artifact);
          CollectArtifacts(artifact, out, depth + 1);
        }
      } else {
        CollectArtifacts(child, out, depth + 1);
      }
    }
  } else if (value.is_array()) {
    for (const nlohmann::json& child : value) {
      CollectArtifacts(child, out, depth + 1);
    }
  }
}

size_t ArtifactSize(const nlohmann::json& artifact) {
  return artifact.is_string() ? artifact.get_ref<const std::string&>().size()
                              : CanonicalSize(artifact);
}

}  // namespace

std::string NewCorrelationId() {
  unsigned char bytes[10];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "corr-";
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

ToolRuntime::ToolRuntime(EventLoop* loop, telemetry::Bus* bus,
                         ToolRuntimeConfig config)
    : loop_(loop),
      bus_(bus),
      config_(std::move(config)),
      call_id_prefix_(NewCorrelationId().substr(5, 8)) {
  // The identity the in-process file tools use: the project's, the same as
  // the jail user's; never host root (fail closed to nobody).
  fs_uid_ = config_.uid == 0 ? 65534 : config_.uid;
  fs_gid_ = config_.gid == 0 ? 65534 : config_.gid;
  // The data dir is followed by this fd from now on (jail_masks.h).
  if (!config_.data_dir.empty()) {
    UniqueFd root_fd(
        open(config_.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root_fd.valid()) {
      data_dir_fd_->Reset(OpenDirBeneathLong(root_fd.get(), config_.data_dir));
    }
  }
  // Off the loop: calls use the full scan until it is ready.
  index_ = std::make_shared<SensitiveIndex>(
      config_.root, config_.options.sensitive_path_denylist,
      config_.options.sensitive_path_allowlist);
  index_->StartBuild();
  assets::LoaderConfig loader;
  loader.root = config_.root;
  loader.data_dir = config_.data_dir;
  loader.sensitive_denylist = config_.options.sensitive_path_denylist;
  loader.sensitive_allowlist = config_.options.sensitive_path_allowlist;
  // The tree is the user's: it is read with the user's permissions only (a
  // file only root may read is "unreadable: eacces", never loaded).
  loader.enter_identity =
      [uid = fs_uid_,
       gid = fs_gid_]() -> absl::StatusOr<std::shared_ptr<void>> {
    auto identity = std::make_shared<ScopedFsIdentity>(uid, gid);
    if (!identity->ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("asset_identity_failed: ", identity->problem()));
    }
    return std::shared_ptr<void>(std::move(identity));
  };
  assets_ = std::make_shared<assets::AssetStore>(std::move(loader));
}

ToolRuntime::~ToolRuntime() {
  stopping_ = true;
  if (watcher_ != nullptr && !watcher_->ended()) {  // else said already
    bus_->Emit("project.watcher_stopped",
               {{"project_id", config_.project_id},
                {"pending_event_count", watcher_->pending_event_count()}});
    watcher_.reset();
  }
  on_idle_ = nullptr;
  KillAll("project_stopped");
  *alive_ = false;
  index_->Stop();  // a build still running ends early
  // Killed in the background; the daemon waits for them at exit
  // (jail::StopJailTeardowns).
  for (WarmPool& pool : pools_) DiscardJails(pool);
}

nlohmann::json ToolRuntime::ListTools() const {
  std::vector<const ToolSpec*> visible;
  for (const ToolSpec& tool : BuiltinTools()) {
    if (ToolVisible(tool, config_.options)) visible.push_back(&tool);
  }
  if (asset_tools_ != nullptr) {
    for (const ToolSpec& tool : asset_tools_->tools()) {
      if (ToolVisible(tool, config_.options)) visible.push_back(&tool);
    }
  }
  std::sort(
      visible.begin(), visible.end(),
      [](const ToolSpec* a, const ToolSpec* b) { return a->name < b->name; });
  nlohmann::json tools = nlohmann::json::array();
  for (const ToolSpec* tool : visible) tools.push_back(ToolToJson(*tool));
  return tools;
}

nlohmann::json ToolRuntime::Envelope(const Call& call,
                                     nlohmann::json extra) const {
  nlohmann::json doc = {
      {"project_id", config_.project_id},
      {"tool", call.tool_name.empty() ? "unknown" : call.tool_name},
      {"call_id", call.call_id},
      {"conversation_id", call.conversation_id.empty()
                              ? nlohmann::json()
                              : nlohmann::json(call.conversation_id)},
      {"correlation_id", call.correlation_id}};
  if (extra.is_object()) {
    for (auto& [key, value] : extra.items()) doc[key] = std::move(value);
  }
  return doc;
}

nlohmann::json ToolRuntime::ErrorResponse(const Call& call,
                                          const std::string& reason,
                                          nlohmann::json detail) const {
  return Envelope(call, {{"status", "error"},
                         {"duration_ms", (ToolNowUs() - call.start_us) / 1000},
                         {"reason", reason},
                         {"detail", std::move(detail)}});
}

void ToolRuntime::Emit(std::string_view name, const Call& call,
                       nlohmann::json extra) {
  bus_->Emit(name, Envelope(call, std::move(extra)));
}

void ToolRuntime::Run(ToolCallRequest request, Respond respond) {
  // policy.allowed and tool.started reach the sinks (journal, log, metrics,
  // alert rules) when Run returns: a jailed call whose masks are ready is
  // launched first (perf: the sinks were a quarter of the loop's time
  // before the jail's command was sent).
  telemetry::Bus::Held held = bus_->Hold();
  auto call = std::make_shared<Call>();
  call->start_us = ToolNowUs();
  call->respond = std::move(respond);
  call->call_id = absl::StrCat("call-", call_id_prefix_, "-", next_call_++);
  const bool meta_ok = request.meta.is_null() || request.meta.is_object();
  call->meta = request.meta.is_object() ? std::move(request.meta)
                                        : nlohmann::json::object();
  std::string correlation =
      Trimmed(json_fields::String(call->meta, "correlation_id"));
  call->correlation_id =
      correlation.empty() ? NewCorrelationId() : std::move(correlation);
  call->meta["correlation_id"] = call->correlation_id;
  call->conversation_id =
      Trimmed(json_fields::String(call->meta, "conversation_id"));
  call->async = json_fields::String(call->meta, "run_mode") == "async" ||
                json_fields::Bool(call->meta, "async", false);
  if (request.name.is_string()) call->tool_name = request.name;

  // 0. The call's shape, and the tool.
  if (!request.name.is_string() || !meta_ok ||
      !(request.args.is_null() || request.args.is_object())) {
    call->tool_name = call->tool_name.empty() ? "unknown" : call->tool_name;
    Fail(call, "invalid_tool_call",
         {{"message", "expected {name: string, args: object, meta: object}"}});
    return;
  }
  call->args = request.args.is_object() ? std::move(request.args)
                                        : nlohmann::json::object();
  call->tool = FindTool(call->tool_name);
  if (call->tool == nullptr && asset_tools_ != nullptr) {
    call->tool = asset_tools_->Find(call->tool_name);
    if (call->tool != nullptr) call->asset_tools = asset_tools_;
  }
  if (call->tool == nullptr) {
    Fail(call, "unknown_tool", {{"tool", call->tool_name}});
    return;
  }

  // 1. input_schema.
  if (std::optional<ToolArgsError> error =
          ValidateToolArgsDetailed(call->tool->input_schema, call->args)) {
    Fail(call, "invalid_tool_args",
         {{"message", error->Reason()},
          {"kind", std::string(ToolArgsErrorKindName(error->kind))},
          {"path", FormatToolArgsPath(error->path)},
          {"keys", error->keys}});
    return;
  }

  // 1b. an asset-backed tool's program and parameters (asset_definitions.h):
  // the values become environment variables and a JSON document on stdin,
  // never program text.
  std::vector<std::pair<std::string, std::string>> param_env;
  if (call->tool->definition != nullptr && call->tool->sandboxed) {
    absl::StatusOr<assets::Invocation> invocation = assets::BuildInvocation(
        *call->tool->definition, call->args, call->correlation_id);
    if (!invocation.ok()) {
      Fail(call, "invalid_tool_args",
           {{"message", std::string(invocation.status().message())},
            {"kind", "invalid_value"}});
      return;
    }
    call->exec_args = {{"argv", call->tool->definition->argv},
                       {"stdin", std::move(invocation->stdin_json)}};
    param_env = std::move(invocation->env);
  }

  // 2. env.
  if (call->tool->takes_env) {
    EnvDecision env = CheckEnvPayload(call->args, config_.options);
    if (!env.ok) {
      nlohmann::json extra = {{"reason", env.reason}};
      if (!env.denied_keys.empty()) extra["denied_env_keys"] = env.denied_keys;
      Emit("security.env_denied", *call, extra);
      Fail(call, env.reason,
           env.denied_keys.empty()
               ? nlohmann::json::object()
               : nlohmann::json{{"denied_env_keys", env.denied_keys}});
      return;
    }
    call->env = std::move(env.env);
  }
  // The parameters' variables win over a caller's `env` of the same name.
  // (Not a structured binding: clang 14 cannot capture one in the lambda.)
  for (auto& param : param_env) {
    const std::string& key = param.first;
    std::erase_if(call->env, [&](const auto& kv) { return kv.first == key; });
    call->env.push_back(std::move(param));
  }

  // 3. policy, 4. capacity.
  if (!Authorize(call) || !AcquireCapacity(call)) return;

  calls_[call->call_id] = call;
  Emit("tool.started", *call,
       {{"kind", ToolKindName(call->tool->kind)},
        {"async", call->async},
        {"arg_keys", [&] {
           nlohmann::json keys = nlohmann::json::array();
           for (const auto& [key, value] : call->args.items()) {
             keys.push_back(key);
           }
           return keys;
         }()}});
  if (call->async) {
    Respond respond_now = std::move(call->respond);
    call->respond = nullptr;
    respond_now(Envelope(*call, {{"status", "accepted"}}));
  }
  Execute(call);
}

void ToolRuntime::RecordDecision(const Call& call, bool allowed,
                                 const std::string& reason,
                                 const std::vector<std::string>& codes,
                                 nlohmann::json extra) {
  // §3.7's decision shape names the tool `tool_name`.
  nlohmann::json decision = Envelope(call);
  decision.erase("tool");
  decision.update({{"tool_name", call.tool_name},
                   {"decision", allowed ? "allow" : "deny"},
                   {"reason", allowed ? "allowed" : reason},
                   {"outside_root_exception_reason_codes", codes},
                   {"at", telemetry::Rfc3339(absl::Now())}});
  if (extra.is_object()) decision.update(extra);
  decisions_.push_front(
      decision.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  while (decisions_.size() > kMaxRecentDecisions) decisions_.pop_back();
  bus_->Emit(allowed ? "policy.allowed" : "policy.denied", decision);
  if (allowed) {
    for (const std::string& code : codes) {
      nlohmann::json payload = decision;
      payload["reason_code"] = code;
      bus_->Emit("security.sandbox_exception_used", payload);
    }
    return;
  }
  if (reason == "outside_root") {
    bus_->Emit("security.sandbox_violation", decision);
  } else if (reason == kNetworkDenied || reason == kNetworkEndpointDenied ||
             reason == kNetworkProtocolDenied) {
    bus_->Emit("security.network_denied", decision);
  } else if (reason == "sensitive_path_denied") {
    bus_->Emit("security.sensitive_path_denied", decision);
  }
}

bool ToolRuntime::Authorize(const std::shared_ptr<Call>& call) {
  const ValidatedOptions& options = config_.options;
  // 1. allow/deny by name.
  if (!ToolAllowedByName(call->tool_name, options)) {
    RecordDecision(*call, false, "denied", {}, {});
    Fail(call, "denied", {});
    return false;
  }
  // 2. network.
  if (call->tool->network_capable) {
    NetworkDecision network;
    if (options.network_egress_policy != EgressPolicy::kAllow) {
      network.allowed = false;
      network.reason = kNetworkDenied;
    } else {
      network = CheckNetwork(call->args, options);
    }
    if (!network.allowed) {
      nlohmann::json detail = {{"target", network.target},
                               {"host", network.host},
                               {"scheme", network.scheme}};
      RecordDecision(*call, false, network.reason, {}, detail);
      Fail(call, network.reason, detail);
      return false;
    }
  }
  // 3. paths: every path-like argument, and exec's working directory.
  PathDecision paths = CheckToolPaths(config_.root, call->args, options);
  if (paths.allowed && call->tool->kind == ToolKind::kExec &&
      call->args.contains("cwd")) {
    PathDecision cwd = CheckToolPaths(
        config_.root, nlohmann::json{{"path", call->args["cwd"]}}, options);
    cwd.exception_reason_codes.insert(cwd.exception_reason_codes.begin(),
                                      paths.exception_reason_codes.begin(),
                                      paths.exception_reason_codes.end());
    paths = std::move(cwd);
  }
  if (!paths.allowed) {
    nlohmann::json detail = {{"path", paths.candidate}};
    if (!paths.resolved_path.empty()) {
      detail["resolved_path"] = paths.resolved_path;
    }
    RecordDecision(*call, false, paths.reason, {}, detail);
    Fail(call, paths.reason, detail);
    return false;
  }
  call->outside_root_exception = !paths.exception_reason_codes.empty();
  RecordDecision(*call, true, "allowed", paths.exception_reason_codes, {});
  return true;
}

bool ToolRuntime::AcquireCapacity(const std::shared_ptr<Call>& call) {
  const ValidatedOptions& options = config_.options;
  if (static_cast<int64_t>(calls_.size()) >= options.tool_max_concurrency) {
    Fail(call, "max_concurrency_reached",
         {{"limit", options.tool_max_concurrency}});
    return false;
  }
  if (!call->conversation_id.empty()) {
    int64_t& running = conversation_running_[call->conversation_id];
    if (running >= options.tool_max_concurrency_per_conversation) {
      if (running == 0) conversation_running_.erase(call->conversation_id);
      Fail(call, "conversation_max_concurrency_reached",
           {{"limit", options.tool_max_concurrency_per_conversation}});
      return false;
    }
    ++running;
  }
  call->holds_capacity = true;
  return true;
}

void ToolRuntime::ReleaseCapacity(Call& call) {
  if (!call.holds_capacity) return;
  call.holds_capacity = false;
  if (!call.conversation_id.empty()) {
    auto it = conversation_running_.find(call.conversation_id);
    if (it != conversation_running_.end() && --it->second <= 0) {
      conversation_running_.erase(it);
    }
  }
}

void ToolRuntime::Execute(const std::shared_ptr<Call>& call) {
  if (call->tool->sandboxed) {
    StartJail(call);
  } else {
    ExecuteInProcess(call);
  }
}

void ToolRuntime::ExecuteInProcess(const std::shared_ptr<Call>& call) {
  const ValidatedOptions& options = config_.options;
  // The work itself runs on a worker thread (disk reads, fsync'ed writes):
  // it gets copies of everything it needs, never `this`.
  std::function<ToolOutcome()> work;
  switch (call->tool->kind) {
    case ToolKind::kAssetList:
    case ToolKind::kAssetSearch:
    case ToolKind::kAssetGet: {
      // The snapshot current when the call starts: a reload while it runs
      // does not change what it sees.
      AssetToolContext ctx;
      ctx.data_dir = config_.data_dir;
      ctx.assets = assets_->Current();
      // One sensitive-path policy for every tool that reads the tree.
      ctx.sensitive_denylist = options.sensitive_path_denylist;
      ctx.sensitive_allowlist = options.sensitive_path_allowlist;
      work = [ctx, name = call->tool_name, args = call->args] {
        return RunAssetTool(ctx, name, args);
      };
      break;
    }
    case ToolKind::kCommandRun:
    case ToolKind::kWorkflowRun: {
      // An invalid definition (a valid one is sandboxed): preview mode.
      work = [set = call->asset_tools, tool = call->tool, args = call->args] {
        return PreviewOutcome(*tool->definition, set->assets(), args);
      };
      break;
    }
    default: {
      FsToolContext ctx;
      ctx.root = config_.root;
      ctx.uid = fs_uid_;
      ctx.gid = fs_gid_;
      ctx.max_read_bytes = static_cast<uint64_t>(options.tool_max_output_bytes);
      ctx.max_write_bytes =
          static_cast<uint64_t>(options.tool_max_artifact_bytes);
      ctx.sensitive_denylist = options.sensitive_path_denylist;
      ctx.sensitive_allowlist = options.sensitive_path_allowlist;
      // Another name of a secret's inode (a hard link) is a secret too.
      ctx.is_sensitive_inode =
          [root = config_.root, deny = options.sensitive_path_denylist,
           allow = options.sensitive_path_allowlist,
           index = index_](uint64_t dev, uint64_t ino) -> absl::StatusOr<bool> {
        std::string mode, reason;
        uint64_t events = 0;
        absl::StatusOr<SensitiveScan> scan = SensitiveSet(
            root, deny, allow, index.get(), &mode, &reason, &events);
        if (!scan.ok()) return scan.status();
        for (const SensitiveEntry& e : scan->entries) {
          if (e.dev == dev && e.ino == ino) return true;
        }
        return false;
      };
      const ToolKind kind = call->tool->kind;
      work = [ctx, kind, args = call->args,
              data_fd = data_dir_fd_]() mutable -> ToolOutcome {
        // The jail's rules for the data dir hold for the file tools too,
        // wherever the data dir is now.
        if (data_fd->valid()) {
          absl::StatusOr<PathId> data = LocateDirFd(ctx.root, data_fd->get());
          if (!data.ok()) {
            return ToolOutcome::Fail(
                "data_dir_unavailable",
                {{"message", std::string(data.status().message())}});
          }
          const std::string rel =
              data->path.size() > ctx.root.size()
                  ? data->path.substr(ctx.root == "/" ? 1 : ctx.root.size() + 1)
                  : std::string();
          ctx.read_only_dir = rel;
          ctx.private_dir = rel + "/state";
        }
        return kind == ToolKind::kFsRead    ? FsRead(ctx, args)
               : kind == ToolKind::kFsWrite ? FsWrite(ctx, args)
                                            : FsList(ctx, args);
      };
      if (!data_dir_fd_->valid() && !config_.data_dir.empty()) {
        // Not located by fd (never opened): the path rules still hold.
        work = [ctx, kind, args = call->args,
                data_dir = config_.data_dir]() mutable {
          ctx.read_only_dir = data_dir;
          ctx.private_dir = data_dir + "/state";
          return kind == ToolKind::kFsRead    ? FsRead(ctx, args)
                 : kind == ToolKind::kFsWrite ? FsWrite(ctx, args)
                                              : FsList(ctx, args);
        };
      }
    }
  }
  std::weak_ptr<Call> weak_call = call;
  absl::Status queued = RunOffLoop<ToolOutcome>(
      loop_, alive_, std::move(work), [this, weak_call](ToolOutcome outcome) {
        std::shared_ptr<Call> call = weak_call.lock();
        if (call == nullptr || call->done) return;
        FinishInProcess(call, std::move(outcome));
      });
  if (!queued.ok()) {
    Fail(call, "tool_failed",
         {{"reason", "busy"}, {"message", std::string(queued.message())}});
  }
}

void ToolRuntime::FinishInProcess(const std::shared_ptr<Call>& call,
                                  ToolOutcome outcome) {
  if (!outcome.ok) {
    // The runtime's own limits keep their names; everything else is the
    // tool's failure.
    if (outcome.reason == "sensitive_path_denied" ||
        (outcome.reason == "outside_root" && !call->outside_root_exception)) {
      // The tool's own check refused what the argument check let through (a
      // path that resolved outside the root when opened, a hard link of a
      // sensitive file, an asset key naming one): the same decision and
      // security signal as a refusal before the call, so an operator paging
      // on security.* sees the attempt. `checked_by` says which check it was.
      // Not for a path the operator allowlisted outside the root: the fs
      // tools stay below the root, and refusing it is no escape attempt.
      nlohmann::json detail = outcome.detail;
      detail["checked_by"] = "tool";
      RecordDecision(*call, false, outcome.reason, {}, detail);
      Fail(call, outcome.reason, outcome.detail);
    } else if (outcome.reason == "output_too_large" ||
               outcome.reason == "artifact_too_large" ||
               outcome.reason == "outside_root") {
      Fail(call, outcome.reason, outcome.detail);
    } else {
      nlohmann::json detail = outcome.detail;
      detail["reason"] = outcome.reason;
      Fail(call, "tool_failed", detail);
    }
    return;
  }
  FinishResult(call, std::move(outcome.result));
}

void ToolRuntime::FinishResult(const std::shared_ptr<Call>& call,
                               nlohmann::json result) {
  const ValidatedOptions& options = config_.options;
  // 6. result limits: output first, then each artifact.
  const size_t size = CanonicalSize(result);
  if (static_cast<int64_t>(size) > options.tool_max_output_bytes) {
    Fail(call, "output_too_large",
         {{"size", size}, {"max", options.tool_max_output_bytes}});
    return;
  }
  std::vector<const nlohmann::json*> artifacts;
  CollectArtifacts(result, &artifacts, 0);
  for (size_t i = 0; i < artifacts.size(); ++i) {
    const size_t artifact_size = ArtifactSize(*artifacts[i]);
    if (static_cast<int64_t>(artifact_size) > options.tool_max_artifact_bytes) {
      Fail(call, "artifact_too_large",
           {{"index", i},
            {"size", artifact_size},
            {"max", options.tool_max_artifact_bytes}});
      return;
    }
  }
  Succeed(call, std::move(result));
}

void ToolRuntime::Succeed(const std::shared_ptr<Call>& call,
                          nlohmann::json result) {
  if (call->done) return;
  SensitiveScanResult scan = ScanForSensitiveArtifacts(result);
  nlohmann::json response =
      Envelope(*call, {{"status", "ok"},
                       {"kind", ToolKindName(call->tool->kind)},
                       {"duration_ms", (ToolNowUs() - call->start_us) / 1000},
                       {"result", std::move(result)}});
  if (!call->timing_us.is_null()) response["timing_us"] = call->timing_us;
  if (scan.finding_count > 0) {
    response["risk_flags"] = RiskFlags(scan);
    response["sensitivity_findings_count"] = scan.finding_count;
    response["sensitivity_finding_kinds"] = scan.finding_kinds;
    Emit("security.sensitive_artifact_detected", *call,
         SensitiveScanEventFields(scan));
  }
  // A success re-arms the repeated-timeout alert of this tool.
  if (auto it = timeouts_.find(call->tool_name); it != timeouts_.end()) {
    it->second.alerted = false;
  }
  nlohmann::json event = {{"duration_ms", response["duration_ms"]},
                          {"status", "ok"}};
  if (response.contains("risk_flags")) {
    event["risk_flags"] = response["risk_flags"];
  }
  AnswerThenRecord(call, "tool.completed", std::move(event),
                   std::move(response));
}

void ToolRuntime::AnswerThenRecord(const std::shared_ptr<Call>& call,
                                   std::string_view event_name,
                                   nlohmann::json event_fields,
                                   nlohmann::json response) {
  // The event is emitted (its time taken) before the answer, as always, but
  // the sinks run after the answer has been handed to the kernel: the
  // caller is not kept waiting for the journal, the log line and the alert
  // rules. They still run in this turn of the loop, so no later request
  // can see the answer without the event.
  telemetry::Bus::Held held = bus_->Hold();
  Emit(event_name, *call, std::move(event_fields));
  Respond respond = std::move(call->respond);
  Finish(call);
  Deliver(call, std::move(respond), std::move(response));
  (void)loop_->SubmitQueued();
}

void ToolRuntime::Fail(const std::shared_ptr<Call>& call, std::string reason,
                       nlohmann::json detail) {
  if (call->done) return;
  nlohmann::json response = ErrorResponse(*call, reason, detail);
  nlohmann::json event = {{"duration_ms", response["duration_ms"]},
                          {"reason", reason},
                          {"detail", detail}};
  AnswerThenRecord(call, "tool.failed", std::move(event), std::move(response));
}

void ToolRuntime::Deliver(const std::shared_ptr<Call>& call, Respond respond,
                          nlohmann::json response) {
  if (call->in_run) {
    // A jailed call's `respond` never runs inside Run() (its caller may not
    // be ready for it yet): the same delivery, one turn of the loop later.
    call->in_run = false;
    std::weak_ptr<bool> alive = alive_;
    auto doc = std::make_shared<nlohmann::json>(std::move(response));
    auto reply = std::make_shared<Respond>(std::move(respond));
    absl::Status posted = loop_->Post([this, alive, call, doc, reply] {
      if (!alive.expired()) Deliver(call, std::move(*reply), std::move(*doc));
    });
    if (posted.ok()) return;
  }
  if (config_.on_result) {
    config_.on_result(call->call_id, call->conversation_id, response);
  }
  recent_results_.emplace_back(
      call->call_id,
      response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (recent_results_.size() > kRecentResults) recent_results_.pop_front();
  std::vector<Respond> waiters = std::move(call->result_waiters);
  call->result_waiters.clear();
  for (Respond& waiter : waiters) waiter(response);
  if (respond) respond(std::move(response));
}

std::optional<nlohmann::json> ToolRuntime::RecentResult(
    std::string_view call_id) const {
  for (auto it = recent_results_.rbegin(); it != recent_results_.rend(); ++it) {
    if (it->first != call_id) continue;
    nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, false);
    if (doc.is_discarded()) return std::nullopt;  // our own dump: never
    return doc;
  }
  return std::nullopt;
}

bool ToolRuntime::AwaitResult(std::string_view call_id, Respond waiter) {
  auto it = calls_.find(std::string(call_id));
  if (it == calls_.end() || it->second->done) return false;
  it->second->result_waiters.push_back(std::move(waiter));
  return true;
}

void ToolRuntime::Finish(const std::shared_ptr<Call>& call) {
  if (call->done) return;
  call->done = true;
  StopMaskWatch(*call);
  // A call still waiting for a warm jail holds the jail ends of its pipes:
  // closing them ends its output reads.
  CloseChildFds(*call);
  call->respond = nullptr;
  ReleaseCapacity(*call);
  auto it = calls_.find(call->call_id);
  if (it != calls_.end() && it->second == call) calls_.erase(it);
  if (call->run != nullptr && !call->run->finished()) call->run->Kill();
  // Destroying the JailRun from inside its own done callback is not
  // allowed; release it on a later loop iteration.
  if (call->run != nullptr) {
    std::shared_ptr<jail::JailRun> run(call->run.release());
    (void)loop_->Post([run] {});
  }
  if (call->tool != nullptr && call->tool->sandboxed && !stopping_) {
    const int kind = call->tool->network_capable ? 1 : 0;
    std::weak_ptr<bool> alive = alive_;
    (void)loop_->Timeout(absl::Milliseconds(1), [this, alive, kind](int res) {
      if (!alive.expired() && res == 0) RefillPool(kind);
    });
  }
  if (calls_.empty() && on_idle_) on_idle_();
}

void ToolRuntime::CountTimeout(const Call& call) {
  TimeoutState& state = timeouts_[call.tool_name];
  const absl::Time now = absl::Now();
  while (!state.recent.empty() && now - state.recent.front() > kTimeoutWindow) {
    state.recent.pop_front();
  }
  state.recent.push_back(now);
  ++state.total;
  const int64_t threshold = config_.options.tool_timeout_alert_threshold;
  const int64_t in_window = static_cast<int64_t>(state.recent.size());
  Emit("tool.timeout", call,
       {{"timeout_count", in_window},
        {"timeout_total", state.total},
        {"timeout_ms", config_.options.tool_timeout_ms}});
  if (in_window < threshold) {
    state.alerted = false;
  } else if (!state.alerted) {
    state.alerted = true;
    Emit("security.repeated_timeout_failures", call,
         {{"timeout_count", in_window},
          {"threshold", threshold},
          {"window_ms", absl::ToInt64Milliseconds(kTimeoutWindow)}});
  }
}

void ToolRuntime::Terminate(const std::shared_ptr<Call>& call,
                            std::string reason,
                            const nlohmann::json& cancel_meta) {
  if (call->done || call->cancelled) return;
  call->cancelled = true;
  // Taken first: Kill() below may finish the call (and drop `respond`) from
  // the jail's done callback when its output has already ended.
  Respond respond = std::move(call->respond);
  call->respond = nullptr;
  uint64_t terminated = 0;
  if (call->run != nullptr && !call->run->finished()) {
    // Kill() tears the jail down now and reports through the done callback,
    // which sees `cancelled` and only finishes the call. A cancel is the
    // runbook's containment step: it answers only once the whole process
    // tree is dead, so this teardown waits on the loop (the one that does;
    // every other teardown runs on the jail reaper thread).
    std::optional<jail::RunResult> before = call->jail_result;
    call->run->set_async_teardown(false);
    call->run->Kill();
    if (call->jail_result.has_value() && !before.has_value()) {
      terminated = call->jail_result->descendants_killed +
                   (call->jail_result->program_killed ? 1 : 0);
    }
  }
  const std::string cancel_correlation =
      Trimmed(json_fields::String(cancel_meta, "correlation_id"));
  nlohmann::json extra = {{"reason", reason}};
  if (!cancel_correlation.empty()) {
    extra["cancel_correlation_id"] = cancel_correlation;
  }
  if (terminated > 0) {
    Emit("tool.child_processes_terminated", *call,
         {{"reason", reason}, {"terminated_child_process_count", terminated}});
  }
  Emit("tool.cancelled", *call, extra);
  nlohmann::json response =
      ErrorResponse(*call, reason, nlohmann::json::object());
  Finish(call);
  Deliver(call, std::move(respond), std::move(response));
}

absl::Status ToolRuntime::Cancel(std::string_view call_id,
                                 const nlohmann::json& cancel_meta) {
  auto it = calls_.find(std::string(call_id));
  if (it == calls_.end()) {
    return absl::NotFoundError(
        absl::StrCat("call_not_found: ", std::string(call_id)));
  }
  std::shared_ptr<Call> call = it->second;
  Terminate(call, "cancelled", cancel_meta);
  return absl::OkStatus();
}

int ToolRuntime::CancelConversation(std::string_view conversation_id,
                                    const nlohmann::json& cancel_meta) {
  std::vector<std::shared_ptr<Call>> matching;
  for (const auto& [id, call] : calls_) {
    if (call->conversation_id == conversation_id) matching.push_back(call);
  }
  for (const std::shared_ptr<Call>& call : matching) {
    Terminate(call, "conversation_cancelled", cancel_meta);
  }
  return static_cast<int>(matching.size());
}

void ToolRuntime::KillAll(std::string_view reason) {
  std::vector<std::shared_ptr<Call>> all;
  for (const auto& [id, call] : calls_) all.push_back(call);
  for (const std::shared_ptr<Call>& call : all) {
    Terminate(call, std::string(reason), nlohmann::json::object());
  }
}

nlohmann::json ToolRuntime::Diagnostics() const {
  nlohmann::json decisions = nlohmann::json::array();
  for (const std::string& d : decisions_) {
    decisions.push_back(nlohmann::json::parse(d, nullptr, false));
  }
  nlohmann::json running = nlohmann::json::array();
  for (const auto& [id, call] : calls_) {
    running.push_back({{"call_id", id},
                       {"tool", call->tool_name},
                       {"correlation_id", call->correlation_id},
                       {"async", call->async}});
  }
  nlohmann::json timeouts = nlohmann::json::object();
  for (const auto& [tool, state] : timeouts_) {
    timeouts[tool] = {{"in_window", state.recent.size()},
                      {"total", state.total},
                      {"alerted", state.alerted}};
  }
  return {{"recent_decisions", decisions},
          {"running_calls", running},
          {"timeout_counts", timeouts},
          {"sensitive_index", index_->Diagnostics()}};
}

}  // namespace jcs::runtime
