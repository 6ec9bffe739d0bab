// `watcher: true` (spec §6): follows a project's asset folders through
// inotify, read on the event loop, and asks for a reload once the changes
// settle (debounce: every change restarts a `debounce` timer; the reload runs
// when none came for that long).
//
// What is watched: every directory from the root down to <data_dir> (only
// the name of the next component matters there, so a data dir created,
// removed or replaced is seen), <data_dir> itself, and each type directory
// (skills, commands, workflows, skill_graph) with its subdirectories. Each is
// opened beneath the root without following symlinks and watched through its
// /proc/self/fd name, so a symlink planted in the tree never makes the daemon
// watch (or reveal changes in) a directory elsewhere. Watches are built again
// before each flush: a folder created, removed or replaced while watching is
// followed, and what changed in it before its watch existed is read by the
// reload that follows. Editors' save-by-rename (write a temporary file, rename
// it over the asset) is an IN_MOVED_TO. An overflowed queue (IN_Q_OVERFLOW)
// counts as a change. When the file system holding the tree is unmounted or
// the root is removed, no change can be seen any more: the watcher says so
// once (Config::on_stopped) and stops. At most kMaxWatchedDirs directories are
// watched; past that the watcher reports itself degraded (diagnostics) and
// keeps the rest.
//
// Runs on the loop's thread only.
#ifndef JCS_RUNTIME_ASSETS_ASSET_WATCHER_H_
#define JCS_RUNTIME_ASSETS_ASSET_WATCHER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime::assets {

inline constexpr size_t kMaxWatchedDirs = 4096;
// changed_paths in an event lists at most this many.
inline constexpr size_t kMaxChangedPathsShown = 20;

class AssetWatcher {
 public:
  struct Config {
    std::string root;  // canonical
    std::string data_dir;
    absl::Duration debounce = absl::Milliseconds(250);
    // Called after the root is opened, before the tree below it is listed:
    // the guard it returns is held while the watches are built (the tool
    // runtime switches to the project's fsuid/fsgid, so the daemon lists only
    // what the project's user could). Optional.
    std::function<absl::StatusOr<std::shared_ptr<void>>()> enter_identity;
    // Called when changes settled: the root-relative paths that changed
    // (deduplicated, sorted) and how many events there were.
    std::function<void(std::vector<std::string> changed_paths,
                       size_t event_count)>
        on_settled;
    // Called once when watching ends on its own (the spec's
    // `reason: :file_system_stop`): the file system holding the tree was
    // unmounted, the root went away, or reading inotify failed. `detail`
    // says which. Not called by the destructor. Optional.
    std::function<void(std::string detail)> on_stopped;
  };

  AssetWatcher(EventLoop* loop, Config config);
  // Stops watching; a pending flush is dropped.
  ~AssetWatcher();
  AssetWatcher(const AssetWatcher&) = delete;
  AssetWatcher& operator=(const AssetWatcher&) = delete;

  // Creates the inotify instance and the watches and starts reading.
  // FailedPrecondition naming the layer when inotify is unavailable.
  absl::Status Start();

  // Root-relative directories being watched, sorted.
  std::vector<std::string> WatchedDirs() const;
  // Events seen and not yet flushed.
  size_t pending_event_count() const;
  // Whether watching ended on its own (see Config::on_stopped).
  bool ended() const;
  // {watching, watched_dirs, pending_event_count, flushes, degraded, and
  // stopped_reason once it ended}.
  nlohmann::json Diagnostics() const;

  // Internal (shared with the loop's callbacks, which outlive a destroyed
  // watcher until the kernel lets go of the read buffer).
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace jcs::runtime::assets

#endif  // JCS_RUNTIME_ASSETS_ASSET_WATCHER_H_
