#include "supervisor/mcp_http.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace jcs::supervisor {
namespace {

using ::testing::HasSubstr;

class McpHttpTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/jcs-mcp-token.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    config_.set_state_dir(dir_);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  void Write(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  std::string dir_;
  proto::SupervisorConfig config_;
};

TEST_F(McpHttpTokenTest, GeneratedIsRandomAndPrivate) {
  auto first = McpHttpToken(config_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->second, dir_ + "/mcp-http.token");
  EXPECT_EQ(first->first.size(), 64u);
  struct stat st;
  ASSERT_EQ(stat(first->second.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(first->second);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, first->first);
  // A new one each start.
  auto second = McpHttpToken(config_);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->first, first->first);
}

// A symlink planted where the token goes is replaced, never written through.
TEST_F(McpHttpTokenTest, GeneratedReplacesASymlink) {
  const std::string target = dir_ + "/elsewhere";
  Write(target, "keep", 0644);
  ASSERT_EQ(symlink(target.c_str(), (dir_ + "/mcp-http.token").c_str()), 0);
  auto token = McpHttpToken(config_);
  ASSERT_TRUE(token.ok()) << token.status();
  std::ifstream in(target);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "keep");
  struct stat st;
  ASSERT_EQ(lstat(token->second.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(McpHttpTokenTest, ConfiguredFileMustBePrivateAndLong) {
  const std::string path = dir_ + "/token";
  config_.set_mcp_http_token_file(path);
  Write(path, std::string(40, 'a') + "\n", 0600);
  auto token = McpHttpToken(config_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->first, std::string(40, 'a'));
  EXPECT_EQ(token->second, path);

  Write(path, std::string(40, 'a'), 0640);  // group-readable
  EXPECT_THAT(std::string(McpHttpToken(config_).status().message()),
              HasSubstr("chmod 0600"));
  Write(path, "short", 0600);
  EXPECT_THAT(std::string(McpHttpToken(config_).status().message()),
              HasSubstr("32 to 4096 characters"));
  Write(path, std::string(20, 'a') + " " + std::string(20, 'b'), 0600);
  EXPECT_THAT(std::string(McpHttpToken(config_).status().message()),
              HasSubstr("printable ASCII"));
  // A symlink to a good file is refused too (O_NOFOLLOW).
  const std::string good = dir_ + "/good";
  Write(good, std::string(40, 'c'), 0600);
  const std::string link = dir_ + "/link";
  ASSERT_EQ(symlink(good.c_str(), link.c_str()), 0);
  config_.set_mcp_http_token_file(link);
  EXPECT_FALSE(McpHttpToken(config_).ok());
  config_.set_mcp_http_token_file(dir_ + "/missing");
  EXPECT_THAT(std::string(McpHttpToken(config_).status().message()),
              HasSubstr("mcp_http_token_file"));
}

}  // namespace
}  // namespace jcs::supervisor

namespace jcs::supervisor {
namespace {

proto::Event Reloaded(const std::string& project, int64_t generation) {
  proto::Event event;
  event.set_name("project.assets_reloaded");
  event.set_project_id(project);
  event.set_payload_json(nlohmann::json{
      {"generation", generation},
      {"project_id",
       project}}.dump());
  return event;
}

TEST(AssetReloadsTest, EachNewGenerationOfTheWatchedProjectOnly) {
  AssetReloads reloads;
  int a_calls = 0, b_calls = 0;
  const uint64_t a = reloads.Add("a", [&] { ++a_calls; });
  reloads.Add("b", [&] { ++b_calls; });
  EXPECT_EQ(reloads.size(), 2u);
  reloads.Publish(Reloaded("a", 2));
  reloads.Publish(Reloaded("a", 2));  // nothing new
  EXPECT_EQ(a_calls, 1);
  EXPECT_EQ(b_calls, 0);  // another project's reload
  reloads.Publish(Reloaded("a", 3));
  EXPECT_EQ(a_calls, 2);
  proto::Event other = Reloaded("a", 4);
  other.set_name("project.assets_reload_failed");
  reloads.Publish(other);
  EXPECT_EQ(a_calls, 2);
  reloads.Remove(a);
  reloads.Publish(Reloaded("a", 5));
  EXPECT_EQ(a_calls, 2);
  EXPECT_EQ(reloads.size(), 1u);
}

}  // namespace
}  // namespace jcs::supervisor
