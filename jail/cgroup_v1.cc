// cgroup v1 backend: one leaf per hierarchy (freezer always, memory when
// mounted, pids and cpu when their limits are asked for), at
// <parent>/<instance>/<leaf> (jail/cgroup_instance.h); the freezer makes
// KillAll atomic.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "jail/cgroup.h"
#include "jail/cgroup_fs.h"
#include "jail/cgroup_instance.h"

namespace jcs::jail {
namespace {

namespace fs = cgroup_fs;

namespace instance = cgroup_instance;

constexpr int kDestroyKillWaitMs = 2000;
// After the kill emptied this run's own cgroups, rmdir may still see EBUSY
// for a moment while the kernel finishes the exits; bounded.
constexpr int kRmdirRetryMs = 1000;
constexpr const char* kControllers[] = {"freezer", "memory", "pids", "cpu"};

// A leaf directory in one hierarchy; `controllers` lists the ones this backend
// uses there (several when co-mounted).
struct Leaf {
  std::vector<std::string> controllers;
  std::string dir;
};

class CgroupV1 : public Cgroup {
 public:
  // `rmdir_retry_ms`: how long EBUSY is retried after the kill.
  explicit CgroupV1(bool fake, int rmdir_retry_ms = kRmdirRetryMs)
      : fake_(fake), rmdir_retry_ms_(rmdir_retry_ms) {}
  ~CgroupV1() override {
    (void)Destroy();
    CloseCounterFiles();  // when Destroy failed
  }
  CgroupV1(const CgroupV1&) = delete;
  CgroupV1& operator=(const CgroupV1&) = delete;

  std::string backend() const override { return "v1"; }
  int clone_into_fd() const override { return -1; }

  // Takes ownership of `dir` (removed by Destroy) for `controller`.
  void AddLeaf(absl::string_view controller, const std::string& dir) {
    for (Leaf& leaf : leaves_) {
      if (leaf.dir == dir) {
        leaf.controllers.emplace_back(controller);
        return;
      }
    }
    leaves_.push_back(Leaf{{std::string(controller)}, dir});
  }

  // Counts this cgroup as a user of the instance directory below
  // `parent_dir` until its leaves are gone.
  void HoldInstance(const std::string& parent_dir) {
    instance_parents_.push_back(parent_dir);
  }

  // The leaf directory of `controller`, or nullopt.
  std::optional<std::string> DirFor(absl::string_view controller) const {
    for (const Leaf& leaf : leaves_) {
      if (std::find(leaf.controllers.begin(), leaf.controllers.end(),
                    controller) != leaf.controllers.end()) {
        return leaf.dir;
      }
    }
    return std::nullopt;
  }

