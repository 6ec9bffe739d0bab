// The per-project sensitive-path index (issue 10) through the real daemon and
// CLI: the index never lets a secret through that the full scan would mask.
//   - a `.env` created in a deep directory right before each call is masked
//     (100 calls), and the calls used the index (timing_us.scan.mode);
//   - more changes than the kernel queues make the next call fall back to the
//     full scan, saying why, with the secret still masked;
//   - an unchanged tree keeps the warm jails (same masks, same fingerprint);
//   - diagnostics show the index's state and size.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "SECRET_4d1c9e_INDEX";
constexpr char kDeep[] = "a/b/c/d/e/f/g/h/i/j";

class SensitiveIndexAttackTest : public ToolFixture {
 protected:
  // Creates rel's parents (owned by the project user) and the file.
  void Write(const std::string& rel, const std::string& content) {
    for (size_t slash = rel.find('/'); slash != std::string::npos;
         slash = rel.find('/', slash + 1)) {
      if (!PathExists(root_ + "/" + rel.substr(0, slash))) {
        MakeRootDir(rel.substr(0, slash));
      }
    }
    WriteRootFile(rel, content);
  }

  nlohmann::json IndexDiagnostics(const std::string& project) {
    nlohmann::json diag = Diagnostics(project);
    if (!diag.contains("tools") || !diag["tools"].is_object()) return {};
    return diag["tools"].value("sensitive_index", nlohmann::json());
  }

  // Polls the diagnostics until the index is ready.
  bool WaitReady(const std::string& project) {
    return WaitFor(
        [&] { return IndexDiagnostics(project).value("state", "") == "ready"; },
        30);
  }

  static std::string ScanMode(const ToolResponse& r) {
    if (!r.doc.contains("timing_us")) return "";
    return r.doc["timing_us"]["scan"].value("mode", "");
  }
};

TEST_F(SensitiveIndexAttackTest, ASecretCreatedRightBeforeTheCallIsMasked) {
  Write(absl::StrCat(kDeep, "/keep.txt"), "benign");
  const std::string project = StartProject();
  ASSERT_FALSE(project.empty());
  ASSERT_TRUE(WaitReady(project)) << IndexDiagnostics(project);
  int by_index = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string rel = absl::StrCat(kDeep, "/n", i, "/.env");
    Write(rel, kSecret);
    // The call is requested right after the file exists.
    const ToolResponse r = Tool(
        project, "exec", ExecArgs({"/bin/sh", "-c", "cat " + rel + "; true"}));
    ASSERT_TRUE(ExpectOk(r)) << "call " << i;
    ASSERT_THAT(r.result().value("stdout", ""), Not(HasSubstr(kSecret)))
        << "call " << i << ": " << r.Describe();
    if (ScanMode(r) == "index") ++by_index;
  }
  // Every call used the index (none fell back): the drain saw each file.
  EXPECT_EQ(by_index, 100);
  const nlohmann::json index = IndexDiagnostics(project);
  EXPECT_EQ(index.value("state", ""), "ready") << index;
  EXPECT_EQ(index.value("sensitive", -1), 100) << index;
  EXPECT_GT(index.value("bytes_per_directory", 0), 0) << index;
}

TEST_F(SensitiveIndexAttackTest, QueueOverflowFallsBackToTheFullScanMasked) {
  Write("many/keep.txt", "benign");
  const std::string project = StartProject();
  ASSERT_FALSE(project.empty());
  ASSERT_TRUE(WaitReady(project)) << IndexDiagnostics(project);
  int limit = 16384;
  std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> limit;
  for (int i = 0; i <= limit + 10; ++i) {
    std::ofstream(absl::StrCat(root_, "/many/f", i)) << "";
  }
  Write("many/.env", kSecret);
  const ToolResponse r =
      Tool(project, "exec", ExecArgs({"/bin/sh", "-c", "cat many/.env; true"}));
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_THAT(r.result().value("stdout", ""), Not(HasSubstr(kSecret)));
  EXPECT_EQ(ScanMode(r), "full_scan") << r.doc.dump();
  EXPECT_THAT(r.doc["timing_us"]["scan"].value("reason", ""),
              HasSubstr("overflow"));
  // The index is rebuilt; calls use it again.
  ASSERT_TRUE(WaitReady(project)) << IndexDiagnostics(project);
  const ToolResponse again =
      Tool(project, "exec", ExecArgs({"/bin/sh", "-c", "cat many/.env; true"}));
  ASSERT_TRUE(ExpectOk(again));
  EXPECT_THAT(again.result().value("stdout", ""), Not(HasSubstr(kSecret)));
  EXPECT_EQ(ScanMode(again), "index") << again.doc.dump();
  EXPECT_GE(IndexDiagnostics(project).value("fallbacks", 0), 1);
}

TEST_F(SensitiveIndexAttackTest, AnUnchangedTreeKeepsItsWarmJails) {
  Write("src/.env", kSecret);
  Write("src/main.c", "int main(){}\n");
  const std::string project = StartProject();
  ASSERT_FALSE(project.empty());
  ASSERT_TRUE(WaitReady(project)) << IndexDiagnostics(project);
  int warm = 0;
  for (int i = 0; i < 6; ++i) {
    const ToolResponse r = Tool(project, "exec", ExecArgs({"/bin/true"}));
    ASSERT_TRUE(ExpectOk(r));
    EXPECT_EQ(ScanMode(r), "index") << r.doc.dump();
    if (r.doc["timing_us"].value("warm_jail", false)) ++warm;
  }
  // Every call waits for a jail being built (kWarmWaitLimit) rather than
  // start cold, the first included, so all are warm unless the masks'
  // fingerprint changed (one cold start is tolerated: a build can take
  // longer than kWarmWaitLimit on a loaded host).
  EXPECT_GE(warm, 5);
}

}  // namespace
}  // namespace jcs::serve_test
