#include "jail/doctor.h"

#include <dirent.h>
#include <errno.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace jcs::jail {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::vector<std::string>& ExpectedNames() {
  static const std::vector<std::string> names = {
      "capabilities",
      "user_namespace",
      "mount_namespace",
      "pid_namespace",
      "network_namespace",
      "ipc_namespace",
      "uts_namespace",
      "cgroup_namespace",
      "seccomp",
      "seccomp_user_notification",
      "landlock",
      "cgroup_v2",
      "cgroup_v2.memory",
      "cgroup_v2.pids",
      "cgroup_v2.cpu",
      "cgroup_v1.memory",
      "cgroup_v1.pids",
      "cgroup_v1.cpu",
      "cgroup_v1.freezer",
      "pidfd",
      "clone3",
      "close_range",
      "new_mount_api",
      "procfs",
      "proc_in_pid_namespace",
      "io_uring",
  };
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TestMount {
  std::string mount_point, fstype;
  std::vector<std::string> options;
};

// A deliberately simple mountinfo reader, independent of the one under test.
std::vector<TestMount> TestMounts() {
  std::vector<TestMount> mounts;
  std::istringstream in(ReadFile("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    const size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream head(line.substr(0, sep)), tail(line.substr(sep + 3));
    std::string id, parent, dev, root, mount_point, fstype, source, options;
    head >> id >> parent >> dev >> root >> mount_point;
    tail >> fstype >> source >> options;
    TestMount m{mount_point, fstype, {}};
    std::istringstream opts(options);
    std::string opt;
    while (std::getline(opts, opt, ',')) m.options.push_back(opt);
    mounts.push_back(m);
  }
  return mounts;
}

// The CI machines this project targets: root, a recent kernel (Landlock ABI >=
// 6, io_uring), cgroup v1 memory/pids/freezer hierarchies and a cgroup2 mount
// that has no memory controller. When the host looks like that, the
// host-specific expectations must hold (no skipping).
std::string HostDifferences() {
  std::vector<std::string> diffs;
  if (geteuid() != 0) diffs.push_back("not root");
  utsname u;
  int major = 0, minor = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2 ||
      major * 1000 + minor < 6012) {
    diffs.push_back("kernel older than 6.12");
  }
  bool v1_memory = false, v1_freezer = false, v2_without_memory = false;
  for (const TestMount& m : TestMounts()) {
    auto has = [&](const char* o) {
      for (const std::string& opt : m.options) {
        if (opt == o) return true;
      }
      return false;
    };
    if (m.fstype == "cgroup" && has("memory")) v1_memory = true;
    if (m.fstype == "cgroup" && has("freezer")) v1_freezer = true;
    if (m.fstype == "cgroup2") {
      const std::string controllers =
          ReadFile(m.mount_point + "/cgroup.controllers");
      if (controllers.find("memory") == std::string::npos)
        v2_without_memory = true;
    }
  }
  if (!v1_memory) diffs.push_back("no cgroup v1 memory hierarchy");
  if (!v1_freezer) diffs.push_back("no cgroup v1 freezer hierarchy");
  if (!v2_without_memory)
    diffs.push_back("no cgroup2 mount without the memory controller");
  std::string out;
  for (const std::string& d : diffs) out += (out.empty() ? "" : ", ") + d;
  return out;
}

class DoctorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto start = std::chrono::steady_clock::now();
    layers_ = new std::vector<LayerStatus>(ProbeHostLayers());
    elapsed_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
    errno = 0;
    children_left_ = waitpid(-1, nullptr, WNOHANG) != -1 || errno != ECHILD;
    // The table in the test log tells what a failing host looks like.
    std::cout << FormatLayerTable(*layers_) << std::flush;
  }
  static void TearDownTestSuite() {
    delete layers_;
    layers_ = nullptr;
  }
  static const LayerStatus* Find(const std::string& name) {
    for (const LayerStatus& layer : *layers_) {
      if (layer.name == name) return &layer;
    }
    return nullptr;
  }

  static std::vector<LayerStatus>* layers_;
  static int64_t elapsed_ms_;
  static bool children_left_;
};

std::vector<LayerStatus>* DoctorTest::layers_ = nullptr;
int64_t DoctorTest::elapsed_ms_ = 0;
bool DoctorTest::children_left_ = false;

