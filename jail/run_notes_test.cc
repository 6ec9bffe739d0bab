#include "jail/run_notes.h"

#include <signal.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

using Lines = std::vector<std::string>;

proto::JailSpec Spec() {
  proto::JailSpec spec;
  spec.set_memory_bytes(64ull << 20);
  spec.set_fsize_bytes(1ull << 30);
  spec.set_pids(16);
  return spec;
}

RunResult Exited(int code) {
  RunResult r;
  r.status = RunStatus::kExited;
  r.exit_code = code;
  return r;
}

TEST(RunNotesTest, CleanRunSaysNothing) {
  EXPECT_EQ(RunNotes(Spec(), Exited(0)), Lines{});
  EXPECT_EQ(RunNotes(Spec(), Exited(3)), Lines{});
  RunResult setup;  // kSetupError: the error line says it all
  setup.oom_kills = 1;
  EXPECT_EQ(RunNotes(Spec(), setup), Lines{});
}

TEST(RunNotesTest, OomKill) {
  RunResult r;
  r.status = RunStatus::kOom;
  r.signal = SIGKILL;
  r.exit_code = 137;
  r.oom_kills = 1;
  EXPECT_EQ(RunNotes(Spec(), r), Lines{"killed by the memory limit 64M"});
  // A child was killed, the program went on.
  r.signal = 0;
  r.exit_code = 1;
  r.oom_kills = 2;
  EXPECT_EQ(RunNotes(Spec(), r),
            Lines{"the memory limit 64M killed 2 processes in the jail"});
}

TEST(RunNotesTest, FileSizeLimit) {
  RunResult r;
  r.status = RunStatus::kSignaled;
  r.signal = SIGXFSZ;
  r.exit_code = 128 + SIGXFSZ;
  EXPECT_EQ(RunNotes(Spec(), r),
            Lines{"killed by SIGXFSZ: a file reached the file-size limit 1G "
                  "(--fsize)"});
}

TEST(RunNotesTest, SeccompDenialsWithNamesOrNumbers) {
  RunResult r = Exited(0);
  r.status = RunStatus::kViolation;
  r.violations = {{101, "ptrace", 2}, {165, "mount", 1}, {999, "", 1}};
  EXPECT_EQ(RunNotes(Spec(), r),
            Lines{"seccomp denied 4 calls: ptrace (2), mount (1), syscall "
                  "999 (1)"});
  r.violations.clear();
  for (int i = 0; i < 7; ++i) r.violations.push_back({i, "x", 1});
  EXPECT_EQ(RunNotes(Spec(), r),
            Lines{"seccomp denied 7 calls: x (1), x (1), x (1), x (1), x (1), "
                  "..."});
}

TEST(RunNotesTest, PidsLimit) {
  RunResult r = Exited(2);
  r.status = RunStatus::kPidsLimit;
  r.pids_limit_hits = 1;
  EXPECT_EQ(RunNotes(Spec(), r),
            Lines{"the pids limit 16 refused 1 fork (--pids)"});
}

TEST(RunNotesTest, EgressRefusalsOnlyWhenSomethingWasAllowed) {
  RunResult r = Exited(0);
  r.egress.enabled = true;
  r.egress.denied = 3;
  r.egress.denials = {{"evil.test", 443, "network_endpoint_denied", ""},
                      {"evil.test", 443, "network_endpoint_denied", ""},
                      {"10.0.0.1", 80, "network_endpoint_denied", ""}};
  proto::JailSpec spec = Spec();
  // No --allow-host: Finalize's warning already said every destination is
  // refused (one line per fact).
  EXPECT_EQ(RunNotes(spec, r), Lines{});
  spec.add_allow_host("example.com");
  EXPECT_EQ(RunNotes(spec, r),
            Lines{"the egress proxy refused 3 connections: evil.test:443 "
                  "(network_endpoint_denied), 10.0.0.1:80 "
                  "(network_endpoint_denied)"});
}

TEST(RunNotesTest, OneLinePerFactInAFixedOrder) {
  RunResult r;
  r.status = RunStatus::kOom;
  r.signal = SIGKILL;
  r.oom_kills = 1;
  r.pids_limit_hits = 4;
  r.violations = {{101, "ptrace", 1}};
  EXPECT_EQ(RunNotes(Spec(), r),
            (Lines{"killed by the memory limit 64M",
                   "seccomp denied 1 call: ptrace (1)",
                   "the pids limit 16 refused 4 forks (--pids)"}));
}

}  // namespace
}  // namespace jcs::jail
