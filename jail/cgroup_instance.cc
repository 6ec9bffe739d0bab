#include "jail/cgroup_instance.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "jail/cgroup_fs.h"
#include "jail/procfs.h"

namespace jcs::jail::cgroup_instance {
namespace {

namespace fs = cgroup_fs;

// Inode of a namespace link; 0 when the kernel has no such namespace kind.
uint64_t NamespaceInode(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

// Field 22 (starttime) of a /proc/<pid>/stat text; the command name in
// field 2 may contain spaces and parentheses, so fields count from the last
// ')'.
std::optional<uint64_t> StartTimeField(absl::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos) return std::nullopt;
  std::vector<absl::string_view> fields = absl::StrSplit(
      stat.substr(paren + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  // fields[0] is field 3 (state), so field 22 is fields[19].
  uint64_t value = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &value)) {
    return std::nullopt;
  }
  return value;
}

bool ParseDigits(absl::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(text, value);
}

struct Registry {
  std::mutex mu;
  std::map<std::string, int> users;  // parent dir -> cgroups of this process
  std::set<std::string> swept;
  pid_t owner = 0;  // the pid these counts belong to (a fork starts afresh)
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

// Resets the counts in a forked child: they are the parent's.
void ForgetParentState(Registry& r) {
  if (r.owner != getpid()) {
    r.users.clear();
    r.swept.clear();
    r.owner = getpid();
  }
}

}  // namespace

std::string InstanceName(const InstanceId& id) {
  return absl::StrCat("inst-", id.pid, "-", id.start_ticks, "-p", id.pid_ns,
                      "-t", id.time_ns);
}

std::optional<InstanceId> ParseInstanceName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "inst-")) return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
  if (parts.size() != 4 || !absl::ConsumePrefix(&parts[2], "p") ||
      !absl::ConsumePrefix(&parts[3], "t")) {
    return std::nullopt;
  }
  uint64_t values[4];
  for (int i = 0; i < 4; ++i) {
    if (!ParseDigits(parts[i], &values[i])) return std::nullopt;
  }
  if (values[0] == 0 || values[0] > 0x7fffffff) return std::nullopt;
  InstanceId id;
  id.pid = static_cast<pid_t>(values[0]);
  id.start_ticks = values[1];
  id.pid_ns = values[2];
  id.time_ns = values[3];
  return id;
}

absl::StatusOr<InstanceId> OwnInstance() {
  static std::mutex* mu = new std::mutex;
  static InstanceId cached;  // pid 0: not computed (or another process's)
  std::lock_guard<std::mutex> lock(*mu);
  if (cached.pid == getpid()) return cached;
  // /proc/self is this process in any procfs that can see it, so these reads
  // are right even before the caller checked that /proc is its own.
  absl::StatusOr<std::string> stat = fs::ReadFile("/proc/self/stat");
  if (!stat.ok()) return stat.status();
  std::optional<uint64_t> start = StartTimeField(*stat);
  if (!start.has_value()) {
    return absl::InternalError(
        "cannot parse the start time in /proc/self/stat");
  }
  InstanceId id;
  id.pid = getpid();
  id.start_ticks = *start;
  id.pid_ns = NamespaceInode("/proc/self/ns/pid");
  id.time_ns = NamespaceInode("/proc/self/ns/time");
  if (id.pid_ns == 0) {
    return absl::InternalError(
        absl::StrCat("cannot stat /proc/self/ns/pid: ", strerror(errno)));
  }
  cached = id;
  return id;
}

absl::StatusOr<std::optional<uint64_t>> ProcStartTime(pid_t pid) {
  absl::StatusOr<std::string> stat =
      fs::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    if (absl::IsNotFound(stat.status())) return std::optional<uint64_t>();
    return stat.status();
  }
  std::optional<uint64_t> start = StartTimeField(*stat);
  if (!start.has_value()) {
    return absl::InternalError(
        absl::StrCat("cannot parse the start time in /proc/", pid, "/stat"));
  }
  return start;
}

bool OwnerProvablyDead(const InstanceId& other, const InstanceId& self,
                       const StartTimeFn& start_time) {
  if (other.pid_ns != self.pid_ns || other.time_ns != self.time_ns) {
    return false;
  }
  if (other == self) return false;
  absl::StatusOr<std::optional<uint64_t>> start = start_time(other.pid);
  if (!start.ok()) return false;
  return !start->has_value() || **start != other.start_ticks;
}

std::vector<std::string> StaleInstanceNames(
    const std::vector<std::string>& names, const InstanceId& self,
    const StartTimeFn& start_time) {
  std::vector<std::string> stale;
  if (!CheckOwnProcfs().ok()) return stale;
  for (const std::string& name : names) {
    std::optional<InstanceId> id = ParseInstanceName(name);
    if (id.has_value() && OwnerProvablyDead(*id, self, start_time)) {
      stale.push_back(name);
    }
  }
  return stale;
}

absl::StatusOr<Acquired> AcquireInstanceDir(const std::string& parent_dir) {
  absl::StatusOr<InstanceId> self = OwnInstance();
  if (!self.ok()) return self.status();
  Acquired acquired;
  acquired.dir = fs::JoinPath(parent_dir, InstanceName(*self));
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  ForgetParentState(r);
  int& users = r.users[parent_dir];
  if (users == 0) {
    if (mkdir(acquired.dir.c_str(), 0755) != 0 && errno != EEXIST) {
      const int err = errno;
      r.users.erase(parent_dir);
      return absl::InternalError(absl::StrCat("cannot create cgroup directory ",
                                              acquired.dir, ": ",
                                              strerror(err)));
    }
    acquired.first = true;
  }
  ++users;
  return acquired;
}

void ReleaseInstanceDir(const std::string& parent_dir) {
  absl::StatusOr<InstanceId> self = OwnInstance();
  if (!self.ok()) return;
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  ForgetParentState(r);
  auto it = r.users.find(parent_dir);
  if (it == r.users.end()) return;
  if (--it->second > 0) return;
  r.users.erase(it);
  // Empty once the last run's cgroup is gone; if not (a leaf that could not
  // be removed), it stays for the next instance to prove stale.
  rmdir(fs::JoinPath(parent_dir, InstanceName(*self)).c_str());
}

bool FirstSweepOf(const std::string& dir) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  ForgetParentState(r);
  return r.swept.insert(dir).second;
}

}  // namespace jcs::jail::cgroup_instance
