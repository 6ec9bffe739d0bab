// Creating an io_uring with the best setup flags this kernel accepts, and an
// error an operator can act on when io_uring is unavailable (disabled by
// sysctl, denied by a seccomp profile, missing from the kernel).
#ifndef JCS_RUNTIME_URING_SETUP_H_
#define JCS_RUNTIME_URING_SETUP_H_

#include <liburing.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace jcs::runtime {

struct RingConfig {
  // Submission queue size, 1..32768 (rounded up to a power of two).
  unsigned sq_entries = 256;
  // Completion queue size (IORING_SETUP_CQSIZE, clamped by the kernel); 0 or a
  // value below 2 * sq_entries means the kernel default, 2 * sq_entries.
  unsigned cq_entries = 0;
  // Setup flags outside this mask are never tried. Tests use it to exercise the
  // fallbacks; diagnostics can use it to compare configurations.
  unsigned allowed_flags = ~0u;
};

// The setup attempts, best first. An attempt falls back to the next only when
// the kernel rejects it with EINVAL (a flag it does not know):
//   1. SINGLE_ISSUER | DEFER_TASKRUN | R_DISABLED | SUBMIT_ALL (Linux 6.1+):
//      completions are processed only when the owning thread waits for them,
//      no task-work interrupts of the loop thread. The ring starts disabled so
//      that the thread which first uses it becomes its owner: it must call
//      io_uring_enable_rings() before submitting.
//   2. COOP_TASKRUN | SUBMIT_ALL (5.19+).
//   3. SUBMIT_ALL (5.18+).
//   4. no optional flag.
// CQSIZE and CLAMP are added to each attempt when cq_entries asks for a larger
// completion queue. Returns the flags of the ring that was set up; on error
// `ring` is untouched.
absl::StatusOr<unsigned> SetupRing(const RingConfig& config, io_uring* ring);

// Enables a ring set up with IORING_SETUP_R_DISABLED; with SINGLE_ISSUER the
// calling thread becomes the only one allowed to submit. (Debian's liburing
// 2.3 shared library does not export io_uring_enable_rings, so this calls
// io_uring_register directly.)
absl::Status EnableRing(io_uring* ring);

// The status for io_uring_setup failing with `err` (a positive errno): names
// io_uring, the likely cause and the fix (kernel.io_uring_disabled,
// kernel.io_uring_group, seccomp profiles, RLIMIT_MEMLOCK, fd limits).
absl::Status RingSetupError(int err);

// "SINGLE_ISSUER|DEFER_TASKRUN|..." for the setup flags in `flags`, "none" for
// 0. For logs and `jcs doctor`.
std::string RingFlagsToString(unsigned flags);

}  // namespace jcs::runtime

#endif  // JCS_RUNTIME_URING_SETUP_H_
