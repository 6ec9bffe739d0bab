// One project's tool runtime (spec §3 and §4, issue 4): every call goes
// through the same pipeline, in this order, each step with its error and
// events:
//   0. call shape: name a string, args and meta objects (or absent)
//        -> invalid_tool_call; an unknown name -> unknown_tool
//   1. input_schema (tool_schema.h)        -> invalid_tool_args
//   2. env payload (env_policy.h), for tools that take env
//        -> invalid_env_payload / env_vars_not_allowed, security.env_denied
//   3. policy: allow/deny tools -> denied; network for network-capable tools
//      -> network_denied / network_protocol_denied / network_endpoint_denied;
//      paths (path_policy.h, plus exec's cwd) -> outside_root /
//      sensitive_path_denied. Every decision is recorded (newest first, at
//      most 200) and emitted as policy.allowed / policy.denied, then the
//      security.* signal of §3.7.
//   4. capacity: tool_max_concurrency running calls per project
//      (max_concurrency_reached) and tool_max_concurrency_per_conversation
//      per conversation (conversation_max_concurrency_reached; 0 blocks
//      conversation-scoped calls). An async call counts once, while it runs.
//   5. execution: in-process tools under the project's filesystem identity;
//      exec in a fresh jail (root read-write at its own path, the data dir
//      read-only with its state/ hidden, every sensitive path masked, only
//      the allowed env, tool_timeout_ms, the project's memory/pids/cpus,
//      RLIMIT_FSIZE = jail_fsize, /tmp sized by jail_tmp_bytes). stdout+
//      stderr are capped while the program runs (tool_max_output_bytes: the
//      jail is killed at the cap -> output_too_large); a program killed by
//      SIGXFSZ -> file_size_limit {limit_bytes, signal: 25}. Seccomp denials
//      -> security.sandbox_violation per syscall.
//   6. result checks: canonical JSON of the result <= tool_max_output_bytes
//      (output_too_large), every artifact <= tool_max_artifact_bytes
//      (artifact_too_large), then the sensitive-artifact scan -> risk_flags
//      and security.sensitive_artifact_detected.
//   7. events: tool.started, tool.completed, tool.failed (reason),
//      tool.timeout (timeout_count), tool.cancelled,
//      tool.child_processes_terminated (terminated_child_process_count,
//      reason timeout|cancelled|output_too_large), and
//      security.repeated_timeout_failures.
//
// Repeated timeouts (quirk 3 fixed): timeouts are counted per tool over a
// sliding window of kTimeoutWindow. When the count in the window reaches
// tool_timeout_alert_threshold, security.repeated_timeout_failures fires
// once; it re-arms when the count in the window drops below the threshold
// again or the tool completes successfully.
//
// Responses: {status: "ok", project_id, tool, kind, conversation_id,
// correlation_id, call_id, duration_ms, result, [risk_flags,
// sensitivity_findings_count, sensitivity_finding_kinds]} or {status:
// "error", ..., reason, detail}. Tool-level failures (asset_not_found,
// not_found, permission_denied, ...) are reason "tool_failed" with
// detail.reason naming them. An async call (meta.run_mode == "async" or
// meta.async == true) is answered at once with {status: "accepted", call_id,
// correlation_id, tool} and ends with tool.completed / tool.failed, unless
// cancelled first (then only tool.cancelled; a late result is dropped).
//
// Everything runs on the event loop's thread.
#ifndef JCS_RUNTIME_TOOL_RUNTIME_H_
#define JCS_RUNTIME_TOOL_RUNTIME_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "jail/runner.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"
#include "proto/jail.pb.h"
#include "runtime/assets/asset_store.h"
#include "runtime/assets/asset_watcher.h"
#include "runtime/policy/sensitive_index.h"
#include "runtime/project/runtime_options.h"
#include "runtime/tools/asset_tool_set.h"
#include "runtime/tools/jail_masks.h"
#include "runtime/tools/tool_outcome.h"
#include "telemetry/bus.h"

