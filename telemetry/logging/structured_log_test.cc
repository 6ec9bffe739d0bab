#include "telemetry/logging/structured_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "telemetry/logging/event_log.h"

namespace jcs::telemetry::logging {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string TempDir() {
  char dir[] = "/tmp/jcs-log-XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return dir;
}

std::vector<nlohmann::json> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << "not JSON: " << line;
    lines.push_back(doc);
  }
  return lines;
}

StructuredLog::Options FileOptions(const std::string& path,
                                   LogLevel level = LogLevel::kInfo) {
  StructuredLog::Options options;
  options.path = path;
  options.level = level;
  options.clock = [] { return absl::FromUnixMillis(1764720000123); };
  return options;
}

TEST(StructuredLogTest, OneRedactedJsonObjectPerLineAtOrAboveTheLevel) {
  const std::string path = TempDir() + "/jcs.log";
  auto log = StructuredLog::Open(FileOptions(path, LogLevel::kInfo));
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Log(LogLevel::kDebug, "hidden", {{"x", 1}});
  (*log)->Log(LogLevel::kInfo, "project.started",
              {{"project_id", "p"}, {"level", "forged"}, {"api_key", "k-123"}});
  (*log)->Log(LogLevel::kError, "with\nnewline", {{"path", "a/token=abc"}});
  ASSERT_TRUE((*log)->Flush());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::vector<nlohmann::json> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["ts"], "2025-12-03T00:00:00.123Z");
  EXPECT_EQ(lines[0]["level"], "info");  // a field cannot forge it
  EXPECT_EQ(lines[0]["msg"], "project.started");
  EXPECT_EQ(lines[0]["project_id"], "p");
  EXPECT_EQ(lines[0]["api_key"], "[REDACTED]");
  EXPECT_EQ(lines[1]["level"], "error");
  EXPECT_EQ(lines[1]["msg"], "with\nnewline");  // escaped: still one line
  EXPECT_EQ(lines[1]["path"], "a/token=[REDACTED]");
  EXPECT_EQ((*log)->lines(), 2u);
  EXPECT_EQ((*log)->dropped(), 0u);
}

TEST(StructuredLogTest, RefusesSymlinksNonRegularFilesAndRelativePaths) {
  const std::string dir = TempDir();
  ASSERT_EQ(symlink("/etc/passwd", (dir + "/link").c_str()), 0);
  auto link = StructuredLog::Open(FileOptions(dir + "/link"));
  ASSERT_FALSE(link.ok());
  EXPECT_THAT(link.status().message(), HasSubstr("symlink"));
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
  auto fifo = StructuredLog::Open(FileOptions(dir + "/fifo"));
  ASSERT_FALSE(fifo.ok());  // and the open did not block on it
  EXPECT_THAT(fifo.status().message(), HasSubstr("log_file"));
  auto relative = StructuredLog::Open(FileOptions("jcs.log"));
  ASSERT_FALSE(relative.ok());
  EXPECT_THAT(relative.status().message(), HasSubstr("absolute path"));
}

TEST(StructuredLogTest, AFailedWriteDropsTheLineAndCountsIt) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);  // EPIPE (SIGPIPE is ignored by the daemon, and here)
  signal(SIGPIPE, SIG_IGN);
  auto log = StructuredLog::ForFd(fds[1], FileOptions(""));
  log->Log(LogLevel::kError, "lost");
  ASSERT_TRUE(log->Flush());
  EXPECT_EQ(log->dropped(), 1u);
  EXPECT_EQ(log->lines(), 0u);
  close(fds[1]);
}

TEST(StructuredLogTest, HeldLinesWaitForRelease) {
  const std::string path = TempDir() + "/jcs.log";
  auto log = StructuredLog::Open(FileOptions(path));
  ASSERT_TRUE(log.ok());
  (*log)->Hold();
  (*log)->Log(LogLevel::kInfo, "boot");
  ASSERT_TRUE((*log)->Flush());
  EXPECT_TRUE(ReadLines(path).empty());
  (*log)->Release();
  (*log)->Log(LogLevel::kInfo, "served");
  ASSERT_TRUE((*log)->Flush());
  std::vector<nlohmann::json> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["msg"], "boot");
  EXPECT_EQ(lines[1]["msg"], "served");
}

