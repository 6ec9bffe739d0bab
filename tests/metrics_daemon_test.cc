// Issue 13 "Metrics and logs", through a real `jcs serve`, real jailed tool
// calls and the real CLI:
//   - `jcs metrics` is valid Prometheus text (telemetry/metrics/
//     exposition_check.h) and its counters and histogram buckets move by
//     exactly the calls made; the textfile collector file follows;
//   - only admins read the metrics (they name every project): a plain
//     allowed client gets "unauthorized";
//   - the structured log is one JSON object per line with the fields of each
//     tool call, the denial and the alert, the secret in a denied path
//     redacted, and the drain.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "telemetry/metrics/exposition_check.h"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

constexpr uid_t kAdmin = 1002;  // allowed and admin; kProjectUid is neither

// The CLI as another user: the runfiles live under root's private home, so
// the binary is copied where every user can run it.
RunResult RunJcsAs(uid_t uid, const std::vector<std::string>& args) {
  static TempDir* bin = new TempDir();
  const std::string copy = bin->Sub("jcs");
  if (!PathExists(copy)) {
    std::filesystem::copy_file(JcsBinary(), copy);
    chmod(copy.c_str(), 0755);
  }
  std::vector<std::string> argv = {"/usr/bin/setpriv",
                                   "--reuid",
                                   std::to_string(uid),
                                   "--regid",
                                   std::to_string(uid),
                                   "--clear-groups",
                                   "--",
                                   copy};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, TimeoutAfter(60));
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    json doc = json::parse(line, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << "not one JSON object: " << line;
    out.push_back(std::move(doc));
  }
  return out;
}

class MetricsDaemonTest : public ToolFixture {
 protected:
  void SetUp() override {
    log_path_ = daemon_.dir().Sub("jcs.log");
    textfile_ = daemon_.dir().Sub("jcs.prom");
    daemon_.WriteConfig(absl::StrCat(
        "socket_path: \"", daemon_.socket_path(), "\"\nstate_dir: \"",
        daemon_.state_dir(), "\"\nsocket_mode: 0666\nallowed_uids: ",
        kProjectUid, "\nallowed_uids: ", kAdmin, "\nadmin_uids: ", kAdmin,
        "\nlog_file: \"", log_path_, "\"\nmetrics_textfile: \"", textfile_,
        "\"\nmetrics_textfile_period_ms: 1000\n", ExtraConfig()));
    ToolFixture::SetUp();
  }
  virtual std::string ExtraConfig() const { return ""; }

  // `jcs metrics`, checked against the text format; the samples by series.
  std::map<std::string, double> Scrape() {
    const RunResult r = Cli({"metrics"});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    absl::StatusOr<std::map<std::string, double>> parsed =
        telemetry::metrics::CheckExposition(r.out);
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << r.out;
    return parsed.ok() ? *parsed : std::map<std::string, double>();
  }

  std::string log_path_;
  std::string textfile_;
};

