// cgroup v2 backend: one leaf directory in the unified hierarchy, at
// <parent>/<instance>/<leaf> (jail/cgroup_instance.h), CLONE_INTO_CGROUP,
// cgroup.kill.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "jail/cgroup.h"
#include "jail/cgroup_fs.h"
#include "jail/cgroup_instance.h"

namespace jcs::jail {
namespace {

namespace fs = cgroup_fs;

namespace instance = cgroup_instance;

constexpr int kDestroyKillWaitMs = 2000;
// After the kill emptied this run's own cgroup, rmdir may still see EBUSY
// for a moment while the kernel finishes the exits; bounded.
constexpr int kRmdirRetryMs = 1000;

class CgroupV2 : public Cgroup {
 public:
  // `instance_parent`: the parent directory whose instance directory this
  // cgroup counts as a user of (released once the leaf is gone); empty for
  // none. `rmdir_retry_ms`: how long EBUSY is retried after the kill.
  CgroupV2(std::string dir, bool fake, std::string instance_parent = "",
           int rmdir_retry_ms = kRmdirRetryMs)
      : dir_(std::move(dir)),
        fake_(fake),
        instance_parent_(std::move(instance_parent)),
        rmdir_retry_ms_(rmdir_retry_ms) {}
  ~CgroupV2() override { (void)Destroy(); }
  CgroupV2(const CgroupV2&) = delete;
  CgroupV2& operator=(const CgroupV2&) = delete;

  std::string backend() const override { return "v2"; }
  int clone_into_fd() const override { return fd_; }
  const std::string& dir() const { return dir_; }

  absl::Status OpenFd() {
    fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) {
      return absl::InternalError(absl::StrCat("cannot open cgroup directory ",
                                              dir_, ": ", strerror(errno)));
    }
    return absl::OkStatus();
  }

  absl::Status AddProcess(pid_t pid) override {
    if (destroyed_)
      return absl::FailedPreconditionError("cgroup already destroyed");
    return fs::WriteFile(File("cgroup.procs"), absl::StrCat(pid), fake_);
  }

  absl::StatusOr<std::vector<pid_t>> Processes() const override {
    if (destroyed_) return std::vector<pid_t>();
    return fs::ReadPidList(File("cgroup.procs"), /*missing_ok=*/fake_);
  }

  absl::StatusOr<std::vector<pid_t>> KillAll(int wait_ms) override {
    if (destroyed_) return std::vector<pid_t>();
    const int64_t deadline = fs::NowMs() + std::max(wait_ms, 0);
    // Freeze first so the list of processes cannot change between reading it
    // and the kill (the count of killed descendants is then exact). Bounded:
    // a task stuck in the kernel may delay freezing; after half the budget the
    // snapshot is taken anyway and cgroup.kill still gets everything.
    const std::string freeze_file = File("cgroup.freeze");
    if (!fake_ && fs::PathExists(freeze_file) &&
        fs::WriteFile(freeze_file, "1", fake_).ok()) {
      const int64_t freeze_deadline = fs::NowMs() + std::max(wait_ms, 0) / 2;
      int sleep_ms = 1;
      while (fs::NowMs() < freeze_deadline) {
        absl::StatusOr<std::string> events =
            fs::ReadFile(File("cgroup.events"));
        if (!events.ok() ||
            fs::FindKeyedValue(*events, "frozen").value_or(0) == 1) {
          break;
        }
        fs::SleepMs(sleep_ms);
        sleep_ms = std::min(sleep_ms * 2, 10);
      }
    }
    absl::StatusOr<std::vector<pid_t>> procs = Processes();
    if (!procs.ok()) return procs.status();
    std::vector<pid_t> killed = *procs;

    const std::string kill_file = File("cgroup.kill");
    const bool have_kill = fake_ || fs::PathExists(kill_file);
    if (have_kill) {
      absl::Status s = fs::WriteFile(kill_file, "1", fake_);
      if (!s.ok()) return s;
    }
    int sleep_ms = 1;
    for (;;) {
      absl::StatusOr<bool> populated = Populated();
      if (!populated.ok()) return populated.status();
      if (!*populated) break;
      if (!have_kill) {
        // Kernels before 5.14 have no cgroup.kill: kill what is listed until it
        // stays empty.
        absl::StatusOr<std::vector<pid_t>> left = Processes();
        if (!left.ok()) return left.status();
        for (pid_t pid : *left) {
          kill(pid, SIGKILL);
          if (std::find(killed.begin(), killed.end(), pid) == killed.end())
            killed.push_back(pid);
        }
      }
      if (fs::NowMs() >= deadline) {
        absl::StatusOr<std::vector<pid_t>> left = Processes();
        return absl::DeadlineExceededError(absl::StrCat(
            "cgroup ", dir_, " still has processes ", wait_ms,
            " ms after writing 1 to ", kill_file,
            left.ok() ? absl::StrCat(" (pids: ", absl::StrJoin(*left, " "), ")")
                      : ""));
      }
      fs::SleepMs(sleep_ms);
      sleep_ms = std::min(sleep_ms * 2, 10);
    }
    std::sort(killed.begin(), killed.end());
    return killed;
  }

