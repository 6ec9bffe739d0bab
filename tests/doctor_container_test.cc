// `jcs doctor` in a container that withholds one privilege the jail needs:
// each privilege is taken away in turn, the way a container runtime does
// (capabilities dropped, a seccomp profile refusing namespaces, an LSM
// refusing mount, a masked /proc, a read-only cgroupfs), and doctor must exit
// non-zero with a fix that names the docker run flag and the Kubernetes
// securityContext setting to add.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

using ::testing::HasSubstr;

struct DoctorRun {
  int exit_code = -1;
  nlohmann::json layers;
  std::string out;
};

// Runs `jcs doctor --json` in a child that first runs `setup` (system calls
// only: it runs between fork and exec).
DoctorRun RunDoctor(const std::function<bool()>& setup) {
  DoctorRun run;
  const std::string jcs = JcsBinary();
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return run;
  const pid_t pid = fork();
  if (pid == 0) {
    if (dup2(out[1], 1) < 0 || !setup()) _exit(127);
    const char* argv[] = {jcs.c_str(), "doctor", "--json",
                          "--path",    "/tmp",   nullptr};
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  close(out[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) run.out.append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.layers = nlohmann::json::parse(run.out, nullptr, false);
  return run;
}

// The row named `name` ({} when absent).
nlohmann::json Layer(const DoctorRun& run, const std::string& name) {
  if (!run.layers.is_array()) return {};
  for (const nlohmann::json& layer : run.layers) {
    if (layer.value("name", "") == name) return layer;
  }
  return {};
}

bool DropCapability(int cap) {
  if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return false;
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[cap / 32].effective &= ~(1u << (cap % 32));
  data[cap / 32].permitted &= ~(1u << (cap % 32));
  data[cap / 32].inheritable &= ~(1u << (cap % 32));
  return syscall(SYS_capset, &header, data) == 0;
}

TEST(DoctorContainerTest, BaselineHostPasses) {
  const DoctorRun run = RunDoctor([] { return true; });
  ASSERT_TRUE(run.layers.is_array()) << run.out;
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(Layer(run, "capabilities").value("available", false)) << run.out;
}

TEST(DoctorContainerTest, EachDroppedCapabilityIsNamedWithItsSetting) {
  for (const auto& [cap, name] : std::vector<std::pair<int, std::string>>{
           {CAP_SETUID, "SETUID"},
           {CAP_SETGID, "SETGID"},
           {CAP_CHOWN, "CHOWN"},
           {CAP_DAC_OVERRIDE, "DAC_OVERRIDE"}}) {
    const int c = cap;
    const DoctorRun run = RunDoctor([c] { return DropCapability(c); });
    const nlohmann::json row = Layer(run, "capabilities");
    EXPECT_EQ(run.exit_code, 1) << name << "\n" << run.out;
    EXPECT_FALSE(row.value("available", true)) << name << "\n" << row;
    const std::string fix = row.value("fix", "");
    EXPECT_THAT(fix, HasSubstr(absl::StrCat("add CAP_", name)));
    EXPECT_THAT(fix,
                HasSubstr(absl::StrCat("securityContext.capabilities.add: [\"",
                                       name, "\"]")));
    EXPECT_THAT(fix, HasSubstr(absl::StrCat("--cap-add ", name)));
  }
}

// The filter a container runtime's default profile amounts to for the jail:
// namespace-creating clone and unshare refused (EPERM), clone3 unknown
// (ENOSYS); or, with `mount_eacces`, the mount family refused with EACCES
// the way AppArmor's container profile refuses it.
std::vector<sock_filter> RuntimeFilter(bool mount_eacces) {
  constexpr uint32_t kNsFlags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID |
                                CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                                CLONE_NEWCGROUP;
  const uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;
  const uint32_t eacces = SECCOMP_RET_ERRNO | EACCES;
  std::vector<sock_filter> f = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
  };
  if (mount_eacces) {
    for (int nr : {SYS_mount, 428 /* open_tree */, 429 /* move_mount */,
                   430 /* fsopen */, 432 /* fsmount */}) {
      f.push_back(
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
      f.push_back(BPF_STMT(BPF_RET | BPF_K, eacces));
    }
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    return f;
  }
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, eperm));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435 /* clone3 */, 0, 1));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 1, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, kNsFlags, 0, 1));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, eperm));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  return f;
}

