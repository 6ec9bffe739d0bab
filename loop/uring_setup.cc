#include "loop/uring_setup.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jcs::runtime {
namespace {

constexpr unsigned kMaxSqEntries = 32768;

constexpr unsigned kAttempts[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
        IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

// Drops flags that make no sense without their companions once the mask has
// removed some of them.
unsigned Consistent(unsigned flags) {
  if (!(flags & IORING_SETUP_SINGLE_ISSUER)) {
    flags &= ~IORING_SETUP_DEFER_TASKRUN;
  }
  if (!(flags & IORING_SETUP_CQSIZE)) flags &= ~IORING_SETUP_CLAMP;
  return flags;
}

}  // namespace

absl::StatusOr<unsigned> SetupRing(const RingConfig& config, io_uring* ring) {
  if (config.sq_entries == 0 || config.sq_entries > kMaxSqEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat("io_uring: sq_entries must be in 1..", kMaxSqEntries,
                     ", got ", config.sq_entries));
  }
  const bool want_cq_size = config.cq_entries > 2 * config.sq_entries;
  std::vector<unsigned> tried;
  int last_err = EINVAL;
  for (unsigned attempt : kAttempts) {
    unsigned flags = attempt;
    if (want_cq_size) flags |= IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    flags = Consistent(flags & config.allowed_flags);
    bool seen = false;
    for (unsigned t : tried) seen |= t == flags;
    if (seen) continue;
    tried.push_back(flags);

    io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = flags;
    if (flags & IORING_SETUP_CQSIZE) params.cq_entries = config.cq_entries;
    const int rc = io_uring_queue_init_params(config.sq_entries, ring, &params);
    if (rc == 0) return flags;
    last_err = -rc;
    // EINVAL: a flag (or a flag combination) this kernel does not know. Any
    // other error does not depend on the flags: report it.
    if (last_err != EINVAL) break;
  }
  return RingSetupError(last_err);
}

absl::Status EnableRing(io_uring* ring) {
  if (syscall(__NR_io_uring_register, ring->ring_fd,
              IORING_REGISTER_ENABLE_RINGS, nullptr, 0) != 0) {
    return absl::InternalError(
        absl::StrCat("io_uring_register(IORING_REGISTER_ENABLE_RINGS) failed: ",
                     strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status RingSetupError(int err) {
  const std::string prefix =
      absl::StrCat("io_uring_setup failed: ", strerror(err), " (errno ", err,
                   "); jcs drives every fd through io_uring. ");
  switch (err) {
    case EPERM:
    case EACCES:
      return absl::FailedPreconditionError(absl::StrCat(
          prefix,
          "io_uring is disabled for this process: set the sysctl "
          "kernel.io_uring_disabled=0 (or 1 with this process's group in "
          "kernel.io_uring_group), and make sure no seccomp profile denies "
          "io_uring_setup (container runtimes' default profiles do: run the "
          "supervisor with a profile that allows io_uring_setup, "
          "io_uring_enter and io_uring_register)"));
    case ENOSYS:
      return absl::FailedPreconditionError(absl::StrCat(
          prefix,
          "this kernel has no io_uring (CONFIG_IO_URING=n) or a seccomp "
          "profile answers ENOSYS: jcs needs Linux 5.19 or later with "
          "io_uring enabled"));
    case ENOMEM:
      return absl::ResourceExhaustedError(absl::StrCat(
          prefix,
          "the kernel could not allocate the ring: before Linux 5.12 rings "
          "count against RLIMIT_MEMLOCK (raise `ulimit -l`), otherwise lower "
          "the ring size or free memory in this cgroup"));
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(absl::StrCat(
          prefix, "out of file descriptors: raise RLIMIT_NOFILE (ulimit -n)"));
    case EINVAL:
      return absl::FailedPreconditionError(absl::StrCat(
          prefix,
          "the kernel rejected every ring configuration: jcs needs Linux "
          "5.19 or later"));
    default:
      return absl::InternalError(prefix);
  }
}

std::string RingFlagsToString(unsigned flags) {
  static constexpr struct {
    unsigned flag;
    const char* name;
  } kNames[] = {
      {IORING_SETUP_IOPOLL, "IOPOLL"},
      {IORING_SETUP_SQPOLL, "SQPOLL"},
      {IORING_SETUP_SQ_AFF, "SQ_AFF"},
      {IORING_SETUP_CQSIZE, "CQSIZE"},
      {IORING_SETUP_CLAMP, "CLAMP"},
      {IORING_SETUP_ATTACH_WQ, "ATTACH_WQ"},
      {IORING_SETUP_R_DISABLED, "R_DISABLED"},
      {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
      {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
      {IORING_SETUP_SQE128, "SQE128"},
      {IORING_SETUP_CQE32, "CQE32"},
      {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
      {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
  };
  std::vector<std::string> names;
  unsigned known = 0;
  for (const auto& n : kNames) {
    known |= n.flag;
    if (flags & n.flag) names.push_back(n.name);
  }
  if (flags & ~known)
    names.push_back(absl::StrCat("0x", absl::Hex(flags & ~known)));
  if (names.empty()) return "none";
  return absl::StrJoin(names, "|");
}

}  // namespace jcs::runtime
