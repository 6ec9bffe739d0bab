#include "runtime/assets/asset_loader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"
#include "runtime/assets/frontmatter.h"
#include "runtime/policy/path_policy.h"

namespace jcs::runtime::assets {
namespace {

constexpr uint64_t kNoSymlinks =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

int OpenAt2(int dirfd, const std::string& path, uint64_t flags,
            uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = flags;
  how.resolve = resolve;
  int fd;
  do {
    fd = static_cast<int>(
        syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how)));
  } while (fd < 0 && errno == EAGAIN);
  return fd;
}

std::string ErrnoWord(int error) {
  const char* name = strerrorname_np(error);
  return name != nullptr ? absl::AsciiStrToLower(name)
                         : absl::StrCat("errno_", error);
}

// A *.md entry found by the walk (relative to the type directory), or a
// problem with one.
struct Candidate {
  std::string rel;
  std::string problem;  // "" | not_regular_file | hard_link
};

struct Walk {
  std::vector<Candidate> found;
  std::vector<LoadError> errors;
  size_t visited = 0;
  bool stopped = false;
};

bool IsMdName(absl::string_view name) {
  return name.size() > 3 && absl::EndsWith(name, ".md");
}

void WalkDir(int dir_in, const std::string& prefix, int depth,
             const LoaderConfig& config, AssetType type,
             const std::string& type_path, Walk* walk) {
  const int fd = fcntl(dir_in, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return;
  }
  absl::Cleanup close_dir = [dir] { closedir(dir); };
  rewinddir(dir);
  while (const struct dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (++walk->visited > config.limits.max_dir_entries) {
      walk->errors.push_back(
          {type, type_path, "tree_too_large",
           absl::StrCat("more than ", config.limits.max_dir_entries,
                        " directory entries")});
      walk->stopped = true;
      return;
    }
    const std::string rel =
        prefix.empty() ? name : absl::StrCat(prefix, "/", name);
    struct stat st;
    if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;  // gone since readdir
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth + 1 > config.limits.max_depth) {
        walk->errors.push_back(
            {type, absl::StrCat(type_path, "/", EscapeNonUtf8(rel)), "too_deep",
             absl::StrCat("deeper than ", config.limits.max_depth,
                          " directories")});
        continue;
      }
      UniqueFd sub(
          openat(dirfd(dir), name.c_str(),
                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!sub.valid()) {
        walk->errors.push_back(
            {type, absl::StrCat(type_path, "/", EscapeNonUtf8(rel)),
             "dir_unavailable", ErrnoWord(errno)});
        continue;
      }
      WalkDir(sub.get(), rel, depth + 1, config, type, type_path, walk);
      if (walk->stopped) return;
      continue;
    }
    if (!IsMdName(name)) continue;
    if (!S_ISREG(st.st_mode)) {
      walk->found.push_back({rel, "not_regular_file"});
    } else if (st.st_nlink != 1) {
      walk->found.push_back({rel, "hard_link"});
    } else {
      walk->found.push_back({rel, ""});
    }
  }
}

enum class ReadResult { kOk, kTooLarge, kNotRegular, kHardLink, kError };