std::function<bool()> WithFilter(const std::vector<sock_filter>& filter) {
  const sock_fprog prog = {static_cast<unsigned short>(filter.size()),
                           const_cast<sock_filter*>(filter.data())};
  return [prog] {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
  };
}

TEST(DoctorContainerTest, SeccompRefusingNamespacesNamesUnconfined) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the test's filter is written for x86_64";
#endif
  const std::vector<sock_filter> filter = RuntimeFilter(false);
  const DoctorRun run = RunDoctor(WithFilter(filter));
  EXPECT_EQ(run.exit_code, 1) << run.out;
  const nlohmann::json row = Layer(run, "user_namespace");
  EXPECT_FALSE(row.value("available", true)) << row;
  EXPECT_THAT(row.value("fix", ""),
              HasSubstr("securityContext.seccompProfile.type: Unconfined"));
  EXPECT_THAT(row.value("fix", ""),
              HasSubstr("--security-opt seccomp=unconfined"));
  EXPECT_THAT(Layer(run, "clone3").value("fix", ""),
              HasSubstr("seccompProfile.type: Unconfined"));
}

TEST(DoctorContainerTest, MountDeniedByLsmNamesAppArmorUnconfined) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the test's filter is written for x86_64";
#endif
  const std::vector<sock_filter> filter = RuntimeFilter(true);
  const DoctorRun run = RunDoctor(WithFilter(filter));
  EXPECT_EQ(run.exit_code, 1) << run.out;
  for (const char* name : {"new_mount_api", "proc_in_pid_namespace"}) {
    const nlohmann::json row = Layer(run, name);
    EXPECT_FALSE(row.value("available", true)) << row;
    EXPECT_THAT(row.value("fix", ""),
                HasSubstr("securityContext.appArmorProfile.type: Unconfined"))
        << name;
    EXPECT_THAT(row.value("fix", ""),
                HasSubstr("--security-opt apparmor=unconfined"))
        << name;
  }
}

TEST(DoctorContainerTest, MaskedProcNamesProcMountUnmasked) {
  // A runtime masks /proc entries by mounting over them.
  const DoctorRun run = RunDoctor([] {
    return unshare(CLONE_NEWNS) == 0 &&
           mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           mount("/dev/null", "/proc/keys", nullptr, MS_BIND, nullptr) == 0;
  });
  EXPECT_EQ(run.exit_code, 1) << run.out;
  const nlohmann::json row = Layer(run, "proc_in_pid_namespace");
  EXPECT_FALSE(row.value("available", true)) << row;
  EXPECT_THAT(row.value("fix", ""),
              HasSubstr("securityContext.procMount: Unmasked"));
  EXPECT_THAT(row.value("fix", ""),
              HasSubstr("--security-opt systempaths=unconfined"));
}

TEST(DoctorContainerTest, ReadOnlyCgroupfsNamesTheCgroupSetting) {
  // Every cgroup mount, as a runtime mounts them for an unprivileged
  // container: read-only.
  std::vector<std::string> targets;
  std::istringstream in(ReadFileOrEmpty("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    const size_t sep = line.find(" - cgroup");
    if (f.size() > 4 && sep != std::string::npos) targets.push_back(f[4]);
  }
  ASSERT_FALSE(targets.empty()) << "no cgroup mounts on this host";
  const DoctorRun run = RunDoctor([&targets] {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return false;
    }
    for (const std::string& target : targets) {
      if (mount(nullptr, target.c_str(), nullptr,
                MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
        return false;
      }
    }
    return true;
  });
  EXPECT_EQ(run.exit_code, 1) << run.out;
  int named = 0;
  for (const nlohmann::json& layer : run.layers) {
    const std::string name = layer.value("name", "");
    if (name != "cgroup_v2" && name.rfind("cgroup_v1.", 0) != 0) continue;
    EXPECT_FALSE(layer.value("available", true)) << layer;
    const std::string fix = layer.value("fix", "");
    if (fix.find("read-only") == std::string::npos) continue;
    EXPECT_THAT(fix, HasSubstr("--cgroupns=private"));
    EXPECT_THAT(fix, HasSubstr("securityContext.privileged: true"));
    ++named;
  }
  EXPECT_GT(named, 0) << run.out;
}

}  // namespace
}  // namespace jcs::serve_test