  absl::Status AddProcess(pid_t pid) override {
    if (destroyed_)
      return absl::FailedPreconditionError("cgroup already destroyed");
    for (const Leaf& leaf : leaves_) {
      absl::Status s = fs::WriteFile(fs::JoinPath(leaf.dir, "cgroup.procs"),
                                     absl::StrCat(pid), fake_);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Opens the counters read at teardown now, while the cgroup is made off
  // the tool call's path: the result waits for those reads, and a pread of
  // an open descriptor skips a path walk through cgroupfs and an open for
  // each. A file that does not open is read by path. (Not cgroup.procs: v1
  // caches an open file's pid list for a second, so a second read of the
  // same descriptor can show pids that are gone and miss new ones.)
  void OpenCounterFiles() {
    if (fake_) return;  // tests rewrite fake files by path
    if (std::optional<std::string> memory = DirFor("memory")) {
      peak_fd_ = OpenForReading(*memory, "memory.max_usage_in_bytes");
      oom_fd_ = OpenForReading(*memory, "memory.oom_control");
    }
    if (std::optional<std::string> pids = DirFor("pids")) {
      pids_events_fd_ = OpenForReading(*pids, "pids.events");
    }
  }

  absl::StatusOr<std::vector<pid_t>> Processes() const override {
    std::set<pid_t> pids;
    if (destroyed_) return std::vector<pid_t>();
    for (const Leaf& leaf : leaves_) {
      absl::StatusOr<std::vector<pid_t>> list = fs::ReadPidList(
          fs::JoinPath(leaf.dir, "cgroup.procs"), /*missing_ok=*/true);
      if (!list.ok()) return list.status();
      pids.insert(list->begin(), list->end());
    }
    return std::vector<pid_t>(pids.begin(), pids.end());
  }

  absl::StatusOr<std::vector<pid_t>> KillAll(int wait_ms) override {
    if (destroyed_) return std::vector<pid_t>();
    const int64_t deadline = fs::NowMs() + std::max(wait_ms, 0);
    std::optional<std::string> freezer = DirFor("freezer");
    const std::string state_file = freezer.has_value()
                                       ? fs::JoinPath(*freezer, "freezer.state")
                                       : std::string();
    bool frozen = false;
    if (freezer.has_value() && fs::PathExists(*freezer)) {
      absl::Status s = fs::WriteFile(state_file, "FROZEN", fake_);
      if (!s.ok()) return s;
      frozen = true;
      // FREEZING until every task has stopped; a task stuck in the kernel may
      // delay it, so this wait takes at most half of the budget and the kill
      // loop below copes with stragglers.
      const int64_t freeze_deadline = fs::NowMs() + std::max(wait_ms, 0) / 2;
      int sleep_ms = 1;
      for (;;) {
        absl::StatusOr<std::string> state = fs::ReadFile(state_file);
        if (!state.ok()) return state.status();
        if (fake_ || absl::StripAsciiWhitespace(*state) == "FROZEN") break;
        if (fs::NowMs() >= freeze_deadline) break;
        fs::SleepMs(sleep_ms);
        sleep_ms = std::min(sleep_ms * 2, 10);
      }
    }
    // Thaw in every case: frozen tasks only act on SIGKILL once thawed.
    auto thaw = absl::MakeCleanup([&] {
      if (frozen) (void)fs::WriteFile(state_file, "THAWED", fake_);
    });

    absl::StatusOr<std::vector<pid_t>> procs = Processes();
    if (!procs.ok()) return procs.status();
    std::set<pid_t> killed(procs->begin(), procs->end());
    for (pid_t pid : killed) kill(pid, SIGKILL);
    if (frozen) {
      absl::Status s = fs::WriteFile(state_file, "THAWED", fake_);
      if (!s.ok()) return s;
      frozen = false;
    }

    int sleep_ms = 1;
    for (;;) {
      absl::StatusOr<std::vector<pid_t>> left = Processes();
      if (!left.ok()) return left.status();
      if (left->empty()) break;
      // Anything still listed either is dying or escaped an incomplete freeze:
      // kill it too.
      for (pid_t pid : *left) {
        kill(pid, SIGKILL);
        killed.insert(pid);
      }
      if (fs::NowMs() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "cgroup v1 leaves ", LeafDirs(), " still have processes ", wait_ms,
            " ms after SIGKILL (pids: ", absl::StrJoin(*left, " "), ")"));
      }
      fs::SleepMs(sleep_ms);
      sleep_ms = std::min(sleep_ms * 2, 10);
    }
    return std::vector<pid_t>(killed.begin(), killed.end());
  }

  absl::StatusOr<CgroupStats> Stats() const override {
    CgroupStats stats;
    if (destroyed_) return stats;
    if (std::optional<std::string> memory = DirFor("memory")) {
      absl::StatusOr<std::string> peak =
          ReadCounter(peak_fd_, *memory, "memory.max_usage_in_bytes");
      if (!peak.ok()) return peak.status();
      stats.memory_peak_bytes = fs::ParseSingleValue(*peak).value_or(0);
      absl::StatusOr<std::string> oom =
          ReadCounter(oom_fd_, *memory, "memory.oom_control");
      if (!oom.ok()) return oom.status();
      stats.oom_kills = fs::FindKeyedValue(*oom, "oom_kill").value_or(0);
    }
    if (std::optional<std::string> pids = DirFor("pids")) {
      absl::StatusOr<std::string> events =
          ReadCounter(pids_events_fd_, *pids, "pids.events");
      if (!events.ok()) return events.status();
      stats.pids_max_events = fs::FindKeyedValue(*events, "max").value_or(0);
    }
    return stats;
  }

