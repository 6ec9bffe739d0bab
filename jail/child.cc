#include "jail/child.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "jail/fd_passing.h"
#include "jail/init_identity.h"
#include "jail/sync_protocol.h"

namespace jcs::jail {
namespace {

constexpr int kSyncFd = 3;
// The program's stdio while the jail is built (fds 4, 5, 6; -1: inherited).
constexpr int kProgramStdioFd = 4;
int g_program_stdio[3] = {-1, -1, -1};
constexpr int kMaxBinds = 1024;

// Shared by the init and (after fork) the program's process: the step stamps
// travel with kReady.
SyncMessage g_progress;
pid_t g_program_pid = 0;

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void Stamp(SetupStep step) { g_progress.step_end_ns[step] = NowNs(); }

void CopyString(char* dst, size_t size, const char* a, const char* b = "") {
  size_t n = 0;
  for (const char* s : {a, b}) {
    for (; *s != '\0' && n + 1 < size; ++s) dst[n++] = *s;
  }
  dst[n] = '\0';
}

void Send(const SyncMessage& msg, int fd_to_pass = -1) {
  SendWithFds(kSyncFd, &msg, sizeof(msg), &fd_to_pass, fd_to_pass >= 0 ? 1 : 0,
              0);
}

// Reports a setup failure to the supervisor and exits; the supervisor tears the
// jail down.
[[noreturn]] void Fail(const char* where, const char* detail, int err) {
  SyncMessage msg = g_progress;
  msg.type = SyncType::kError;
  msg.err = err;
  CopyString(msg.where, sizeof(msg.where), where);
  CopyString(msg.detail, sizeof(msg.detail), detail);
  Send(msg);
  _exit(125);
}

[[noreturn]] void FailPath(const char* where, const char* path, int err) {
  char what[sizeof(SyncMessage::where)];
  CopyString(what, sizeof(what), where, path);
  Fail(what, path, err);
}

int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

// The devices of the tmpfs mounts the jail made itself (its root, /tmp,
// /dev, /dev/shm), once they exist: only there may the child create anything.
dev_t g_own_devs[8];
int g_own_dev_count = 0;

void AddOwnDev(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) Fail("jail tmpfs", "fstat", errno);
  if (g_own_dev_count < 8) g_own_devs[g_own_dev_count++] = st.st_dev;
}

// True when `rel` (under `root_fd`, no symlinks followed) is a directory on
// one of the jail's own tmpfs mounts. A missing path inside a host bind is
// never created on the host.
bool OnOwnTmpfs(int root_fd, const char* rel) {
  struct stat st;
  const int rc = rel[0] == '\0'
                     ? fstat(root_fd, &st)
                     : fstatat(root_fd, rel, &st, AT_SYMLINK_NOFOLLOW);
  if (rc != 0 || !S_ISDIR(st.st_mode)) return false;
  for (int i = 0; i < g_own_dev_count; ++i) {
    if (st.st_dev == g_own_devs[i]) return true;
  }
  return false;
}

// mkdir -p of `rel` under `root_fd`, no symlinks followed. Directories are
// only created on the jail's own tmpfs; one missing inside a host bind is an
// error (building a jail never writes to the host).
void MakeDirs(int root_fd, const char* rel) {
  char path[PATH_MAX];
  CopyString(path, sizeof(path), rel);
  char parent[PATH_MAX] = "";
  for (char* p = path;; ++p) {
    if (*p == '/' || *p == '\0') {
      const char saved = *p;
      *p = '\0';
      if (path[0] != '\0') {
        struct stat st;
        if (fstatat(root_fd, path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno != ENOENT) FailPath("mkdir ", rel, errno);
          if (g_own_dev_count > 0 && !OnOwnTmpfs(root_fd, parent)) {
            FailPath("missing inside a host bind: /", path, ENOENT);
          }
          if (mkdirat(root_fd, path, 0755) != 0 && errno != EEXIST) {
            FailPath("mkdir ", rel, errno);
          }
        }
        CopyString(parent, sizeof(parent), path);
      }
      *p = saved;
      if (saved == '\0') break;
    }
  }
}

// A file bind's mount point: created empty on the jail's tmpfs; inside a host
// bind it must exist already and is never opened for writing.
void CreateFileTarget(int root_fd, const char* rel) {
  const int existing =
      OpenAt2(root_fd, rel, O_PATH | O_CLOEXEC | O_NOFOLLOW,
              RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (existing >= 0) {
    close(existing);
    return;
  }
  if (errno != ENOENT) FailPath("bind target /", rel, errno);
  char parent[PATH_MAX];
  CopyString(parent, sizeof(parent), rel);
  char* slash = strrchr(parent, '/');
  if (slash != nullptr) {
    *slash = '\0';
  } else {
    parent[0] = '\0';
  }
  if (!OnOwnTmpfs(root_fd, parent)) {
    FailPath("missing inside a host bind: /", rel, ENOENT);
  }
  const int file = OpenAt2(
      root_fd, rel, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
      RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (file < 0) FailPath("create bind target /", rel, errno);
  close(file);
}

// Opens `rel` under `root_fd` with O_PATH, no symlinks followed, a chunk of at
// most kChunk bytes (whole components) at a time, so a path longer than
// PATH_MAX (a deep tree) can still be reached. -1 with errno on failure.
int OpenLong(int root_fd, const char* rel, bool is_dir) {
  constexpr size_t kChunk = 2048;
  char chunk[kChunk + 1];
  int cur = -1;
  const char* p = rel;
  while (true) {
    // The longest run of whole components that fits the chunk.
    size_t len = strlen(p);
    bool last = len <= kChunk;
    if (!last) {
      len = kChunk;
      while (len > 0 && p[len] != '/') --len;
      if (len == 0) {
        if (cur >= 0) close(cur);
        errno = ENAMETOOLONG;
        return -1;
      }
    }
    memcpy(chunk, p, len);
    chunk[len] = '\0';
    const uint64_t flags =
        O_PATH | O_CLOEXEC | O_NOFOLLOW | ((!last || is_dir) ? O_DIRECTORY : 0);
    const int next = OpenAt2(cur < 0 ? root_fd : cur, chunk, flags,
                             (cur < 0 ? RESOLVE_IN_ROOT : RESOLVE_BENEATH) |
                                 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    const int saved = errno;
    if (cur >= 0) close(cur);
    if (next < 0) {
      errno = saved;
      return -1;
    }
    cur = next;
    if (last) return cur;
    p += len + 1;
  }
}

// Binds the directory `rel` onto itself (with everything mounted below it) so
// that it is a mount point the program cannot rename or remove.
void PinDirectory(int root_fd, const char* rel) {
  const int target = OpenLong(root_fd, rel, /*is_dir=*/true);
  if (target < 0) FailPath("pin gone: /", rel, errno);
  const int tree = open_tree(
      target, "",
      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0) FailPath("pin open_tree /", rel, errno);
  if (move_mount(tree, "", target, "",
                 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    FailPath("pin /", rel, errno);
  }
  close(tree);
  close(target);
}

void MakeParentDirs(int root_fd, const char* rel) {
  char parent[PATH_MAX];
  CopyString(parent, sizeof(parent), rel);
  char* slash = strrchr(parent, '/');
  if (slash == nullptr) return;
  *slash = '\0';
  MakeDirs(root_fd, parent);
}

int NewTmpfs(const char* size, const char* mode, unsigned attrs,
             const char* what) {
  const int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0) Fail(what, "fsopen(tmpfs)", errno);
  if (fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0) != 0 ||
      fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) != 0 ||
      fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    Fail(what, "configure tmpfs", errno);
  }
  const int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  if (mnt < 0) Fail(what, "fsmount(tmpfs)", errno);
  close(fs);
  return mnt;
}

// Attaches the detached mount `tree_fd` at `rel` under `root_fd`, resolving the
// target without following any symlink and without leaving the jail root.
void AttachAt(int tree_fd, int root_fd, const char* rel, bool is_dir) {
  const int target =
      OpenAt2(root_fd, rel,
              O_PATH | O_CLOEXEC | O_NOFOLLOW | (is_dir ? O_DIRECTORY : 0),
              RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (target < 0) FailPath("bind target /", rel, errno);
  if (move_mount(tree_fd, "", target, "",
                 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    FailPath("bind /", rel, errno);
  }
  close(target);
}

void BringLoopbackUp() {
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) Fail("net loopback", "socket(AF_INET)", errno);
  struct ifreq ifr = {};
  CopyString(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0)
    Fail("net loopback", "SIOCGIFFLAGS lo", errno);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0)
    Fail("net loopback", "SIOCSIFFLAGS lo up", errno);
  close(sock);
}

// Drops every capability (bounding, ambient, inheritable, permitted,
// effective), locks the securebits so nothing can regain them, and switches to
// the jail user. No new privileges after.
// The proxy's listening socket lives in the jail's network namespace (the
// only address the program can reach); the supervisor accepts on it.
void SendEgressListener(int port) {
  const int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) Fail("net egress", "socket(AF_INET)", errno);
  const int on = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(sock, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    Fail("net egress", "bind 127.0.0.1 proxy port", errno);
  }
  if (listen(sock, 128) != 0) Fail("net egress", "listen", errno);
  SyncMessage msg = {};
  msg.type = SyncType::kEgressListener;
  Send(msg, sock);
  close(sock);
}

// Raw syscalls, not glibc's wrappers: clone3 bypasses glibc's fork handling,
// so in a child of a multi-threaded supervisor (resolver threads, a daemon)
// glibc would still believe the parent's other threads exist and wait forever
// for them in its set*id broadcast.
int SetResUid(uid_t uid) {
  return static_cast<int>(syscall(SYS_setresuid, uid, uid, uid));
}
int SetResGid(gid_t gid) {
  return static_cast<int>(syscall(SYS_setresgid, gid, gid, gid));
}

void DropPrivileges(uid_t uid, gid_t gid) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      Fail("capabilities", "PR_CAPBSET_DROP", errno);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    Fail("capabilities", "PR_CAP_AMBIENT_CLEAR_ALL", errno);
  }
  const unsigned long securebits =
      SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
      SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
      SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, securebits, 0, 0, 0) != 0) {
    Fail("capabilities", "PR_SET_SECUREBITS", errno);
  }
  if (SetResGid(gid) != 0) Fail("credentials", "setresgid", errno);
  if (SetResUid(uid) != 0) Fail("credentials", "setresuid", errno);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0)
    Fail("capabilities", "capset(0)", errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    Fail("no_new_privs", "PR_SET_NO_NEW_PRIVS", errno);
  // Verify rather than trust: a jail that still holds a capability must not
  // run.
  if (syscall(SYS_capget, &header, data) != 0 || data[0].effective != 0 ||
      data[0].permitted != 0 || data[0].inheritable != 0 ||
      data[1].effective != 0 || data[1].permitted != 0 ||
      data[1].inheritable != 0) {
    Fail("capabilities", "capabilities still present after drop", EPERM);
  }
  if (getuid() != uid || geteuid() != uid || getgid() != gid ||
      getegid() != gid) {
    Fail("credentials", "uid/gid did not change", EPERM);
  }
}

