#include "runtime/assets/asset_watcher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"
#include "runtime/assets/asset_snapshot.h"

namespace jcs::runtime::assets {
namespace {

constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
                           IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
constexpr int kMaxDepth = 16;

int OpenBeneath(int root_fd, const std::string& rel) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, root_fd,
                                  rel.empty() ? "." : rel.c_str(), &how,
                                  sizeof(how)));
}

}  // namespace

struct AssetWatcher::State {
  EventLoop* loop = nullptr;
  Config config;
  int fd = -1;
  bool stopped = false;
  std::string end_detail;  // set when watching ended on its own
  bool reading = false;
  OpId read_op = 0;
  std::array<char, 16384> buffer;
  // wd -> {root-relative dir, the names that matter there (empty: every
  // name)}: an ancestor of the data dir cares for the next component only,
  // the data dir for the type directories only (not state/).
  std::map<int, std::pair<std::string, std::set<std::string>>> watches;
  bool degraded = false;
  std::set<std::string> changed;
  size_t events = 0;
  uint64_t flushes = 0;
  absl::Time deadline;
  bool timer_armed = false;

  std::string DataDirRel() const {
    std::string rel;
    for (const std::string& part : DataDirParts()) {
      rel = rel.empty() ? part : absl::StrCat(rel, "/", part);
    }
    return rel;
  }

  std::vector<std::string> DataDirParts() const {
    std::vector<std::string> parts;
    for (absl::string_view p : absl::StrSplit(config.data_dir, '/')) {
      if (!p.empty() && p != ".") parts.emplace_back(p);
    }
    return parts;
  }

  void Watch(int root_fd, const std::string& rel, std::set<std::string> only) {
    if (watches.size() >= kMaxWatchedDirs) {
      degraded = true;
      return;
    }
    UniqueFd dir(OpenBeneath(root_fd, rel));
    if (!dir.valid()) return;
    const std::string proc = absl::StrCat("/proc/self/fd/", dir.get());
    const int wd = inotify_add_watch(fd, proc.c_str(), kMask);
    if (wd < 0) {
      if (errno == ENOSPC) degraded = true;
      return;
    }
    watches[wd] = {rel, std::move(only)};
  }

