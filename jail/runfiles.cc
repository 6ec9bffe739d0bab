#include "jail/runfiles.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace jcs::jail {
namespace {

bool IsSameOrUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || absl::StartsWith(path, dir + "/");
}

// The real path, or "" when it does not resolve (a dangling link).
std::string Real(const std::string& path) {
  char buffer[PATH_MAX];
  if (realpath(path.c_str(), buffer) == nullptr) return "";
  return buffer;
}

std::string Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

class Collector {
 public:
  Collector(const std::string& root, const std::vector<std::string>& system)
      : root_(root), system_(system) {}

  // A resolved target: its directory (or itself, for a directory) joins the
  // set to bind.
  absl::Status AddTarget(const std::string& link, const std::string& real) {
    if (real.empty()) return absl::OkStatus();  // dangling: nothing to show
    for (const char* reserved : {"/proc", "/dev", "/sys"}) {
      if (IsSameOrUnder(real, reserved)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--runfiles: ", link, " points to ", real, ", under ",
                         reserved, ", which no jail binds"));
      }
    }
    for (const std::string& system : system_) {
      if (IsSameOrUnder(real, system)) return absl::OkStatus();
    }
    struct stat st;
    if (stat(real.c_str(), &st) != 0) return absl::OkStatus();
    dirs_.insert(S_ISDIR(st.st_mode) ? real : Parent(real));
    return absl::OkStatus();
  }

  // A link of the tree: every hop of its chain must resolve in the jail too
  // (Bazel's runfiles link to bazel-out, whose entries link to the sources),
  // so each hop's directory is bound as well as the final target.
  absl::Status AddChain(const std::string& link) {
    std::string hop = link;
    for (int hops = 0; hops < 40; ++hops) {
      struct stat st;
      if (lstat(hop.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
      char text[PATH_MAX];
      const ssize_t n = readlink(hop.c_str(), text, sizeof(text) - 1);
      if (n <= 0) break;
      text[n] = '\0';
      const std::string next = text[0] == '/'
                                   ? std::string(text)
                                   : absl::StrCat(Parent(hop), "/", text);
      if (hop != link) {
        absl::Status status = AddTarget(link, Real(Parent(hop)));
        if (!status.ok()) return status;
      }
      hop = next;
    }
    // The last hop is the target itself (nothing when dangling).
    return AddTarget(link, Real(link));
  }

  absl::Status Count(const std::string& where) {
    if (++entries_ > kMaxRunfilesEntries) {
      return absl::InvalidArgumentError(
          absl::StrCat("--runfiles: ", where, " has more than ",
                       kMaxRunfilesEntries, " entries"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> Result() const {
    std::vector<std::string> out;
    for (const std::string& dir :
         OutermostDirectories({dirs_.begin(), dirs_.end()})) {
      // The root or below it: visible through the root already.
      if (IsSameOrUnder(dir, root_)) continue;
      if (IsSameOrUnder(root_, dir)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--runfiles: the runfiles need ", dir,
                         " bound read-only, which contains the root ", root_,
                         "; choose a root outside it"));
      }
      out.push_back(dir);
    }
    if (out.size() > kMaxRunfilesBinds) {
      return absl::InvalidArgumentError(
          absl::StrCat("--runfiles: the runfiles' targets lie in ", out.size(),
                       " separate directories, at most ", kMaxRunfilesBinds));
    }
    return out;
  }

 private:
  const std::string root_;
  const std::vector<std::string>& system_;
  std::set<std::string> dirs_;
  size_t entries_ = 0;
};

// `MANIFEST`: one "<runfiles path> <real path>" per line (no real path for an
// empty file).
absl::Status ReadManifest(const std::string& path, Collector& collector) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();
  std::string line;
  while (std::getline(in, line)) {
    absl::Status status = collector.Count(path);
    if (!status.ok()) return status;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space + 1 >= line.size()) continue;
    const std::string target = line.substr(space + 1);
    if (target.empty() || target[0] != '/') continue;
    status = collector.AddTarget(line.substr(0, space), Real(target));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> OutermostDirectories(std::vector<std::string> paths) {
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  // Shorter paths first, so every ancestor is kept before its descendants
  // are looked at; each path checks its own ancestors (a handful) in the set.
  std::stable_sort(paths.begin(), paths.end(),
                   [](const std::string& a, const std::string& b) {
                     return a.size() < b.size();
                   });
  std::set<std::string> kept;
  for (const std::string& path : paths) {
    bool covered = kept.count("/") > 0;
    for (size_t slash = path.find('/', 1);
         !covered && slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      covered = kept.count(path.substr(0, slash)) > 0;
    }
    if (!covered) kept.insert(path);
  }
  return {kept.begin(), kept.end()};
}

absl::StatusOr<std::vector<std::string>> RunfilesBinds(
    const std::string& runfiles_dir, const std::string& root,
    const std::vector<std::string>& system_dirs) {
  const std::string dir = Real(runfiles_dir);
  struct stat st;
  if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--runfiles: ", runfiles_dir, " is not a directory"));
  }
  Collector collector(root, system_dirs);
  absl::Status status = collector.AddTarget(runfiles_dir, dir);
  if (!status.ok()) return status;
  namespace fs = std::filesystem;
  std::error_code error;
  // Symlinks to directories are not followed: each is one target.
  fs::recursive_directory_iterator it(
      dir, fs::directory_options::skip_permission_denied, error);
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--runfiles: cannot read ", runfiles_dir, ": ", error.message()));
  }
  for (const fs::recursive_directory_iterator end; it != end;
       it.increment(error)) {
    if (error) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--runfiles: cannot read ", runfiles_dir, ": ", error.message()));
    }
    status = collector.Count(runfiles_dir);
    if (!status.ok()) return status;
    if (!it->is_symlink(error)) continue;
    status = collector.AddChain(it->path().string());
    if (!status.ok()) return status;
  }
  status = ReadManifest(dir + "/MANIFEST", collector);
  if (!status.ok()) return status;
  return collector.Result();
}

}  // namespace jcs::jail
