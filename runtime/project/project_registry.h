// Projects: start_project / stop_project / list_projects (spec §1, §1.1) with
// validated runtime options (runtime/project/runtime_options.h).
//
// StartProject checks, in this order (the first failure is returned and
// nothing is started, nothing created):
//   1. root path       stat(root) must succeed and be a directory, then it is
//                      canonicalised with realpath(). A relative root is
//                      resolved against the process's working directory (so
//                      clients send absolute paths).
//        invalid_root_path: expected_string   root is empty or contains NUL
//        invalid_root_path: not_directory
//        invalid_root_path: <errno name>      e.g. enoent, eacces, enotdir
//   1b. identity       who the tools run as (ProjectSummary::run_as):
//                      a requester that is not privileged: itself ("peer"),
//                      on a root it can read+write+search by its own uid,
//                      gid and groups with every ancestor searchable
//                      (root_access.h); run_as is refused.
//                      privileged (root, the daemon's uid): run_as_uid/gid
//                      ("run_as"), else the root's owner ("root_owner"; a
//                      group 0 becomes 65534).
//        unauthorized: uid N may not use ROOT as a root: ...
//        unauthorized: uid N may not set run_as ...
//        invalid_run_as: ...            uid or gid 0, or a gid without uid
//        root_owned_by_root: ...        root-owned root without run_as
//   2. data_dir        params.data_dir, else the last `data_dir` option, else
//                      ".jido"; used verbatim after these checks.
//        invalid_data_dir: expected_non_empty_string  not a string, or blank
//        invalid_data_dir: invalid_chars      contains a NUL byte
//        invalid_data_dir: must_be_relative   starts with '/'
//        invalid_data_dir: must_not_traverse  has a ".." path segment
//   3. project_id      params.project_id, else the last `project_id` option,
//                      else generated `project_<n>` (n counts up from 1,
//                      skipping ids that are running). A supplied id is
//                      trimmed (ASCII whitespace), then must match
//                      [A-Za-z0-9][A-Za-z0-9._-]{0,127}: ids end up in paths,
//                      logs and CLI arguments, so no '/', no leading '.' or
//                      '-', no "..", no control characters.
//        invalid_project_id: expected_string  the option value is no string
//        invalid_project_id: empty            blank after trimming
//        invalid_project_id: too_long         more than 128 characters
//        invalid_project_id: invalid_chars    outside the charset above
//   4. runtime options ValidateRuntimeOptions, first error wins
//        invalid_runtime_opt{key: "K", reason: "R"}  (payload: see
//        runtime/project/runtime_options_error.h; GetInvalidRuntimeOpt reads
//        it)
//   5. duplicate       already_started: <project_id>
//   6. daemon files    the root must not contain (or, for a directory, lie
//                      inside) one of Config::daemon_paths (the control
//                      socket, the state dir, the config file): a jailed
//                      program would reach the daemon's own files.
//        root_contains_daemon_files: <which> ...
//   7. overlap         the root must not equal, contain or lie inside
//                      another project's root (its data dir and state/
//                      would be inside this project's jail).
//        overlapping_project_root: project <id> ...
//   8. layout          creates <root>/<data_dir>/{skills,commands,workflows,
//                      skill_graph,state} (mode 0755, existing directories
//                      are fine), each directory it creates owned by the
//                      tool identity (fchown through its own fd).
//                      Components are walked with openat(O_NOFOLLOW), so a
//                      symlinked data_dir component cannot redirect the
//                      layout outside the root. On failure the directories
//                      created so far are removed again.
//        layout_create_failed: <errno name>   e.g. eacces, eloop, enotdir
//   Then the project is registered and `project.started` is emitted.
//
// StopProject(id): project_not_found: <id>; emits `project.stopped`.
//
// Error form: every error is an absl::Status whose message starts with its
// stable machine reason "<error>: <reason>" (the invalid_runtime_opt message
// is the formatted error itself), optionally followed by " (<detail>)". The
// reason alone is also attached as a payload (kProjectErrorPayloadUrl) and
// returned by ProjectErrorReason(). Codes: InvalidArgument for invalid_*,
// AlreadyExists for already_started, NotFound for project_not_found,
// PermissionDenied for unauthorized, FailedPrecondition for the others.
//
// Events: the hook, if set, is called as hook(name, payload) with
//   "project.started" {"project_id", "root_path", "data_dir"}
//   "project.stopped" {"project_id"}
// after the registry has changed, on the calling thread, without the
// registry's data lock held (ListProjects may be called from it), but under
// the lifecycle lock: a hook must not call StartProject or StopProject.
// Events of one registry are delivered in the order the changes happened.
#ifndef JCS_RUNTIME_PROJECT_REGISTRY_H_
#define JCS_RUNTIME_PROJECT_REGISTRY_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"
#include "runtime/project/value.h"

