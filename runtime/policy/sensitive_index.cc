#include "runtime/policy/sensitive_index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"
#include "loop/worker_pool.h"
#include "runtime/policy/path_policy.h"

namespace jcs::runtime {
namespace {

constexpr uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR;
constexpr size_t kDirentBufferBytes = 64 * 1024;
constexpr size_t kEventBufferBytes = 64 * 1024;

using Inode = std::pair<uint64_t, uint64_t>;  // (dev, ino)

struct linux_dirent64_view {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

std::string Join(const std::string& rel, const std::string& name) {
  return rel.empty() ? name : absl::StrCat(rel, "/", name);
}

// Mount points at or below `root` in this process's mount namespace (the
// fifth field of mountinfo; octal escapes are kept as they are, which is
// enough to compare two readings).
std::set<std::string> MountsBelow(const std::string& root) {
  std::set<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5) continue;
    const std::string& point = fields[4];
    if (point == root || (point.size() > root.size() &&
                          point.compare(0, root.size(), root) == 0 &&
                          (root == "/" || point[root.size()] == '/'))) {
      mounts.insert(point);
    }
  }
  return mounts;
}

}  // namespace

const char* SensitiveIndexStateName(SensitiveIndex::State state) {
  switch (state) {
    case SensitiveIndex::State::kBuilding:
      return "building";
    case SensitiveIndex::State::kReady:
      return "ready";
    case SensitiveIndex::State::kFallback:
      return "fallback";
  }
  return "fallback";
}

// What the index keeps of one sensitive entry (its name is the map key).
struct IndexedEntry {
  bool is_dir = false;
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t nlink = 1;
};

// One watched directory (never a sensitive one: those are masked whole).
struct SensitiveIndex::Node {
  Node* parent = nullptr;  // null for the root
  std::string name;        // "" for the root
  uint64_t dev = 0;
  uint64_t ino = 0;
  int wd = -1;
  std::map<std::string, std::unique_ptr<Node>> dirs;
  std::map<std::string, IndexedEntry> sensitive;
  std::map<std::string, Inode> links;  // other names of sensitive files
};

struct SensitiveIndex::Tree {
  UniqueFd inotify;
  UniqueFd root_fd;    // O_PATH
  UniqueFd mountinfo;  // polled for mount-table changes
  std::set<std::string> mounts;
  std::unique_ptr<Node> root;
  std::unordered_map<int, Node*> by_wd;
  std::set<int> with_entries;  // wds of nodes with sensitive/links entries
  std::map<Inode, int> primary_files;  // sensitive files' inodes, counted
  std::set<Inode> resolved;  // inodes whose names were all found by a walk
  uint64_t name_bytes = 0;
  uint64_t entries = 0;
  uint64_t links = 0;
  std::string untrusted;  // why the tree can no longer be trusted
  // The set as of the last drain that ended with the queue empty; reset
  // before every drain (see TakeIfQuiet).
  std::shared_ptr<const SensitiveScan> quiet;
  // TakeIfQuiet() saw (and so consumed) a mount-table change: the next
  // CheckMounts() compares the table whatever its own poll says.
  bool mounts_changed = false;
};

// The operations on a Tree: building, draining, re-examining.
class SensitiveIndex::Updater {
 public:
  Updater(SensitiveIndex* index, Tree* tree) : index_(index), tree_(tree) {}

  bool Untrusted() const { return !tree_->untrusted.empty(); }
  void Distrust(std::string why) {
    if (tree_->untrusted.empty()) tree_->untrusted = std::move(why);
  }

