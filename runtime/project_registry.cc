#include "runtime/project_registry.h"

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
#include "runtime/unique_fd.h"

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

// Step 6: mkdir -p <root>/<data_dir>/<each layout dir> without following
// symlinks.
absl::Status EnsureLayout(const std::string& root,
                          const std::string& data_dir) {
  auto failed = [&](absl::string_view where) {
    const int error = errno;
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
    if (mkdirat(at->get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
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
    return true;
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
      {"runtime_opts", RuntimeOptsJson(summary.options)},
  };
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
  if (!root_path.ok()) return root_path.status();

  absl::StatusOr<std::string> data_dir = CheckDataDir(options, params);
  if (!data_dir.ok()) return data_dir.status();

  std::optional<Value> supplied_id;
  if (params.project_id.has_value()) {
    supplied_id = Value::String(*params.project_id);
  } else if (const Value* option = LastOption(options, "project_id");
             option != nullptr && !option->is_null()) {
    supplied_id = *option;
  }
  std::string project_id;
  if (supplied_id.has_value()) {
    absl::StatusOr<std::string> id = CheckSuppliedId(*supplied_id);
    if (!id.ok()) return id.status();
    project_id = *std::move(id);
  } else {
    absl::MutexLock lock(&mu_);
    do {
      project_id = absl::StrCat("project_", next_generated_++);
    } while (projects_.count(project_id) != 0);
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
    if (projects_.count(project_id) != 0) {
      return ProjectError(absl::StatusCode::kAlreadyExists,
                          absl::StrCat("already_started: ", project_id));
    }
  }

  absl::Status layout = EnsureLayout(*root_path, *data_dir);
  if (!layout.ok()) return layout;

  ProjectSummary summary;
  summary.project_id = project_id;
  summary.root_path = *root_path;
  summary.data_dir = *data_dir;
  summary.started_at = config_.clock();
  summary.options = *std::move(validated);
  {
    absl::MutexLock lock(&mu_);
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