TEST_F(MetricsDaemonTest, CountersAndHistogramBucketsMoveWithToolCalls) {
  const std::string p = StartProject();
  std::map<std::string, double> before = Scrape();
  const std::string completed = absl::StrCat("jcs_events_total{project=\"", p,
                                             "\",event=\"tool.completed\"}");
  const std::string exec_ok = "{tool=\"exec\",status=\"ok\"";
  const std::string count =
      "jcs_tool_call_duration_seconds_count" + exec_ok + "}";
  const std::string inf =
      "jcs_tool_call_duration_seconds_bucket" + exec_ok + ",le=\"+Inf\"}";
  const std::string slow =  // no /bin/true takes 5 minutes
      "jcs_tool_call_duration_seconds_bucket" + exec_ok + ",le=\"300\"}";
  EXPECT_EQ(before[completed], 0);
  EXPECT_EQ(before["jcs_projects"], 1);
  const double journal_commits = before["jcs_journal_commit_seconds_count"];

  constexpr int kCalls = 3;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"/bin/true"}))));
  }
  ASSERT_TRUE(
      ExpectError(Tool(p, "fs.read", {{"path", "../nope"}}), "outside_root"));

  std::map<std::string, double> after = Scrape();
  EXPECT_EQ(after[completed], kCalls);
  EXPECT_EQ(after[absl::StrCat("jcs_events_total{project=\"", p,
                               "\",event=\"policy.denied\"}")],
            1);
  EXPECT_EQ(after[count] - before[count], kCalls);
  EXPECT_EQ(after[inf] - before[inf], kCalls);
  EXPECT_EQ(after[slow] - before[slow], kCalls);
  EXPECT_GT(after["jcs_tool_call_duration_seconds_sum" + exec_ok + "}"], 0);
  EXPECT_EQ(after["jcs_tool_call_duration_seconds_count{tool=\"fs.read\","
                  "status=\"error\"}"],
            1);
  // Every jailed call either took a warm jail or started one cold, and its
  // setup time was observed.
  EXPECT_EQ(after["jcs_warm_jail_pool_hits_total"] +
                after["jcs_warm_jail_pool_misses_total"],
            kCalls);
  EXPECT_EQ(after["jcs_jail_setup_seconds_count{warm=\"true\"}"] +
                after["jcs_jail_setup_seconds_count{warm=\"false\"}"],
            kCalls);
  EXPECT_GT(after["jcs_journal_commit_seconds_count"], journal_commits);
  EXPECT_EQ(after[absl::StrCat("jcs_active_tool_calls{project=\"", p, "\"}")],
            0);
  // Log lines are written by the log's own thread: counted once written.
  EXPECT_TRUE(WaitFor(
      [&] {
        return Scrape()["jcs_log_lines_total"] > before["jcs_log_lines_total"];
      },
      10));
  EXPECT_EQ(after["jcs_log_lines_dropped_total"], 0);

  // The textfile collector's copy catches up within its period.
  std::map<std::string, double> file;
  EXPECT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::map<std::string, double>> parsed =
            telemetry::metrics::CheckExposition(ReadFileOrEmpty(textfile_));
        if (parsed.ok()) file = *parsed;
        return parsed.ok() && file[completed] == kCalls;
      },
      10))
      << ReadFileOrEmpty(textfile_);
  struct stat st;
  ASSERT_EQ(stat(textfile_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(file["jcs_metrics_textfile_errors_total"], 0);
}

// Prometheus' own checker (promtool, extracted from Debian's prometheus
// package by ./bazelw: installing the package would start a server) accepts
// the scrape and the textfile collector's file, lint included.
TEST_F(MetricsDaemonTest, PromtoolAcceptsTheScrapeAndTheTextfile) {
  const std::string promtool = "tests/promtool/promtool";
  ASSERT_EQ(access(promtool.c_str(), X_OK), 0)
      << promtool << " is missing: ./bazelw test extracts it";
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"/bin/true"}))));
  ASSERT_TRUE(
      ExpectError(Tool(p, "fs.read", {{"path", "../nope"}}), "outside_root"));
  const RunResult scrape = Cli({"metrics"});
  ASSERT_TRUE(scrape.exited && scrape.exit_code == 0) << scrape.Describe();
  const std::string file = daemon_.dir().Sub("scrape.prom");
  {
    std::ofstream out(file);
    out << scrape.out;
  }
  ASSERT_TRUE(WaitFor([&] { return !ReadFileOrEmpty(textfile_).empty(); }, 10));
  for (const std::string& input : {file, textfile_}) {
    const RunResult check =
        RunProgram({"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"",
                    promtool, input},
                   TimeoutAfter(60));
    EXPECT_TRUE(check.exited && check.exit_code == 0)
        << input << ": " << check.Describe();
    EXPECT_EQ(check.out + check.err, "") << input;
  }
}

// The metrics name every project and tool: a client that is allowed to
// connect but is no admin must not read them.
TEST_F(MetricsDaemonTest, OnlyAdminsReadTheMetrics) {
  StartProject();
  const RunResult plain =
      RunJcsAs(kProjectUid, {"metrics", "--socket", daemon_.socket_path()});
  EXPECT_EQ(plain.exit_code, 1) << plain.Describe();
  EXPECT_THAT(plain.err, HasSubstr("unauthorized"));
  EXPECT_EQ(plain.out, "");
  const RunResult admin =
      RunJcsAs(kAdmin, {"metrics", "--socket", daemon_.socket_path()});
  EXPECT_EQ(admin.exit_code, 0) << admin.Describe();
  EXPECT_THAT(admin.out, HasSubstr("jcs_events_total{project="));
}

