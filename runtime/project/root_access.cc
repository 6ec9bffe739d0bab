#include "runtime/project/root_access.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/unique_fd.h"

namespace jcs::runtime {
namespace {

constexpr int kRead = 4;
constexpr int kWrite = 2;
constexpr int kSearch = 1;

std::string Missing(int needed, int granted) {
  std::vector<std::string> names;
  if ((needed & kRead) && !(granted & kRead)) names.push_back("read");
  if ((needed & kWrite) && !(granted & kWrite)) names.push_back("write");
  if ((needed & kSearch) && !(granted & kSearch)) names.push_back("search");
  return absl::StrJoin(names, "+");
}

absl::Status Refuse(const PeerIdentity& peer, const std::string& path,
                    absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("uid ", peer.uid, " may not use ", path, " as a root: ", why,
                   " (a client starts projects only on directories it "
                   "can read, write and search itself)"));
}

}  // namespace

int GrantedBits(const struct stat& st, const PeerIdentity& peer) {
  if (st.st_uid == peer.uid) return (st.st_mode >> 6) & 7;
  if (st.st_gid == peer.gid || std::find(peer.groups.begin(), peer.groups.end(),
                                         st.st_gid) != peer.groups.end()) {
    return (st.st_mode >> 3) & 7;
  }
  return st.st_mode & 7;
}

absl::Status CheckPeerRootAccess(const std::string& real_root,
                                 const PeerIdentity& peer) {
  if (real_root.empty() || real_root[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "root access check: expected an absolute path, got '", real_root, "'"));
  }
  UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return Refuse(peer, "/", strerror(errno));
  std::string path = "/";
  std::vector<std::string> parts =
      absl::StrSplit(real_root, '/', absl::SkipEmpty());
  for (size_t i = 0;; ++i) {
    struct stat st;
    if (fstat(dir.get(), &st) != 0) return Refuse(peer, path, strerror(errno));
    if (S_ISLNK(st.st_mode)) {
      return Refuse(peer, path,
                    "it is a symlink (the root changed while it was checked)");
    }
    if (!S_ISDIR(st.st_mode)) return Refuse(peer, path, "not a directory");
    const bool last = i == parts.size();
    const int needed = last ? kRead | kWrite | kSearch : kSearch;
    const int granted = GrantedBits(st, peer);
    if ((granted & needed) != needed) {
      return Refuse(
          peer, path,
          absl::StrFormat("no %s permission on %s (mode %04o, owner %u:%u)",
                          Missing(needed, granted), path, st.st_mode & 07777,
                          st.st_uid, st.st_gid));
    }
    if (last) return absl::OkStatus();
    const std::string& name = parts[i];
    path =
        path == "/" ? absl::StrCat("/", name) : absl::StrCat(path, "/", name);
    if (name == "." || name == "..") {
      return Refuse(peer, path, "the path is not canonical");
    }
    // O_PATH | O_NOFOLLOW opens a symlink itself: fstat then reports it.
    const int next =
        openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return Refuse(peer, path, strerror(errno));
    dir.Reset(next);
  }
}

}  // namespace jcs::runtime
