// The zygote: a small process forked from the supervisor at start (while the
// supervisor is still small) that clones jails on its behalf: warm ones, and
// cold ones that have their stdio and no terminal.
//
// Why: cloning a jail from the supervisor itself copies the supervisor's
// page tables (milliseconds for a big daemon, tens under ASan) and shares
// every writable page with the jail's init copy-on-write, so each page any
// supervisor thread writes afterwards costs a page fault (about 120 per tool
// call, ~25 us each on a VM). A jail cloned by the zygote shares only the
// zygote's few pages; the supervisor's are never write-protected.
//
// Protocol (a SOCK_SEQPACKET pair): the supervisor sends the finalized
// JailSpec (serialized; as SCM_RIGHTS, a cold jail's three stdio fds and a
// cgroup directory fd for CLONE_INTO_CGROUP when it has one), the zygote
// builds the ChildContext,
// clones the jail child exactly as the supervisor would, and answers with its
// pid and errno, passing the init's pidfd and the supervisor's end of the
// sync socket as SCM_RIGHTS. Everything after clone (id maps, kGo, cgroup
// v1, supervision, teardown) stays with the supervisor.
//
// Lifetime: the zygote dies with the supervisor (PDEATHSIG SIGKILL), and the
// jails' inits die with the zygote (their PDEATHSIG), so kill -9 of the
// supervisor still takes every jail down. The zygote reaps the inits.
#ifndef JCS_JAIL_ZYGOTE_H_
#define JCS_JAIL_ZYGOTE_H_

#include <sys/types.h>

#include <array>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

class Zygote {
 public:
  struct Cloned {
    pid_t pid = -1;
    int pidfd = -1;    // owned by the caller
    int sync_fd = -1;  // the supervisor's end; owned by the caller
  };

  // Forks the zygote now. Call it early, before threads and big allocations.
  static absl::StatusOr<std::unique_ptr<Zygote>> Start();
  // Kills the zygote (and with it every jail it cloned that is still alive).
  ~Zygote();
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;

  // Blocking; thread-safe. `warm` selects a warm jail's child (its stdio
  // comes with its command). `cgroup_fd`: -1, or a cgroup v2 directory to
  // clone into. `stdio`: a cold jail's program's stdin, stdout and stderr
  // (all three; the caller keeps its copies), or none (-1: the program
  // keeps the init's, /dev/null in the zygote).
  absl::StatusOr<Cloned> Clone(const proto::JailSpec& spec, bool warm,
                               int cgroup_fd,
                               std::array<int, 3> stdio = {-1, -1, -1});
  // False once the zygote has exited (its end of the request socket is
  // closed, which happens before its jails get their PDEATHSIG). Thread-safe.
  bool Alive() const;

 private:
  Zygote(pid_t pid, int sock) : pid_(pid), sock_(sock) {}
  pid_t pid_;
  int sock_;
  std::mutex mu_;
};

// The process-wide zygote warm jails use (nullptr: they clone in-process).
// Set once at start by `jcs serve`; not owned.
void SetProcessZygote(Zygote* zygote);
Zygote* ProcessZygote();

}  // namespace jcs::jail

#endif  // JCS_JAIL_ZYGOTE_H_