TEST_F(DoctorTest, EveryRowHasNameDetailAndFixWhenMissing) {
  std::vector<std::string> names;
  for (const LayerStatus& layer : *layers_) {
    names.push_back(layer.name);
    EXPECT_FALSE(layer.detail.empty()) << layer.name;
    EXPECT_EQ(layer.detail.find('\n'), std::string::npos) << layer.name;
    if (layer.available) {
      EXPECT_EQ(layer.fix, "") << layer.name;
    } else {
      EXPECT_FALSE(layer.fix.empty()) << layer.name << ": " << layer.detail;
    }
  }
  EXPECT_EQ(names, ExpectedNames());
}

TEST_F(DoctorTest, ProbesReapTheirChildrenAndFinishQuickly) {
  EXPECT_FALSE(children_left_) << "a probe child was not reaped";
  EXPECT_LT(elapsed_ms_, 20000);
}

TEST_F(DoctorTest, ProbesLeaveNoCgroupsBehind) {
  const std::string prefix = "jcs-doctor-" + std::to_string(getpid()) + "-";
  for (const TestMount& m : TestMounts()) {
    if (m.fstype != "cgroup" && m.fstype != "cgroup2") continue;
    DIR* dir = opendir(m.mount_point.c_str());
    if (dir == nullptr) continue;
    while (dirent* e = readdir(dir)) {
      EXPECT_THAT(std::string(e->d_name), ::testing::Not(StartsWith(prefix)))
          << m.mount_point;
    }
    closedir(dir);
  }
}

TEST_F(DoctorTest, ThisHostsLayers) {
  const std::string differences = HostDifferences();
  if (!differences.empty()) {
    GTEST_SKIP() << "host differs from the CI machines: " << differences;
  }
  for (const char* name : {"user_namespace",
                           "mount_namespace",
                           "pid_namespace",
                           "network_namespace",
                           "ipc_namespace",
                           "uts_namespace",
                           "cgroup_namespace",
                           "seccomp",
                           "seccomp_user_notification",
                           "landlock",
                           "io_uring",
                           "cgroup_v2",
                           "cgroup_v1.memory",
                           "cgroup_v1.pids",
                           "cgroup_v1.freezer",
                           "pidfd",
                           "clone3",
                           "close_range",
                           "new_mount_api",
                           "procfs",
                           "proc_in_pid_namespace"}) {
    const LayerStatus* layer = Find(name);
    ASSERT_NE(layer, nullptr) << name;
    EXPECT_TRUE(layer->available)
        << name << ": " << layer->detail << " fix: " << layer->fix;
  }
  const LayerStatus* landlock = Find("landlock");
  EXPECT_THAT(landlock->detail, StartsWith("ABI "));
  const LayerStatus* memory = Find("cgroup_v2.memory");
  ASSERT_NE(memory, nullptr);
  EXPECT_FALSE(memory->available) << memory->detail;
  EXPECT_THAT(memory->detail, HasSubstr("not in cgroup.controllers"));
  EXPECT_THAT(memory->fix, HasSubstr("cgroup v1"));
  EXPECT_THAT(memory->fix, HasSubstr("systemd.unified_cgroup_hierarchy=1"));
  EXPECT_THAT(Find("cgroup_v2")->detail, HasSubstr("mounted at /"));
  EXPECT_THAT(Find("cgroup_v1.memory")->detail,
              HasSubstr("mkdir+rmdir of a probe cgroup: ok"));
  EXPECT_THAT(Find("user_namespace")->detail,
              HasSubstr("user.max_user_namespaces="));
  EXPECT_THAT(Find("io_uring")->detail,
              HasSubstr("kernel.io_uring_disabled=0"));
}

TEST_F(DoctorTest, TableHasAlignedColumns) {
  const std::string table = FormatLayerTable(*layers_);
  std::istringstream in(table);
  std::string line;
  size_t name_width = 0;
  for (const LayerStatus& layer : *layers_)
    name_width = std::max(name_width, layer.name.size());
  size_t i = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(i, layers_->size()) << line;
    const LayerStatus& layer = (*layers_)[i++];
    EXPECT_THAT(line, StartsWith(layer.available ? "ok       " : "MISSING  "))
        << line;
    EXPECT_EQ(line.substr(9, layer.name.size()), layer.name) << line;
    EXPECT_EQ(line.substr(9 + name_width, 2), "  ") << line;
    EXPECT_NE(line[9 + name_width + 2], ' ') << line;
    if (!layer.available) {
      EXPECT_THAT(line, HasSubstr("fix: " + layer.fix));
    }
  }
  EXPECT_EQ(i, layers_->size());
}