namespace jcs::runtime {

inline constexpr size_t kMaxRecentDecisions = 200;
// Warm jails kept per kind (exec, exec.network) once a project has run one.
inline constexpr size_t kWarmJailsPerKind = 2;
// How long a call waits for a warm jail being built before it starts cold.
inline constexpr absl::Duration kWarmWaitLimit = absl::Milliseconds(500);
inline constexpr absl::Duration kTimeoutWindow = absl::Minutes(5);

struct ToolRuntimeConfig {
  std::string project_id;
  std::string root;      // canonical
  std::string data_dir;  // relative to root
  ValidatedOptions options;
  // The host identity of every tool of the project: the file tools' fsuid/
  // fsgid and the jail user of exec (the project registry's run_as). Never 0.
  uid_t uid = 65534;
  gid_t gid = 65534;
  // Every finished call's response document (the one its caller got, or
  // would have: async calls), for the journal.
  std::function<void(const std::string& call_id,
                     const std::string& conversation_id,
                     const nlohmann::json& response)>
      on_result;
};

struct ToolCallRequest {
  nlohmann::json name;  // must be a string
  nlohmann::json args;  // object or null
  nlohmann::json meta;  // object or null
};

class ToolRuntime {
 public:
  using Respond = std::function<void(nlohmann::json response)>;

  ToolRuntime(EventLoop* loop, telemetry::Bus* bus, ToolRuntimeConfig config);
  // Kills every running call; their callers get reason "project_stopped".
  ~ToolRuntime();
  ToolRuntime(const ToolRuntime&) = delete;
  ToolRuntime& operator=(const ToolRuntime&) = delete;

  // The visible tools (ToolVisible), built-in and asset-backed, sorted by
  // name, as ToolToJson.
  nlohmann::json ListTools() const;

  // Runs one call; `respond` is called exactly once (see the file comment),
  // never inline for jailed calls.
  void Run(ToolCallRequest request, Respond respond);

  // Cancels a running call by its call id: its whole process tree is
  // killed, tool.cancelled is emitted and its result dropped. `cancel_meta`
  // may carry the cancel's own correlation_id. NotFound when no such call
  // runs.
  absl::Status Cancel(std::string_view call_id,
                      const nlohmann::json& cancel_meta);
  // Cancels every running call of a conversation; returns how many.
  int CancelConversation(std::string_view conversation_id,
                         const nlohmann::json& cancel_meta);
  // Kills every running call (drain after its grace period, project stop);
  // callers get `reason`.
  void KillAll(std::string_view reason);

  size_t running() const { return calls_.size(); }
  // Answers `waiter` with the call's response document when it ends; false
  // when no such call runs.
  bool AwaitResult(std::string_view call_id, Respond waiter);
  bool IsRunning(std::string_view call_id) const {
    return calls_.count(std::string(call_id)) > 0;
  }
  // The response document of one of the last kRecentResults calls (the
  // journal commits a moment later; this closes that gap).
  static constexpr size_t kRecentResults = 256;
  std::optional<nlohmann::json> RecentResult(std::string_view call_id) const;
  // Called whenever a call ends (the drain waits on it).
  void set_on_idle(std::function<void()> on_idle) {
    on_idle_ = std::move(on_idle);
  }

