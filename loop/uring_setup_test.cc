#include "loop/uring_setup.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

using ::testing::HasSubstr;

// Submits a NOP on `ring` and waits for its completion.
void ExpectNopRoundTrip(io_uring* ring, unsigned flags) {
  if (flags & IORING_SETUP_R_DISABLED) {
    ASSERT_TRUE(EnableRing(ring).ok());
  }
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  ASSERT_NE(sqe, nullptr);
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, 42);
  ASSERT_EQ(io_uring_submit(ring), 1);
  io_uring_cqe* cqe = nullptr;
  ASSERT_EQ(io_uring_wait_cqe(ring, &cqe), 0);
  EXPECT_EQ(io_uring_cqe_get_data64(cqe), 42u);
  EXPECT_EQ(cqe->res, 0);
  io_uring_cqe_seen(ring, cqe);
}

TEST(SetupRingTest, DefaultConfigurationWorks) {
  io_uring ring;
  absl::StatusOr<unsigned> flags = SetupRing(RingConfig(), &ring);
  ASSERT_TRUE(flags.ok()) << flags.status();
  printf("ring flags on this kernel: %s\n", RingFlagsToString(*flags).c_str());
  ExpectNopRoundTrip(&ring, *flags);
  io_uring_queue_exit(&ring);
}

TEST(SetupRingTest, NeverUsesFlagsOutsideTheMask) {
  const unsigned masks[] = {
      ~0u,
      ~(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN),
      ~(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN),
      IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
      0,
  };
  for (unsigned mask : masks) {
    SCOPED_TRACE(RingFlagsToString(mask));
    RingConfig config;
    config.sq_entries = 8;
    config.cq_entries = 64;
    config.allowed_flags = mask;
    io_uring ring;
    absl::StatusOr<unsigned> flags = SetupRing(config, &ring);
    ASSERT_TRUE(flags.ok()) << flags.status();
    EXPECT_EQ(*flags & ~mask, 0u) << RingFlagsToString(*flags);
    // DEFER_TASKRUN is only valid with SINGLE_ISSUER.
    if (*flags & IORING_SETUP_DEFER_TASKRUN) {
      EXPECT_TRUE(*flags & IORING_SETUP_SINGLE_ISSUER);
    }
    ExpectNopRoundTrip(&ring, *flags);
    io_uring_queue_exit(&ring);
  }
}

TEST(SetupRingTest, LargerCompletionQueueIsRequested) {
  RingConfig config;
  config.sq_entries = 16;
  config.cq_entries = 4096;
  io_uring ring;
  absl::StatusOr<unsigned> flags = SetupRing(config, &ring);
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_TRUE(*flags & IORING_SETUP_CQSIZE);
  EXPECT_GE(ring.cq.ring_entries, 4096u);
  EXPECT_EQ(ring.sq.ring_entries, 16u);
  io_uring_queue_exit(&ring);
}

TEST(SetupRingTest, RejectsInvalidSizes) {
  io_uring ring;
  RingConfig config;
  config.sq_entries = 0;
  EXPECT_EQ(SetupRing(config, &ring).status().code(),
            absl::StatusCode::kInvalidArgument);
  config.sq_entries = 65536;
  EXPECT_EQ(SetupRing(config, &ring).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RingSetupErrorTest, NamesTheCauseAndTheFix) {
  const absl::Status eperm = RingSetupError(EPERM);
  EXPECT_EQ(eperm.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(eperm.message(), HasSubstr("io_uring"));
  EXPECT_THAT(eperm.message(), HasSubstr("kernel.io_uring_disabled"));
  EXPECT_THAT(eperm.message(), HasSubstr("seccomp"));

  const absl::Status enosys = RingSetupError(ENOSYS);
  EXPECT_EQ(enosys.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(enosys.message(), HasSubstr("CONFIG_IO_URING"));

  const absl::Status enomem = RingSetupError(ENOMEM);
  EXPECT_EQ(enomem.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(enomem.message(), HasSubstr("ulimit -l"));

  EXPECT_THAT(RingSetupError(EMFILE).message(), HasSubstr("RLIMIT_NOFILE"));
  EXPECT_THAT(RingSetupError(EIO).message(), HasSubstr("io_uring_setup"));
}

// In a child process, makes io_uring_setup fail with `err` through a seccomp
// filter (as a container runtime's default profile or the io_uring_disabled
// sysctl would) and checks SetupRing's error. Returns the child's exit code:
// 0 when the error is right.
int SetupUnderSeccompErrno(int err, const char* expected_text) {
  const pid_t pid = fork();
  if (pid == 0) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO |
                     (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
        filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(10);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(11);
    io_uring ring;
    absl::StatusOr<unsigned> flags = SetupRing(RingConfig(), &ring);
    if (flags.ok()) _exit(12);
    fprintf(stderr, "%s\n", flags.status().ToString().c_str());
    if (!absl::StrContains(flags.status().message(), expected_text)) _exit(13);
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(SetupRingTest, DeniedByPolicyGivesActionableError) {
  EXPECT_EQ(SetupUnderSeccompErrno(EPERM, "kernel.io_uring_disabled"), 0);
  EXPECT_EQ(SetupUnderSeccompErrno(ENOSYS, "CONFIG_IO_URING"), 0);
}

TEST(RingFlagsToStringTest, NamesFlags) {
  EXPECT_EQ(RingFlagsToString(0), "none");
  EXPECT_EQ(RingFlagsToString(IORING_SETUP_SINGLE_ISSUER |
                              IORING_SETUP_DEFER_TASKRUN),
            "SINGLE_ISSUER|DEFER_TASKRUN");
  EXPECT_EQ(RingFlagsToString(1u << 30), "0x40000000");
}

}  // namespace
}  // namespace jcs::runtime