TEST(DoctorRootlessTest, DefaultJailNeedsADelegatedSubtreeWithMemoryAndPids) {
  std::vector<LayerStatus> layers;
  for (const char* name :
       {"user_namespace", "pid_namespace", "mount_namespace",
        "network_namespace", "ipc_namespace", "uts_namespace",
        "cgroup_namespace", "new_mount_api", "procfs", "proc_in_pid_namespace",
        "seccomp", "seccomp_user_notification", "landlock"}) {
    layers.push_back({name, true, "", ""});
  }
  layers.push_back({"cgroup_v2", true, "", ""});
  layers.push_back({"cgroup_v2.memory", true, "", ""});
  layers.push_back({"cgroup_v2.pids", false, "", "fix"});
  LayerStatus s = RootlessRunLayer(layers, 1000);
  EXPECT_EQ(s.name, "rootless_run");
  EXPECT_FALSE(s.available);
  EXPECT_THAT(s.detail, HasSubstr("maps only uid 1000"));
  EXPECT_THAT(s.detail, HasSubstr("seccomp_user_notification landlock"));
  EXPECT_THAT(s.detail, HasSubstr("--memory unlimited --pids unlimited"));
  EXPECT_THAT(s.fix, HasSubstr("Delegate=yes"));
  layers.back().available = true;
  s = RootlessRunLayer(layers, 1000);
  EXPECT_TRUE(s.available) << s.detail;
  EXPECT_THAT(s.detail, HasSubstr("from the delegated cgroup v2 subtree"));
  EXPECT_EQ(s.fix, "");
  // Landlock is best-effort: its absence is named but does not stop a run.
  layers[12].available = false;  // landlock
  s = RootlessRunLayer(layers, 1000);
  EXPECT_TRUE(s.available);
  EXPECT_THAT(s.detail, HasSubstr("missing: landlock"));
  // A namespace that cannot be made does.
  layers[1].available = false;
  EXPECT_FALSE(RootlessRunLayer(layers, 1000).available);
}

TEST(DoctorFormatTest, TableOnSyntheticRows) {
  const std::vector<LayerStatus> layers = {
      {"a", true, "found it", ""},
      {"much_longer_name", false, "two\nlines", "do this"},
  };
  EXPECT_EQ(FormatLayerTable(layers),
            "ok       a                 found it\n"
            "MISSING  much_longer_name  two lines  fix: do this\n");
  EXPECT_EQ(FormatLayerTable({}), "");
}

TEST_F(DoctorTest, JsonHasTheSameRows) {
  const nlohmann::json json = nlohmann::json::parse(FormatLayerJson(*layers_));
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), layers_->size());
  for (size_t i = 0; i < json.size(); ++i) {
    const LayerStatus& layer = (*layers_)[i];
    EXPECT_EQ(json[i].size(), 4u);
    EXPECT_EQ(json[i].at("name").get<std::string>(), layer.name);
    EXPECT_EQ(json[i].at("available").get<bool>(), layer.available);
    EXPECT_EQ(json[i].at("detail").get<std::string>(), layer.detail);
    EXPECT_EQ(json[i].at("fix").get<std::string>(), layer.fix);
  }
}

TEST(DoctorFormatTest, JsonEscapesAndSurvivesInvalidUtf8) {
  const std::vector<LayerStatus> layers = {
      {"x", false, "quote \" and \xff byte", "fix \\ it"}};
  const std::string text = FormatLayerJson(layers);
  const nlohmann::json json = nlohmann::json::parse(text);
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0]["name"], "x");
  EXPECT_EQ(json[0]["available"], false);
  EXPECT_THAT(json[0]["detail"].get<std::string>(),
              StartsWith("quote \" and "));
  EXPECT_EQ(json[0]["fix"], "fix \\ it");
  EXPECT_EQ(nlohmann::json::parse(FormatLayerJson({})),
            nlohmann::json::array());
}

}  // namespace
}  // namespace jcs::jail