  absl::StatusOr<CgroupStats> Stats() const override {
    CgroupStats stats;
    if (destroyed_) return stats;
    absl::StatusOr<std::string> peak = ReadOptional("memory.peak");
    if (!peak.ok()) return peak.status();
    std::optional<uint64_t> value = fs::ParseSingleValue(*peak);
    if (!value.has_value()) {
      absl::StatusOr<std::string> current = ReadOptional("memory.current");
      if (!current.ok()) return current.status();
      value = fs::ParseSingleValue(*current);
    }
    stats.memory_peak_bytes = value.value_or(0);
    absl::StatusOr<std::string> memory_events = ReadOptional("memory.events");
    if (!memory_events.ok()) return memory_events.status();
    stats.oom_kills =
        fs::FindKeyedValue(*memory_events, "oom_kill").value_or(0);
    absl::StatusOr<std::string> pids_events = ReadOptional("pids.events");
    if (!pids_events.ok()) return pids_events.status();
    stats.pids_max_events = fs::FindKeyedValue(*pids_events, "max").value_or(0);
    return stats;
  }

  absl::Status Destroy() override {
    if (destroyed_) return absl::OkStatus();
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    if (fs::PathExists(dir_)) {
      absl::StatusOr<bool> populated = Populated();
      if (!populated.ok() || *populated) {
        absl::StatusOr<std::vector<pid_t>> killed = KillAll(kDestroyKillWaitMs);
        if (!killed.ok()) return killed.status();
      }
      absl::Status s =
          fs::RemoveCgroupDir(dir_, /*remove_files=*/fake_, rmdir_retry_ms_);
      if (!s.ok()) return s;
    }
    destroyed_ = true;
    if (!instance_parent_.empty()) {
      instance::ReleaseInstanceDir(instance_parent_);
    }
    return absl::OkStatus();
  }

 private:
  std::string File(absl::string_view name) const {
    return fs::JoinPath(dir_, name);
  }

  // The file's text, or "" when it does not exist.
  absl::StatusOr<std::string> ReadOptional(absl::string_view name) const {
    absl::StatusOr<std::string> text = fs::ReadFile(File(name));
    if (!text.ok() && absl::IsNotFound(text.status())) return std::string();
    return text;
  }

  // cgroup.events "populated"; when that file is unusable (fake roots), whether
  // cgroup.procs lists anything.
  absl::StatusOr<bool> Populated() const {
    absl::StatusOr<std::string> events = fs::ReadFile(File("cgroup.events"));
    if (events.ok()) {
      std::optional<uint64_t> populated =
          fs::FindKeyedValue(*events, "populated");
      if (populated.has_value()) return *populated != 0;
    } else if (!absl::IsNotFound(events.status())) {
      return events.status();
    }
    absl::StatusOr<std::vector<pid_t>> procs = Processes();
    if (!procs.ok()) return procs.status();
    return !procs->empty();
  }

