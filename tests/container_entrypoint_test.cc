// `jcs serve` as a container entrypoint, without a container engine: the
// daemon is started the way a runtime starts one, as PID 1 of new pid, mount,
// net, ipc, uts and cgroup namespaces, with its own /proc, fresh cgroup
// mounts of its cgroup namespace, a read-only root filesystem (only its
// socket and state volumes writable), no_new_privs and exactly the
// capabilities that deploy/kubernetes/deployment.yaml adds (everything else
// dropped from the bounding set). Then `exec` calls must run at normal speed
// (the issue once saw 16-25 s per call from cgroup rmdir retries) and SIGTERM
// must drain within the grace period plus 200 ms.
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

constexpr int kNamespaces = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
                            CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;

std::string ManifestPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".",
                      "/jcs/deploy/kubernetes/deployment.yaml");
}

// The Deployment's `capabilities.add: [...]` line as capability numbers
// (empty when the line or a name is not understood).
std::vector<int> ManifestCapabilities(std::string* names_out) {
  static const std::pair<const char*, int> kKnown[] = {
      {"CHOWN", CAP_CHOWN},        {"DAC_OVERRIDE", CAP_DAC_OVERRIDE},
      {"FOWNER", CAP_FOWNER},      {"KILL", CAP_KILL},
      {"SETUID", CAP_SETUID},      {"SETGID", CAP_SETGID},
      {"SYS_ADMIN", CAP_SYS_ADMIN}};
  std::istringstream in(ReadFileOrEmpty(ManifestPath()));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view view = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&view, "add: [") ||
        !absl::ConsumeSuffix(&view, "]")) {
      continue;
    }
    std::vector<int> caps;
    for (absl::string_view name : absl::StrSplit(view, ',')) {
      name = absl::StripAsciiWhitespace(name);
      if (!absl::ConsumePrefix(&name, "\"") ||
          !absl::ConsumeSuffix(&name, "\"")) {
        return {};
      }
      bool found = false;
      for (const auto& [known, cap] : kKnown) {
        if (name == known) {
          caps.push_back(cap);
          found = true;
        }
      }
      if (!found) return {};
      absl::StrAppend(names_out, names_out->empty() ? "" : ",", name);
    }
    return caps;
  }
  return {};
}

struct CgroupMount {
  std::string target;
  std::string fstype;
  std::string options;  // the super options (controllers), e.g. "rw,memory"
};

// The cgroup hierarchies mounted under /sys/fs/cgroup, to be mounted again
// inside the daemon's cgroup namespace (as a runtime does).
std::vector<CgroupMount> HostCgroupMounts() {
  std::vector<CgroupMount> mounts;
  std::istringstream in(ReadFileOrEmpty("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    const size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::vector<std::string> head = absl::StrSplit(line.substr(0, sep), ' ');
    std::vector<std::string> tail = absl::StrSplit(line.substr(sep + 3), ' ');
    if (head.size() < 5 || tail.size() < 3) continue;
    if (tail[0] != "cgroup" && tail[0] != "cgroup2") continue;
    if (head[4].rfind("/sys/fs/cgroup/", 0) != 0) continue;
    mounts.push_back({head[4], tail[0], tail[2]});
  }
  return mounts;
}

// Everything the child needs, prepared before clone: the setup below runs
// between clone and exec and only makes system calls.
struct ContainerSetup {
  std::string volume;  // the daemon's temp dir: its socket and state volume
  std::vector<CgroupMount> cgroups;
  std::vector<int> caps;
};

bool SetUpContainer(const ContainerSetup& s) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return false;
  }
  // The volume: a separate writable mount, so it stays writable below.
  if (mount(s.volume.c_str(), s.volume.c_str(), nullptr, MS_BIND | MS_REC,
            nullptr) != 0) {
    return false;
  }
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            nullptr) != 0) {
    return false;
  }
  // Fresh cgroup mounts: rooted at the daemon's cgroup namespace, writable
  // (cgroupns=private with a writable cgroupfs).
  if (mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV,
            "mode=755") != 0) {
    return false;
  }
  for (const CgroupMount& m : s.cgroups) {
    if (mkdir(m.target.c_str(), 0755) != 0 && errno != EEXIST) return false;
    if (mount(m.fstype.c_str(), m.target.c_str(), m.fstype.c_str(),
              MS_NOSUID | MS_NODEV | MS_NOEXEC,
              m.fstype == "cgroup2" ? nullptr : m.options.c_str()) != 0) {
      return false;
    }
  }
  // readOnlyRootFilesystem.
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) !=
      0) {
    return false;
  }
  static const char kHost[] = "jcs-container";
  if (sethostname(kHost, sizeof(kHost) - 1) != 0) return false;
  // capabilities: drop ALL, add the manifest's; allowPrivilegeEscalation:
  // false (no_new_privs).
  uint64_t keep = 0;
  for (int cap : s.caps) keep |= uint64_t{1} << cap;
  for (int cap = 0; cap <= 63; ++cap) {
    if ((keep >> cap & 1) == 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
        errno != EINVAL) {
      return false;
    }
  }
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted =
        static_cast<uint32_t>(keep >> (32 * i));
  }
  if (syscall(SYS_capset, &header, data) != 0) return false;
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

