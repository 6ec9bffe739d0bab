// Escape suite: the seccomp policy, through tests/syscall_probe run inside the
// jail. Each probe makes one syscall with invalid arguments, so unfiltered it
// fails harmlessly (EFAULT/EBADF/EINVAL) and filtered it gives EPERM/ENOSYS.
#include <signal.h>
#include <sys/syscall.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/jcs_runner.h"

namespace jcs::testing {
namespace {

struct Syscall {
  const char* name;
  int nr;
};

// Probes the issue names (plus the container default profile's certain
// denials): each must fail with EPERM inside the jail and be reported as a
// violation of the syscall it makes.
const std::map<std::string, Syscall> kDenied = {
    {"ptrace", {"ptrace", SYS_ptrace}},
    {"process_vm_readv", {"process_vm_readv", SYS_process_vm_readv}},
    {"process_vm_writev", {"process_vm_writev", SYS_process_vm_writev}},
    {"bpf", {"bpf", SYS_bpf}},
    {"io_uring_setup", {"io_uring_setup", SYS_io_uring_setup}},
    {"io_uring_enter", {"io_uring_enter", SYS_io_uring_enter}},
    {"io_uring_register", {"io_uring_register", SYS_io_uring_register}},
    {"userfaultfd", {"userfaultfd", SYS_userfaultfd}},
    {"keyctl", {"keyctl", SYS_keyctl}},
    {"add_key", {"add_key", SYS_add_key}},
    {"request_key", {"request_key", SYS_request_key}},
    {"perf_event_open", {"perf_event_open", SYS_perf_event_open}},
    {"mount", {"mount", SYS_mount}},
    {"umount2", {"umount2", SYS_umount2}},
    {"fsopen", {"fsopen", __NR_fsopen}},
    {"fsconfig", {"fsconfig", __NR_fsconfig}},
    {"fsmount", {"fsmount", __NR_fsmount}},
    {"fspick", {"fspick", __NR_fspick}},
    {"move_mount", {"move_mount", __NR_move_mount}},
    {"open_tree", {"open_tree", __NR_open_tree}},
    {"mount_setattr", {"mount_setattr", __NR_mount_setattr}},
    {"chroot", {"chroot", SYS_chroot}},
    {"pivot_root", {"pivot_root", SYS_pivot_root}},
    {"setns", {"setns", SYS_setns}},
    {"unshare_newuser", {"unshare", SYS_unshare}},
    {"unshare_newns", {"unshare", SYS_unshare}},
    {"unshare_newtime", {"unshare", SYS_unshare}},
    {"clone_newuser", {"clone", SYS_clone}},
    {"kexec_load", {"kexec_load", SYS_kexec_load}},
    {"kexec_file_load", {"kexec_file_load", SYS_kexec_file_load}},
    {"init_module", {"init_module", SYS_init_module}},
    {"finit_module", {"finit_module", SYS_finit_module}},
    {"delete_module", {"delete_module", SYS_delete_module}},
    {"swapon", {"swapon", SYS_swapon}},
    {"swapoff", {"swapoff", SYS_swapoff}},
    {"reboot", {"reboot", SYS_reboot}},
    {"open_by_handle_at", {"open_by_handle_at", SYS_open_by_handle_at}},
    {"name_to_handle_at", {"name_to_handle_at", SYS_name_to_handle_at}},
    {"syslog", {"syslog", SYS_syslog}},
    {"acct", {"acct", SYS_acct}},
    {"quotactl", {"quotactl", SYS_quotactl}},
    {"lookup_dcookie", {"lookup_dcookie", SYS_lookup_dcookie}},
    {"iopl", {"iopl", SYS_iopl}},
    {"ioperm", {"ioperm", SYS_ioperm}},
    {"settimeofday", {"settimeofday", SYS_settimeofday}},
    {"clock_settime", {"clock_settime", SYS_clock_settime}},
    {"uselib", {"uselib", SYS_uselib}},
    {"socket_raw", {"socket", SYS_socket}},
    {"socket_packet", {"socket", SYS_socket}},
    {"ioctl_tiocsti", {"ioctl", SYS_ioctl}},
    {"ioctl_tiocsti_high", {"ioctl", SYS_ioctl}},
    {"ioctl_tioclinux", {"ioctl", SYS_ioctl}},
    {"personality_read_implies_exec", {"personality", SYS_personality}},
};

// Probes that ordinary programs need: the host's own result, unchanged.
const std::map<std::string, std::string> kAllowed = {
    {"getpid", "OK"},
    {"read_badfd", "EBADF"},
    {"socket_inet", "OK"},
    {"socket_unix", "OK"},
    {"socketpair_unix", "OK"},
    {"clone_plain", "OK"},
    {"ioctl_fionread", "EBADF"},
    {"unshare_files", "OK"},
    {"personality_query", "OK"},
};

std::map<std::string, std::string> ParseProbeOutput(const std::string& out) {
  std::map<std::string, std::string> results;
  std::istringstream in(out);
  std::string name, result;
  while (in >> name >> result) results[name] = result;
  return results;
}

std::vector<std::string> AllProbes() {
  const ProcessResult r = RunProcess({ProbePath(), "--list"});
  std::vector<std::string> names;
  std::istringstream in(r.out);
  std::string name;
  while (in >> name) {
    if (name != "x32_getpid") names.push_back(name);
  }
  return names;
}

// The report's violations as name -> {nr, count}.
std::map<std::string, std::pair<int, long>> Violations(const JcsResult& r) {
  std::map<std::string, std::pair<int, long>> out;
  for (const auto& v : r.report["violations"]) {
    out[v["syscall"].get<std::string>()] = {v["nr"].get<int>(),
                                            v["count"].get<long>()};
  }
  return out;
}

// Control: unjailed, the dangerous probes are not refused (so EPERM in the
// jail comes from the jail).
TEST(EscapeSeccomp, ProbeIsNotRefusedOnTheHost) {
  const std::vector<std::string> probes = {
      "ptrace",        "bpf",           "mount",      "unshare_newuser",
      "clone_newuser", "ioctl_tiocsti", "socket_raw", "io_uring_setup",
      "keyctl",        "setns",         "open_tree",  "chroot",
      "clone3"};
  std::vector<std::string> argv = {ProbePath()};
  argv.insert(argv.end(), probes.begin(), probes.end());
  const ProcessResult r = RunProcess(argv);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const auto results = ParseProbeOutput(r.out);
  for (const std::string& p : probes) {
    ASSERT_TRUE(results.count(p)) << p;
    EXPECT_NE(results.at(p), "EPERM") << p;
    EXPECT_NE(results.at(p), "ENOSYS") << p;
  }
}

TEST(EscapeSeccomp, EveryProbeGetsThePolicysAnswerAndIsReported) {
  Project project;
  project.InstallProbe();
  std::vector<std::string> argv = {"./syscall_probe"};
  const std::vector<std::string> probes = AllProbes();
  ASSERT_GT(probes.size(), 60u);
  argv.insert(argv.end(), probes.begin(), probes.end());
  const JcsResult r = RunJail(project, {}, argv);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const auto results = ParseProbeOutput(r.out);
  // The program kept running through every denial: one line per probe.
  ASSERT_EQ(results.size(), probes.size()) << r.Describe();

  std::map<std::string, long> expected_counts;
  std::map<std::string, int> nr_of;
  for (const auto& [probe, call] : kDenied) {
    ASSERT_TRUE(results.count(probe)) << probe;
    EXPECT_EQ(results.at(probe), "EPERM") << probe << " is not denied";
    ++expected_counts[call.name];
    nr_of[call.name] = call.nr;
  }
  for (const auto& [probe, want] : kAllowed) {
    ASSERT_TRUE(results.count(probe)) << probe;
    EXPECT_EQ(results.at(probe), want) << probe << " should be allowed";
  }
  EXPECT_EQ(results.at("clone3"), "ENOSYS")
      << "clone3 must give ENOSYS (libc falls back to clone)";
  for (const char* probe : {"sysfs", "unassigned_nr"}) {
    EXPECT_TRUE(results.at(probe) == "EPERM" || results.at(probe) == "ENOSYS")
        << probe << ": " << results.at(probe);
  }

  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "violation");
  EXPECT_EQ(r.report["exit_code"], 0);
  EXPECT_EQ(r.report["layers"]["seccomp"], "enforced");
  const auto violations = Violations(r);
  for (const auto& [name, count] : expected_counts) {
    auto it = violations.find(name);
    ASSERT_NE(it, violations.end())
        << name << " missing from the report's violations: "
        << r.report["violations"].dump();
    EXPECT_EQ(it->second.first, nr_of[name]) << name;
    EXPECT_EQ(it->second.second, count) << name;
  }
  // Allowed calls are not violations.
  for (const char* name : {"getpid", "read", "socketpair", "clone3"}) {
    if (std::string(name) == "socketpair" &&
        results.at("socketpair_inet") == "EPERM") {
      continue;  // socketpair(AF_INET) may be denied
    }
    EXPECT_EQ(violations.count(name), 0u) << name;
  }
}

// Counting is exact, the program continues after each denial, and a flood of
// denials is answered (no stall).
TEST(EscapeSeccomp, ViolationsAreCountedExactly) {
  Project project;
  project.InstallProbe();
  std::vector<std::string> argv = {"./syscall_probe"};
  for (int i = 0; i < 300; ++i) argv.push_back("ptrace");
  argv.insert(argv.end(), {"bpf", "getpid", "mount", "mount", "ioctl_tiocsti",
                           "ioctl_tiocsti_high", "getpid"});
  const JcsResult r = RunJail(project, {"--timeout", "20"}, argv);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(r.wall_s, 15) << r.Describe();
  // All 307 lines, the last one after every denial.
  std::istringstream in(r.out);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 307);
  EXPECT_NE(r.out.find("ioctl_tiocsti_high EPERM\ngetpid OK\n"),
            std::string::npos)
      << r.out.substr(r.out.size() > 300 ? r.out.size() - 300 : 0);
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "violation");
  const auto violations = Violations(r);
  const std::map<std::string, std::pair<int, long>> expected = {
      {"ptrace", {SYS_ptrace, 300}},
      {"bpf", {SYS_bpf, 1}},
      {"mount", {SYS_mount, 2}},
      {"ioctl", {SYS_ioctl, 2}}};
  EXPECT_EQ(violations, expected) << r.report["violations"].dump();
}