// Switches the setup process to the jail user while keeping its capabilities in
// the new user namespace: filesystems created inside the namespace (tmpfs,
// procfs) only accept files from ids mapped into it, and host uid 0 is
// deliberately not mapped.
void BecomeJailUserKeepingCaps(uid_t uid, gid_t gid) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
    Fail("credentials", "PR_SET_KEEPCAPS", errno);
  if (SetResGid(gid) != 0) Fail("credentials", "setresgid(jail gid)", errno);
  if (SetResUid(uid) != 0) Fail("credentials", "setresuid(jail uid)", errno);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0)
    Fail("capabilities", "capget", errno);
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  if (syscall(SYS_capset, &header, data) != 0)
    Fail("capabilities", "capset(setup)", errno);
}

void ResetSignals() {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
}

// What the program's process runs: from the ChildContext (a cold jail) or
// from the kRun message (a warm one).
struct ProgramSpec {
  const ChildContext* ctx = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  const char* path_env = "";
  int stdio[3] = {-1, -1, -1};  // received fds for 0, 1, 2 (warm jails)
};

// execve with a PATH search done by hand (execvpe is not guaranteed
// async-signal-safe). Returns the most telling errno: EACCES-class beats
// ENOENT.
int ExecProgram(const ProgramSpec& spec) {
  const char* program = spec.argv[0];
  if (strchr(program, '/') != nullptr) {
    execve(program, spec.argv, spec.envp);
    return errno;
  }
  int best = ENOENT;
  const char* dirs = spec.path_env;
  char candidate[PATH_MAX];
  while (true) {
    const char* end = strchr(dirs, ':');
    const size_t len = end ? static_cast<size_t>(end - dirs) : strlen(dirs);
    if (len > 0 && len + 1 + strlen(program) < sizeof(candidate)) {
      memcpy(candidate, dirs, len);
      candidate[len] = '/';
      CopyString(candidate + len + 1, sizeof(candidate) - len - 1, program);
      execve(candidate, spec.argv, spec.envp);
      if (errno != ENOENT && errno != ENOTDIR) best = errno;
    }
    if (end == nullptr) break;
    dirs = end + 1;
  }
  return best;
}

