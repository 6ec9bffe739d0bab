// The tool runtime's jailed execution (exec, exec.network): the call's jail
// spec, stdio pipes read and capped on the loop, warm jails (built ahead, one
// call each) and the mapping of the jail's result to the call's result.
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/json_fields.h"
#include "jail/spec.h"
#include "jail/warm_fingerprint.h"
#include "runtime/policy/sensitive_mask.h"
#include "runtime/tools/fs_tools.h"
#include "runtime/tools/jail_masks.h"
#include "runtime/tools/tool_call.h"
#include "runtime/tools/tool_runtime.h"
#include "telemetry/logging/line_writer.h"

namespace jcs::runtime {
namespace {

// Text the program printed, as UTF-8 or, when it is not, base64.
void PutText(nlohmann::json& result, const char* key, const std::string& text) {
  if (IsValidUtf8(text)) {
    result[key] = text;
  } else {
    result[key] = absl::Base64Escape(text);
    result[absl::StrCat(key, "_encoding")] = "base64";
  }
}

}  // namespace

void ToolRuntime::StartJail(const std::shared_ptr<Call>& call) {
  const ValidatedOptions& options = config_.options;
  proto::JailSpec spec;
  spec.set_root(config_.root);
  spec.set_uid(fs_uid_);  // the same identity as the file tools
  spec.set_gid(fs_gid_);
  // exec's arguments, or an asset-backed tool's program (exec_args).
  const nlohmann::json& exec =
      call->exec_args.is_object() ? call->exec_args : call->args;
  if (exec.contains("cwd")) spec.set_cwd(exec["cwd"]);
  for (const nlohmann::json& arg : exec["argv"]) spec.add_argv(arg);
  if (spec.argv().empty()) {
    Fail(
        call, "invalid_tool_args",
        {{"message", "argv: expected at least the program"}, {"path", "argv"}});
    return;
  }
  for (const auto& [key, value] : call->env) {
    proto::EnvVar* var = spec.add_env();
    var->set_key(key);
    var->set_value(value);
  }
  if (!config_.data_dir.empty() && !data_dir_fd_->valid()) {
    Fail(call, "sandbox_setup_failed",
         {{"layer", "data_dir"},
          {"message",
           absl::StrCat("data_dir_unavailable: the data dir ", config_.data_dir,
                        " could not be opened when the project started; "
                        "stop and start the project again")}});
    return;
  }
  call->jail_spec = std::move(spec);
  std::weak_ptr<Call> weak_call = call;
  // Usually nothing changed in the tree since the last call: the index's
  // set is taken here, without a hop to a worker thread and back (the
  // largest part of a call's constant cost), and the jail is launched now.
  // A failure on the way is still delivered on a later turn of the loop
  // (Call::in_run): `respond` is never called inside Run().
  if (std::shared_ptr<const SensitiveScan> quiet = index_->TakeIfQuiet()) {
    call->in_run = true;
    ContinueJail(
        call, JailMasksFromQuietSet(config_.root, data_dir_fd_->get(), *quiet));
    call->in_run = false;
    return;
  }
  // Something is queued (or the index is busy, building or untrusted): the
  // drain, or the full scan, is filesystem work: it runs on a worker
  // thread, never on the loop.
  const std::string root = config_.root;
  const std::vector<std::string> deny = options.sensitive_path_denylist;
  const std::vector<std::string> allow = options.sensitive_path_allowlist;
  std::shared_ptr<UniqueFd> data_fd = data_dir_fd_;
  std::shared_ptr<SensitiveIndex> index = index_;
  absl::Status queued = RunOffLoop<absl::StatusOr<JailMasks>>(
      loop_, alive_,
      [root, deny, allow, data_fd, index] {
        return PrepareJailMasks(root, deny, allow, data_fd->get(), index.get());
      },
      [this, weak_call](absl::StatusOr<JailMasks> masks) {
        if (std::shared_ptr<Call> call = weak_call.lock()) {
          ContinueJail(call, std::move(masks));
        }
      });
  if (!queued.ok()) {
    Fail(
        call, "sandbox_setup_failed",
        {{"layer", "worker_pool"}, {"message", std::string(queued.message())}});
  }
}

void ToolRuntime::ContinueJail(const std::shared_ptr<Call>& call,
                               absl::StatusOr<JailMasks> masks) {
  if (call->done) return;  // cancelled meanwhile
  const ValidatedOptions& options = config_.options;
  proto::JailSpec spec = std::move(call->jail_spec);
  call->jail_spec.Clear();
  if (!masks.ok()) {
    // Fail closed: no jail without its masks.
    const std::string message(masks.status().message());
    Fail(call, "sandbox_setup_failed",
         {{"layer", absl::StartsWith(message, "data_dir_unavailable")
                        ? "data_dir"
                        : "sensitive_mask"},
          {"message", message}});
    return;
  }
  call->scan_us = masks->scan_us;
  call->scan_info = {{"mode", masks->scan_mode},
                     {"events", masks->scan_events},
                     {"entries_seen", masks->scan.entries_seen},
                     {"directories", masks->scan.directories},
                     {"attempts", masks->scan.attempts},
                     {"masked", masks->scan.entries.size()},
                     {"hard_link_walk", masks->scan.hard_link_walk},
                     {"on_loop", masks->on_loop}};
  if (!masks->scan_reason.empty()) {
    call->scan_info["reason"] = masks->scan_reason;
  }
  const auto add_identity = [&spec](const std::string& path, uint64_t dev,
                                    uint64_t ino, bool is_dir) {
    proto::PathIdentity* id = spec.add_identity();
    id->set_path(path);
    id->set_dev(dev);
    id->set_ino(ino);
    id->set_is_dir(is_dir);
  };
  // The data dir is read-only for the program and its state/ hidden; both
  // are checked in the jail to be the directories located by fd.
  if (masks->data_dir.has_value()) {
    spec.add_ro(masks->data_dir->path);
    add_identity(masks->data_dir->path, masks->data_dir->dev,
                 masks->data_dir->ino, true);
    if (masks->state.has_value()) {
      spec.add_mask(masks->state->path);
      add_identity(masks->state->path, masks->state->dev, masks->state->ino,
                   true);
    }
  }
  // The OS-level twin of the sensitive-path policy: every matching path in
  // the root is masked (hard links of a secret too), so a path the argument
  // scan could not see (built by the program itself) is still unreadable.
  for (const SensitiveEntry& e : masks->scan.entries) {
    const std::string path = absl::StrCat(config_.root, "/", e.rel);
    spec.add_mask(path);
    add_identity(path, e.dev, e.ino, e.is_dir);
  }
  if (call->tool->network_capable) {
    // The OS-level twin of the network policy: the jail's only way out is
    // the supervisor's proxy, limited to the same allowlist and schemes. An
    // empty network_allowlist lets the argument check pass any host, but the
    // proxy reaches only hosts named explicitly.
    spec.set_net(proto::NET_EGRESS);
    for (const std::string& host : options.network_allowlist) {
      spec.add_allow_host(host);
    }
    for (const std::string& scheme : options.network_allowed_schemes) {
      spec.add_allow_scheme(scheme);
    }
  } else {
    spec.set_net(proto::NET_NONE);
  }
  spec.set_timeout_ms(static_cast<uint64_t>(options.tool_timeout_ms));
  if (options.jail_memory_bytes) {
    spec.set_memory_bytes(*options.jail_memory_bytes);
  }
  if (options.jail_pids)
    spec.set_pids(static_cast<uint64_t>(*options.jail_pids));
  if (options.jail_cpus) spec.set_cpus(*options.jail_cpus);
  // Files the program writes are bounded by jail_fsize (default: the jail's
  // 1G), the size of its /tmp and the project's disk budget; not by
  // tool_max_artifact_bytes, which caps what the result carries.
  if (options.jail_fsize_bytes) {
    spec.set_fsize_bytes(*options.jail_fsize_bytes);
  }
  if (options.jail_tmp_bytes) spec.set_tmp_size_bytes(*options.jail_tmp_bytes);
  absl::StatusOr<jail::FinalSpec> final_spec =
      jail::Finalize(spec, config_.root);
  if (!final_spec.ok()) {
    const std::string message(final_spec.status().message());
    if (message.rfind("--cwd", 0) == 0) {
      Fail(call, "outside_root",
           {{"path", json_fields::String(call->args, "cwd")},
            {"message", message}});
    } else {
      Fail(call, "sandbox_setup_failed",
           {{"layer", "spec"}, {"message", message}});
    }
    return;
  }

  if (!WatchMasks(call, *masks)) return;
  call->prepare_us = ToolNowUs() - call->start_us;
  // stdio: pipes for stdout/stderr (read here, capped), stdin from the
  // argument or /dev/null.
  int out_pipe[2], err_pipe[2], in_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    Fail(call, "sandbox_setup_failed",
         {{"layer", "stdio"}, {"message", strerror(errno)}});
    return;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    Fail(call, "sandbox_setup_failed",
         {{"layer", "stdio"}, {"message", strerror(errno)}});
    return;
  }
  const nlohmann::json& exec =
      call->exec_args.is_object() ? call->exec_args : call->args;
  const bool has_stdin = exec.contains("stdin");
  if (has_stdin) {
    if (pipe2(in_pipe, O_CLOEXEC) != 0) in_pipe[0] = in_pipe[1] = -1;
  } else {
    in_pipe[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  call->out_fd[0] = out_pipe[0];
  call->out_fd[1] = err_pipe[0];
  call->child_fds[0] = in_pipe[0];
  call->child_fds[1] = out_pipe[1];
  call->child_fds[2] = err_pipe[1];
  call->jail_spec = std::move(final_spec->spec);
  call->jail_warnings = std::move(final_spec->warnings);
  ArmOutputRead(call, 0);
  ArmOutputRead(call, 1);
  if (has_stdin && in_pipe[1] >= 0) {
    call->stdin_fd = in_pipe[1];
    call->stdin_data = exec["stdin"].get<std::string>();
    call->stdin_pending = true;
    absl::StatusOr<OpId> op =
        loop_->WriteAll(call->stdin_fd, call->stdin_data, [call](int res) {
          // EPIPE: the program did not read it all; that is its business.
          close(call->stdin_fd);
          call->stdin_fd = -1;
          call->stdin_pending = false;
        });
    if (!op.ok()) {
      close(call->stdin_fd);
      call->stdin_fd = -1;
      call->stdin_pending = false;
    }
  }
  Dispatch(call);
}

bool ToolRuntime::WatchMasks(const std::shared_ptr<Call>& call,
                             const JailMasks& masks) {
  if (masks.scan.entries.empty()) return true;
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    Fail(call, "sandbox_setup_failed",
         {{"layer", "mask_watch"}, {"message", strerror(errno)}});
    return false;
  }
  call->mask_watch_fd = fd;
  UniqueFd root_fd(
      open(config_.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  const auto fail = [&](const std::string& rel, const std::string& why) {
    Fail(call, "sandbox_setup_failed",
         {{"layer", "sensitive_mask"},
          {"path", rel.substr(0, 512)},
          {"message", why}});
    return false;
  };
  if (!root_fd.valid()) return fail("", strerror(errno));
  std::map<std::string, int> wd_of_dir;
  for (const SensitiveEntry& e : masks.scan.entries) {
    const size_t slash = e.rel.rfind('/');
    const std::string dir =
        slash == std::string::npos ? std::string() : e.rel.substr(0, slash);
    const std::string name =
        slash == std::string::npos ? e.rel : e.rel.substr(slash + 1);
    auto it = wd_of_dir.find(dir);
    if (it == wd_of_dir.end()) {
      UniqueFd dir_fd(OpenDirBeneathLong(root_fd.get(), dir));
      if (!dir_fd.valid()) {
        return fail(e.rel, absl::StrCat("the directory of a masked path "
                                        "changed during the launch: ",
                                        strerror(errno)));
      }
      const std::string proc = absl::StrCat("/proc/self/fd/", dir_fd.get());
      const int wd = inotify_add_watch(
          fd, proc.c_str(),
          IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
      if (wd < 0) {
        return fail(e.rel, absl::StrCat("inotify: ", strerror(errno)));
      }
      // Armed first, checked second: a replacement before this point is
      // seen here, one after it arrives as an event.
      it = wd_of_dir.emplace(dir, wd).first;
    }
    call->mask_watch_names[it->second].insert(name);
    UniqueFd parent(OpenDirBeneathLong(root_fd.get(), dir));
    struct stat st;
    if (!parent.valid() ||
        fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        static_cast<uint64_t>(st.st_dev) != e.dev ||
        static_cast<uint64_t>(st.st_ino) != e.ino) {
      return fail(e.rel, "a masked path changed during the launch");
    }
  }
  ArmMaskWatch(call);
  return true;
}

void ToolRuntime::ArmMaskWatch(const std::shared_ptr<Call>& call) {
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Call> weak_call = call;
  const int fd = call->mask_watch_fd;
  absl::StatusOr<OpId> op = loop_->Read(
      fd,
      absl::Span<char>(call->mask_watch_buffer.data(),
                       call->mask_watch_buffer.size()),
      [this, alive, weak_call, fd](int res) {
        std::shared_ptr<Call> call = weak_call.lock();
        if (call == nullptr) {
          close(fd);  // the call is gone; its watch was ours to close
          return;
        }
        call->mask_watch_reading = false;
        if (alive.expired() || res <= 0 || call->done) {
          close(call->mask_watch_fd);
          call->mask_watch_fd = -1;
          return;
        }
        bool changed = false;
        for (int off = 0;
             off + static_cast<int>(sizeof(inotify_event)) <= res;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(
              call->mask_watch_buffer.data() + off);
          off += static_cast<int>(sizeof(inotify_event) + ev->len);
          if (ev->mask & IN_Q_OVERFLOW) changed = true;
          auto it = call->mask_watch_names.find(ev->wd);
          if (it != call->mask_watch_names.end() && ev->len > 0 &&
              it->second.count(ev->name) != 0) {
            changed = true;
          }
        }
        if (changed && call->kill_reason.empty()) {
          call->kill_reason = "sensitive_path_changed";
          call->kill_detail = {
              {"message",
               "a masked path was replaced on the host while the program "
               "ran; the jail was killed so it cannot read the new file"}};
          if (call->run != nullptr) call->run->Kill();
        }
        ArmMaskWatch(call);
      });
  if (op.ok()) {
    call->mask_watch_op = *op;
    call->mask_watch_reading = true;
  }
}

void ToolRuntime::StopMaskWatch(Call& call) {
  if (call.mask_watch_fd < 0) return;
  if (call.mask_watch_reading) {
    (void)loop_->Cancel(call.mask_watch_op);  // the callback closes the fd
  } else {
    close(call.mask_watch_fd);
    call.mask_watch_fd = -1;
  }
}

// jail/warm_fingerprint.h says why the identity of bound paths is part of it.
std::string ToolRuntime::WarmFingerprint(const proto::JailSpec& spec) {
  return jail::WarmFingerprint(spec);
}

// A warm jail of the same shape when one is idle; else wait for one being
// built, starting the builds if none is (the project's first call, the first
// after the tree changed shape). A cold start is the fallback only: it clones
// the supervisor itself on the loop thread, which copies the supervisor's
// page tables and leaves its pages copy-on-write (4-9 ms of the loop's CPU
// per cold start on a VM, 40 ms under ASan), where a warm jail is cloned by
// the small zygote on the launcher thread.
void ToolRuntime::Dispatch(const std::shared_ptr<Call>& call) {
  const int kind = call->tool->network_capable ? 1 : 0;
  WarmPool& pool = pools_[kind];
  const std::string fingerprint = WarmFingerprint(call->jail_spec);
  if (pool.fingerprint != fingerprint) {
    // The project's tree changed shape (a sensitive file appeared, ...):
    // jails built for the old shape are discarded.
    DiscardJails(pool);
    std::deque<std::weak_ptr<Call>> waiting = std::move(pool.waiting);
    pool.waiting.clear();
    pool.fingerprint = fingerprint;
    pool.spec = call->jail_spec;
    pool.warnings = call->jail_warnings;
    for (const std::weak_ptr<Call>& weak : waiting) {
      if (std::shared_ptr<Call> other = weak.lock()) LaunchJail(other, nullptr);
    }
  }
  std::unique_ptr<jail::JailRun> warm = TakeIdle(pool);
  if (warm != nullptr) {
    LaunchJail(call, std::move(warm));
    // Building jails competes with this call for the CPUs: the pool is
    // topped up when the call ends (Finish), unless nothing is on its way.
    if (pool.jails.empty()) RefillPool(kind);
    return;
  }
  if (pool.jails.empty()) RefillPool(kind);
  if (pool.jails.empty()) {
    // Nothing can be built (the runtime is stopping).
    LaunchJail(call, nullptr);
    return;
  }
  // Usually sooner than a cold start. If no jail is ready within
  // kWarmWaitLimit (a build stuck behind others on a loaded host), the call
  // starts cold; if every build fails, OnWarmEnded starts it cold.
  pool.waiting.push_back(call);
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Call> weak_call = call;
  (void)loop_->Timeout(kWarmWaitLimit, [this, alive, weak_call, kind](int) {
    std::shared_ptr<Call> waiting = weak_call.lock();
    if (alive.expired() || waiting == nullptr || waiting->done ||
        waiting->run != nullptr) {
      return;
    }
    std::deque<std::weak_ptr<Call>>& queue = pools_[kind].waiting;
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      if (it->lock() == waiting) {
        queue.erase(it);
        break;
      }
    }
    LaunchJail(waiting, nullptr);
  });
}

std::unique_ptr<jail::JailRun> ToolRuntime::TakeIdle(WarmPool& pool) {
  for (auto it = pool.jails.begin(); it != pool.jails.end(); ++it) {
    if (it->run != nullptr && it->run->idle()) {
      std::unique_ptr<jail::JailRun> run = std::move(it->run);
      pool.jails.erase(it);
      return run;
    }
  }
  return nullptr;
}

void ToolRuntime::DiscardJails(WarmPool& pool) {
  for (WarmJail& jail : pool.jails) {
    if (jail.run != nullptr) jail.run->Abandon();
  }
  pool.jails.clear();
}

void ToolRuntime::RefillPool(int kind) {
  WarmPool& pool = pools_[kind];
  if (stopping_ || pool.fingerprint.empty()) return;
  while (pool.jails.size() < kWarmJailsPerKind) {
    const uint64_t id = next_warm_id_++;
    std::weak_ptr<bool> alive = alive_;
    std::unique_ptr<jail::JailRun> run = jail::JailRun::StartWarm(
        loop_, pool.spec, pool.warnings,
        [this, alive, kind] {
          if (!alive.expired()) OnWarmReady(kind);
        },
        [this, alive, kind, id](jail::RunResult result) {
          if (alive.expired()) return;
          if (result.status == jail::RunStatus::kSetupError &&
              result.error != last_warm_error_) {
            // Once per distinct error: calls still run (cold).
            last_warm_error_ = result.error;
            telemetry::logging::StderrLine(absl::StrFormat(
                "jcs: project %s: warm jail: %s", config_.project_id.c_str(),
                result.error.c_str()));
          }
          OnWarmEnded(kind, id);
        });
    pool.jails.push_back({std::move(run), id});
  }
}

void ToolRuntime::OnWarmReady(int kind) {
  WarmPool& pool = pools_[kind];
  while (!pool.waiting.empty()) {
    std::shared_ptr<Call> call = pool.waiting.front().lock();
    if (call == nullptr || call->done) {
      pool.waiting.pop_front();
      continue;
    }
    std::unique_ptr<jail::JailRun> warm = TakeIdle(pool);
    if (warm == nullptr) break;
    pool.waiting.pop_front();
    LaunchJail(call, std::move(warm));
  }
  RefillPool(kind);
}

void ToolRuntime::OnWarmEnded(int kind, uint64_t id) {
  WarmPool& pool = pools_[kind];
  for (auto it = pool.jails.begin(); it != pool.jails.end(); ++it) {
    if (it->id != id) continue;
    // Destroyed later: this runs inside the jail's own callback.
    std::shared_ptr<jail::JailRun> dead(it->run.release());
    (void)loop_->Post([dead] {});
    pool.jails.erase(it);
    break;
  }
  // Nothing left to wait for: the waiting calls start cold (no refill here,
  // so a host that cannot build jails does not spin).
  if (pool.jails.empty()) {
    std::deque<std::weak_ptr<Call>> waiting = std::move(pool.waiting);
    pool.waiting.clear();
    for (const std::weak_ptr<Call>& weak : waiting) {
      std::shared_ptr<Call> call = weak.lock();
      if (call != nullptr && !call->done) LaunchJail(call, nullptr);
    }
  }
}

void ToolRuntime::LaunchJail(const std::shared_ptr<Call>& call,
                             std::unique_ptr<jail::JailRun> warm) {
  if (call->done) return;
  if (!call->kill_reason.empty()) {
    // A mask changed while the call waited for a jail.
    Fail(call, call->kill_reason, call->kill_detail);
    return;
  }
  const jail::JailStdio stdio{call->child_fds[0], call->child_fds[1],
                              call->child_fds[2]};
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Call> weak_call = call;
  auto on_done = [this, alive, weak_call](jail::RunResult result) {
    if (alive.expired()) return;
    std::shared_ptr<Call> call = weak_call.lock();
    if (call == nullptr) return;
    call->jail_result = std::move(result);
    MaybeFinishJail(call);
  };
  auto on_denied = [this, alive,
                    weak_call](const jail::EgressDenialRecord& denial) {
    if (alive.expired()) return;
    std::shared_ptr<Call> call = weak_call.lock();
    if (call == nullptr) return;
    Emit("security.network_denied", *call,
         {{"reason", denial.reason},
          {"host", denial.host},
          {"port", denial.port},
          {"detail", denial.detail},
          {"source", "egress_proxy"}});
  };
  if (warm != nullptr &&
      warm->Launch(call->jail_spec, stdio, on_done, on_denied).ok()) {
    call->run = std::move(warm);
    call->warm = true;
  } else {
    if (warm != nullptr) warm->Abandon();  // unusable: torn down
    warm.reset();
    call->run = jail::JailRun::Start(
        loop_, call->jail_spec, call->jail_warnings, stdio, on_done, on_denied);
    call->run->set_async_teardown(true);
  }
  CloseChildFds(*call);
}

void ToolRuntime::CloseChildFds(Call& call) {
  for (int& fd : call.child_fds) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

void ToolRuntime::ArmOutputRead(const std::shared_ptr<Call>& call, int stream) {
  std::weak_ptr<bool> alive = alive_;
  if (call->chunk[stream] == nullptr) {
    call->chunk[stream] =
        std::make_unique_for_overwrite<char[]>(kToolReadChunk);
  }
  absl::StatusOr<OpId> op = loop_->Read(
      call->out_fd[stream],
      absl::Span<char>(call->chunk[stream].get(), kToolReadChunk),
      [this, alive, call, stream](int res) {
        if (alive.expired()) return;
        if (res <= 0) {
          call->eof[stream] = true;
          close(call->out_fd[stream]);
          call->out_fd[stream] = -1;
          MaybeFinishJail(call);
          return;
        }
        const uint64_t max =
            static_cast<uint64_t>(config_.options.tool_max_output_bytes);
        call->output_bytes += static_cast<uint64_t>(res);
        if (call->output_bytes > max) {
          // Capped while running: keep nothing past the cap and stop the
          // jail now.
          if (call->kill_reason.empty()) {
            call->kill_reason = "output_too_large";
            call->kill_detail = {{"size", call->output_bytes}, {"max", max}};
            if (call->run != nullptr) call->run->Kill();
          }
        } else {
          call->text[stream].append(call->chunk[stream].get(),
                                    static_cast<size_t>(res));
        }
        ArmOutputRead(call, stream);
      });
  if (!op.ok()) {
    call->eof[stream] = true;
    close(call->out_fd[stream]);
    call->out_fd[stream] = -1;
  }
}

void ToolRuntime::MaybeFinishJail(const std::shared_ptr<Call>& call) {
  if (call->done || !call->jail_result.has_value() || !call->eof[0] ||
      !call->eof[1]) {
    return;
  }
  const jail::RunResult& r = *call->jail_result;
  // Seccomp denials name the syscall.
  for (const jail::Violation& v : r.violations) {
    Emit("security.sandbox_violation", *call,
         {{"reason", "seccomp_denied"},
          {"syscall", v.name},
          {"nr", v.nr},
          {"count", v.count}});
  }
  const uint64_t terminated = r.descendants_killed + (r.program_killed ? 1 : 0);
  if (call->cancelled) {
    Finish(call);  // tool.cancelled was emitted by Terminate()
    return;
  }
  if (r.status == jail::RunStatus::kSetupError) {
    Fail(call, "sandbox_setup_failed", {{"message", r.error}});
    return;
  }
  if (!call->kill_reason.empty()) {
    if (terminated > 0) {
      Emit("tool.child_processes_terminated", *call,
           {{"reason", call->kill_reason},
            {"terminated_child_process_count", terminated}});
    }
    Fail(call, call->kill_reason, call->kill_detail);
    return;
  }
  if (r.status == jail::RunStatus::kTimeout) {
    CountTimeout(*call);
    if (terminated > 0) {
      Emit("tool.child_processes_terminated", *call,
           {{"reason", "timeout"},
            {"terminated_child_process_count", terminated}});
    }
    Fail(call, "timeout",
         {{"timeout_ms", config_.options.tool_timeout_ms},
          {"stdout_bytes", call->text[0].size()},
          {"stderr_bytes", call->text[1].size()}});
    return;
  }
  if (r.status == jail::RunStatus::kSignaled && r.signal == SIGXFSZ) {
    // The program itself wrote past RLIMIT_FSIZE. (A descendant killed so
    // shows only through its parent's exit status, e.g. git's "died of
    // signal 25".)
    Fail(call, "file_size_limit",
         {{"limit_bytes", call->jail_spec.fsize_bytes()},
          {"signal", SIGXFSZ},
          {"stdout_bytes", call->text[0].size()},
          {"stderr_bytes", call->text[1].size()},
          {"message",
           absl::StrCat("the program was killed by SIGXFSZ: it wrote a file "
                        "past ",
                        call->jail_spec.fsize_bytes(),
                        " bytes (the project's jail_fsize)")}});
    return;
  }
  nlohmann::json result = {{"exit_code", r.exit_code},
                           {"status", jail::RunStatusName(r.status)}};
  if (r.signal != 0) result["signal"] = r.signal;
  PutText(result, "stdout", call->text[0]);
  PutText(result, "stderr", call->text[1]);
  if (r.exec_errno != 0) result["exec_error"] = strerror(r.exec_errno);
  nlohmann::json violations = nlohmann::json::array();
  for (const jail::Violation& v : r.violations) {
    violations.push_back(
        {{"syscall", v.name}, {"nr", v.nr}, {"count", v.count}});
  }
  result["violations"] = violations;
  result["descendants_killed"] = r.descendants_killed;
  if (r.egress.enabled) {
    result["egress"] = {{"connections", r.egress.connections},
                        {"allowed", r.egress.allowed},
                        {"denied", r.egress.denied},
                        {"bytes_in", r.egress.bytes_in},
                        {"bytes_out", r.egress.bytes_out}};
  }
  result["memory_peak_bytes"] = r.memory_peak_bytes;
  result["wall_time_ms"] = r.wall_time_us / 1000;
  // Where the launch and the teardown spent their time (microseconds).
  nlohmann::json timing = nlohmann::json::object();
  for (const auto& [step, us] : r.setup_us) timing["setup_" + step] = us;
  for (const auto& [step, us] : r.teardown_us) timing["teardown_" + step] = us;
  timing["prepare_us"] = call->prepare_us;
  timing["scan_us"] = call->scan_us;
  timing["scan"] = call->scan_info;
  timing["warm_jail"] = call->warm;
  // jcs's own measurements go beside the result, not in it: the result is
  // what the tool produced (and what the sensitive scan looks at).
  call->timing_us = std::move(timing);
  if (call->tool->definition != nullptr && call->asset_tools != nullptr) {
    // The prompt is part of the result: bounded by the result's own limit
    // while it is rendered, not after.
    const int64_t max = config_.options.tool_max_output_bytes;
    absl::StatusOr<nlohmann::json> executed = ExecutedResult(
        *call->tool->definition, call->asset_tools->assets(), call->args,
        std::move(result), static_cast<size_t>(std::max<int64_t>(max, 0)));
    if (!executed.ok()) {
      Fail(call, "output_too_large",
           {{"max", max},
            {"message", std::string(executed.status().message())}});
      return;
    }
    result = *std::move(executed);
  }
  FinishResult(call, std::move(result));
}

}  // namespace jcs::runtime