  // The root's node and a walk of the whole tree.
  void BuildAll() {
    tree_->inotify.Reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!tree_->inotify.valid()) {
      return Distrust(absl::StrCat("inotify unavailable: ", strerror(errno)));
    }
    tree_->root_fd.Reset(
        open(index_->root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!tree_->root_fd.valid()) {
      return Distrust(absl::StrCat("cannot open the root: ", strerror(errno)));
    }
    tree_->mountinfo.Reset(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    if (tree_->mountinfo.valid()) {
      struct pollfd pfd = {tree_->mountinfo.get(), POLLPRI, 0};
      (void)poll(&pfd, 1, 0);  // consumes any earlier change
    }
    tree_->mounts = MountsBelow(index_->root_);
    Walk(nullptr, "", /*stat_files=*/false);
    if (tree_->root == nullptr) Distrust("the root could not be walked");
  }

  // Reads every queued notification and re-examines what they touched,
  // round after round, until a round ends with the queue empty: then every
  // change made before that moment was read and every name it touched was
  // examined after it, so the index is exact at that moment. A round that
  // ends with more notifications queued proves nothing (a secret renamed
  // back and forth can be missed under both names); after kDrainRounds such
  // rounds the tree is busy: sets *quiescent false (the caller runs the full
  // scan) and keeps the index, the rest of the queue is for the next drain.
  uint64_t Drain(bool* quiescent) {
    uint64_t events = 0;
    *quiescent = false;
    for (int round = 0; round < kDrainRounds && !Untrusted(); ++round) {
      std::set<std::pair<int, std::string>> dirty;
      events += ReadEvents(&dirty);
      if (Untrusted()) break;
      raced_ = false;
      const bool found_all = Reexamine(dirty) && !raced_;
      if (Untrusted()) break;
      ResolveLinks();
      CheckMounts();
      if (Untrusted()) break;
      int queued = 0;
      if (ioctl(tree_->inotify.get(), FIONREAD, &queued) != 0) {
        Distrust(absl::StrCat("FIONREAD on inotify: ", strerror(errno)));
        break;
      }
      if (found_all && queued == 0) {
        *quiescent = true;
        break;
      }
    }
    return events;
  }

  // The sorted entries as ScanSensitivePaths would give them.
  SensitiveScan Compose() const {
    SensitiveScan scan;
    for (int wd : tree_->with_entries) {
      const Node* node = tree_->by_wd.at(wd);
      const std::string rel = RelOf(node);
      for (const auto& [name, e] : node->sensitive) {
        scan.entries.push_back(
            {Join(rel, name), e.is_dir, e.dev, e.ino, e.nlink, false});
      }
      for (const auto& [name, inode] : node->links) {
        if (tree_->primary_files.count(inode) == 0) continue;
        scan.entries.push_back(
            {Join(rel, name), false, inode.first, inode.second, 2, true});
      }
    }
    std::sort(scan.entries.begin(), scan.entries.end(),
              [](const SensitiveEntry& a, const SensitiveEntry& b) {
                return a.rel < b.rel;
              });
    scan.directories = tree_->by_wd.size();
    scan.attempts = 0;
    return scan;
  }

 private:
  static std::string RelOf(const Node* node) {
    std::vector<const std::string*> names;
    for (; node != nullptr && node->parent != nullptr; node = node->parent) {
      names.push_back(&node->name);
    }
    std::string rel;
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      if (!rel.empty()) rel += '/';
      rel += **it;
    }
    return rel;
  }

  void Touch(Node* node) {
    if (node->sensitive.empty() && node->links.empty()) {
      tree_->with_entries.erase(node->wd);
    } else {
      tree_->with_entries.insert(node->wd);
    }
  }

  bool IsChecked(const Inode& inode) const {
    return tree_->primary_files.count(inode) != 0 ||
           tree_->resolved.count(inode) != 0;
  }
  bool AnyChecked() const {
    return !tree_->primary_files.empty() || !tree_->resolved.empty();
  }