void DupStdio(const ProgramSpec& spec) {
  for (int i = 0; i < 3; ++i) {
    if (spec.stdio[i] < 0) continue;
    // dup2 onto itself keeps close-on-exec (received fds carry it).
    const int rc =
        spec.stdio[i] == i ? fcntl(i, F_SETFD, 0) : dup2(spec.stdio[i], i);
    if (rc < 0) Fail("stdio", "dup2 of the command's stdio", errno);
  }
}

// Signals, rlimits, credentials, Landlock and seccomp, in this order (seccomp
// last). Returns the seccomp listener for the supervisor. `cwd` (may be
// null) is entered before the credentials change.
int LockDown(const ChildContext& ctx, const char* cwd) {
  ResetSignals();
  struct rlimit core = {0, 0};
  struct rlimit nofile = {ctx.nofile, ctx.nofile};
  struct rlimit fsize = {ctx.fsize ? ctx.fsize : RLIM_INFINITY,
                         ctx.fsize ? ctx.fsize : RLIM_INFINITY};
  if (setrlimit(RLIMIT_CORE, &core) != 0 ||
      setrlimit(RLIMIT_NOFILE, &nofile) != 0 ||
      setrlimit(RLIMIT_FSIZE, &fsize) != 0) {
    Fail("rlimits", "setrlimit", errno);
  }
  if (cwd != nullptr && chdir(cwd) != 0) FailPath("chdir ", cwd, errno);
  DropPrivileges(ctx.uid, ctx.gid);
  g_progress.layers |= kLayerNoNewPrivs | kLayerCapsDropped;
  Stamp(kStepCredentials);

  if (ctx.landlock.abi > 0) {
    const char* failed = nullptr;
    const int rc = ApplyLandlock(ctx.landlock, &failed);
    if (rc != 0)
      Fail("landlock", failed ? failed : "landlock_restrict_self", -rc);
    g_progress.layers |= kLayerLandlock;
    g_progress.landlock_abi = ctx.landlock.abi;
  }
  Stamp(kStepLandlock);

  // Seccomp last: from here on only the policy's syscalls run; denials go to
  // the supervisor.
  const int listener =
      static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                               SECCOMP_FILTER_FLAG_NEW_LISTENER, ctx.seccomp));
  if (listener < 0)
    Fail("seccomp", "seccomp(SET_MODE_FILTER, NEW_LISTENER)", errno);
  g_progress.layers |= kLayerSeccomp;
  Stamp(kStepSeccomp);
  return listener;
}