  void WatchTree(int root_fd, const std::string& rel, int depth) {
    Watch(root_fd, rel, {});
    if (depth >= kMaxDepth || watches.size() >= kMaxWatchedDirs) return;
    UniqueFd dir_fd(OpenBeneath(root_fd, rel));
    if (!dir_fd.valid()) return;
    const int listing =
        openat(dir_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (listing < 0) return;
    DIR* dir = fdopendir(listing);
    if (dir == nullptr) {
      close(listing);
      return;
    }
    std::vector<std::string> subdirs;
    while (const struct dirent* e = readdir(dir)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {  // some filesystems leave it to stat
        struct stat st;
        is_dir = fstatat(dir_fd.get(), name.c_str(), &st,
                         AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISDIR(st.st_mode);
      }
      if (is_dir) subdirs.push_back(name);
    }
    closedir(dir);
    for (const std::string& name : subdirs) {
      WatchTree(root_fd, absl::StrCat(rel, "/", name), depth + 1);
    }
  }

  // (Re)builds every watch: removes the old ones first (their directories
  // may be gone or replaced).
  // False when the root itself cannot be opened (removed, or its file
  // system gone): nothing can be watched.
  bool Rewatch() {
    for (const auto& [wd, what] : watches) inotify_rm_watch(fd, wd);
    watches.clear();
    degraded = false;
    UniqueFd root(open(config.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return false;
    std::shared_ptr<void> identity;
    if (config.enter_identity) {
      absl::StatusOr<std::shared_ptr<void>> entered = config.enter_identity();
      if (!entered.ok()) {
        degraded = true;
        return true;
      }
      identity = *std::move(entered);
    }
    const std::vector<std::string> parts = DataDirParts();
    std::string rel;
    for (const std::string& part : parts) {
      Watch(root.get(), rel, {part});
      rel = rel.empty() ? part : absl::StrCat(rel, "/", part);
    }
    // The data dir: only the type directories' names matter (not state/).
    std::set<std::string> types;
    for (AssetType type : kAssetTypes) types.insert(AssetTypeDir(type));
    Watch(root.get(), rel, std::move(types));
    for (AssetType type : kAssetTypes) {
      WatchTree(root.get(),
                rel.empty() ? AssetTypeDir(type)
                            : absl::StrCat(rel, "/", AssetTypeDir(type)),
                0);
    }
    return true;
  }
};

AssetWatcher::AssetWatcher(EventLoop* loop, Config config)
    : state_(std::make_shared<State>()) {
  state_->loop = loop;
  state_->config = std::move(config);
}

AssetWatcher::~AssetWatcher() {
  state_->stopped = true;
  if (state_->reading) {
    // The read's callback closes the fd once the kernel is done with the
    // buffer.
    (void)state_->loop->Cancel(state_->read_op);
  } else if (state_->fd >= 0) {
    close(state_->fd);
    state_->fd = -1;
  }
}

namespace {

void ArmRead(const std::shared_ptr<AssetWatcher::State>& state);
void ArmTimer(const std::shared_ptr<AssetWatcher::State>& state);

// Watching ended on its own: stop reading (the pending read's callback, or
// this, closes the descriptor, which drops every watch) and say why, once.
void End(const std::shared_ptr<AssetWatcher::State>& state,
         std::string detail) {
  if (state->stopped) return;
  state->stopped = true;
  state->end_detail = detail;
  state->watches.clear();
  if (state->reading) {
    (void)state->loop->Cancel(state->read_op);
  } else if (state->fd >= 0) {
    close(state->fd);
    state->fd = -1;
  }
  if (state->config.on_stopped) state->config.on_stopped(std::move(detail));
}

void Flush(const std::shared_ptr<AssetWatcher::State>& state) {
  if (!state->Rewatch()) {
    End(state, absl::StrCat("the project root ", state->config.root,
                            " cannot be opened: ", strerror(errno)));
    return;
  }
  std::vector<std::string> changed(state->changed.begin(),
                                   state->changed.end());
  const size_t events = state->events;
  state->changed.clear();
  state->events = 0;
  ++state->flushes;
  if (state->config.on_settled) {
    state->config.on_settled(std::move(changed), events);
  }
}

void ArmTimer(const std::shared_ptr<AssetWatcher::State>& state) {
  const absl::Duration wait =
      std::max(state->deadline - absl::Now(), absl::ZeroDuration());
  std::weak_ptr<AssetWatcher::State> weak = state;
  absl::StatusOr<OpId> op = state->loop->Timeout(wait, [weak](int res) {
    std::shared_ptr<AssetWatcher::State> s = weak.lock();
    if (s == nullptr || s->stopped) return;
    s->timer_armed = false;
    if (res < 0) return;
    // Each event moved the deadline: wait again until it is really quiet.
    if (absl::Now() < s->deadline) {
      s->timer_armed = true;
      ArmTimer(s);
      return;
    }
    Flush(s);
  });
  state->timer_armed = op.ok();
}

void OnEvents(const std::shared_ptr<AssetWatcher::State>& state, int res) {
  bool relevant = false;
  for (int off = 0; off + static_cast<int>(sizeof(inotify_event)) <= res;) {
    const auto* ev =
        reinterpret_cast<const inotify_event*>(state->buffer.data() + off);
    off += static_cast<int>(sizeof(inotify_event) + ev->len);
    if (ev->mask & IN_Q_OVERFLOW) {
      relevant = true;
      state->changed.insert(state->config.data_dir);
      continue;
    }
    auto it = state->watches.find(ev->wd);
    if (it == state->watches.end()) continue;
    if ((ev->mask & IN_UNMOUNT) && it->second.first.empty()) {
      // The root's own file system went away (a mount below the root that
      // goes is only a change there).
      End(state, absl::StrCat("the file system holding the project root ",
                              state->config.root, " was unmounted"));
      return;
    }
    const std::string name = ev->len > 0 ? std::string(ev->name) : "";
    const auto& [dir, only] = it->second;
    if (!only.empty() && only.count(name) == 0) continue;  // not ours
    relevant = true;
    state->changed.insert(name.empty()  ? dir
                          : dir.empty() ? name
                                        : absl::StrCat(dir, "/", name));
  }
  if (!relevant) return;
  ++state->events;
  state->deadline = absl::Now() + state->config.debounce;
  if (!state->timer_armed) ArmTimer(state);
}

void ArmRead(const std::shared_ptr<AssetWatcher::State>& state) {
  std::weak_ptr<AssetWatcher::State> weak = state;
  const int fd = state->fd;
  absl::StatusOr<OpId> op = state->loop->Read(
      fd, absl::Span<char>(state->buffer.data(), state->buffer.size()),
      [weak, fd](int res) {
        std::shared_ptr<AssetWatcher::State> s = weak.lock();
        if (s == nullptr) {
          close(fd);
          return;
        }
        s->reading = false;
        if (s->stopped) {
          close(s->fd);
          s->fd = -1;
          return;
        }
        if (res < 0 && res != -EAGAIN && res != -EINTR) {
          End(s, absl::StrCat("reading inotify failed: ", strerror(-res)));
          return;
        }
        if (res > 0) OnEvents(s, res);
        if (s->stopped) return;  // ended by an event (End closed the fd)
        ArmRead(s);
      });
  if (op.ok()) {
    state->read_op = *op;
    state->reading = true;
  }
}

}  // namespace

absl::Status AssetWatcher::Start() {
  state_->fd = inotify_init1(IN_CLOEXEC);
  if (state_->fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "watcher_unavailable: inotify_init1: ", strerror(errno),
        " (raise fs.inotify.max_user_instances, or start the project "
        "without watcher and reload with `jcs assets reload`)"));
  }
  state_->Rewatch();
  ArmRead(state_);
  if (!state_->reading) {
    return absl::FailedPreconditionError(
        "watcher_unavailable: the event loop refused the inotify read");
  }
  return absl::OkStatus();
}

std::vector<std::string> AssetWatcher::WatchedDirs() const {
  std::set<std::string> dirs;
  for (const auto& [wd, what] : state_->watches) {
    if (what.second.empty() || what.first == state_->DataDirRel()) {
      dirs.insert(what.first);
    }
  }
  return {dirs.begin(), dirs.end()};
}

size_t AssetWatcher::pending_event_count() const { return state_->events; }

bool AssetWatcher::ended() const { return !state_->end_detail.empty(); }

nlohmann::json AssetWatcher::Diagnostics() const {
  nlohmann::json out = {
      {"watching", state_->fd >= 0 && !state_->stopped},
      {"watched_dirs", state_->watches.size()},
      {"pending_event_count", state_->events},
      {"flushes", state_->flushes},
      {"debounce_ms", absl::ToInt64Milliseconds(state_->config.debounce)},
      {"degraded", state_->degraded}};
  if (ended()) out["stopped_reason"] = state_->end_detail;
  return out;
}

}  // namespace jcs::runtime::assets
