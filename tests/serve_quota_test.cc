// The per-project disk budget (runtime options disk_quota_bytes and
// disk_quota_inodes) through the real `jcs serve`: a budget on a filesystem
// that cannot enforce it refuses the project start with the missing layer and
// the fix (nothing is started); where the kernel has ext4 project quotas, an
// `exec` writing past the budget fails with EDQUOT and diagnostics report the
// usage. The test runs in its own mount namespace (the daemon, its child,
// shares it), so its mounts disappear with it.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

constexpr char kBudget[] = "disk_quota_bytes=8388608";  // 8 MiB

class ServeQuotaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(unshare(CLONE_NEWNS), 0) << strerror(errno);
    ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
        << strerror(errno);
  }

  void SetUp() override { ASSERT_TRUE(daemon_.Start()) << daemon_.Log(); }

  void TearDown() override {
    EXPECT_EQ(daemon_.StopCleanly(), "");
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
      umount2(it->c_str(), MNT_DETACH);
    }
  }

  RunResult Cli(std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(daemon_.socket_path());
    return RunJcs(args, TimeoutAfter(60));
  }

  nlohmann::json ProjectsJson() {
    const RunResult r = Cli({"project", "list", "--json"});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  // A failed start: non-zero exit, no id on stdout, the error on stderr, and
  // no project left running.
  void ExpectStartRefused(const RunResult& r, const std::string& expected) {
    EXPECT_TRUE(r.exited && r.exit_code != 0) << r.Describe();
    EXPECT_EQ(r.out, "") << r.Describe();
    EXPECT_NE(r.err.find(expected), std::string::npos)
        << "expected '" << expected << "' in stderr:\n"
        << r.err;
    const nlohmann::json list = ProjectsJson();
    EXPECT_TRUE(list.is_array() && list.empty()) << list.dump();
  }

  std::string MountTmpfs(const std::string& at) {
    EXPECT_EQ(mkdir(at.c_str(), 0755), 0);
    EXPECT_EQ(mount("tmpfs", at.c_str(), "tmpfs", 0, "size=64m"), 0)
        << strerror(errno);
    mounts_.push_back(at);
    return at;
  }

  // A fresh 64 MiB ext4 image with project quotas mounted with prjquota, or
  // "" when this kernel cannot (no CONFIG_QUOTA/CONFIG_QFMT_V2, no loop).
  std::string MountExt4Prjquota(const std::string& at) {
    const std::string image = at + ".img";
    const int fd =
        open(image.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return "";
    const bool sized = ftruncate(fd, 64 << 20) == 0;
    close(fd);
    if (!sized) return "";
    const RunResult mkfs =
        RunProgram({"/usr/sbin/mkfs.ext4", "-q", "-O", "quota,project", image});
    if (!mkfs.exited || mkfs.exit_code != 0) return "";
    if (mkdir(at.c_str(), 0755) != 0) return "";
    const RunResult m =
        RunProgram({"/bin/mount", "-o", "loop,prjquota", image, at});
    if (!m.exited || m.exit_code != 0) return "";
    mounts_.push_back(at);
    return at;
  }

  Daemon daemon_;
  TempDir dir_;
  std::vector<std::string> mounts_;
};

// The finding: a budget the filesystem cannot enforce must refuse the start,
// not run the project with only a per-file limit.
TEST_F(ServeQuotaTest, BudgetOnTmpfsRefusesTheStart) {
  const std::string mnt = MountTmpfs(dir_.Sub("tmpfs"));
  const std::string root = mnt + "/project";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(chown(root.c_str(), 1000, 1000), 0);  // tools never run as root
  ExpectStartRefused(
      Cli({"project", "start", root, "--opt", kBudget}),
      absl::StrCat("disk_quota_unavailable: tmpfs at ", mnt,
                   " has no project quotas; move the project to ext4 or XFS "
                   "and mount with prjquota (ext4 needs the 'project' "
                   "feature: tune2fs -O project -Q prjquota) or drop "
                   "disk_quota_bytes"));
  // Without a budget the same root starts: only the budget was refused.
  const RunResult ok = Cli({"project", "start", root});
  EXPECT_TRUE(ok.exited && ok.exit_code == 0) << ok.Describe();
}

TEST_F(ServeQuotaTest, BudgetOnAFilesystemWithoutPrjquotaRefusesTheStart) {
  // The test's temp dir is on the host's root filesystem (here ext4 mounted
  // without prjquota).
  const std::string root = dir_.MakeOwnedDir("host_project");
  // `jcs doctor --path` says whether this filesystem can enforce a budget
  // (and with which fix); only then is a refusal the right answer.
  const RunResult doctor =
      RunJcs({"doctor", "--json", "--path", root}, TimeoutAfter(60));
  const nlohmann::json layers =
      nlohmann::json::parse(doctor.out, nullptr, false);
  ASSERT_TRUE(layers.is_array()) << doctor.Describe();
  nlohmann::json quota;
  for (const nlohmann::json& layer : layers) {
    if (layer.value("name", "") == "project_quota") quota = layer;
  }
  ASSERT_TRUE(quota.is_object()) << doctor.out;
  if (quota["available"] == true) {
    GTEST_SKIP() << "this host's filesystem enforces project quotas: "
                 << quota.dump();
  }
  EXPECT_NE(quota["fix"].get<std::string>().find("prjquota"), std::string::npos)
      << quota.dump();
  const RunResult r =
      Cli({"project", "start", root, "--opt", "disk_quota_inodes=1000"});
  ExpectStartRefused(r, "disk_quota_unavailable: ");
  EXPECT_NE(r.err.find(" has no project quotas; "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("or drop disk_quota_inodes"), std::string::npos)
      << r.err;
}

TEST_F(ServeQuotaTest, InvalidBudgetIsAnInvalidRuntimeOpt) {
  const std::string root = dir_.MakeOwnedDir("bad_opt");
  for (const std::string opt :
       {"disk_quota_bytes=0", "disk_quota_bytes=\"8M\"", "disk_quota_inodes=-1",
        "disk_quota_inodes=1.5"}) {
    const std::string key = opt.substr(0, opt.find('='));
    ExpectStartRefused(Cli({"project", "start", root, "--opt", opt}),
                       absl::StrCat("invalid_runtime_opt{key: \"", key,
                                    "\", reason: \"expected_positive_integer\""
                                    "}"));
  }
}

// The real enforcement, where the kernel has ext4 project quotas.
TEST_F(ServeQuotaTest, ExecWritingPastTheBudgetFailsWithEdquot) {
  const std::string mnt = MountExt4Prjquota(dir_.Sub("ext4"));
  if (mnt.empty()) {
    GTEST_SKIP() << "cannot mount ext4 with prjquota here (the kernel needs "
                    "CONFIG_QUOTA and CONFIG_QFMT_V2, and loop devices); the "
                    "refusal tests above cover this host";
  }
  const std::string root = mnt + "/project";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(chown(root.c_str(), 65534, 65534), 0);  // the jail user
  const RunResult start =
      Cli({"project", "start", root, "--opt", kBudget, "--opt",
           "tool_max_artifact_bytes=67108864"});  // no RLIMIT_FSIZE first
  ASSERT_TRUE(start.exited && start.exit_code == 0) << start.Describe();
  std::string id = start.out;
  if (!id.empty() && id.back() == '\n') id.pop_back();

  const nlohmann::json args = {
      {"argv",
       {"/bin/sh", "-c",
        "dd if=/dev/zero of=big bs=1M count=20 conv=fsync 2>&1; echo rc=$?"}}};
  const RunResult run =
      Cli({"tool", "run", id, "exec", "--args", args.dump(), "--json"});
  EXPECT_NE(run.out.find("Disk quota exceeded"), std::string::npos)
      << run.Describe();
  EXPECT_EQ(run.out.find("rc=0"), std::string::npos) << run.Describe();
  struct stat st;
  ASSERT_EQ(stat((root + "/big").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 8 << 20);

  const RunResult diag = Cli({"diagnostics", id, "--json"});
  ASSERT_TRUE(diag.exited && diag.exit_code == 0) << diag.Describe();
  const nlohmann::json doc = nlohmann::json::parse(diag.out, nullptr, false);
  ASSERT_TRUE(doc.contains("disk_quota")) << diag.out;
  const nlohmann::json& q = doc["disk_quota"];
  EXPECT_EQ(q["bytes_budget"], 8 << 20) << q.dump();
  EXPECT_EQ(q["bytes_limit"], 8 << 20) << q.dump();
  EXPECT_GE(q["bytes_used"].get<uint64_t>(), 4u << 20) << q.dump();
  EXPECT_LE(q["bytes_used"].get<uint64_t>(), 8u << 20) << q.dump();
  EXPECT_GE(q["inodes_used"].get<uint64_t>(), 2u) << q.dump();
}

}  // namespace
}  // namespace jcs::serve_test