  void EraseSensitive(Node* node, const std::string& name) {
    auto it = node->sensitive.find(name);
    if (it == node->sensitive.end()) return;
    if (!it->second.is_dir) {
      const Inode inode{it->second.dev, it->second.ino};
      if (--tree_->primary_files[inode] == 0) {
        tree_->primary_files.erase(inode);
      }
    }
    tree_->name_bytes -= name.size();
    --tree_->entries;
    node->sensitive.erase(it);
    Touch(node);
  }
  void SetSensitive(Node* node, const std::string& name, IndexedEntry e) {
    EraseSensitive(node, name);
    EraseLink(node, name);
    if (!e.is_dir) ++tree_->primary_files[{e.dev, e.ino}];
    tree_->name_bytes += name.size();
    ++tree_->entries;
    node->sensitive[name] = e;
    Touch(node);
  }
  void EraseLink(Node* node, const std::string& name) {
    if (node->links.erase(name) == 0) return;
    tree_->name_bytes -= name.size();
    --tree_->links;
    Touch(node);
  }
  void SetLink(Node* node, const std::string& name, Inode inode) {
    if (node->links.count(name) == 0) {
      tree_->name_bytes += name.size();
      ++tree_->links;
    }
    node->links[name] = inode;
    Touch(node);
  }