  std::string dir_;
  bool fake_;
  std::string instance_parent_;
  int rmdir_retry_ms_;
  int fd_ = -1;
  bool destroyed_ = false;
};

struct Requirement {
  const char* controller;
  const char* why;
};

std::vector<Requirement> RequiredControllers(const CgroupLimits& limits) {
  std::vector<Requirement> required;
  if (limits.memory_bytes > 0) required.push_back({"memory", "a memory limit"});
  if (limits.pids > 0) required.push_back({"pids", "a pids limit"});
  if (limits.cpus > 0) required.push_back({"cpu", "a CPU quota"});
  return required;
}

// Enables `controllers` in dir/cgroup.subtree_control unless already enabled
// there.
absl::Status EnableControllers(const std::string& dir,
                               const std::vector<std::string>& controllers,
                               bool fake) {
  const std::string file = fs::JoinPath(dir, "cgroup.subtree_control");
  std::vector<std::string> enabled;
  absl::StatusOr<std::string> text = fs::ReadFile(file);
  if (text.ok()) {
    enabled = fs::SplitTokens(*text);
  } else if (!(fake && absl::IsNotFound(text.status()))) {
    return text.status();
  }
  // cgroupfs lists "memory"; a fake root's plain file keeps what was written.
  for (std::string& c : enabled) {
    if (!c.empty() && c[0] == '+') c.erase(0, 1);
  }
  std::vector<std::string> missing;
  for (const std::string& c : controllers) {
    if (std::find(enabled.begin(), enabled.end(), c) == enabled.end()) {
      missing.push_back(c);
    }
  }
  if (missing.empty()) return absl::OkStatus();
  // cgroupfs applies each "+name" on top of what is enabled; a plain file is
  // overwritten, so it gets the whole list.
  std::vector<std::string> to_write = missing;
  if (fake) to_write.insert(to_write.begin(), enabled.begin(), enabled.end());
  std::string value;
  for (const std::string& c : to_write) {
    absl::StrAppend(&value, value.empty() ? "" : " ", "+", c);
  }
  absl::Status s = fs::WriteFile(file, value, fake);
  // WriteFile maps EBUSY (the only FailedPrecondition a write gives) to this.
  if (absl::IsFailedPrecondition(s)) {
    return absl::FailedPreconditionError(absl::StrCat(
        s.message(),
        " (EBUSY: cgroup v2's no-internal-processes rule: controllers cannot "
        "be enabled for the children of a non-root cgroup that has processes "
        "of its own, here ",
        dir,
        "; start the supervisor in a delegated cgroup whose processes live in "
        "a leaf (e.g. systemd-run -p Delegate=yes))"));
  }
  return s;
}

absl::StatusOr<std::string> OwnDir(const CgroupOptions& options) {
  if (!options.fake_root.empty()) return options.fake_root;
  absl::StatusOr<std::string> mountinfo = fs::ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.status();
  absl::StatusOr<std::string> own = fs::ReadFile("/proc/self/cgroup");
  if (!own.ok()) return own.status();
  return fs::LocateV2OwnDir(*mountinfo, *own);
}

bool BoundToV1(const CgroupOptions& options, absl::string_view controller) {
  if (!options.fake_root.empty()) return false;
  absl::StatusOr<std::string> mountinfo = fs::ReadFile("/proc/self/mountinfo");
  return mountinfo.ok() && fs::V1HasController(*mountinfo, controller);
}

// Removes the instance directories below `parent_dir` whose owners are
// provably dead (jail/cgroup_instance.h): each run cgroup in them is killed
// and removed, then the instance directory, each with one rmdir (no retry:
// what stays busy is left alone, and not tried again by this process). Other
// instances' directories, live or not provably dead, are never touched.
void RemoveStaleInstances(const std::string& parent_dir,
                          const instance::InstanceId& self, bool fake) {
  absl::StatusOr<std::vector<std::string>> names = fs::ListSubdirs(parent_dir);
  if (!names.ok()) return;
  for (const std::string& name : instance::StaleInstanceNames(*names, self)) {
    const std::string dir = fs::JoinPath(parent_dir, name);
    if (!instance::FirstSweepOf(dir)) continue;
    absl::StatusOr<std::vector<std::string>> leaves = fs::ListSubdirs(dir);
    if (leaves.ok()) {
      for (const std::string& leaf : *leaves) {
        CgroupV2 stale(fs::JoinPath(dir, leaf), fake, /*instance_parent=*/"",
                       /*rmdir_retry_ms=*/0);
        (void)stale.Destroy();
      }
    }
    (void)fs::RemoveCgroupDir(dir, /*remove_files=*/fake, /*retry_ms=*/0);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cgroup>> CreateCgroupV2(
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

  absl::StatusOr<std::string> own = OwnDir(options);
  if (!own.ok()) return own.status();

  // Fail closed before touching anything: every controller a limit needs must
  // be available.
  const std::vector<Requirement> required = RequiredControllers(options.limits);
  std::vector<std::string> controllers;
  if (!required.empty()) {
    const std::string file = fs::JoinPath(*own, "cgroup.controllers");
    absl::StatusOr<std::string> text = fs::ReadFile(file);
    if (!text.ok()) return text.status();
    const std::vector<std::string> available = fs::SplitTokens(*text);
    for (const Requirement& r : required) {
      if (std::find(available.begin(), available.end(), r.controller) ==
          available.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cgroup v2 controller \"", r.controller, "\" (needed for ", r.why,
            ") is not available in ", file, " (available: ",
            available.empty() ? "none" : absl::StrJoin(available, " "),
            "): enable the ", r.controller, " controller for cgroup v2 (",
            BoundToV1(options, r.controller)
                ? "it is bound to cgroup v1 on this host"
                : "add it to cgroup.subtree_control of the ancestors",
            ")"));
      }
      controllers.push_back(r.controller);
    }
  }

  s = fs::MakeDirs(*own, options.parent);
  if (!s.ok()) return s;
  if (!controllers.empty()) {
    // From the own cgroup down to the leaf's parent, each level delegates the
    // controllers.
    std::string dir = *own;
    s = EnableControllers(dir, controllers, fake);
    if (!s.ok()) return s;
    for (absl::string_view part :
         absl::StrSplit(options.parent, '/', absl::SkipEmpty())) {
      dir = fs::JoinPath(dir, part);
      s = EnableControllers(dir, controllers, fake);
      if (!s.ok()) return s;
    }
  }

  const std::string parent_dir = fs::JoinPath(*own, options.parent);
  absl::StatusOr<instance::InstanceId> self = instance::OwnInstance();
  if (!self.ok()) return self.status();
  absl::StatusOr<instance::Acquired> acquired =
      instance::AcquireInstanceDir(parent_dir);
  if (!acquired.ok()) return acquired.status();
  if (acquired->first) RemoveStaleInstances(parent_dir, *self, fake);
  if (!controllers.empty()) {
    s = EnableControllers(acquired->dir, controllers, fake);
    if (!s.ok()) {
      instance::ReleaseInstanceDir(parent_dir);
      return s;
    }
  }

  const std::string leaf = fs::JoinPath(acquired->dir, name);
  if (mkdir(leaf.c_str(), 0755) != 0) {
    int err = errno;
    instance::ReleaseInstanceDir(parent_dir);
    std::string message = absl::StrCat("cannot create cgroup directory ", leaf,
                                       ": ", strerror(err));
    if (err == EEXIST) return absl::AlreadyExistsError(message);
    return absl::InternalError(message);
  }
  // From here on, a failure removes the leaf again (the destructor) and
  // releases the instance directory.
  auto cgroup = std::make_unique<CgroupV2>(leaf, fake, parent_dir);

  const CgroupLimits& limits = options.limits;
  if (limits.memory_bytes > 0) {
    s = fs::WriteFile(fs::JoinPath(leaf, "memory.max"),
                      absl::StrCat(limits.memory_bytes), fake);
    if (!s.ok()) return s;
    // Swap would let the jail exceed its memory limit.
    const std::string swap = fs::JoinPath(leaf, "memory.swap.max");
    if (fake || fs::PathExists(swap)) {
      s = fs::WriteFile(swap, "0", fake);
      if (!s.ok()) return s;
    }
  }
  if (limits.pids > 0) {
    s = fs::WriteFile(fs::JoinPath(leaf, "pids.max"), absl::StrCat(limits.pids),
                      fake);
    if (!s.ok()) return s;
  }
  if (limits.cpus > 0) {
    absl::StatusOr<uint64_t> quota = fs::CpuQuotaUs(limits.cpus);
    if (!quota.ok()) return quota.status();
    s = fs::WriteFile(fs::JoinPath(leaf, "cpu.max"),
                      absl::StrCat(*quota, " ", fs::kCpuPeriodUs), fake);
    if (!s.ok()) return s;
  }
  s = cgroup->OpenFd();
  if (!s.ok()) return s;
  return std::unique_ptr<Cgroup>(std::move(cgroup));
}

}  // namespace jcs::jail