  absl::Status Destroy() override {
    if (destroyed_) return absl::OkStatus();
    absl::StatusOr<std::vector<pid_t>> left = Processes();
    if (!left.ok() || !left->empty()) {
      absl::StatusOr<std::vector<pid_t>> killed = KillAll(kDestroyKillWaitMs);
      if (!killed.ok()) return killed.status();
    }
    CloseCounterFiles();
    absl::Status first_error;
    for (const Leaf& leaf : leaves_) {
      absl::Status s = fs::RemoveCgroupDir(leaf.dir, /*remove_files=*/fake_,
                                           rmdir_retry_ms_);
      if (!s.ok() && first_error.ok()) first_error = s;
    }
    if (!first_error.ok()) return first_error;
    destroyed_ = true;
    for (const std::string& parent : instance_parents_) {
      instance::ReleaseInstanceDir(parent);
    }
    instance_parents_.clear();
    return absl::OkStatus();
  }

 private:
  // A missing file reads as empty.
  static absl::StatusOr<std::string> ReadOptional(const std::string& dir,
                                                  absl::string_view name) {
    absl::StatusOr<std::string> text = fs::ReadFile(fs::JoinPath(dir, name));
    if (!text.ok() && absl::IsNotFound(text.status())) return std::string();
    return text;
  }

  static int OpenForReading(const std::string& dir, absl::string_view name) {
    return open(fs::JoinPath(dir, name).c_str(), O_RDONLY | O_CLOEXEC);
  }

  // Through the descriptor opened at creation when there is one, else by
  // path (a missing file reads as empty).
  static absl::StatusOr<std::string> ReadCounter(int fd, const std::string& dir,
                                                 absl::string_view name) {
    if (fd >= 0) {
      absl::StatusOr<std::string> text = fs::ReadFromStart(fd);
      if (text.ok()) return text;
    }
    return ReadOptional(dir, name);
  }

  void CloseCounterFiles() {
    for (int* fd : {&peak_fd_, &oom_fd_, &pids_events_fd_}) {
      if (*fd >= 0) close(std::exchange(*fd, -1));
    }
  }

  std::string LeafDirs() const {
    std::vector<std::string> dirs;
    for (const Leaf& leaf : leaves_) dirs.push_back(leaf.dir);
    return absl::StrJoin(dirs, ", ");
  }