  // Drops a directory's node and everything below it, with their watches.
  void DropDir(Node* parent, const std::string& name) {
    auto it = parent->dirs.find(name);
    if (it == parent->dirs.end()) return;
    std::unique_ptr<Node> dropped = std::move(it->second);
    parent->dirs.erase(it);
    std::vector<Node*> stack = {dropped.get()};
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      for (auto& [child_name, child] : node->dirs) stack.push_back(child.get());
      for (const auto& [entry_name, e] : node->sensitive) {
        if (!e.is_dir) {
          const Inode inode{e.dev, e.ino};
          if (--tree_->primary_files[inode] == 0) {
            tree_->primary_files.erase(inode);
          }
        }
        tree_->name_bytes -= entry_name.size();
        --tree_->entries;
      }
      for (const auto& [link_name, inode] : node->links) {
        tree_->name_bytes -= link_name.size();
        --tree_->links;
      }
      tree_->name_bytes -= node->name.size();
      tree_->with_entries.erase(node->wd);
      tree_->by_wd.erase(node->wd);
      // Gone from the disk already when it was deleted (EINVAL then).
      (void)inotify_rm_watch(tree_->inotify.get(), node->wd);
    }
  }

  void Forget(Node* node, const std::string& name) {
    DropDir(node, name);
    EraseSensitive(node, name);
    EraseLink(node, name);
  }

  // Opens `node`'s directory (O_PATH) where the index has it, checked to be
  // the same directory; -1 when it is not there (a change not drained yet).
  int OpenNode(const Node* node) const {
    UniqueFd fd(OpenDirBeneathLong(tree_->root_fd.get(), RelOf(node)));
    if (!fd.valid()) return -1;
    struct stat st;
    if (fstat(fd.get(), &st) != 0 ||
        static_cast<uint64_t>(st.st_dev) != node->dev ||
        static_cast<uint64_t>(st.st_ino) != node->ino) {
      return -1;
    }
    return fd.release();
  }

  // Walks the directory `name` of `parent` (the root when parent is null)
  // and everything below it: each directory is watched, then listed, so a
  // change after the listing is queued. An entry that vanished or changed
  // during the walk is skipped: its parent's watch queued the change.
  void Walk(Node* parent, const std::string& name, bool stat_files) {
    // By the parent's watch descriptor (-1: the root), never by pointer: a
    // node found stale during the walk is dropped with its subtree.
    std::vector<std::pair<int, std::string>> stack = {
        {parent == nullptr ? -1 : parent->wd, name}};
    auto buffer = std::make_unique<char[]>(kDirentBufferBytes);
    while (!stack.empty() && !Untrusted()) {
      if (index_->stopped_.load()) return Distrust("stopped");
      auto [at_wd, dir_name] = std::move(stack.back());
      stack.pop_back();
      Node* at = nullptr;
      if (at_wd >= 0) {
        auto found = tree_->by_wd.find(at_wd);
        if (found == tree_->by_wd.end()) continue;
        at = found->second;
      }
      const std::string rel =
          at == nullptr ? std::string() : Join(RelOf(at), dir_name);
      UniqueFd path_fd(OpenDirBeneathLong(tree_->root_fd.get(), rel));
      if (!path_fd.valid()) {
        if (at == nullptr) {
          return Distrust(
              absl::StrCat("cannot open the root: ", strerror(errno)));
        }
        raced_ = true;
        continue;  // moved or removed: queued on the parent's watch
      }
      struct stat st;
      if (fstat(path_fd.get(), &st) != 0) continue;
      Node* node = AddNode(at, dir_name, path_fd.get(), st);
      if (node == nullptr) continue;
      UniqueFd dir_fd(
          openat(path_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir_fd.valid()) {
        if (errno == ENOENT) continue;
        return Distrust(absl::StrCat("cannot list ", index_->root_, "/",
                                     rel.substr(0, 256), ": ",
                                     strerror(errno)));
      }
      index_->directories_done_.fetch_add(1, std::memory_order_relaxed);
      while (true) {
        const long n = syscall(SYS_getdents64, dir_fd.get(), buffer.get(),
                               kDirentBufferBytes);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // ENOENT: removed while read (queued)
        for (long off = 0; off < n;) {
          const auto* d =
              reinterpret_cast<const linux_dirent64_view*>(buffer.get() + off);
          off += d->d_reclen;
          const char* entry = d->d_name;
          if (entry[0] == '.' &&
              (entry[1] == '\0' || (entry[1] == '.' && entry[2] == '\0'))) {
            continue;
          }
          index_->entries_done_.fetch_add(1, std::memory_order_relaxed);
          unsigned char type = d->d_type;
          if (type != DT_DIR && type != DT_REG && type != DT_UNKNOWN) continue;
          if (type == DT_REG && !stat_files &&
              !IsSensitivePath(Join(rel, entry), index_->denylist_,
                               index_->allowlist_)) {
            continue;  // the common case: a benign file, not even stat'ed
          }
          const std::string entry_name(entry);
          if (type == DT_DIR &&
              !IsSensitivePath(Join(rel, entry_name), index_->denylist_,
                               index_->allowlist_)) {
            stack.push_back({node->wd, entry_name});  // opened and checked
            continue;
          }
          struct stat est;
          if (fstatat(dir_fd.get(), entry, &est, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;  // gone: queued on this directory's watch
          }
          if (S_ISDIR(est.st_mode)) {
            if (IsSensitivePath(Join(rel, entry_name), index_->denylist_,
                                index_->allowlist_)) {
              SetSensitive(node, entry_name,
                           {true, static_cast<uint64_t>(est.st_dev),
                            static_cast<uint64_t>(est.st_ino),
                            static_cast<uint64_t>(est.st_nlink)});
            } else {
              stack.push_back({node->wd, entry_name});
            }
          } else if (S_ISREG(est.st_mode)) {
            ExamineFile(node, rel, entry_name, est);
          }
        }
      }
    }
  }

  void ExamineFile(Node* node, const std::string& rel, const std::string& name,
                   const struct stat& st) {
    const Inode inode{static_cast<uint64_t>(st.st_dev),
                      static_cast<uint64_t>(st.st_ino)};
    if (IsSensitivePath(Join(rel, name), index_->denylist_,
                        index_->allowlist_)) {
      SetSensitive(node, name,
                   {false, inode.first, inode.second,
                    static_cast<uint64_t>(st.st_nlink)});
    } else {
      EraseSensitive(node, name);
      // Recorded even with one link: a sensitive name may be linked to it
      // later, and this name raises no event then.
      if (IsChecked(inode)) {
        SetLink(node, name, inode);
      } else {
        EraseLink(node, name);
      }
    }
  }

  // The node of a directory just opened, watched. Null when it cannot be
  // indexed (the index is then distrusted, or the directory vanished).
  Node* AddNode(Node* parent, const std::string& name, int path_fd,
                const struct stat& st) {
    const std::string proc = absl::StrCat("/proc/self/fd/", path_fd);
    int wd = inotify_add_watch(tree_->inotify.get(), proc.c_str(), kWatchMask);
    if (wd < 0) {
      if (errno == ENOSPC) {
        uint64_t limit = 0;
        std::ifstream("/proc/sys/fs/inotify/max_user_watches") >> limit;
        Distrust(absl::StrCat(
            "watch_limit: inotify watches exhausted (fs.inotify."
            "max_user_watches=",
            limit, ", ", tree_->by_wd.size(),
            " directories indexed); raise it and restart the project"));
      } else if (errno != ENOENT) {
        Distrust(absl::StrCat("inotify_add_watch: ", strerror(errno)));
      }
      return nullptr;
    }
    auto known = tree_->by_wd.find(wd);
    if (known != tree_->by_wd.end()) {
      // The same directory again: moved during the walk (its old place is
      // stale, drop it) or reachable twice (a bind mount: the index cannot
      // tell its paths apart, so it is not trusted).
      Node* old = known->second;
      bool above = false;
      for (const Node* n = parent; n != nullptr; n = n->parent) {
        above = above || n == old;
      }
      UniqueFd still(above ? -1 : OpenNode(old));
      if (above || still.valid()) {
        // Two paths at once need a mount below the root; without one it is
        // a rename racing this walk (seen at both names in turn): this
        // round is not exact, the next one reads the rename.
        bool mounts_below = false;
        for (const std::string& point : tree_->mounts) {
          mounts_below = mounts_below || point != index_->root_;
        }
        if (above || mounts_below) {
          Distrust("a directory is reachable by two paths (a bind mount)");
        } else {
          raced_ = true;
        }
        return nullptr;
      }
      DropDir(old->parent, old->name);
      wd = inotify_add_watch(tree_->inotify.get(), proc.c_str(), kWatchMask);
      if (wd < 0) return nullptr;
    }
    auto node = std::make_unique<Node>();
    node->parent = parent;
    node->name = name;
    node->dev = static_cast<uint64_t>(st.st_dev);
    node->ino = static_cast<uint64_t>(st.st_ino);
    node->wd = wd;
    tree_->name_bytes += name.size();
    Node* raw = node.get();
    tree_->by_wd[wd] = raw;
    if (parent == nullptr) {
      tree_->root = std::move(node);
    } else {
      Forget(parent, name);
      parent->dirs[name] = std::move(node);
    }
    return raw;
  }

  void CheckMounts() {
    if (!tree_->mountinfo.valid()) return;
    const bool seen = tree_->mounts_changed;
    tree_->mounts_changed = false;
    struct pollfd pfd = {tree_->mountinfo.get(), POLLPRI, 0};
    if (!seen &&
        (poll(&pfd, 1, 0) <= 0 || (pfd.revents & (POLLPRI | POLLERR)) == 0)) {
      return;
    }
    // A mount raises no inotify event: if one appeared or went below the
    // root, the indexed view may not be what a walk sees.
    if (MountsBelow(index_->root_) != tree_->mounts) {
      Distrust("the mount table below the root changed");
    }
  }

  // Step 1: applies the shape (deleted/moved-out directories), collects the
  // names to re-examine.
  uint64_t ReadEvents(std::set<std::pair<int, std::string>>* dirty) {
    uint64_t events = 0;
    alignas(struct inotify_event) char buffer[kEventBufferBytes];
    while (true) {
      const ssize_t n = read(tree_->inotify.get(), buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EAGAIN: drained
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buffer + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        ++events;
        if (ev->mask & IN_Q_OVERFLOW) {
          Distrust(
              "overflow: the inotify queue overflowed (more than "
              "fs.inotify.max_queued_events changes between calls)");
          return events;
        }
        auto found = tree_->by_wd.find(ev->wd);
        if (found == tree_->by_wd.end()) continue;  // a dropped directory
        Node* node = found->second;
        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
          if (node->parent == nullptr) {
            Distrust("the root was moved or removed");
            return events;
          }
          // Moves and deletions are handled through the parent's events;
          // a watch removed otherwise (unmount) re-examines the name.
          if (ev->mask & IN_IGNORED) {
            dirty->insert({node->parent->wd, node->name});
            DropDir(node->parent, node->name);
          }
          continue;
        }
        if (ev->len == 0) continue;
        const std::string name(ev->name);
        if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) Forget(node, name);
        dirty->insert({ev->wd, name});
      }
    }
    return events;
  }

  // Step 2: each name as it is on disk now. False when a directory is not
  // where the index has it (a change still queued: drain again).
  bool Reexamine(const std::set<std::pair<int, std::string>>& dirty) {
    bool consistent = true;
    for (const auto& [wd, name] : dirty) {
      if (Untrusted()) return true;
      auto found = tree_->by_wd.find(wd);
      if (found == tree_->by_wd.end()) continue;
      Node* node = found->second;
      UniqueFd dir(OpenNode(node));
      if (!dir.valid()) {
        consistent = false;
        continue;
      }
      struct stat st;
      if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        Forget(node, name);
        continue;
      }
      const std::string rel = RelOf(node);
      if (S_ISDIR(st.st_mode)) {
        EraseLink(node, name);
        if (IsSensitivePath(Join(rel, name), index_->denylist_,
                            index_->allowlist_)) {
          DropDir(node, name);
          SetSensitive(node, name,
                       {true, static_cast<uint64_t>(st.st_dev),
                        static_cast<uint64_t>(st.st_ino),
                        static_cast<uint64_t>(st.st_nlink)});
          continue;
        }
        EraseSensitive(node, name);
        auto child = node->dirs.find(name);
        if (child != node->dirs.end() &&
            child->second->dev == static_cast<uint64_t>(st.st_dev) &&
            child->second->ino == static_cast<uint64_t>(st.st_ino)) {
          continue;  // the same directory, still watched
        }
        DropDir(node, name);
        Walk(node, name, AnyChecked());
      } else if (S_ISREG(st.st_mode)) {
        DropDir(node, name);
        ExamineFile(node, rel, name, st);
      } else {
        Forget(node, name);
      }
    }
    return consistent;
  }

 public:
  // The other names of sensitive files with more than one link whose names
  // were not looked for yet: one stat walk over the indexed directories.
  void ResolveLinks() {
    std::set<Inode> wanted;
    for (int wd : tree_->with_entries) {
      for (const auto& [name, e] : tree_->by_wd.at(wd)->sensitive) {
        const Inode inode{e.dev, e.ino};
        if (!e.is_dir && e.nlink > 1 && tree_->resolved.count(inode) == 0) {
          wanted.insert(inode);
        }
      }
    }
    if (wanted.empty()) return;
    for (const Inode& inode : wanted) tree_->resolved.insert(inode);
    auto buffer = std::make_unique<char[]>(kDirentBufferBytes);
    std::vector<Node*> nodes;
    for (const auto& [wd, node] : tree_->by_wd) nodes.push_back(node);
    for (Node* node : nodes) {
      UniqueFd path_fd(OpenNode(node));
      if (!path_fd.valid()) continue;  // moved: queued, walked again
      UniqueFd dir_fd(
          openat(path_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir_fd.valid()) continue;
      while (true) {
        const long n = syscall(SYS_getdents64, dir_fd.get(), buffer.get(),
                               kDirentBufferBytes);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (long off = 0; off < n;) {
          const auto* d =
              reinterpret_cast<const linux_dirent64_view*>(buffer.get() + off);
          off += d->d_reclen;
          if (d->d_type != DT_REG && d->d_type != DT_UNKNOWN) continue;
          const std::string name(d->d_name);
          if (name == "." || name == ".." || node->sensitive.count(name)) {
            continue;
          }
          struct stat st;
          if (fstatat(dir_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) !=
                  0 ||
              !S_ISREG(st.st_mode)) {
            continue;
          }
          const Inode inode{static_cast<uint64_t>(st.st_dev),
                            static_cast<uint64_t>(st.st_ino)};
          if (wanted.count(inode) != 0) SetLink(node, name, inode);
        }
      }
    }
  }

 private:
  SensitiveIndex* const index_;
  Tree* const tree_;
  // A walk of this round met a directory that moved under it.
  bool raced_ = false;
};

