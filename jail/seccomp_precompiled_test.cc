#include "jail/seccomp_precompiled.h"

#include <cstring>

#include "gtest/gtest.h"
#include "jail/seccomp_policy.h"

namespace jcs::jail {
namespace {

// The build-time program must be exactly what libseccomp compiles on this host
// now; a stale or tampered generated file fails here.
TEST(SeccompPrecompiledTest, MatchesARuntimeCompile) {
  absl::StatusOr<SeccompPolicy> fresh = SeccompPolicy::CompileDefault();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const SeccompPolicy& pre = PrecompiledDefaultPolicy();
  ASSERT_EQ(pre.instruction_count(), fresh->instruction_count());
  EXPECT_EQ(memcmp(pre.program()->filter, fresh->program()->filter,
                   pre.instruction_count() * sizeof(sock_filter)),
            0);
  EXPECT_EQ(pre.eperm_syscalls(), fresh->eperm_syscalls());
  EXPECT_EQ(pre.program()->len, pre.instruction_count());
}

TEST(SeccompPrecompiledTest, AnswersLikeTheCompiledPolicy) {
  const SeccompPolicy& pre = PrecompiledDefaultPolicy();
  EXPECT_EQ(pre.ErrnoFor(101 /* ptrace */), EPERM);
  EXPECT_EQ(pre.ErrnoFor(139 /* sysfs */), ENOSYS);
}

}  // namespace
}  // namespace jcs::jail
