#include "runtime/project/project_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"
#include "runtime/project/root_access.h"

namespace jcs::runtime {
namespace {

constexpr size_t kMaxProjectIdLength = 128;
constexpr const char* kDefaultDataDir = ".jido";

absl::Status ProjectError(absl::StatusCode code, const std::string& reason,
                          absl::string_view detail = "") {
  absl::Status status(
      code, detail.empty() ? reason : absl::StrCat(reason, " (", detail, ")"));
  status.SetPayload(kProjectErrorPayloadUrl, absl::Cord(reason));
  return status;
}

absl::Status Invalid(absl::string_view error, absl::string_view reason,
                     absl::string_view detail = "") {
  return ProjectError(absl::StatusCode::kInvalidArgument,
                      absl::StrCat(error, ": ", reason), detail);
}

// The last value of `key` in `options`, if any.
const Value* LastOption(const OptionList& options, absl::string_view key) {
  const Value* found = nullptr;
  for (const auto& [k, v] : options) {
    if (k == key) found = &v;
  }
  return found;
}

// Step 1: returns the canonical root.
absl::StatusOr<std::string> CheckRoot(const std::string& root) {
  if (root.empty() || root.find('\0') != std::string::npos) {
    return Invalid("invalid_root_path", "expected_string");
  }
  const std::string shown = absl::CEscape(root);
  struct stat st;
  if (stat(root.c_str(), &st) != 0) {
    return Invalid("invalid_root_path", ErrnoName(errno), shown);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Invalid("invalid_root_path", "not_directory", shown);
  }
  char* resolved = realpath(root.c_str(), nullptr);
  if (resolved == nullptr) {
    return Invalid("invalid_root_path", ErrnoName(errno), shown);
  }
  std::string canonical(resolved);
  free(resolved);
  return canonical;
}

// Step 1b: who the tools run as. `root` is canonical.
absl::StatusOr<RunAs> ResolveIdentity(const std::string& root,
                                      const StartProjectParams& params) {
  const ProjectRequester& who = params.requester;
  const bool wants_run_as =
      params.run_as_uid.has_value() || params.run_as_gid.has_value();
  if (!who.privileged) {
    if (wants_run_as) {
      return ProjectError(
          absl::StatusCode::kPermissionDenied,
          absl::StrCat("unauthorized: uid ", who.uid,
                       " may not set run_as (only root or the daemon's uid "
                       "may; a client's tools run as the client)"));
    }
    if (who.uid == 0 || who.gid == 0) {
      return Invalid("invalid_run_as",
                     absl::StrCat("the client uid ", who.uid, " gid ", who.gid,
                                  " includes id 0; tools never run as host "
                                  "root"));
    }
    absl::Status access =
        CheckPeerRootAccess(root, PeerIdentity{who.uid, who.gid, who.groups});
    if (!access.ok()) {
      return ProjectError(absl::StatusCode::kPermissionDenied,
                          absl::StrCat("unauthorized: ", access.message()));
    }
    return RunAs{who.uid, who.gid, "peer"};
  }
  if (wants_run_as) {
    if (!params.run_as_uid.has_value()) {
      return Invalid("invalid_run_as", "run_as_gid given without run_as_uid");
    }
    const uid_t uid = *params.run_as_uid;
    const gid_t gid = params.run_as_gid.value_or(uid);
    if (uid == 0 || gid == 0) {
      return Invalid("invalid_run_as",
                     absl::StrCat("uid ", uid, " gid ", gid,
                                  ": tools never run as host uid or gid 0"));
    }
    return RunAs{uid, gid, "run_as"};
  }
  struct stat st;
  if (stat(root.c_str(), &st) != 0) {
    return Invalid("invalid_root_path", ErrnoName(errno), absl::CEscape(root));
  }
  if (st.st_uid == 0) {
    return ProjectError(
        absl::StatusCode::kFailedPrecondition,
        absl::StrCat("root_owned_by_root: ", absl::CEscape(root),
                     " is owned by uid 0 and tools never run as host root; "
                     "pass --run-as UID:GID (run_as_uid/run_as_gid) or chown "
                     "the root to the user the tools should run as"));
  }
  return RunAs{st.st_uid, st.st_gid == 0 ? kNobodyId : st.st_gid, "root_owner"};
}

// `path` is `dir` or below it (both canonical).
bool Within(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

// The canonical form of a daemon path: realpath, or its directory's realpath
// plus its name when it does not exist (yet).
std::string CanonicalDaemonPath(const std::string& path) {
  if (char* resolved = realpath(path.c_str(), nullptr)) {
    std::string out(resolved);
    free(resolved);
    return out;
  }
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return path;
  if (char* resolved = realpath(path.substr(0, slash).c_str(), nullptr)) {
    std::string out = absl::StrCat(resolved, path.substr(slash));
    free(resolved);
    return out;
  }
  return path;
}

// Step 6.
absl::Status CheckDaemonFiles(const std::string& root,
                              const std::vector<std::string>& daemon_paths) {
  for (const std::string& path : daemon_paths) {
    const std::string canonical = CanonicalDaemonPath(path);
    if (Within(canonical, root) || Within(root, canonical)) {
      return ProjectError(
          absl::StatusCode::kFailedPrecondition,
          absl::StrCat("root_contains_daemon_files: ", absl::CEscape(root),
                       Within(canonical, root) ? " contains " : " is inside ",
                       "the daemon's ", absl::CEscape(canonical),
                       "; a jailed program must never reach the daemon's "
                       "socket, state or config: pick a root that does not "
                       "hold them"));
    }
  }
  return absl::OkStatus();
}

// Step 2.
absl::StatusOr<std::string> CheckDataDir(const OptionList& options,
                                         const StartProjectParams& params) {
  Value value = Value::String(kDefaultDataDir);
  if (params.data_dir.has_value()) {
    value = Value::String(*params.data_dir);
  } else if (const Value* option = LastOption(options, "data_dir")) {
    value = *option;
  }
  if (!value.is_string() ||
      absl::StripAsciiWhitespace(value.string_value()).empty()) {
    return Invalid("invalid_data_dir", "expected_non_empty_string");
  }
  const std::string& dir = value.string_value();
  if (dir.find('\0') != std::string::npos) {
    return Invalid("invalid_data_dir", "invalid_chars");
  }
  if (dir.front() == '/')
    return Invalid("invalid_data_dir", "must_be_relative");
  for (absl::string_view segment : absl::StrSplit(dir, '/')) {
    if (segment == "..") {
      return Invalid("invalid_data_dir", "must_not_traverse");
    }
  }
  return dir;
}

bool ValidIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '-';
}

// Step 3 for a supplied id: returns it trimmed.
absl::StatusOr<std::string> CheckSuppliedId(const Value& value) {
  if (!value.is_string()) {
    return Invalid("invalid_project_id", "expected_string");
  }
  std::string id(absl::StripAsciiWhitespace(value.string_value()));
  if (id.empty()) return Invalid("invalid_project_id", "empty");
  if (id.size() > kMaxProjectIdLength) {
    return Invalid("invalid_project_id", "too_long");
  }
  bool ok = absl::ascii_isalnum(static_cast<unsigned char>(id[0]));
  for (char c : id) ok = ok && ValidIdChar(c);
  if (!ok) {
    return Invalid("invalid_project_id", "invalid_chars", absl::CEscape(id));
  }
  return id;
}

// Step 8: mkdir -p <root>/<data_dir>/<each layout dir> without following
// symlinks; every directory this creates is owned by uid:gid, and removed
// again if a later one fails.
absl::Status EnsureLayout(const std::string& root, const std::string& data_dir,
                          uid_t uid, gid_t gid) {
  struct Created {
    UniqueFd parent;
    std::string name;
  };
  std::vector<Created> created;
  auto failed = [&](absl::string_view where) {
    const int error = errno;
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      (void)unlinkat(it->parent.get(), it->name.c_str(), AT_REMOVEDIR);
    }
    return ProjectError(
        absl::StatusCode::kFailedPrecondition,
        absl::StrCat("layout_create_failed: ", ErrnoName(error)),
        absl::CEscape(where));
  };
  UniqueFd dir(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return failed(root);
  std::string path = root;
  auto descend = [&](const std::string& name, UniqueFd* at) -> bool {
    absl::StrAppend(&path, "/", name);
    bool made = false;
    if (mkdirat(at->get(), name.c_str(), 0755) == 0) {
      made = true;
      created.push_back({UniqueFd(dup(at->get())), name});
    } else if (errno != EEXIST) {
      return false;
    }
    // Report a symlink as ELOOP (openat with O_DIRECTORY | O_NOFOLLOW says
    // ENOTDIR); the O_NOFOLLOW open below is what enforces it.
    struct stat st;
    if (fstatat(at->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode)) {
      errno = ELOOP;
      return false;
    }
    const int next = openat(at->get(), name.c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return false;
    at->Reset(next);
    // Through the fd just opened: what is chowned is the directory made
    // here, even if the name was swapped meanwhile.
    return !made || fchown(next, uid, gid) == 0;
  };
  for (absl::string_view segment : absl::StrSplit(data_dir, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (!descend(std::string(segment), &dir)) return failed(path);
  }
  const std::string base = path;
  for (const char* sub : kLayoutDirs) {
    path = base;
    UniqueFd base_dir(dup(dir.get()));
    if (base_dir.get() < 0 || !descend(sub, &base_dir)) return failed(path);
  }
  return absl::OkStatus();
}

}  // namespace

std::string ProjectErrorReason(const absl::Status& status) {
  absl::optional<absl::Cord> payload =
      status.GetPayload(kProjectErrorPayloadUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

std::string ErrnoName(int error) {
  const char* name = strerrorname_np(error);
  if (name == nullptr) return absl::StrCat("errno_", error);
  return absl::AsciiStrToLower(name);
}

nlohmann::json SummaryToJson(const ProjectSummary& summary) {
  return {
      {"project_id", summary.project_id},
      {"root_path", summary.root_path},
      {"data_dir", summary.data_dir},
      {"conversation_count", summary.conversation_count},
      {"started_at", absl::FormatTime(absl::RFC3339_full, summary.started_at,
                                      absl::UTCTimeZone())},
      {"owner_uid", summary.owner_uid},
      {"run_as", RunAsToJson(summary.run_as)},
      {"runtime_opts", RuntimeOptsJson(summary.options)},
  };
}

nlohmann::json RunAsToJson(const RunAs& run_as) {
  return {{"uid", run_as.uid}, {"gid", run_as.gid}, {"source", run_as.source}};
}

ProjectRegistry::ProjectRegistry(Config config) : config_(std::move(config)) {}

void ProjectRegistry::Emit(absl::string_view name,
                           const nlohmann::json& payload) {
  if (config_.on_event) config_.on_event(name, payload);
}

absl::StatusOr<std::string> ProjectRegistry::StartProject(
    const std::string& root, const OptionList& options,
    const StartProjectParams& params) {
  absl::MutexLock lifecycle(&lifecycle_mu_);

  absl::StatusOr<std::string> root_path = CheckRoot(root);
  absl::StatusOr<RunAs> run_as =
      root_path.ok() ? ResolveIdentity(*root_path, params) : root_path.status();
  if (!params.requester.privileged && !root.empty() &&
      root.find('\0') == std::string::npos &&
      (!root_path.ok() ||
       (!run_as.ok() && absl::IsPermissionDenied(run_as.status()) &&
        !params.run_as_uid.has_value() && !params.run_as_gid.has_value()))) {
    // One answer whether the path is missing, not a directory or not the
    // client's to use: the daemon resolves paths as root, and different
    // answers would tell a client what exists in directories it cannot read.
    return ProjectError(
        absl::StatusCode::kPermissionDenied,
        absl::StrCat("unauthorized: uid ", params.requester.uid,
                     " may not use ", absl::CEscape(root),
                     " as a root: it is not a directory this uid can read, "
                     "write and search (a client starts projects only on "
                     "directories it can use itself)"));
  }
  if (!root_path.ok()) return root_path.status();
  if (!run_as.ok()) return run_as.status();

  absl::StatusOr<std::string> data_dir = CheckDataDir(options, params);
  if (!data_dir.ok()) return data_dir.status();

  std::optional<Value> supplied_id;
  if (params.project_id.has_value()) {
    supplied_id = Value::String(*params.project_id);
  } else if (const Value* option = LastOption(options, "project_id");
             option != nullptr && !option->is_null()) {
    supplied_id = *option;
  }
  // A generated id is taken only once every check passed (below, as the
  // project is inserted): a failed start must not consume one.
  std::string project_id;
  if (supplied_id.has_value()) {
    absl::StatusOr<std::string> id = CheckSuppliedId(*supplied_id);
    if (!id.ok()) return id.status();
    project_id = *std::move(id);
  }

  absl::StatusOr<ValidatedOptions> validated = ValidateRuntimeOptions(options);
  if (!validated.ok()) {
    absl::Status status = validated.status();
    status.SetPayload(kProjectErrorPayloadUrl,
                      absl::Cord(std::string(status.message())));
    return status;
  }

  {
    absl::MutexLock lock(&mu_);
    if (!project_id.empty() && projects_.count(project_id) != 0) {
      return ProjectError(absl::StatusCode::kAlreadyExists,
                          absl::StrCat("already_started: ", project_id));
    }
  }

  absl::Status daemon_files =
      CheckDaemonFiles(*root_path, config_.daemon_paths);
  if (!daemon_files.ok()) return daemon_files;

  {
    // Stable: projects only change under lifecycle_mu_, held here.
    absl::MutexLock lock(&mu_);
    for (const auto& [other_id, other] : projects_) {
      if (Within(*root_path, other.root_path) ||
          Within(other.root_path, *root_path)) {
        return ProjectError(
            absl::StatusCode::kFailedPrecondition,
            absl::StrCat("overlapping_project_root: ",
                         absl::CEscape(*root_path), " overlaps project ",
                         other_id, " at ", absl::CEscape(other.root_path),
                         "; one project's data dir and state would be "
                         "inside the other's jail: use disjoint roots"));
      }
    }
  }

  absl::Status layout =
      EnsureLayout(*root_path, *data_dir, run_as->uid, run_as->gid);
  if (!layout.ok()) return layout;

  ProjectSummary summary;
  summary.root_path = *root_path;
  summary.data_dir = *data_dir;
  summary.started_at = config_.clock();
  summary.options = *std::move(validated);
  summary.owner_uid = params.requester.uid;
  summary.run_as = *std::move(run_as);
  {
    absl::MutexLock lock(&mu_);
    while (project_id.empty() ||
           (!supplied_id.has_value() && projects_.count(project_id) != 0)) {
      project_id = absl::StrCat("project_", next_generated_++);
    }
    summary.project_id = project_id;
    projects_.emplace(project_id, std::move(summary));
  }
  Emit("project.started", {{"project_id", project_id},
                           {"root_path", *root_path},
                           {"data_dir", *data_dir}});
  return project_id;
}

absl::Status ProjectRegistry::StopProject(absl::string_view project_id) {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto it = projects_.find(std::string(project_id));
    if (it == projects_.end()) {
      return ProjectError(
          absl::StatusCode::kNotFound,
          absl::StrCat("project_not_found: ", absl::CEscape(project_id)));
    }
    projects_.erase(it);
  }
  Emit("project.stopped", {{"project_id", std::string(project_id)}});
  return absl::OkStatus();
}

std::vector<ProjectSummary> ProjectRegistry::ListProjects() const {
  absl::MutexLock lock(&mu_);
  std::vector<ProjectSummary> out;
  out.reserve(projects_.size());
  for (const auto& [id, summary] : projects_) out.push_back(summary);
  return out;
}

std::optional<ProjectSummary> ProjectRegistry::GetProject(
    absl::string_view project_id) const {
  absl::MutexLock lock(&mu_);
  auto it = projects_.find(std::string(project_id));
  if (it == projects_.end()) return std::nullopt;
  return it->second;
}

}  // namespace jcs::runtime