TEST_F(MetricsDaemonTest, LogLinesAreJsonWithTheCallFieldsAndRedacted) {
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectOk(
      Tool(p, "exec", ExecArgs({"/bin/true"}),
           {"--conversation", "conv-1", "--correlation-id", "corr-log-1"})));
  // A secret in a denied path: the denial and the alert quote the path.
  WriteOutsideFile("token=hunter2", "outside\n");
  PlantSymlink(outside_, "escape");
  ASSERT_TRUE(ExpectError(Tool(p, "fs.read", {{"path", "escape/token=hunter2"}},
                               {"--correlation-id", "corr-log-2"}),
                          "outside_root"));
  // Drain: the daemon logs it before it exits.
  ASSERT_EQ(daemon_.StopCleanly(), "");

  const std::string text = ReadFileOrEmpty(log_path_);
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  std::vector<json> lines = JsonLines(text);
  auto find = [&](const std::function<bool(const json&)>& match) {
    for (const json& line : lines) {
      if (match(line)) return line;
    }
    return json();
  };
  for (const json& line : lines) {
    EXPECT_TRUE(line["ts"].is_string()) << line;
    EXPECT_TRUE(line["msg"].is_string()) << line;
    EXPECT_THAT(line["level"].get<std::string>(),
                ::testing::AnyOf("info", "warn", "error"))
        << line;  // log_level info: no debug lines
  }
  const json call = find([](const json& l) {
    return l["msg"] == "tool.call" && l["correlation_id"] == "corr-log-1";
  });
  ASSERT_FALSE(call.is_null()) << text;
  EXPECT_EQ(call["project_id"], p);
  EXPECT_EQ(call["conversation_id"], "conv-1");
  EXPECT_EQ(call["tool"], "exec");
  EXPECT_EQ(call["status"], "ok");
  EXPECT_TRUE(call["duration_ms"].is_number()) << call;
  EXPECT_EQ(call["level"], "info");
  const json failed = find([](const json& l) {
    return l["msg"] == "tool.call" && l["correlation_id"] == "corr-log-2";
  });
  ASSERT_FALSE(failed.is_null()) << text;
  EXPECT_EQ(failed["status"], "error");
  EXPECT_EQ(failed["reason"], "outside_root");
  EXPECT_EQ(failed["level"], "warn");
  const json denied =
      find([](const json& l) { return l["msg"] == "policy.denied"; });
  ASSERT_FALSE(denied.is_null()) << text;
  EXPECT_EQ(denied["payload"]["correlation_id"], "corr-log-2");
  EXPECT_THAT(denied["payload"]["path"].get<std::string>(),
              HasSubstr("[REDACTED]"));
  const json alert =
      find([](const json& l) { return l["msg"] == "alert.sandbox_violation"; });
  ASSERT_FALSE(alert.is_null()) << text;
  EXPECT_EQ(alert["level"], "error");
  EXPECT_EQ(alert["alert_severity"], "critical");
  for (const char* msg : {"serve.listening", "project.started",
                          "serve.draining", "serve.drained", "serve.stopped"}) {
    EXPECT_FALSE(find([&](const json& l) { return l["msg"] == msg; }).is_null())
        << msg << " missing:\n"
        << text;
  }
  // A clean exit takes the textfile away: stale numbers would look live.
  EXPECT_FALSE(PathExists(textfile_));
  daemon_.Start();  // TearDown stops it again
}

// Every jail sees /etc read-only: a log or textfile there would show every
// project's calls to every jailed program. The daemon refuses to start.
TEST(MetricsDaemonPathsTest, LogAndTextfileInsideTheJailsViewAreRefused) {
  for (const std::string field : {"log_file", "metrics_textfile"}) {
    SCOPED_TRACE(field);
    const std::string path =
        absl::StrCat("/etc/jcs-metrics-test-", getpid(), ".prom");
    Daemon daemon(absl::StrCat(field, ": \"", path, "\"\n"));
    EXPECT_FALSE(daemon.Start());
    ExitInfo info;
    const bool exited = daemon.WaitExited(10, &info);
    const bool created = PathExists(path);
    unlink(path.c_str());  // before any assertion can return
    ASSERT_TRUE(exited) << daemon.Log();
    EXPECT_EQ(info.exit_code, 1) << daemon.Log();
    EXPECT_THAT(daemon.Log(),
                HasSubstr(absl::StrCat(field, " ", path, " is inside /etc")));
    EXPECT_FALSE(created);
  }
}

class WarnLevelDaemonTest : public MetricsDaemonTest {
 protected:
  std::string ExtraConfig() const override { return "log_level: \"warn\"\n"; }
};

// log_level warn: a successful call (info) is not logged, a denial is.
TEST_F(WarnLevelDaemonTest, LinesBelowTheLevelAreLeftOut) {
  const std::string p = StartProject();
  ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"/bin/true"}))));
  ASSERT_TRUE(
      ExpectError(Tool(p, "fs.read", {{"path", "../nope"}}), "outside_root"));
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFileOrEmpty(log_path_).find("\"policy.denied\"") !=
               std::string::npos;
      },
      10))
      << ReadFileOrEmpty(log_path_);
  for (const json& line : JsonLines(ReadFileOrEmpty(log_path_))) {
    EXPECT_THAT(line["level"].get<std::string>(),
                ::testing::AnyOf("warn", "error"))
        << line;
  }
}

}  // namespace
}  // namespace jcs::serve_test