// Reads `rel` below the type directory without following anything.
ReadResult ReadFile(int type_fd, const std::string& rel, uint64_t max,
                    std::string* out, int* error) {
  UniqueFd opath(
      OpenAt2(type_fd, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC, kNoSymlinks));
  if (!opath.valid()) {
    *error = errno;
    return ReadResult::kError;
  }
  struct stat st;
  if (fstat(opath.get(), &st) != 0) {
    *error = errno;
    return ReadResult::kError;
  }
  if (!S_ISREG(st.st_mode)) return ReadResult::kNotRegular;
  if (st.st_nlink != 1) return ReadResult::kHardLink;
  if (static_cast<uint64_t>(st.st_size) > max) return ReadResult::kTooLarge;
  const std::string proc = absl::StrCat("/proc/self/fd/", opath.get());
  UniqueFd file(
      open(proc.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!file.valid()) {
    *error = errno;
    return ReadResult::kError;
  }
  out->clear();
  // The size may grow after fstat: never read past max + 1 bytes.
  const size_t limit = max + 1;
  while (out->size() < limit) {
    const size_t old = out->size();
    const size_t want = std::min<size_t>(64 * 1024, limit - old);
    out->resize(old + want);
    const ssize_t n = read(file.get(), out->data() + old, want);
    if (n < 0) {
      out->resize(old);
      if (errno == EINTR) continue;
      *error = errno;
      return ReadResult::kError;
    }
    out->resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  return out->size() > max ? ReadResult::kTooLarge : ReadResult::kOk;
}

// data_dir without empty and "." segments ("./.jido//" -> ".jido"), as the
// path policy sees root-relative paths.
std::string NormalDataDir(const std::string& data_dir) {
  std::string out;
  for (absl::string_view segment : absl::StrSplit(data_dir, '/')) {
    if (segment.empty() || segment == ".") continue;
    if (!out.empty()) out += '/';
    absl::StrAppend(&out, segment);
  }
  return out;
}

bool Sensitive(const LoaderConfig& config, const std::string& file) {
  const std::string name = file.substr(0, file.size() - 3);
  return IsSensitivePathOrAncestor(file, config.sensitive_denylist,
                                   config.sensitive_allowlist) ||
         IsSensitivePathOrAncestor(name, config.sensitive_denylist,
                                   config.sensitive_allowlist);
}

std::string Basename(const std::string& rel) {
  const size_t slash = rel.rfind('/');
  const std::string file =
      slash == std::string::npos ? rel : rel.substr(slash + 1);
  return file.substr(0, file.size() - 3);
}

void LoadType(int root_fd, const LoaderConfig& config, AssetType type,
              AssetSnapshot* snapshot) {
  const std::string data_dir = NormalDataDir(config.data_dir);
  const std::string type_path =
      data_dir.empty() ? AssetTypeDir(type)
                       : absl::StrCat(data_dir, "/", AssetTypeDir(type));
  std::vector<Asset>& assets = snapshot->assets[type];
  UniqueFd type_fd(
      OpenAt2(root_fd, type_path,
              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
              kNoSymlinks));
  if (!type_fd.valid()) {
    if (errno != ENOENT) {
      snapshot->errors.push_back(
          {type, type_path, "dir_unavailable", ErrnoWord(errno)});
    }
    return;
  }
  Walk walk;
  WalkDir(type_fd.get(), "", 0, config, type, type_path, &walk);
  for (LoadError& error : walk.errors) snapshot->errors.push_back(error);
  std::sort(
      walk.found.begin(), walk.found.end(),
      [](const Candidate& a, const Candidate& b) { return a.rel < b.rel; });
  // Sensitive files are dropped before anything else: they are not counted,
  // named in an error or read.
  std::erase_if(walk.found, [&](const Candidate& c) {
    return Sensitive(config, absl::StrCat(type_path, "/", c.rel));
  });
  if (walk.found.size() > config.limits.max_files_per_type) {
    snapshot->errors.push_back(
        {type, type_path, "too_many_files",
         absl::StrCat(walk.found.size(), " files, at most ",
                      config.limits.max_files_per_type, " are loaded")});
    walk.found.resize(config.limits.max_files_per_type);
  }
  std::set<std::string> names;
  const bool graph = type == AssetType::kSkillGraph;
  for (const Candidate& c : walk.found) {
    const std::string path = absl::StrCat(type_path, "/", EscapeNonUtf8(c.rel));
    if (!c.problem.empty()) {
      snapshot->errors.push_back({type, path, c.problem, ""});
      continue;
    }
    if (!IsValidUtf8(c.rel)) {
      snapshot->errors.push_back({type, path, "invalid_utf8", "file name"});
      continue;
    }
    const std::string name = Basename(c.rel);
    if (names.count(name) > 0) {
      snapshot->errors.push_back(
          {type, path, graph ? "duplicate_node" : "duplicate_name", name});
      continue;
    }
    const uint64_t left =
        config.limits.max_total_bytes -
        std::min(config.limits.max_total_bytes, snapshot->total_bytes);
    std::string body;
    int error = 0;
    switch (ReadFile(type_fd.get(), c.rel,
                     std::min(config.limits.max_file_bytes, left), &body,
                     &error)) {
      case ReadResult::kOk:
        break;
      case ReadResult::kTooLarge:
        snapshot->errors.push_back(
            left < config.limits.max_file_bytes
                ? LoadError{type, path, "tree_too_large",
                            absl::StrCat("more than ",
                                         config.limits.max_total_bytes,
                                         " bytes of assets in all")}
                : LoadError{
                      type, path, "file_too_large",
                      absl::StrCat("larger than ", config.limits.max_file_bytes,
                                   " bytes")});
        continue;
      case ReadResult::kNotRegular:
        snapshot->errors.push_back({type, path, "not_regular_file", ""});
        continue;
      case ReadResult::kHardLink:
        snapshot->errors.push_back({type, path, "hard_link", ""});
        continue;
      case ReadResult::kError:
        snapshot->errors.push_back(
            {type, path, "unreadable", ErrnoWord(error)});
        continue;
    }
    if (!IsValidUtf8(body)) {
      snapshot->errors.push_back({type, path, "invalid_utf8", "content"});
      continue;
    }
    names.insert(name);
    snapshot->total_bytes += body.size();
    Asset asset;
    asset.type = type;
    asset.name = name;
    asset.path = path;
    asset.relative_path = c.rel;
    if (graph) {
      snapshot->nodes.push_back({name, path, c.rel, GraphTitle(body, name)});
      for (std::string& to : GraphLinks(body)) {
        snapshot->edges.push_back({name, std::move(to)});
      }
    } else {
      absl::StatusOr<Frontmatter> front = ParseFrontmatter(body);
      if (front.ok()) {
        asset.frontmatter = std::move(front->data);
      } else {
        asset.frontmatter_error = std::string(front.status().message());
        snapshot->errors.push_back(
            {type, path, "invalid_frontmatter", asset.frontmatter_error});
      }
    }
    asset.body = std::move(body);
    assets.push_back(std::move(asset));
  }
  std::sort(assets.begin(), assets.end(),
            [](const Asset& a, const Asset& b) { return a.name < b.name; });
}

}  // namespace

std::string GraphTitle(absl::string_view body, absl::string_view fallback) {
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (absl::StartsWith(line, "# ")) {
      absl::string_view title = absl::StripAsciiWhitespace(line.substr(2));
      if (!title.empty()) return std::string(title);
    }
  }
  return std::string(fallback);
}