SensitiveIndex::SensitiveIndex(std::string root,
                               std::vector<std::string> denylist,
                               std::vector<std::string> allowlist)
    : root_(std::move(root)),
      denylist_(std::move(denylist)),
      allowlist_(std::move(allowlist)) {}

SensitiveIndex::~SensitiveIndex() = default;

void SensitiveIndex::SetState(State state, std::string reason) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  state_ = state;
  reason_ = std::move(reason);
}

SensitiveIndex::State SensitiveIndex::state() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return state_;
}

void SensitiveIndex::StartBuild() {
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    if (rebuild_queued_) return;
    rebuild_queued_ = true;
  }
  std::weak_ptr<SensitiveIndex> weak = weak_from_this();
  absl::Status queued = WorkerPool::Shared().Submit([weak] {
    if (std::shared_ptr<SensitiveIndex> index = weak.lock()) index->Build();
  });
  if (!queued.ok()) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    rebuild_queued_ = false;
    state_ = State::kFallback;
    reason_ =
        absl::StrCat("the index build could not be queued: ", queued.message());
  }
}

void SensitiveIndex::ScheduleRebuild() { StartBuild(); }

void SensitiveIndex::Stop() {
  stopped_.store(true);
  SetState(State::kFallback, "stopped");
}

void SensitiveIndex::PublishSizes(const Tree& tree) {
  // An estimate of the heap the index holds: per directory its node, its
  // map slots (parent's map, the wd map) and name; per entry its map slot.
  constexpr uint64_t kMapSlot = 48;
  const uint64_t dirs = tree.by_wd.size();
  const uint64_t bytes = dirs * (sizeof(Node) + 2 * kMapSlot) +
                         tree.name_bytes +
                         tree.entries * (sizeof(IndexedEntry) + kMapSlot + 32) +
                         tree.links * (sizeof(Inode) + kMapSlot + 32) +
                         tree.with_entries.size() * kMapSlot;
  std::lock_guard<std::mutex> lock(stats_mu_);
  sizes_ = {{"directories", dirs},
            {"sensitive", tree.entries},
            {"hard_links", tree.links},
            {"watches", dirs},
            {"bytes", bytes},
            {"bytes_per_directory", dirs == 0 ? 0 : bytes / dirs}};
}

