#include "supervisor/metrics_textfile.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::supervisor {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TempDir() {
  char dir[] = "/tmp/jcs-textfile-XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return dir;
}

TEST(MetricsTextfileTest, ReplacesTheFileWholeWithMode0640) {
  const std::string dir = TempDir();
  const std::string path = dir + "/jcs.prom";
  ASSERT_TRUE(WriteTextfileAtomically(path, "a_total 1\n").ok());
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  ASSERT_TRUE(WriteTextfileAtomically(path, "a_total 2\n").ok());
  EXPECT_EQ(Read(path), "a_total 2\n");
  struct stat after;
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);  // a new file, renamed in
  EXPECT_EQ(after.st_mode & 0777, 0640u);
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
}

// Someone who can write the directory plants a symlink where the temporary
// file goes: the write must not follow it into another file.
TEST(MetricsTextfileTest, APlantedTemporarySymlinkIsNotFollowed) {
  const std::string dir = TempDir();
  const std::string victim = dir + "/victim";
  { std::ofstream(victim) << "keep\n"; }
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/jcs.prom.tmp").c_str()), 0);
  ASSERT_TRUE(WriteTextfileAtomically(dir + "/jcs.prom", "a_total 1\n").ok());
  EXPECT_EQ(Read(victim), "keep\n");
  EXPECT_EQ(Read(dir + "/jcs.prom"), "a_total 1\n");
}

TEST(MetricsTextfileTest, ErrorsNameTheStepAndThePath) {
  absl::Status s =
      WriteTextfileAtomically("/nonexistent-dir/jcs.prom", "a_total 1\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(),
              ::testing::HasSubstr(
                  "metrics_textfile: create /nonexistent-dir/jcs.prom.tmp"));
}

}  // namespace
}  // namespace jcs::supervisor