std::string StatusField(pid_t pid, const std::string& field) {
  std::istringstream in(
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/status")));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::string(absl::StripAsciiWhitespace(
          absl::string_view(line).substr(field.size() + 1)));
    }
  }
  return "";
}

std::string NsLink(const std::string& proc_pid, const char* ns) {
  char buf[128];
  const std::string path = absl::StrCat("/proc/", proc_pid, "/ns/", ns);
  const ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, n) : "";
}

// Whether a process named "sleep" runs at most `depth` generations below
// `pid` (the daemon, its zygote, a jail's init, the program).
bool HasSleepBelow(pid_t pid, int depth) {
  if (depth == 0) return false;
  for (pid_t child : ChildrenOf(pid)) {
    if (CommOf(child) == "sleep" || HasSleepBelow(child, depth - 1)) {
      return true;
    }
  }
  return false;
}

class ContainerEntrypointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    caps_ = ManifestCapabilities(&cap_names_);
    ASSERT_FALSE(caps_.empty())
        << "no understood `add: [...]` line in " << ManifestPath();
  }

  DaemonOptions Options(const std::string& extra_config = "") {
    DaemonOptions options;
    options.extra_config = extra_config;
    options.clone_flags = kNamespaces;
    return options;
  }

  // Starts `daemon` with the container set-up (the volume is its temp dir,
  // known only once the Daemon exists).
  bool StartContained(Daemon& daemon) {
    setup_.volume = daemon.dir().path();
    setup_.cgroups = HostCgroupMounts();
    setup_.caps = caps_;
    return daemon.Start();
  }

  std::function<bool()> SetupFn() {
    return [this] { return SetUpContainer(setup_); };
  }

  std::vector<int> caps_;
  std::string cap_names_;
  ContainerSetup setup_;
};

// Reads the json document of a tool call: status, stdout.
nlohmann::json Parse(const std::string& doc) {
  return nlohmann::json::parse(doc, nullptr, false);
}