void SensitiveIndex::Build() {
  std::lock_guard<std::mutex> build_lock(build_mu_);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    rebuild_queued_ = false;
    if (stopped_.load()) return;
    state_ = State::kBuilding;
    reason_ = "building";
  }
  {
    // Calls fall back to the full scan until the new tree is published.
    std::lock_guard<std::mutex> lock(mu_);
    tree_.reset();
  }
  directories_done_.store(0);
  entries_done_.store(0);
  const int64_t start = NowMs();
  std::unique_ptr<Tree> tree;
  // A tree that overflowed the queue while it was walked is walked again;
  // other failures are not transient.
  for (int attempt = 0; attempt < kSensitiveScanAttempts; ++attempt) {
    tree = std::make_unique<Tree>();
    Updater updater(this, tree.get());
    updater.BuildAll();
    if (!updater.Untrusted()) updater.ResolveLinks();
    // Not quiescent is fine here: what is still queued is for Take().
    bool quiescent = false;
    if (!updater.Untrusted()) updater.Drain(&quiescent);
    if (tree->untrusted.rfind("overflow", 0) != 0) break;
  }
  PublishSizes(*tree);
  const std::string untrusted = tree->untrusted;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++builds_;
    build_ms_ = NowMs() - start;
    if (!untrusted.empty()) {
      state_ = State::kFallback;
      reason_ = untrusted;
      return;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_.load()) return;
  tree_ = std::move(tree);
  SetState(State::kReady, "");
}

