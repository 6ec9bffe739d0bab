// A project's index of its sensitive paths, so an `exec` call's masks cost
// the same on a 1,000,000-file tree as on an empty one (issue 10). The full
// walk of ScanSensitivePaths (runtime/policy/sensitive_mask.h) is linear in the
// tree; this index walks the tree once, when the project starts (Build, on a
// worker thread), then follows it through inotify.
//
// What it holds (memory grows with directories and sensitive files, never
// with every file name):
//   - one node per directory that is not itself sensitive: its name, its
//     identity, its parent and its inotify watch (IN_CREATE, IN_DELETE,
//     IN_MOVED_FROM, IN_MOVED_TO, IN_DELETE_SELF, IN_MOVE_SELF, IN_ONLYDIR);
//   - in each node, the sensitive entries of that directory (IsSensitivePath
//     of the root-relative path) with their identity, and the other names of
//     sensitive files that have more than one link ("hard_link" entries).
//
// Watches are added to a directory before it is listed, so whatever changes
// in it after the listing is queued as an event. Take() first drains
// every queued event (a `.env` created before the call was requested is in
// the queue), in two steps: (1) apply the tree's shape (a deleted or moved
// directory drops its node and its watches) and note each (directory, name)
// touched; (2) re-examine each noted name on disk (fstatat through the
// directory opened beneath the root without symlinks, checked to be the
// node's directory): a new or moved-in directory is walked and watched,
// a file or directory gets or loses its sensitive entry. A directory moved
// inside the tree is walked again at its new place, since the sensitivity
// of a path can depend on its parents' names ("config/*.pem").
//
// Hard links: a sensitive file with more than one link has its other names
// in the tree found by one stat walk of the indexed directories (at build,
// or when such a file appears); from then on a name created or moved in is
// stat'ed and recorded when it is one of those inodes.
//
// Fallback (never unmasked): when the index cannot be trusted -- the event
// queue overflowed (IN_Q_OVERFLOW), the watch limit was reached
// (fs.inotify.max_user_watches), the mount table changed (a mount raises no
// inotify event), inotify is unavailable, the same directory is reachable
// twice (a bind mount) -- Take() says so (Snapshot::mode "full_scan" and
// why), the caller runs ScanSensitivePaths instead and a rebuild is started
// on the worker pool (not for the watch limit: raise
// fs.inotify.max_user_watches and restart the project). The same fallback,
// keeping the index, when no drain round ends with the queue empty
// ("busy"): the set is only exact as of a moment with nothing queued (a
// secret's directory renamed back and forth can otherwise be missed under
// both names). While a build runs, calls use the full scan too. Notifications
// are drained on demand only: a tree that changes more than
// fs.inotify.max_queued_events times between two calls overflows, and the next
// call pays a full scan while the index is rebuilt.
//
// Thread safety: every public method may be called from any thread. Build()
// and Take() do filesystem work: call them off the event loop. TakeIfQuiet()
// never waits (two non-blocking syscalls under a try_lock): the loop's path.
#ifndef JCS_RUNTIME_SENSITIVE_INDEX_H_
#define JCS_RUNTIME_SENSITIVE_INDEX_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/policy/sensitive_mask.h"

namespace jcs::runtime {

// Rounds of reading notifications and re-examining what they touched that a
// Take() tries before it gives up on a tree that keeps changing (the call
// then runs the full scan; the index stays).
inline constexpr int kDrainRounds = 8;

class SensitiveIndex : public std::enable_shared_from_this<SensitiveIndex> {
 public:
  enum class State { kBuilding, kReady, kFallback };

  struct Snapshot {
    // Set when mode is "index": exactly what ScanSensitivePaths would give
    // for the tree as of the drain (sorted by rel).
    std::optional<SensitiveScan> scan;
    std::string mode;     // "index" | "full_scan"
    std::string reason;   // why full_scan ("" for index)
    uint64_t events = 0;  // notifications applied by this snapshot
  };

  SensitiveIndex(std::string root, std::vector<std::string> denylist,
                 std::vector<std::string> allowlist);
  ~SensitiveIndex();
  SensitiveIndex(const SensitiveIndex&) = delete;
  SensitiveIndex& operator=(const SensitiveIndex&) = delete;

  // Queues Build() on the shared worker pool (loop/worker_pool.h).
  void StartBuild();
  // Walks the tree and watches it (the caller's thread). A failure leaves
  // the index in fallback with the reason.
  void Build();
  // Stops a running build early and keeps the index in fallback ("stopped").
  void Stop();

  // Drains pending notifications and returns the sensitive set, or says why
  // the caller must run the full scan.
  Snapshot Take();

  // The event loop's way to the set: no filesystem walk and no waiting, so
  // a call needs no hop to a worker thread. Gives the set of the last Take()
  // whose drain ended with the queue empty, when the index is ready and,
  // checked now: nothing is queued on its inotify fd (FIONREAD is 0) and the
  // mount table did not change (a poll of mountinfo). Null when any of that
  // does not hold or cannot be known without waiting (a drain or a build
  // holds the tree: try_lock): the caller then calls Take() off the loop.
  // As sound as Take(): inotify queues an event before the syscall that made
  // the change returns, so a `.env` created before the call was requested is
  // a queued event here, and the caller drains it through Take().
  std::shared_ptr<const SensitiveScan> TakeIfQuiet();

  State state() const;
  // {state, reason, directories_done, entries_done, directories, sensitive,
  //  hard_links, watches, build_ms, builds, snapshots, quiet_snapshots,
  //  fallbacks, last_fallback, events_applied, bytes, bytes_per_directory}
  nlohmann::json Diagnostics() const;

 private:
  struct Node;
  struct Tree;
  class Updater;
  void SetState(State state, std::string reason);
  void ScheduleRebuild();
  void PublishSizes(const Tree& tree);

  const std::string root_;
  const std::vector<std::string> denylist_;
  const std::vector<std::string> allowlist_;

  // The tree and its inotify fd: held for filesystem work (a drain, a
  // build's publication), never by Diagnostics().
  // std::mutex rather than absl::Mutex: ThreadSanitizer (--config=tsan)
  // sees a std::mutex through its pthread interceptors, not an absl::Mutex
  // from Debian's uninstrumented Abseil (it reported every access guarded
  // here as a race).
  std::mutex mu_;
  std::unique_ptr<Tree> tree_;  // guarded by mu_; null unless ready
  // Only one Build() at a time (a rebuild queued while one runs waits).
  std::mutex build_mu_;

  // What Diagnostics() shows; held only to copy numbers.
  mutable std::mutex stats_mu_;  // guards the fields below
  State state_ = State::kBuilding;
  std::string reason_ = "building";
  bool rebuild_queued_ = false;
  int64_t build_ms_ = -1;
  uint64_t builds_ = 0;
  uint64_t snapshots_ = 0;
  uint64_t fallbacks_ = 0;
  uint64_t events_applied_ = 0;
  std::string last_fallback_;
  nlohmann::json sizes_ = nlohmann::json::object();
  // Build progress, read while Build() runs.
  std::atomic<uint64_t> directories_done_{0};
  std::atomic<uint64_t> entries_done_{0};
  std::atomic<bool> stopped_{false};
  // TakeIfQuiet() answers (atomic: it never takes stats_mu_).
  std::atomic<uint64_t> quiet_snapshots_{0};
};

const char* SensitiveIndexStateName(SensitiveIndex::State state);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_SENSITIVE_INDEX_H_