std::vector<std::string> GraphLinks(absl::string_view body) {
  std::set<std::string> links;
  size_t pos = 0;
  while ((pos = body.find("[[", pos)) != absl::string_view::npos) {
    const size_t end = body.find("]]", pos + 2);
    if (end == absl::string_view::npos) break;
    absl::string_view target = body.substr(pos + 2, end - pos - 2);
    if (const size_t bar = target.find('|'); bar != absl::string_view::npos) {
      target = target.substr(0, bar);
    }
    target = absl::StripAsciiWhitespace(target);
    if (!target.empty() && target.find('\n') == absl::string_view::npos &&
        target.find("[[") == absl::string_view::npos) {
      links.insert(std::string(target));
    }
    pos = end + 2;
  }
  return {links.begin(), links.end()};
}

absl::StatusOr<AssetSnapshot> LoadAssetTree(const LoaderConfig& config) {
  UniqueFd root(open(config.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "asset_root_unavailable: ", ErrnoWord(errno), " (", config.root, ")"));
  }
  std::shared_ptr<void> identity;
  if (config.enter_identity) {
    absl::StatusOr<std::shared_ptr<void>> entered = config.enter_identity();
    if (!entered.ok()) return entered.status();
    identity = *std::move(entered);
  }
  AssetSnapshot snapshot;
  for (AssetType type : kAssetTypes)
    LoadType(root.get(), config, type, &snapshot);
  std::sort(snapshot.nodes.begin(), snapshot.nodes.end(),
            [](const GraphNode& a, const GraphNode& b) { return a.id < b.id; });
  std::sort(snapshot.edges.begin(), snapshot.edges.end());
  snapshot.edges.erase(
      std::unique(snapshot.edges.begin(), snapshot.edges.end()),
      snapshot.edges.end());
  return snapshot;
}

}  // namespace jcs::runtime::assets