  // Assets (tool_runtime_assets.cc): the project's asset store, loaded under
  // the project's filesystem identity (the tree is the user's: the daemon
  // reads only what the user could). LoadAssets is the first load at project
  // start (strict_asset_loading: an error fails it, naming the file and
  // reason) and emits project.assets_loaded; ReloadAssets emits
  // project.assets_reloaded, both {project_id, generation, versions, counts,
  // error_count, trigger}. A refused strict reload keeps the previous
  // snapshot and emits project.assets_reload_failed {project_id, trigger,
  // error}. Calls already running keep the snapshot they started with.
  //
  // watcher: true (asset_watcher.h): LoadAssets also starts the watcher and
  // emits project.watcher_started {project_id, watch_dirs, debounce_ms};
  // settled changes reload (trigger "watcher") and emit
  // project.watcher_reload_completed {project_id, changed_paths (at most
  // kMaxChangedPathsShown), changed_count} or project.watcher_reload_failed
  // {..., error}; the destructor emits project.watcher_stopped {project_id,
  // pending_event_count}, or, when the tree can no longer be watched (its
  // file system unmounted, the root removed), the watcher does at once:
  // {project_id, reason: "file_system_stop", detail}. A watcher that cannot
  // start fails LoadAssets (watcher_unavailable: ...).
  absl::Status LoadAssets();
  //
  // ReloadAssets reads the tree on the worker pool (a big tree must not stall
  // the loop every project shares) and calls `done` on the loop with the
  // project.assets_reloaded payload or the error; reloads of one project run
  // one at a time. `done` is not called if the runtime is destroyed first.
  void ReloadAssets(std::string_view trigger,
                    std::function<void(absl::StatusOr<nlohmann::json>)> done);
  const assets::AssetStore& assets() const { return *assets_; }
  // {enabled, [watching, watched_dirs, pending_event_count, flushes,
  // debounce_ms, degraded]}.
  nlohmann::json WatcherDiagnostics() const;

  // {recent_decisions, running_calls, timeout_counts, sensitive_index}
  // (SensitiveIndex::Diagnostics: state building|ready|fallback, progress,
  // size).
  nlohmann::json Diagnostics() const;

 private:
  struct Call;
  absl::Status StartWatcher();
  // The loop's half of a reload: swap the tool set, emit the events.
  absl::StatusOr<nlohmann::json> FinishReload(
      const std::string& trigger, absl::StatusOr<assets::LoadSummary> loaded);
  void Fail(const std::shared_ptr<Call>& call, std::string reason,
            nlohmann::json detail);
  void Succeed(const std::shared_ptr<Call>& call, nlohmann::json result);
  // Emits `event_name` and answers the call; the bus's sinks run after the
  // answer has left (telemetry::Bus::Held).
  void AnswerThenRecord(const std::shared_ptr<Call>& call,
                        std::string_view event_name,
                        nlohmann::json event_fields, nlohmann::json response);
  // {project_id, tool, call_id, conversation_id (null when none),
  // correlation_id} plus `extra`: the frame of every response and event.
  nlohmann::json Envelope(
      const Call& call, nlohmann::json extra = nlohmann::json::object()) const;
  nlohmann::json ErrorResponse(const Call& call, const std::string& reason,
                               nlohmann::json detail) const;
  void Emit(std::string_view name, const Call& call, nlohmann::json extra);
  bool Authorize(const std::shared_ptr<Call>& call);
  void RecordDecision(const Call& call, bool allowed, const std::string& reason,
                      const std::vector<std::string>& exception_codes,
                      nlohmann::json extra);
  bool AcquireCapacity(const std::shared_ptr<Call>& call);
  void ReleaseCapacity(Call& call);
  void Execute(const std::shared_ptr<Call>& call);
  void ExecuteInProcess(const std::shared_ptr<Call>& call);
  void FinishInProcess(const std::shared_ptr<Call>& call, ToolOutcome outcome);
  void StartJail(const std::shared_ptr<Call>& call);
  // After the worker's scan: the masks, the data dir and the rest of the
  // jail's spec.
  void ContinueJail(const std::shared_ptr<Call>& call,
                    absl::StatusOr<JailMasks> masks);
  // Watches the directories holding masks (see Call::mask_watch_fd); false
  // after failing the call when a mask already changed.
  bool WatchMasks(const std::shared_ptr<Call>& call, const JailMasks& masks);
  void ArmMaskWatch(const std::shared_ptr<Call>& call);
  void StopMaskWatch(Call& call);
  // Warm jails (a per-kind pool of kWarmJailsPerKind jails built ahead on the
  // launcher thread, each used for one call): see Dispatch().
  struct WarmJail {
    std::unique_ptr<jail::JailRun> run;
    uint64_t id = 0;
  };
  struct WarmPool {
    std::string fingerprint;  // the jail shape the pool is built for
    proto::JailSpec spec;
    std::vector<std::string> warnings;
    std::deque<WarmJail> jails;               // being built or idle
    std::deque<std::weak_ptr<Call>> waiting;  // calls waiting for one
  };
  static std::string WarmFingerprint(const proto::JailSpec& spec);
  void Dispatch(const std::shared_ptr<Call>& call);
  static std::unique_ptr<jail::JailRun> TakeIdle(WarmPool& pool);
  // Kills the pool's jails in the background: the loop does not wait.
  static void DiscardJails(WarmPool& pool);
  void RefillPool(int kind);
  void OnWarmReady(int kind);
  void OnWarmEnded(int kind, uint64_t id);
  void LaunchJail(const std::shared_ptr<Call>& call,
                  std::unique_ptr<jail::JailRun> warm);
  static void CloseChildFds(Call& call);
  void ArmOutputRead(const std::shared_ptr<Call>& call, int stream);
  void MaybeFinishJail(const std::shared_ptr<Call>& call);
  void FinishResult(const std::shared_ptr<Call>& call, nlohmann::json result);
  void Finish(const std::shared_ptr<Call>& call);
  // Hands a finished call's document to the journal hook, the waiters and
  // the caller (`respond`, taken before Finish()).
  void Deliver(const std::shared_ptr<Call>& call, Respond respond,
               nlohmann::json response);
  void CountTimeout(const Call& call);
  void Terminate(const std::shared_ptr<Call>& call, std::string reason,
                 const nlohmann::json& cancel_meta);