TEST(EscapeSeccomp, CleanRunHasNoViolations) {
  Project project;
  project.InstallProbe();
  const JcsResult r = RunJail(project, {},
                              {"./syscall_probe", "getpid", "read_badfd",
                               "socket_unix", "clone_plain"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.has_report);
  EXPECT_EQ(r.report["status"], "exited");
  EXPECT_TRUE(r.report["violations"].empty()) << r.report.dump();
}

// An x32 syscall (the 0x40000000 bit) kills the process at once: the filter
// rejects the ABI instead of letting it reach a different syscall table.
TEST(EscapeSeccomp, X32SyscallKillsWithSigsys) {
  Project project;
  project.InstallProbe();
  const JcsResult r = RunJail(
      project, {}, {"./syscall_probe", "getpid", "x32_getpid", "getpid"});
  EXPECT_EQ(r.exit_code, 128 + SIGSYS) << r.Describe();
  EXPECT_EQ(r.out, "getpid OK\nx32_getpid CALLING\n")
      << "the x32 call returned instead of killing the process";
  ASSERT_TRUE(r.has_report) << r.Describe();
  EXPECT_EQ(r.report["status"], "signaled") << r.report.dump();
  EXPECT_EQ(r.report["signal"], SIGSYS);
  EXPECT_EQ(r.report["exit_code"], 128 + SIGSYS);
}

}  // namespace
}  // namespace jcs::testing
