// Whether a non-root control client may use a directory as a project root:
// the access its own uid, gid and supplementary groups get from the
// permission bits of every component of the root's real path.
//
// A client acts only as itself: without this check an allowed client could
// start a project on another user's private directory and read it through
// the tools (the daemon is root).
#ifndef JCS_RUNTIME_ROOT_ACCESS_H_
#define JCS_RUNTIME_ROOT_ACCESS_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace jcs::runtime {

struct PeerIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary
};

// The rwx bits (4 read, 2 write, 1 search) `peer` gets on a file with `st`
// by the classic owner/group/other rule (no capabilities).
int GrantedBits(const struct stat& st, const PeerIdentity& peer);

// `real_root` must be absolute and canonical (realpath). Walks it from "/"
// one component at a time with openat(O_PATH | O_NOFOLLOW) and fstat (no
// component is resolved twice, none through a symlink): every ancestor must
// be a directory searchable by `peer`, the root itself readable, writable and
// searchable. A symlink found on the way (planted after the root was
// resolved) is refused, not followed. OK, or PermissionDenied naming the uid,
// the component and the missing permission.
absl::Status CheckPeerRootAccess(const std::string& real_root,
                                 const PeerIdentity& peer);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_ROOT_ACCESS_H_