  EventLoop* const loop_;
  telemetry::Bus* const bus_;
  const ToolRuntimeConfig config_;
  // The data dir, opened (O_PATH) when the project started and followed by
  // this fd from then on (jail_masks.h); shared with worker jobs.
  std::shared_ptr<UniqueFd> data_dir_fd_ = std::make_shared<UniqueFd>();
  // The project's sensitive paths, built on the worker pool when the project
  // starts and kept by inotify (sensitive_index.h); shared with worker jobs.
  std::shared_ptr<SensitiveIndex> index_;
  std::shared_ptr<assets::AssetStore> assets_;
  // command.run.* / workflow.run.* of the current snapshot.
  std::shared_ptr<const AssetToolSet> asset_tools_;
  std::unique_ptr<assets::AssetWatcher> watcher_;
  uid_t fs_uid_ = 65534;
  gid_t fs_gid_ = 65534;
  uint64_t next_call_ = 1;
  // Random per runtime: call ids stay unique across daemon restarts (the
  // journal keeps results by id).
  const std::string call_id_prefix_;
  // Serialized: a parsed response costs about 6x its text (5.5 KB for a
  // /bin/true exec), and only a lookup needs it parsed.
  std::deque<std::pair<std::string, std::string>> recent_results_;
  std::map<std::string, std::shared_ptr<Call>> calls_;  // by call id
  std::map<std::string, int64_t> conversation_running_;
  // Newest first, serialized like recent_results_ (parsed for diagnostics).
  std::deque<std::string> decisions_;
  struct TimeoutState {
    std::deque<absl::Time> recent;  // within kTimeoutWindow
    uint64_t total = 0;
    bool alerted = false;
  };
  std::map<std::string, TimeoutState> timeouts_;  // by tool
  std::function<void()> on_idle_;
  // [0]: exec (no network), [1]: exec.network (egress).
  WarmPool pools_[2];
  uint64_t next_warm_id_ = 1;
  bool stopping_ = false;
  std::string last_warm_error_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// "corr-" followed by 20 lowercase hex digits from the kernel's CSPRNG.
std::string NewCorrelationId();

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOL_RUNTIME_H_
