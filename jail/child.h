// The code that runs inside the jail between clone3 and execve: it builds the
// filesystem, becomes the jail's init, forks the program's process and locks it
// down. Everything it needs is prepared by the supervisor in a ChildContext
// before clone (the child reads the copy it inherited and never allocates,
// takes locks or logs: it is async-signal-safe).
#ifndef JCS_JAIL_CHILD_H_
#define JCS_JAIL_CHILD_H_

#include <linux/filter.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "jail/landlock.h"

namespace jcs::jail {

struct ChildBind {
  std::string source;  // canonical host path
  std::string target;  // path inside the jail, relative to its root ("usr",
                       // "work/project")
  bool read_only = true;
  bool is_dir = true;
  bool device = false;  // a host device node (/dev/null): no nodev on the bind
  // A masked directory: an empty, read-only, mode-0000 tmpfs is mounted at
  // `target` instead of a bind (`source` unused).
  bool mask_dir = false;
  // A mask (file or directory): `target` must exist already; nothing is
  // ever created for it.
  bool is_mask = false;
  // The identity `target` (a mask) or `source` (a bind) must have when it
  // is mounted: anything else fails the launch.
  bool check_identity = false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
};

struct ChildSymlink {
  std::string link_target;  // what the link points to ("usr/bin")
  std::string path;         // where, relative to the jail root ("bin")
};

struct ChildContext {
  int sync_fd = -1;
  // A host directory the new root is attached to in the jail's private mount
  // namespace while it is being built (any existing directory; the host never
  // sees it).
  std::string staging_dir = "/tmp";
  std::vector<ChildBind> binds;  // in mount order: parents before children
  std::vector<ChildSymlink> symlinks;  // merged-/usr links (/bin -> usr/bin)
  // Directories inside the root that hold a mask or a bind (every ancestor
  // between the root and it), bound onto themselves right after
  // binds[pins_after] so the program cannot rename or remove them: a
  // directory that is a mount point cannot be moved (EBUSY), so a masked
  // path stays where every later scan finds it. Shallowest first.
  std::vector<std::string> pins;
  int pins_after = -1;
  std::vector<std::string>
      directories;       // extra empty directories to create (relative)
  std::string tmp_size;  // tmpfs size option for /tmp and /dev/shm ("67108864")
  bool loopback = false;
  // Egress mode: after lo is up, listen on 127.0.0.1:<egress_port> and hand
  // the socket to the supervisor (kEgressListener), which serves the proxy.
  bool egress = false;
  // A warm jail: once built, the init waits for a kRun message with the
  // command (argv, env, cwd, stdio) instead of starting argv/envp/cwd above.
  bool warm = false;
  // `jcs run --tty`: stdio is the slave of a pseudo-terminal the supervisor
  // allocated; the program's process starts a new session with it as its
  // controlling terminal (job control, Ctrl-C through the line discipline).
  bool tty = false;
  int egress_port = 3128;
  std::string hostname;
  uid_t uid = 65534;
  gid_t gid = 65534;
  std::string cwd;  // absolute, inside the jail
  // The program's stdin, stdout and stderr in the supervisor (-1: keep the
  // supervisor's own fd 0, 1 or 2).
  int stdio[3] = {-1, -1, -1};
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;  // null-terminated, points into argv_storage
  std::vector<char*> envp;  // null-terminated, points into env_storage
  std::string path_env;     // PATH for the program lookup
  unsigned long long nofile = 1024;
  unsigned long long fsize = 0;  // 0: unlimited
  LandlockPlan landlock;         // abi 0: not applied
  const sock_fprog* seccomp = nullptr;
};

// Runs in the cloned child; never returns. The child is PID 1 of a new pid
// namespace and owns new user, mount, net, ipc and uts namespaces; it waits for
// SyncType::kGo first.
[[noreturn]] void JailChildMain(const ChildContext& ctx);

}  // namespace jcs::jail

#endif  // JCS_JAIL_CHILD_H_
