// The key warm jails are kept under: two specs with the same fingerprint
// build the same jail, so a jail built ahead for one may run the other's
// command (JailRun::Launch takes argv, env, cwd and the timeout).
#ifndef JCS_JAIL_WARM_FINGERPRINT_H_
#define JCS_JAIL_WARM_FINGERPRINT_H_

#include <string>

#include "proto/jail.pb.h"

namespace jcs::jail {

// The jail's shape (everything but argv, env, cwd and the timeout) and the
// identity of every path its mounts sit on. A mount on a file or directory
// that the host deletes or renames over disappears from every namespace: a
// warm jail built before that would no longer mask a replaced .env or keep a
// replaced data dir read-only, so it must not be used. The identity is the
// device, the inode and the inode's birth time, which tells a reused inode
// number apart and, unlike ctime, does not change when a file is written
// into the root (which would discard the warm jails on every write).
// Where the filesystem keeps no birth time, ctime stands in (more rebuilds,
// never a stale jail).
std::string WarmFingerprint(const proto::JailSpec& spec);

}  // namespace jcs::jail

#endif  // JCS_JAIL_WARM_FINGERPRINT_H_