namespace jcs::runtime {

inline constexpr absl::string_view kProjectErrorPayloadUrl =
    "type.googleapis.com/jcs.runtime.ProjectError";

// The identity the tools of a project run as when a requester has none.
inline constexpr uint32_t kNobodyId = 65534;

// The layout subdirectories created under <root>/<data_dir>.
inline constexpr const char* kLayoutDirs[] = {"skills", "commands", "workflows",
                                              "skill_graph", "state"};

// "invalid_root_path: enoent", "invalid_runtime_opt{...}", ...; empty for OK
// or for a status that did not come from the registry.
std::string ProjectErrorReason(const absl::Status& status);

// "enoent" for ENOENT; "errno_<n>" for numbers without a name.
std::string ErrnoName(int error);

// Who asks for a project (the control client's SO_PEERCRED/SO_PEERGROUPS).
struct ProjectRequester {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // Root or the daemon's own uid (and in-process callers such as boot
  // projects): may start on any root and choose run_as.
  bool privileged = true;
};

// The host identity of a project's tools, and where it came from: "peer",
// "root_owner" or "run_as".
struct RunAs {
  uid_t uid = kNobodyId;
  gid_t gid = kNobodyId;
  std::string source;
};

struct StartProjectParams {
  std::optional<std::string> project_id;
  std::optional<std::string> data_dir;
  ProjectRequester requester;
  std::optional<uint32_t> run_as_uid;
  std::optional<uint32_t> run_as_gid;  // default: run_as_uid
};

struct ProjectSummary {
  std::string project_id;
  std::string root_path;  // canonical
  std::string data_dir;   // as given (relative)
  int64_t conversation_count = 0;
  absl::Time started_at;
  ValidatedOptions options;
  uid_t owner_uid = 0;  // the requester's uid
  RunAs run_as;
};

// {"uid", "gid", "source"}.
nlohmann::json RunAsToJson(const RunAs& run_as);

// {project_id, root_path, data_dir, conversation_count, started_at (RFC 3339
// UTC), owner_uid, run_as, runtime_opts}.
nlohmann::json SummaryToJson(const ProjectSummary& summary);

using ProjectEventHook =
    std::function<void(absl::string_view name, const nlohmann::json& payload)>;

class ProjectRegistry {
 public:
  struct Config {
    ProjectEventHook on_event;
    std::function<absl::Time()> clock = [] { return absl::Now(); };
    // The daemon's own files (control socket, state dir, config file): no
    // project root may contain them (step 6). Absolute; each is resolved
    // (realpath, or its directory's when it does not exist yet) per check.
    std::vector<std::string> daemon_paths;
  };

  ProjectRegistry() : ProjectRegistry(Config()) {}
  explicit ProjectRegistry(Config config);
  ProjectRegistry(const ProjectRegistry&) = delete;
  ProjectRegistry& operator=(const ProjectRegistry&) = delete;

  // Returns the project id. See the file comment for the checks and errors.
  absl::StatusOr<std::string> StartProject(
      const std::string& root, const OptionList& options,
      const StartProjectParams& params = {}) ABSL_LOCKS_EXCLUDED(lifecycle_mu_);

  absl::Status StopProject(absl::string_view project_id)
      ABSL_LOCKS_EXCLUDED(lifecycle_mu_);

  // Sorted by project_id.
  std::vector<ProjectSummary> ListProjects() const ABSL_LOCKS_EXCLUDED(mu_);

  std::optional<ProjectSummary> GetProject(absl::string_view project_id) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Emit(absl::string_view name, const nlohmann::json& payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lifecycle_mu_);

  const Config config_;
  // Serializes StartProject / StopProject (and their events).
  absl::Mutex lifecycle_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(lifecycle_mu_);
  std::map<std::string, ProjectSummary> projects_ ABSL_GUARDED_BY(mu_);
  int64_t next_generated_ ABSL_GUARDED_BY(lifecycle_mu_) = 1;
};

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_PROJECT_REGISTRY_H_