// Hands the seccomp listener to the supervisor and execs.
[[noreturn]] void ReadyAndExec(const ProgramSpec& spec, int listener) {
  SyncMessage ready = g_progress;
  ready.type = SyncType::kReady;
  Send(ready, listener);
  close(listener);

  const int err = ExecProgram(spec);
  SyncMessage failed = {};
  failed.type = SyncType::kExecFailed;
  failed.err = err;
  Send(failed);
  _exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

[[noreturn]] void ProgramMain(const ProgramSpec& spec) {
  DupStdio(spec);
  if (spec.ctx->tty) {
    // The init is the jail's session leader; the program leads its own
    // session, whose controlling terminal is the pty slave on its stdin.
    if (setsid() < 0) Fail("tty", "setsid", errno);
    if (ioctl(0, TIOCSCTTY, 0) != 0) Fail("tty", "ioctl(TIOCSCTTY)", errno);
  }
  ReadyAndExec(spec, LockDown(*spec.ctx, spec.cwd));
}

// Stack of the program's process between clone and exec (it shares the init's
// memory).
alignas(64) char g_program_stack[256 * 1024];

// How the init clones the program's process: sharing its memory until the
// exec (CLONE_VM | CLONE_VFORK, as posix_spawn does). Not under
// --config=tsan: this file is not TSan-instrumented, but TSan's libc
// interceptors still run here, and with CLONE_VM they would run on the
// init's own TSan thread state, which the runtime then finds corrupt and
// aborts in the init ("CHECK failed: tsan_rtl.cpp"); TSan turns vfork into
// fork for the same reason. The program then gets a copy of the memory, and
// the init still sleeps until the exec.
#ifdef JCS_TSAN_RUNTIME
constexpr int kProgramCloneFlags = CLONE_VFORK | SIGCHLD;
#else
constexpr int kProgramCloneFlags = CLONE_VM | CLONE_VFORK | SIGCHLD;
#endif

int ProgramEntry(void* arg) {
  Stamp(kStepForkProgram);
  ProgramMain(*static_cast<const ProgramSpec*>(arg));
}

// A warm jail's command, received into static storage (the init never
// allocates).
alignas(8) char g_run_message[kMaxRunMessage];
char* g_run_argv[kMaxRunStrings + 1];
char* g_run_envp[kMaxRunStrings + 1];

// Waits for kRun and fills `spec` from it; exits quietly when the supervisor
// closed the socket instead (a warm jail that was never used).
void ReceiveRun(ProgramSpec* spec) {
  SyncMessage ready = g_progress;
  ready.type = SyncType::kWarmReady;
  Send(ready);
  int received = 0;
  bool truncated = false;
  const ssize_t n = RecvWithFds(kSyncFd, g_run_message, sizeof(g_run_message),
                                spec->stdio, 3, &received, &truncated, 0);
  if (n <= 0) _exit(0);
  RunHeader header;
  if (truncated || static_cast<size_t>(n) < sizeof(header)) {
    Fail("run", "truncated command message", EMSGSIZE);
  }
  memcpy(&header, g_run_message, sizeof(header));
  if (header.type != SyncType::kRun || header.argc == 0 ||
      header.argc > kMaxRunStrings || header.envc > kMaxRunStrings ||
      sizeof(header) + header.strings_bytes != static_cast<size_t>(n) ||
      header.strings_bytes == 0 || g_run_message[n - 1] != '\0') {
    Fail("run", "malformed command message", EINVAL);
  }
  char* cursor = g_run_message + sizeof(header);
  char* const end = g_run_message + n;
  const auto next = [&]() -> char* {
    if (cursor >= end) Fail("run", "malformed command message", EINVAL);
    char* s = cursor;
    cursor += strlen(s) + 1;
    return s;
  };
  spec->cwd = next();
  for (uint32_t i = 0; i < header.argc; ++i) g_run_argv[i] = next();
  g_run_argv[header.argc] = nullptr;
  for (uint32_t i = 0; i < header.envc; ++i) {
    g_run_envp[i] = next();
    if (strncmp(g_run_envp[i], "PATH=", 5) == 0) {
      spec->path_env = g_run_envp[i] + 5;
    }
  }
  g_run_envp[header.envc] = nullptr;
  if (cursor != end) Fail("run", "malformed command message", EINVAL);
  spec->argv = g_run_argv;
  spec->envp = g_run_envp;
  // The timing restarts here: the steps before were the warm-up.
  for (int64_t& stamp : g_progress.step_end_ns) stamp = 0;
  g_progress.start_ns = NowNs();
}

// The program's process of a warm jail: locked down first (credentials,
// Landlock, seccomp), then it waits for the command on the sync socket
// (the init does not read it), takes the command's stdio and working
// directory, and execs.
[[noreturn]] void WarmProgramMain(const ChildContext& ctx) {
  const int listener = LockDown(ctx, nullptr);
  ProgramSpec spec;
  spec.ctx = &ctx;
  ReceiveRun(&spec);
  DupStdio(spec);
  for (int fd : spec.stdio) {
    if (fd > 2) close(fd);
  }
  if (chdir(spec.cwd) != 0) FailPath("chdir ", spec.cwd, errno);
  Stamp(kStepForkProgram);
  ReadyAndExec(spec, listener);
}

void ForwardSignal(int sig) {
  if (g_program_pid > 0) kill(g_program_pid, sig);
}

// PID 1 of the jail: reaps every process, forwards termination signals to the
// program, reports the program's exit, then waits for the supervisor (which
// kills the whole cgroup).
[[noreturn]] void InitMain(pid_t program) {
  g_program_pid = program;
  struct sigaction forward = {};
  forward.sa_handler = ForwardSignal;
  sigemptyset(&forward.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
    sigaction(sig, &forward, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  while (true) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid == program) {
      SyncMessage msg = {};
      msg.type = SyncType::kMainExited;
      msg.wait_status = status;
      Send(msg);
      break;
    }
    if (pid < 0 && errno == ECHILD) break;
  }
  // Keep reaping until the supervisor kills the jail or goes away.
  char byte;
  while (true) {
    const ssize_t n = recv(kSyncFd, &byte, 1, MSG_DONTWAIT);
    if (n == 0) _exit(0);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    struct timespec pause = {0, 20'000'000};
    nanosleep(&pause, nullptr);
  }
}

}  // namespace

