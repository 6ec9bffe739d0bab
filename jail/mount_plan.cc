#include "jail/mount_plan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace jcs::jail {

absl::StatusOr<MountPlan> PlanMounts(const proto::JailSpec& spec) {
  MountPlan plan;
  for (const std::string& dir : spec.system_ro()) {
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0) continue;
    const std::string rel = dir.substr(1);
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      const ssize_t n = readlink(dir.c_str(), target, sizeof(target) - 1);
      if (n <= 0) {
        return absl::InternalError(
            absl::StrCat("readlink ", dir, ": ", strerror(errno)));
      }
      target[n] = '\0';
      plan.symlinks.push_back({target, rel});
      continue;
    }
    if (!S_ISDIR(st.st_mode)) continue;
    plan.binds.push_back(
        {dir, rel, /*read_only=*/true, /*is_dir=*/true, /*device=*/false});
    plan.read_exec.push_back(dir);
  }

  struct Extra {
    std::string path;
    bool read_only;
  };
  std::vector<Extra> extras = {{spec.root(), false}};
  for (const std::string& path : spec.ro()) extras.push_back({path, true});
  for (const std::string& path : spec.rw()) extras.push_back({path, false});
  // Parents before children, so a bind inside another bind lands on top.
  std::stable_sort(extras.begin(), extras.end(),
                   [](const Extra& a, const Extra& b) {
                     return std::count(a.path.begin(), a.path.end(), '/') <
                            std::count(b.path.begin(), b.path.end(), '/');
                   });
  for (const Extra& extra : extras) {
    struct stat st;
    if (stat(extra.path.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(extra.path, ": ", strerror(errno)));
    }
    plan.binds.push_back({extra.path, extra.path.substr(1), extra.read_only,
                          S_ISDIR(st.st_mode), /*device=*/false});
    (extra.read_only ? plan.read_exec : plan.read_write).push_back(extra.path);
  }

  std::map<std::string, const proto::PathIdentity*> identities;
  for (const proto::PathIdentity& id : spec.identity()) {
    identities[id.path()] = &id;
  }
  for (ChildBind& bind : plan.binds) {
    auto it = identities.find("/" + bind.target);
    if (it == identities.end() || bind.target == spec.root().substr(1)) {
      continue;
    }
    bind.check_identity = true;
    bind.dev = it->second->dev();
    bind.ino = it->second->ino();
  }

  // Masks last: they cover paths inside the binds above. A file is covered by
  // a nodev bind of /dev/null (open fails with EACCES), a directory by an
  // empty mode-0000 tmpfs.
  for (const std::string& path : spec.mask()) {
    auto it = identities.find(path);
    if (it == identities.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mask: ", path, " has no recorded identity"));
    }
    ChildBind mask;
    mask.source = "/dev/null";
    mask.target = path.substr(1);
    mask.read_only = true;
    mask.is_dir = it->second->is_dir();
    mask.mask_dir = mask.is_dir;
    mask.is_mask = true;
    mask.check_identity = true;
    mask.dev = it->second->dev();
    mask.ino = it->second->ino();
    plan.binds.push_back(std::move(mask));
  }

  // Every directory between the root and a mask or a bind inside it is
  // pinned (see ChildContext::pins).
  const std::string& root = spec.root();
  std::set<std::string> pins;
  const auto pin_parents = [&](const std::string& path) {
    if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) ||
        (root != "/" && path[root.size()] != '/')) {
      return;
    }
    for (size_t slash = path.find('/', root.size() + 1);
         slash != std::string::npos; slash = path.find('/', slash + 1)) {
      pins.insert(path.substr(1, slash - 1));
    }
  };
  for (const std::string& path : spec.mask()) pin_parents(path);
  for (const std::string& path : spec.ro()) pin_parents(path);
  for (const std::string& path : spec.rw()) pin_parents(path);
  plan.pins.assign(pins.begin(), pins.end());
  std::stable_sort(plan.pins.begin(), plan.pins.end(),
                   [](const std::string& a, const std::string& b) {
                     return std::count(a.begin(), a.end(), '/') <
                            std::count(b.begin(), b.end(), '/');
                   });
  for (size_t i = 0; i < plan.binds.size(); ++i) {
    if ("/" + plan.binds[i].target == root && !plan.binds[i].mask_dir) {
      plan.pins_after = static_cast<int>(i);
      break;
    }
  }

  for (const char* device : kJailDevices) {
    const std::string source = absl::StrCat("/dev/", device);
    struct stat st;
    if (stat(source.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("devices: ", source,
                       " is missing or not a character device on the host"));
    }
    plan.binds.push_back({source, source.substr(1), /*read_only=*/false,
                          /*is_dir=*/false, /*device=*/true});
  }
  return plan;
}

std::string StagingDir() {
  for (const char* dir : {"/tmp", "/mnt", "/run", "/var/tmp"}) {
    struct stat st;
    if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return dir;
  }
  return "/";
}

}  // namespace jcs::jail