  bool fake_;
  int rmdir_retry_ms_;
  std::vector<Leaf> leaves_;
  std::vector<std::string> instance_parents_;
  bool destroyed_ = false;
  int peak_fd_ = -1;         // memory.max_usage_in_bytes
  int oom_fd_ = -1;          // memory.oom_control
  int pids_events_fd_ = -1;  // pids.events
};

bool Needed(absl::string_view controller, const CgroupLimits& limits) {
  if (controller == "freezer") return true;
  if (controller == "memory") return limits.memory_bytes > 0;
  if (controller == "pids") return limits.pids > 0;
  if (controller == "cpu") return limits.cpus > 0;
  return false;
}

// The memory hierarchy is used without a limit too, for the peak memory in
// Stats().
bool Used(absl::string_view controller, const CgroupLimits& limits) {
  return Needed(controller, limits) || controller == "memory";
}

const char* Why(absl::string_view controller) {
  if (controller == "freezer")
    return "the atomic kill of every process in the jail";
  if (controller == "memory") return "a memory limit";
  if (controller == "pids") return "a pids limit";
  return "a CPU quota";
}

// Own cgroup directory in the hierarchy of `controller`.
absl::StatusOr<std::string> OwnDir(const CgroupOptions& options,
                                   absl::string_view controller,
                                   const std::string& mountinfo,
                                   const std::string& proc_cgroup) {
  std::string dir;
  if (!options.fake_root.empty()) {
    dir = fs::JoinPath(options.fake_root, controller);
  } else {
    absl::StatusOr<std::string> located =
        fs::LocateV1OwnDir(mountinfo, proc_cgroup, controller);
    if (!located.ok()) return located.status();
    dir = *located;
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("own cgroup directory ", dir,
                                            " of the ", controller,
                                            " hierarchy is missing"));
  }
  return dir;
}

// Removes the instance directories whose owners are provably dead
// (jail/cgroup_instance.h) from every hierarchy: each run's leaves are
// killed together (freezer) and removed, then the instance directories, each
// with one rmdir (no retry: what stays busy is left alone, and not tried
// again by this process). Other instances' directories are never touched.
void RemoveStaleInstances(
    const std::vector<std::pair<std::string, std::string>>& parents,
    const instance::InstanceId& self, bool fake) {
  std::set<std::string> names;
  for (const auto& [controller, parent_dir] : parents) {
    absl::StatusOr<std::vector<std::string>> subdirs =
        fs::ListSubdirs(parent_dir);
    if (subdirs.ok()) names.insert(subdirs->begin(), subdirs->end());
  }
  for (const std::string& name : instance::StaleInstanceNames(
           std::vector<std::string>(names.begin(), names.end()), self)) {
    if (!instance::FirstSweepOf(name)) continue;
    std::set<std::string> leaves;
    for (const auto& [controller, parent_dir] : parents) {
      absl::StatusOr<std::vector<std::string>> found =
          fs::ListSubdirs(fs::JoinPath(parent_dir, name));
      if (found.ok()) leaves.insert(found->begin(), found->end());
    }
    for (const std::string& leaf : leaves) {
      CgroupV1 stale(fake, /*rmdir_retry_ms=*/0);
      for (const auto& [controller, parent_dir] : parents) {
        const std::string dir =
            fs::JoinPath(fs::JoinPath(parent_dir, name), leaf);
        if (fs::PathExists(dir)) stale.AddLeaf(controller, dir);
      }
      (void)stale.Destroy();
    }
    for (const auto& [controller, parent_dir] : parents) {
      (void)fs::RemoveCgroupDir(fs::JoinPath(parent_dir, name),
                                /*remove_files=*/fake, /*retry_ms=*/0);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cgroup>> CreateCgroupV1(
    const CgroupOptions& options) {
  absl::Status s =
      fs::ValidateRelativeName("cgroup parent", options.parent, true);
  if (!s.ok()) return s;
  const std::string name =
      options.name.empty() ? fs::DefaultLeafName() : options.name;
  s = fs::ValidateRelativeName("cgroup name", name, false);
  if (!s.ok()) return s;
  if (options.limits.cpus != 0) {
    absl::StatusOr<uint64_t> quota = fs::CpuQuotaUs(options.limits.cpus);
    if (!quota.ok()) return quota.status();
  }
  const bool fake = !options.fake_root.empty();

  std::string mountinfo;
  std::string proc_cgroup;
  if (!fake) {
    absl::StatusOr<std::string> text = fs::ReadFile("/proc/self/mountinfo");
    if (!text.ok()) return text.status();
    mountinfo = *std::move(text);
    text = fs::ReadFile("/proc/self/cgroup");
    if (!text.ok()) return text.status();
    proc_cgroup = *std::move(text);
  }

  // Fail closed before touching anything: every hierarchy this run needs must
  // be there.
  // (controller, own cgroup directory) for every available hierarchy.
  std::vector<std::pair<std::string, std::string>> own_dirs;
  for (const char* controller : kControllers) {
    absl::StatusOr<std::string> own =
        OwnDir(options, controller, mountinfo, proc_cgroup);
    if (own.ok()) {
      own_dirs.emplace_back(controller, *own);
    } else if (Needed(controller, options.limits)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cgroup v1 ", controller, " hierarchy (needed for ", Why(controller),
          ") is not usable: ", own.status().message(),
          ": mount it (mount -t cgroup -o ", controller,
          " cgroup /sys/fs/cgroup/", controller, ") or use --cgroup v2"));
    }
  }

  // Parent directories in every available hierarchy: stale leaves of earlier
  // runs may be in any of them. The parent is only created where this run has a
  // leaf.
  std::vector<std::pair<std::string, std::string>> parents;  // controller, dir
  for (const auto& [controller, own] : own_dirs) {
    if (Used(controller, options.limits)) {
      s = fs::MakeDirs(own, options.parent);
      if (!s.ok()) return s;
    }
    parents.emplace_back(controller, fs::JoinPath(own, options.parent));
  }
  absl::StatusOr<instance::InstanceId> self = instance::OwnInstance();
  if (!self.ok()) return self.status();
  const std::string instance_name = instance::InstanceName(*self);

  // From here on, a failure removes what was created and releases the
  // instance directories (the destructor).
  auto cgroup = std::make_unique<CgroupV1>(fake);
  bool first = false;
  std::set<std::string> held;  // co-mounted controllers share a parent
  for (const auto& [controller, parent_dir] : parents) {
    if (!Used(controller, options.limits) || held.count(parent_dir)) continue;
    absl::StatusOr<instance::Acquired> acquired =
        instance::AcquireInstanceDir(parent_dir);
    if (!acquired.ok()) return acquired.status();
    cgroup->HoldInstance(parent_dir);
    held.insert(parent_dir);
    first = first || acquired->first;
  }
  if (first) RemoveStaleInstances(parents, *self, fake);

  for (const auto& [controller, parent_dir] : parents) {
    if (!Used(controller, options.limits)) continue;
    const std::string leaf =
        fs::JoinPath(fs::JoinPath(parent_dir, instance_name), name);
    // Co-mounted with a controller whose leaf already exists?
    bool shared = false;
    for (const auto& [other, other_parent] : parents) {
      if (other != controller && other_parent == parent_dir &&
          cgroup->DirFor(other)) {
        shared = true;
      }
    }
    if (!shared && mkdir(leaf.c_str(), 0755) != 0) {
      int err = errno;
      std::string message = absl::StrCat("cannot create cgroup directory ",
                                         leaf, ": ", strerror(err));
      if (err == EEXIST) return absl::AlreadyExistsError(message);
      return absl::InternalError(message);
    }
    cgroup->AddLeaf(controller, leaf);
  }

  const CgroupLimits& limits = options.limits;
  if (limits.memory_bytes > 0) {
    const std::string dir = *cgroup->DirFor("memory");
    const std::string value = absl::StrCat(limits.memory_bytes);
    s = fs::WriteFile(fs::JoinPath(dir, "memory.limit_in_bytes"), value, fake);
    if (!s.ok()) return s;
    // memory+swap gets the same limit so that swap cannot be used to escape it
    // (the file only exists when the kernel accounts swap).
    const std::string memsw = fs::JoinPath(dir, "memory.memsw.limit_in_bytes");
    if (fake || fs::PathExists(memsw)) {
      s = fs::WriteFile(memsw, value, fake);
      if (!s.ok()) return s;
    }
  }
  if (limits.pids > 0) {
    s = fs::WriteFile(fs::JoinPath(*cgroup->DirFor("pids"), "pids.max"),
                      absl::StrCat(limits.pids), fake);
    if (!s.ok()) return s;
  }
  if (limits.cpus > 0) {
    const std::string dir = *cgroup->DirFor("cpu");
    absl::StatusOr<uint64_t> quota = fs::CpuQuotaUs(limits.cpus);
    if (!quota.ok()) return quota.status();
    s = fs::WriteFile(fs::JoinPath(dir, "cpu.cfs_period_us"),
                      absl::StrCat(fs::kCpuPeriodUs), fake);
    if (!s.ok()) return s;
    s = fs::WriteFile(fs::JoinPath(dir, "cpu.cfs_quota_us"),
                      absl::StrCat(*quota), fake);
    if (!s.ok()) return s;
  }
  cgroup->OpenCounterFiles();
  return std::unique_ptr<Cgroup>(std::move(cgroup));
}

}  // namespace jcs::jail