void JailChildMain(const ChildContext& ctx) {
  // The supervisor's death kills the jail's init, and with it the whole pid
  // namespace.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // This process becomes the jail's PID 1: first erase the supervisor's
  // command line, environment and name from it.
  HideSupervisorIdentity();
  // The sync socket goes to kSyncFd and the program's own stdio (when the
  // supervisor passed it) to kProgramStdioFd..+2, where only the program's
  // process dups them onto 0-2: the init never holds them, so the
  // supervisor's reads end when the program's processes are gone, without
  // waiting for the pid namespace to be torn down. Each source is first
  // copied above every target so that no dup clobbers another source (a
  // daemon started with fds 0-2 closed hands out low numbers).
  int moved[4];
  const int sources[4] = {ctx.stdio[0], ctx.stdio[1], ctx.stdio[2],
                          ctx.sync_fd};
  for (int i = 0; i < 4; ++i) {
    moved[i] = -1;
    if (sources[i] >= 0) {
      moved[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, kProgramStdioFd + 3);
      if (moved[i] < 0) _exit(125);
    }
  }
  if (dup3(moved[3], kSyncFd, O_CLOEXEC) < 0) _exit(125);
  for (int i = 0; i < 3; ++i) {
    g_program_stdio[i] = -1;
    if (moved[i] >= 0) {
      if (dup3(moved[i], kProgramStdioFd + i, O_CLOEXEC) < 0) _exit(125);
      g_program_stdio[i] = kProgramStdioFd + i;
    } else {
      // An unfilled slot may hold anything the parent had there (the
      // zygote's own sockets): it must not reach the jail.
      close(kProgramStdioFd + i);
    }
  }
  // Nothing inherited reaches the jail except stdio and the sync socket.
  syscall(SYS_close_range, kProgramStdioFd + 3, ~0U, 0);
  SyncMessage go;
  ssize_t n;
  do {
    n = recv(kSyncFd, &go, sizeof(go), 0);
  } while (n < 0 && errno == EINTR);
  if (n != sizeof(go) || go.type != SyncType::kGo) _exit(125);
  g_progress.start_ns = NowNs();

  if (setsid() < 0) Fail("session", "setsid", errno);
  if (getgroups(0, nullptr) != 0)
    Fail("credentials", "supplementary groups still present", EPERM);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Fail("mount namespace", "make / private", errno);
  }
  Stamp(kStepMountNamespace);

  // Detached copies of every bind source, taken before anything is mounted over
  // host paths.
  const int bind_count = static_cast<int>(ctx.binds.size());
  if (bind_count > kMaxBinds) Fail("binds", "too many binds", E2BIG);
  int trees[kMaxBinds];
  for (int i = 0; i < bind_count; ++i) {
    const ChildBind& bind = ctx.binds[i];
    trees[i] = -1;
    if (bind.mask_dir) continue;  // a fresh tmpfs, made below
    const int src = OpenAt2(
        AT_FDCWD, bind.source.c_str(),
        O_PATH | O_CLOEXEC | O_NOFOLLOW | (bind.is_dir ? O_DIRECTORY : 0),
        RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (src < 0) FailPath("bind source ", bind.source.c_str(), errno);
    if (bind.check_identity && !bind.is_mask) {
      struct stat st;
      if (fstat(src, &st) != 0 || st.st_dev != bind.dev ||
          st.st_ino != bind.ino) {
        FailPath("bind source changed: ", bind.source.c_str(), ESTALE);
      }
    }
    trees[i] = open_tree(
        src, "",
        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (trees[i] < 0) FailPath("open_tree ", bind.source.c_str(), errno);
    close(src);
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_NOSUID |
                    (bind.device ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_NODEV) |
                    (bind.read_only ? MOUNT_ATTR_RDONLY : 0);
    if (mount_setattr(trees[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                      sizeof(attr)) != 0) {
      FailPath("mount_setattr ", bind.source.c_str(), errno);
    }
  }
  // Sources are opened with the supervisor's host identity (it owns root-owned
  // parents such as a 0700 /root), the rest is built as the jail user: file
  // systems created in this user namespace only accept ids mapped into it.
  BecomeJailUserKeepingCaps(ctx.uid, ctx.gid);
  Stamp(kStepOpenSources);

  // The new root: a small tmpfs that only holds mount points, attached at the
  // staging directory (in this private mount namespace only) so that pivot_root
  // can use it.
  const int root = NewTmpfs("1m", "0755", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                            "root tmpfs");
  if (move_mount(root, "", AT_FDCWD, ctx.staging_dir.c_str(),
                 MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    FailPath("attach root at ", ctx.staging_dir.c_str(), errno);
  }
  MakeDirs(root, "tmp");
  const int tmp = NewTmpfs(ctx.tmp_size.c_str(), "1777",
                           MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, "/tmp tmpfs");
  AddOwnDev(root);
  AddOwnDev(tmp);
  AttachAt(tmp, root, "tmp", true);
  close(tmp);
  MakeDirs(root, "dev");
  const int dev = NewTmpfs("65536", "0755",
                           MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, "/dev tmpfs");
  AddOwnDev(dev);
  AttachAt(dev, root, "dev", true);
  close(dev);
  MakeDirs(root, "dev/shm");
  const int shm = NewTmpfs(
      ctx.tmp_size.c_str(), "1777",
      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, "/dev/shm");
  AddOwnDev(shm);
  AttachAt(shm, root, "dev/shm", true);
  close(shm);
  for (const char* link : {"fd", "stdin", "stdout", "stderr"}) {
    static constexpr const char* kTargets[] = {
        "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
        "/proc/self/fd/2"};
    const int idx = link[0] == 'f'   ? 0
                    : link[3] == 'i' ? 1
                    : link[3] == 'o' ? 2
                                     : 3;
    char path[32];
    CopyString(path, sizeof(path), "dev/", link);
    if (symlinkat(kTargets[idx], root, path) != 0)
      FailPath("symlink /", path, errno);
  }
  MakeDirs(root, "proc");
  char proc_path[PATH_MAX];
  CopyString(proc_path, sizeof(proc_path), ctx.staging_dir.c_str(), "/proc");
  // A fresh, read-only procfs that shows only this pid namespace.
  if (mount("proc", proc_path, "proc",
            MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, nullptr) != 0) {
    Fail("proc", "mount a new procfs for the jail's pid namespace", errno);
  }
  for (const std::string& dir : ctx.directories) MakeDirs(root, dir.c_str());
  Stamp(kStepNewRoot);

  for (int i = 0; i < bind_count; ++i) {
    const ChildBind& bind = ctx.binds[i];
    if (bind.is_mask) {
      // Exactly the file the scan found, wherever its path leads now; the
      // path may be longer than PATH_MAX.
      const int target = OpenLong(root, bind.target.c_str(), bind.is_dir);
      if (target < 0)
        FailPath("mask target gone: /", bind.target.c_str(), errno);
      struct stat st;
      if (fstat(target, &st) != 0 || st.st_dev != bind.dev ||
          st.st_ino != bind.ino) {
        FailPath("mask target changed: /", bind.target.c_str(), ESTALE);
      }
      int tree = trees[i];
      if (bind.mask_dir) {
        // Empty, read-only, mode 0000: the jail user cannot list or enter it.
        tree = NewTmpfs("4096", "0000",
                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                            MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                        "mask tmpfs");
      }
      if (move_mount(tree, "", target, "",
                     MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
        FailPath("mask /", bind.target.c_str(), errno);
      }
      close(tree);
      close(target);
      continue;
    }
    if (bind.is_dir) {
      MakeDirs(root, bind.target.c_str());
    } else {
      MakeParentDirs(root, bind.target.c_str());
      CreateFileTarget(root, bind.target.c_str());
    }
    AttachAt(trees[i], root, bind.target.c_str(), bind.is_dir);
    close(trees[i]);
    if (i == ctx.pins_after) {
      for (const std::string& pin : ctx.pins) PinDirectory(root, pin.c_str());
    }
  }
  for (const ChildSymlink& link : ctx.symlinks) {
    if (symlinkat(link.link_target.c_str(), root, link.path.c_str()) != 0) {
      FailPath("symlink /", link.path.c_str(), errno);
    }
  }
  Stamp(kStepBinds);

  if (sethostname(ctx.hostname.c_str(), ctx.hostname.size()) != 0) {
    Fail("uts namespace", "sethostname", errno);
  }
  if (ctx.loopback || ctx.egress) {
    BringLoopbackUp();
    g_progress.layers |= kLayerLoopbackUp;
  }
  if (ctx.egress) SendEgressListener(ctx.egress_port);
  Stamp(kStepUtsNet);

  if (fchdir(root) != 0) Fail("pivot_root", "fchdir(new root)", errno);
  if (syscall(SYS_pivot_root, ".", ".") != 0)
    Fail("pivot_root", "pivot_root(., .)", errno);
  if (umount2(".", MNT_DETACH) != 0)
    Fail("pivot_root", "detach the old root", errno);
  if (chdir("/") != 0) Fail("pivot_root", "chdir(/)", errno);
  struct mount_attr ro = {};
  ro.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (mount_setattr(AT_FDCWD, "/", 0, &ro, sizeof(ro)) != 0) {
    Fail("pivot_root", "remount the new root read-only", errno);
  }
  close(root);
  g_progress.layers |= kLayerPivotRoot;
  Stamp(kStepPivotRoot);

  // The supervisor moves the init into the run's cgroup meanwhile; the program
  // must start inside it, under a cgroup namespace rooted there.
  SyncMessage cgroup_ready;
  do {
    n = recv(kSyncFd, &cgroup_ready, sizeof(cgroup_ready), 0);
  } while (n < 0 && errno == EINTR);
  if (n != sizeof(cgroup_ready) ||
      cgroup_ready.type != SyncType::kCgroupReady) {
    _exit(125);
  }
  if (unshare(CLONE_NEWCGROUP) != 0) {
    Fail("cgroup namespace", "unshare(CLONE_NEWCGROUP)", errno);
  }
  // The program's process shares the init's memory until it execs (CLONE_VM |
  // CLONE_VFORK, as posix_spawn does): no page tables to copy, and the init
  // sleeps until the exec or the failure.
  static ProgramSpec spec;
  spec.ctx = &ctx;
  pid_t program;
  if (ctx.warm) {
    // A warm jail's program process is forked now and locked down before
    // the command arrives, so a call only pays for dup2, chdir and exec.
    program = static_cast<pid_t>(
        syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0));
    if (program == 0) WarmProgramMain(ctx);
    if (program < 0) Fail("fork program", "clone", errno);
  } else {
    spec.argv = ctx.argv.data();
    spec.envp = ctx.envp.data();
    spec.cwd = ctx.cwd.c_str();
    spec.path_env = ctx.path_env.c_str();
    for (int i = 0; i < 3; ++i) spec.stdio[i] = g_program_stdio[i];
    program = clone(ProgramEntry, g_program_stack + sizeof(g_program_stack),
                    kProgramCloneFlags, &spec);
    if (program < 0) Fail("fork program", "clone", errno);
    for (int fd : spec.stdio) {
      if (fd >= 0) close(fd);
    }
  }

  // The init keeps no privilege either; its parent-death signal is set again
  // because a credential change clears it, and the parent is checked to still
  // be there after that.
  DropPrivileges(ctx.uid, ctx.gid);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  char probe;
  if (recv(kSyncFd, &probe, 1, MSG_DONTWAIT | MSG_PEEK) == 0) _exit(125);
  InitMain(program);
}

}  // namespace jcs::jail