TEST_F(ContainerEntrypointTest, ExecRunsAtNormalSpeedAsContainerPid1) {
  DaemonOptions options = Options();
  options.child_setup = SetupFn();
  Daemon daemon(options);
  ASSERT_TRUE(StartContained(daemon)) << daemon.Log();
  const pid_t pid = daemon.pid();

  // The container as built: PID 1, its own namespaces, the dropped
  // privileges and the read-only root.
  std::vector<std::string> nspid = absl::StrSplit(
      StatusField(pid, "NSpid"), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  ASSERT_EQ(nspid.size(), 2u);
  EXPECT_EQ(nspid.back(), "1") << "the daemon is not PID 1 of its namespace";
  for (const char* ns : {"pid", "mnt", "net", "ipc", "uts", "cgroup"}) {
    EXPECT_NE(NsLink(absl::StrCat(pid), ns), NsLink("self", ns))
        << "the daemon shares the test's " << ns << " namespace";
  }
  uint64_t expected_caps = 0;
  for (int cap : caps_) expected_caps |= uint64_t{1} << cap;
  EXPECT_EQ(std::stoull(StatusField(pid, "CapBnd"), nullptr, 16), expected_caps)
      << "bounding set is not the manifest's " << cap_names_;
  EXPECT_EQ(std::stoull(StatusField(pid, "CapEff"), nullptr, 16),
            expected_caps);
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  bool root_read_only = false;
  std::istringstream mountinfo(
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/mountinfo")));
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 5 && f[4] == "/") {
      root_read_only = absl::StartsWith(f[5], "ro");
    }
  }
  EXPECT_TRUE(root_read_only) << "the daemon's root is not read-only";
  ASSERT_EQ(PingError(daemon.socket_path()), "");

  const std::string root = daemon.dir().MakeOwnedDir("project");
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
      tools::ControlClient::Connect(daemon.socket_path());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> project = (*client)->StartProject(root, {});
  ASSERT_TRUE(project.ok()) << project.status() << "\n" << daemon.Log();

  std::vector<double> seconds;
  for (int i = 0; i < 20; ++i) {
    const double start = NowSeconds();
    absl::StatusOr<std::string> doc = (*client)->RunTool(
        *project, "exec",
        absl::StrCat(R"({"argv": ["/bin/sh", "-c", "echo call )", i, R"("]})"),
        "{}");
    seconds.push_back(NowSeconds() - start);
    ASSERT_TRUE(doc.ok()) << doc.status();
    const nlohmann::json parsed = Parse(*doc);
    ASSERT_EQ(parsed.value("status", ""), "ok") << *doc << "\n" << daemon.Log();
    EXPECT_EQ(parsed["result"].value("stdout", ""),
              absl::StrCat("call ", i, "\n"))
        << *doc;
    EXPECT_LT(seconds.back(), 2.0)
        << "exec call " << i << " took " << seconds.back() << " s";
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  printf("exec in the container: p50 %.1f ms, max %.1f ms over %zu calls\n",
         1000 * (sorted[9] + sorted[10]) / 2, 1000 * sorted.back(),
         sorted.size());
  EXPECT_EQ(daemon.StopCleanly(), "");
}

// SIGTERM while a call is running: the call gets drain_grace_ms, is then
// killed, its answer flushed, and the daemon exits 0 within the grace plus
// 200 ms.
TEST_F(ContainerEntrypointTest, SigtermDrainsWithinGracePlusFlush) {
  constexpr int kGraceMs = 1000;
  DaemonOptions options = Options(absl::StrCat("drain_grace_ms: ", kGraceMs));
  options.child_setup = SetupFn();
  Daemon daemon(options);
  ASSERT_TRUE(StartContained(daemon)) << daemon.Log();
  const std::string root = daemon.dir().MakeOwnedDir("project");
  absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
      tools::ControlClient::Connect(daemon.socket_path());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> project = (*client)->StartProject(root, {});
  ASSERT_TRUE(project.ok()) << project.status() << "\n" << daemon.Log();

  absl::StatusOr<std::string> answer;
  double answered_at = 0;
  std::thread call([&] {
    answer = (*client)->RunTool(*project, "exec",
                                R"({"argv": ["/bin/sleep", "60"]})", "{}");
    answered_at = NowSeconds();
  });
  // The call is running once the jail's program is a sleep somewhere below
  // the daemon.
  const auto sleep_running = [&] { return HasSleepBelow(daemon.pid(), 5); };
  const double deadline = NowSeconds() + 15;
  while (!sleep_running() && NowSeconds() < deadline) usleep(2000);
  ASSERT_TRUE(sleep_running()) << "the exec call never started\n"
                               << daemon.Log();

  const double start = NowSeconds();
  daemon.Signal(SIGTERM);
  ExitInfo exit;
  const bool exited = daemon.WaitExited(10, &exit);
  const double elapsed_ms = 1000 * (NowSeconds() - start);
  call.join();
  ASSERT_TRUE(exited) << daemon.Log();
  EXPECT_TRUE(exit.exited && exit.exit_code == 0) << exit.Describe();
  const double answered_ms = 1000 * (answered_at - start);
  printf(
      "drain: the running call answered %.0f ms and the daemon exited %.0f ms "
      "after SIGTERM (grace %d ms)\n",
      answered_ms, elapsed_ms, kGraceMs);
  // The call is killed when the grace ends and answered at once.
  EXPECT_GE(answered_ms, kGraceMs - 50) << "the call was not given its grace";
  EXPECT_LE(answered_ms, kGraceMs + 200);
  // Then the daemon flushes the answers (at most min(grace, 200 ms); it
  // stops as soon as nothing is queued) and tears down: all of it within the
  // grace plus 200 ms.
  EXPECT_LE(elapsed_ms, kGraceMs + 200) << daemon.Log();
  // The running call got an answer before the daemon went away.
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_NE(Parse(*answer).value("status", ""), "ok") << *answer;
}

}  // namespace
}  // namespace jcs::serve_test