TEST(StructuredLogTest, ReopenFollowsLogrotate) {
  const std::string dir = TempDir();
  auto log = StructuredLog::Open(FileOptions(dir + "/jcs.log"));
  ASSERT_TRUE(log.ok());
  (*log)->Log(LogLevel::kInfo, "before");
  ASSERT_EQ(rename((dir + "/jcs.log").c_str(), (dir + "/jcs.log.1").c_str()),
            0);
  ASSERT_TRUE((*log)->Reopen().ok());
  (*log)->Log(LogLevel::kInfo, "after");
  ASSERT_TRUE((*log)->Flush());
  EXPECT_EQ(ReadLines(dir + "/jcs.log.1").size(), 1u);
  std::vector<nlohmann::json> now = ReadLines(dir + "/jcs.log");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0]["msg"], "after");
}

TEST(StructuredLogTest, ParseLogLevelNamesTheFieldAndTheChoices) {
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarn);
  absl::StatusOr<LogLevel> bad = ParseLogLevel("verbose", "--log-level");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "--log-level: expected one of debug, info, warn, error; got "
            "'verbose'");
}

Event Ev(const std::string& name, nlohmann::json payload) {
  payload["project_id"] = "p1";
  return {name, "p1", std::move(payload), absl::FromUnixMillis(1764720000000)};
}

TEST(EventLogTest, ToolCallsDenialsAlertsAndProjects) {
  const std::string path = TempDir() + "/jcs.log";
  auto log = StructuredLog::Open(FileOptions(path, LogLevel::kInfo));
  ASSERT_TRUE(log.ok());
  LogEvent(**log, Ev("tool.started", {{"tool", "exec"}}));  // debug: not shown
  LogEvent(**log, Ev("tool.completed", {{"tool", "exec"},
                                        {"call_id", "call-1"},
                                        {"conversation_id", "c1"},
                                        {"correlation_id", "corr-1"},
                                        {"duration_ms", 12}}));
  LogEvent(**log, Ev("tool.failed", {{"tool", "fs.read"},
                                     {"conversation_id", nullptr},
                                     {"correlation_id", "corr-2"},
                                     {"duration_ms", 1},
                                     {"reason", "sandbox_violation"}}));
  // The runbook's default alert_signal_events.
  const std::set<std::string, std::less<>> signals = {
      "security.sandbox_violation", "security.repeated_timeout_failures"};
  LogEvent(**log,
           Ev("security.sandbox_violation",
              {{"tool", "fs.read"}, {"path", "../../sk-abcdefghijklmnop1234"}}),
           signals);
  LogEvent(**log, Ev("alert.tool_failure_ratio", {{"severity", "warning"}}));
  LogEvent(**log, Ev("project.stopped", {}));
  ASSERT_TRUE((*log)->Flush());
  std::vector<nlohmann::json> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0]["msg"], "tool.call");
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["project_id"], "p1");
  EXPECT_EQ(lines[0]["conversation_id"], "c1");
  EXPECT_EQ(lines[0]["correlation_id"], "corr-1");
  EXPECT_EQ(lines[0]["tool"], "exec");
  EXPECT_EQ(lines[0]["status"], "ok");
  EXPECT_EQ(lines[0]["duration_ms"], 12);
  EXPECT_EQ(lines[1]["status"], "error");
  EXPECT_EQ(lines[1]["level"], "warn");
  EXPECT_EQ(lines[1]["reason"], "sandbox_violation");
  // A default signal event is a critical alert.
  EXPECT_EQ(lines[2]["msg"], "security.sandbox_violation");
  EXPECT_EQ(lines[2]["level"], "error");
  EXPECT_EQ(lines[2]["alert_severity"], "critical");
  EXPECT_EQ(lines[2]["payload"]["path"], "../../[REDACTED]");
  EXPECT_EQ(lines[3]["level"], "warn");
  EXPECT_EQ(lines[3]["alert_severity"], "warning");
  EXPECT_EQ(lines[4]["msg"], "project.stopped");
  EXPECT_EQ(lines[4]["level"], "info");
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  EXPECT_THAT(all.str(), Not(HasSubstr("sk-abcdefghijklmnop1234")));
}

}  // namespace
}  // namespace jcs::telemetry::logging