SensitiveIndex::Snapshot SensitiveIndex::Take() {
  Snapshot snapshot;
  snapshot.mode = "full_scan";
  bool rebuild = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (tree_ == nullptr) {
      std::lock_guard<std::mutex> stats(stats_mu_);
      snapshot.reason = state_ == State::kBuilding
                            ? std::string("building")
                            : absl::StrCat("fallback: ", reason_);
      // A build that failed on a busy tree is tried again (in the
      // background; this call and the next use the full scan meanwhile).
      rebuild = state_ == State::kFallback && reason_.rfind("overflow", 0) == 0;
    } else {
      Updater updater(this, tree_.get());
      bool quiescent = false;
      tree_->quiet.reset();  // what it held is only true until this drain
      snapshot.events = updater.Drain(&quiescent);
      if (!updater.Untrusted() && !quiescent) {
        // The index stays; this call cannot be given an exact set from it.
        snapshot.reason =
            absl::StrCat("busy: the tree kept changing during ", kDrainRounds,
                         " drains of its notifications");
      } else if (updater.Untrusted()) {
        snapshot.reason = tree_->untrusted;
        // A watch limit would be hit again: no rebuild until a restart.
        rebuild = snapshot.reason.rfind("watch_limit", 0) != 0;
        tree_.reset();
        SetState(State::kFallback, snapshot.reason);
      } else {
        tree_->quiet = std::make_shared<const SensitiveScan>(updater.Compose());
        snapshot.scan = *tree_->quiet;
        snapshot.mode = "index";
        PublishSizes(*tree_);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++snapshots_;
    events_applied_ += snapshot.events;
    if (snapshot.mode != "index") {
      ++fallbacks_;
      last_fallback_ = snapshot.reason;
    }
  }
  if (rebuild && !stopped_.load()) ScheduleRebuild();
  return snapshot;
}

std::shared_ptr<const SensitiveScan> SensitiveIndex::TakeIfQuiet() {
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || tree_ == nullptr || tree_->quiet == nullptr ||
      !tree_->untrusted.empty()) {
    return nullptr;
  }
  // Anything queued, even an event that changes nothing, sends the call to
  // Take(): only a drain tells.
  int queued = 0;
  if (ioctl(tree_->inotify.get(), FIONREAD, &queued) != 0 || queued != 0) {
    return nullptr;
  }
  if (tree_->mountinfo.valid()) {
    struct pollfd pfd = {tree_->mountinfo.get(), POLLPRI, 0};
    const int ready = poll(&pfd, 1, 0);
    if (ready < 0) return nullptr;
    if (ready > 0 && (pfd.revents & (POLLPRI | POLLERR)) != 0) {
      // This poll consumed the change: the next drain must still compare.
      tree_->mounts_changed = true;
      tree_->quiet.reset();
      return nullptr;
    }
  }
  quiet_snapshots_.fetch_add(1, std::memory_order_relaxed);
  return tree_->quiet;
}

nlohmann::json SensitiveIndex::Diagnostics() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  nlohmann::json doc = sizes_;
  doc["state"] = SensitiveIndexStateName(state_);
  doc["reason"] = reason_;
  doc["directories_done"] = directories_done_.load();
  doc["entries_done"] = entries_done_.load();
  doc["build_ms"] = build_ms_;
  doc["builds"] = builds_;
  doc["snapshots"] = snapshots_;
  doc["quiet_snapshots"] = quiet_snapshots_.load(std::memory_order_relaxed);
  doc["fallbacks"] = fallbacks_;
  doc["last_fallback"] = last_fallback_;
  doc["events_applied"] = events_applied_;
  return doc;
}

}  // namespace jcs::runtime
