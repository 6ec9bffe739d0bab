// Internal to the tool runtime (tool_runtime.cc, tool_runtime_jail.cc): one
// tool call's state, shared by the pipeline and the jailed execution.
#ifndef JCS_RUNTIME_TOOL_CALL_H_
#define JCS_RUNTIME_TOOL_CALL_H_

#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "jail/runner.h"
#include "loop/event_loop.h"
#include "loop/worker_pool.h"
#include "nlohmann/json.hpp"
#include "proto/jail.pb.h"
#include "runtime/tools/asset_tool_set.h"
#include "runtime/tools/tool_catalog.h"
#include "runtime/tools/tool_runtime.h"

namespace jcs::runtime {

inline constexpr size_t kToolReadChunk = 64 * 1024;

inline int64_t ToolNowUs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

struct ToolRuntime::Call {
  std::string call_id;
  const ToolSpec* tool = nullptr;
  // Asset-backed tools: the set `tool` belongs to (kept alive with the call)
  // and the program the jail runs instead of args ({argv, stdin}).
  std::shared_ptr<const AssetToolSet> asset_tools;
  nlohmann::json exec_args;
  std::string tool_name;
  nlohmann::json args;
  nlohmann::json meta;
  std::string conversation_id;  // "" when none
  std::string correlation_id;
  bool async = false;
  // The argument check allowed a path outside the root through an
  // outside_root_allowlist entry (see FinishInProcess).
  bool outside_root_exception = false;
  int64_t start_us = 0;
  Respond respond;
  // GetToolResult(wait) callers: answered with the same document.
  std::vector<Respond> result_waiters;
  bool holds_capacity = false;
  bool done = false;  // responded (or dropped)
  // Set while the call is still inside Run(): a failure found then is
  // delivered on a later turn of the loop (Deliver).
  bool in_run = false;
  bool cancelled = false;   // result dropped
  std::string kill_reason;  // why the runtime killed the jail
  nlohmann::json kill_detail;
  std::vector<std::pair<std::string, std::string>> env;
  int64_t prepare_us = 0;    // spec, sensitive-path scan, Finalize
  nlohmann::json timing_us;  // the jail's setup/teardown breakdown

  // Jailed calls.
  std::unique_ptr<jail::JailRun> run;
  std::optional<jail::RunResult> jail_result;
  int out_fd[2] = {-1, -1};  // stdout, stderr (the runtime's read ends)
  bool eof[2] = {false, false};
  // Allocated at the first read, uninitialized: as members they made every
  // call (even one that never runs a jail) zero 128 KiB when make_shared
  // value-initialized the Call.
  std::unique_ptr<char[]> chunk[2];
  std::string text[2];
  uint64_t output_bytes = 0;
  int stdin_fd = -1;
  int child_fds[3] = {-1, -1, -1};  // the jail's ends until it is launched
  proto::JailSpec jail_spec;
  std::vector<std::string> jail_warnings;
  bool warm = false;  // launched in a warm jail
  std::string stdin_data;
  bool stdin_pending = false;
  int64_t scan_us = 0;  // the sensitive-path scan (worker thread)
  nlohmann::json scan_info;

  // Watches the directories that hold the jail's masks while it runs: a
  // masked name that the host replaces (an editor's save renames a new .env
  // over the old one) would lose its mask in the running jail, so the jail is
  // killed (sensitive_path_changed).
  int mask_watch_fd = -1;
  OpId mask_watch_op = 0;
  bool mask_watch_reading = false;
  std::map<int, std::set<std::string>> mask_watch_names;  // wd -> names
  std::array<char, 4096> mask_watch_buffer;

  ~Call() {
    if (mask_watch_fd >= 0 && !mask_watch_reading) close(mask_watch_fd);
    for (int& fd : out_fd) {
      if (fd >= 0) close(fd);
    }
    if (stdin_fd >= 0) close(stdin_fd);
    for (int fd : child_fds) {
      if (fd >= 0) close(fd);
    }
  }
};

// Runs `work` on the shared worker pool (it must use only what it captured)
// and `then` with its result on the loop thread, unless the runtime is gone
// by then. Fails when the pool's queue is full.
template <typename T>
absl::Status RunOffLoop(EventLoop* loop, std::weak_ptr<bool> alive,
                        std::function<T()> work, std::function<void(T)> then) {
  return WorkerPool::Shared().Submit(
      [loop, alive, work = std::move(work), then = std::move(then)] {
        auto result = std::make_shared<T>(work());
        (void)loop->Post([alive, result, then] {
          if (!alive.expired()) then(std::move(*result));
        });
      });
}

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_TOOL_CALL_H_
