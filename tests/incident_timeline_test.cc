// Issue 12 "Diagnostics and incidents", through a real `jcs serve` and the
// real CLI:
//   - diagnostics an operator can triage from: different failures leave
//     different recent_errors / recent_events entries, each naming the tool,
//     the reason and what the failure was about (path, resolved_path, host,
//     errno, timeout);
//   - `jcs timeline`: the incident timeline served from the journal for tool
//     calls made with a conversation id (the tool runtime's events carry it),
//     bounded, filtered by correlation id, still there after the project
//     stops, conversation_not_found for an unknown conversation, and a
//     readable table that does not pass a payload's control characters to
//     the terminal. Conversation-source entries (and the §5.5 renames) are
//     unit-tested over journal rows in runtime/conversation.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;

class IncidentTimelineTest : public ToolFixture {
 protected:
  // `jcs timeline PROJECT CONVERSATION ARGS... --json`, parsed.
  json Timeline(const std::string& project, const std::string& conversation,
                std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"timeline", project, conversation,
                                     "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    json doc = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << r.Describe();
    return doc;
  }

  ToolResponse ConversationTool(const std::string& project,
                                const std::string& name, const json& args,
                                const std::string& conversation,
                                const std::string& correlation) {
    return Tool(
        project, name, args,
        {"--conversation", conversation, "--correlation-id", correlation});
  }
};

std::vector<std::string> Events(const json& timeline) {
  std::vector<std::string> names;
  for (const json& e : timeline["entries"]) names.push_back(e["event"]);
  return names;
}

bool HasEvent(const json& timeline, const std::string& name) {
  for (const json& e : timeline["entries"]) {
    if (e["event"] == name) return true;
  }
  return false;
}

// The newest ring entry of `event` for `tool`.
json Newest(const json& ring, const std::string& event,
            const std::string& tool) {
  for (const json& e : ring) {
    if (e.value("event", "") == event && e.value("tool", "") == tool) return e;
  }
  return json();
}

// Issue 12: "three different failures show up as three identical
// {reason: tool_failed, error: null} entries". A denied path (a symlink out
// of the root), a network denial and an exec timeout (plus an errno
// failure) must each say what failed.
TEST_F(IncidentTimelineTest, EachRecentErrorSaysWhatFailed) {
  WriteOutsideFile("secret.md", "outside\n");
  PlantSymlink(outside_, "escape");
  const std::string p =
      StartProject({{"network_egress_policy", "allow"},
                    {"network_allowlist", json::array({"example.com"})},
                    {"tool_timeout_ms", 300}});
  const ToolResponse denied =
      Tool(p, "fs.read", {{"path", "escape/secret.md"}});
  ASSERT_TRUE(ExpectError(denied, "outside_root"));
  const ToolResponse network = Tool(
      p, "exec.network", ExecArgs({"/bin/true", "https://evil.test:8443/x"}));
  ASSERT_TRUE(ExpectError(network, "network_endpoint_denied"));
  const ToolResponse timeout = Tool(p, "exec", ExecArgs({"sleep", "5"}));
  ASSERT_TRUE(ExpectError(timeout, "timeout"));
  const ToolResponse missing = Tool(p, "fs.read", {{"path", "missing.md"}});
  ASSERT_EQ(missing.status(), "error") << missing.Describe();

  const json diag = Diagnostics(p);
  const json& errors = diag["telemetry"]["recent_errors"];
  ASSERT_EQ(errors.size(), 4u) << diag;
  // Newest first: missing, timeout, network, denied.
  json e_missing = errors[0];
  json e_timeout = errors[1];
  json e_network = errors[2];
  json e_denied = errors[3];
  for (json e : errors) {
    EXPECT_EQ(e["event"], "tool.failed") << e;
    EXPECT_TRUE(e["call_id"].is_string()) << e;
  }
  EXPECT_EQ(e_denied["tool"], "fs.read") << e_denied;
  EXPECT_EQ(e_denied["reason"], "outside_root") << e_denied;
  EXPECT_EQ(e_denied["path"], "escape/secret.md") << e_denied;
  EXPECT_EQ(e_denied["resolved_path"], denied.detail()["resolved_path"])
      << e_denied << denied.Describe();
  EXPECT_TRUE(e_denied["resolved_path"].is_string()) << denied.Describe();
  EXPECT_EQ(e_network["tool"], "exec.network") << e_network;
  EXPECT_EQ(e_network["reason"], "network_endpoint_denied") << e_network;
  EXPECT_EQ(e_network["host"], "evil.test") << e_network;
  EXPECT_EQ(e_timeout["tool"], "exec") << e_timeout;
  EXPECT_EQ(e_timeout["reason"], "timeout") << e_timeout;
  EXPECT_EQ(e_timeout["timeout_ms"], 300) << e_timeout;
  EXPECT_EQ(e_missing["tool"], "fs.read") << e_missing;
  EXPECT_EQ(e_missing["path"], "missing.md") << e_missing;
  EXPECT_EQ(e_missing["errno"], "ENOENT") << e_missing;
  // Without their times and call ids, no two entries are the same.
  std::vector<std::string> shapes;
  for (json e : errors) {
    e.erase("at");
    e.erase("call_id");
    e.erase("correlation_id");
    shapes.push_back(e.dump());
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    for (size_t j = i + 1; j < shapes.size(); ++j) {
      EXPECT_NE(shapes[i], shapes[j]);
    }
  }
  // The security events name the tool `tool` too (their payload says
  // tool_name) and keep the offending path and host.
  const json& events = diag["telemetry"]["recent_events"];
  json violation = Newest(events, "security.sandbox_violation", "fs.read");
  EXPECT_EQ(violation["path"], "escape/secret.md") << events;
  EXPECT_EQ(violation["reason"], "outside_root") << violation;
  json egress = Newest(events, "security.network_denied", "exec.network");
  EXPECT_EQ(egress["host"], "evil.test") << events;
  EXPECT_EQ(Newest(events, "policy.denied", "fs.read")["path"],
            "escape/secret.md")
      << events;
}

// §10.1 cases 6, 9 and 12 for what the daemon journals today: tool calls
// made for a conversation.
TEST_F(IncidentTimelineTest, TimelineOfAConversationsToolCalls) {
  const std::string p = StartProject();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ExpectOk(ConversationTool(p, "asset.list", {{"type", "skill"}},
                                          "conv-a", absl::StrCat("corr-", i))));
  }
  ASSERT_TRUE(ExpectError(
      ConversationTool(p, "fs.read", {{"path", "../x"}}, "conv-a", "corr-bad"),
      "outside_root"));
  // Another conversation's call never shows.
  ASSERT_TRUE(ExpectOk(
      ConversationTool(p, "asset.list", {{"type", "skill"}}, "conv-b", "o")));

  const json all = Timeline(p, "conv-a");
  EXPECT_EQ(all["project_id"], p);
  EXPECT_EQ(all["conversation_id"], "conv-a");
  EXPECT_EQ(all["correlation_id"], nullptr);
  EXPECT_EQ(all["limit"], 100);
  // Per ok call: policy.allowed, tool.started, tool.completed; the denied
  // one: policy.denied, security.sandbox_violation, tool.failed.
  EXPECT_EQ(all["total_entries"], 12) << all.dump(1);
  ASSERT_EQ(all["entries"].size(), 12u);
  int64_t last_ms = -1;
  for (const json& e : all["entries"]) {
    EXPECT_EQ(e["source"], "telemetry") << e;
    EXPECT_EQ(e["conversation_id"], "conv-a") << e;
    EXPECT_GE(e["at_ms"].get<int64_t>(), last_ms) << all.dump(1);
    last_ms = e["at_ms"];
  }
  EXPECT_TRUE(HasEvent(all, "tool.completed"));
  EXPECT_TRUE(HasEvent(all, "security.sandbox_violation"));
  EXPECT_EQ(all["entries"].back()["event"], "tool.failed");
  EXPECT_EQ(all["entries"].back()["payload"]["reason"], "outside_root");

  // The correlation filter (trimmed), and the newest `limit`.
  const json one = Timeline(p, "conv-a", {"--correlation-id", " corr-1 "});
  EXPECT_EQ(one["correlation_id"], "corr-1");
  EXPECT_EQ(Events(one),
            (std::vector<std::string>{"policy.allowed", "tool.started",
                                      "tool.completed"}));
  for (const json& e : one["entries"]) EXPECT_EQ(e["correlation_id"], "corr-1");
  const json last2 = Timeline(p, "conv-a", {"--limit", "2"});
  EXPECT_EQ(last2["limit"], 2);
  EXPECT_EQ(last2["total_entries"], 12);
  EXPECT_EQ(Events(last2), (std::vector<std::string>{
                               "security.sandbox_violation", "tool.failed"}));
  EXPECT_EQ(Timeline(p, "conv-a", {"--limit", "0"})["limit"], 100);
  EXPECT_EQ(Timeline(p, "conv-a", {"--limit", "100000"})["limit"], 500);

  // §10.1 case 12.
  const RunResult missing = Cli({"timeline", p, "missing-c1"});
  EXPECT_EQ(missing.exit_code, 1) << missing.Describe();
  EXPECT_TRUE(
      absl::StrContains(missing.err, "conversation_not_found: missing-c1"))
      << missing.Describe();
  const RunResult bad_limit = Cli({"timeline", p, "conv-a", "--limit", "x"});
  EXPECT_EQ(bad_limit.exit_code, 2) << bad_limit.Describe();
  EXPECT_TRUE(absl::StrContains(bad_limit.err, "--limit")) << bad_limit.err;
  const RunResult no_project = Cli({"timeline", "nope", "conv-a"});
  EXPECT_EQ(no_project.exit_code, 1) << no_project.Describe();

  // §10.1 case 8's point for jcs: served from the journal after the
  // project is gone.
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  const json after = Timeline(p, "conv-a");
  EXPECT_EQ(after["total_entries"], 12);
  EXPECT_EQ(after["entries"], all["entries"]);
}

// A conversation's cancel shows as tool.cancelled with the cancel's
// correlation id, and no completion follows.
TEST_F(IncidentTimelineTest, CancelledCallShowsInTheTimeline) {
  const std::string p = StartProject();
  const ToolResponse r =
      Tool(p, "exec", ExecArgs({"sleep", "30"}),
           {"--conversation", "conv-c", "--correlation-id", "work", "--async"});
  ASSERT_EQ(r.status(), "accepted") << r.Describe();
  ASSERT_TRUE(WaitFor([&] { return Count(p, "tool.started") == 1; }, 10));
  const RunResult cancel = Cli({"tool", "cancel", p, "--conversation", "conv-c",
                                "--correlation-id", "stop-it"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  ASSERT_TRUE(WaitFor([&] { return Count(p, "tool.cancelled") == 1; }, 10));
  const json t = Timeline(p, "conv-c");
  ASSERT_FALSE(t["entries"].empty()) << t;
  const json& last = t["entries"].back();
  EXPECT_EQ(last["event"], "tool.cancelled") << t.dump(1);
  EXPECT_EQ(last["payload"]["reason"], "conversation_cancelled");
  EXPECT_EQ(last["payload"]["cancel_correlation_id"], "stop-it");
  EXPECT_FALSE(HasEvent(t, "tool.completed"));
}

// The table: one header, one line per entry, and a payload's control
// characters (a forged line, a terminal escape) never reach the terminal.
TEST_F(IncidentTimelineTest, TableIsReadableAndInert) {
  const std::string p = StartProject();
  const std::string hostile = "evil\n2099-01-01T00:00:00.000Z  forged\x1b[2J";
  ASSERT_EQ(ConversationTool(p, "fs.read", {{"path", hostile}}, "conv-t", "k")
                .status(),
            "error");
  const RunResult r = Cli({"timeline", p, "conv-t"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\nforged"), std::string::npos) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "\n2099-")) << r.out;
  const json t = Timeline(p, "conv-t");
  const size_t lines = std::count(r.out.begin(), r.out.end(), '\n');
  EXPECT_EQ(lines, 2 + t["entries"].size()) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "conversation conv-t of project " + p))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "tool=fs.read")) << r.out;
}

// The CLI as another user (setpriv). The runfiles live under root's private
// home, so the binary is copied where every user can reach it.
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

// Attack: a timeline is a project's history (tool arguments, paths, hosts);
// another allowed client must not read it, while the project runs or after
// it stopped.
TEST(IncidentTimelineAccessTest, OnlyTheOwnerAndAdminsReadATimeline) {
  constexpr uid_t kBob = 1000;    // the attacker, an allowed client
  constexpr uid_t kAlice = 1001;  // the victim
  Daemon daemon(absl::StrCat("socket_mode: 0666\nallowed_uids: ", kBob,
                             "\nallowed_uids: ", kAlice, "\n"));
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  TempDir homes;
  const std::string home = homes.MakeDir("alice");
  ASSERT_EQ(chown(home.c_str(), kAlice, kAlice), 0);
  ASSERT_EQ(chmod(home.c_str(), 0700), 0);
  const auto as = [&](int uid, std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(daemon.socket_path());
    return uid < 0 ? RunJcs(args, TimeoutAfter(60)) : RunJcsAs(uid, args);
  };
  const RunResult start =
      as(kAlice, {"project", "start", home, "--project-id", "alice-p"});
  ASSERT_EQ(start.exit_code, 0) << start.Describe();
  as(kAlice, {"tool", "run", "alice-p", "fs.read", "--args",
              R"({"path":"diary.md"})", "--conversation", "conv-x"});
  const RunResult mine =
      as(kAlice, {"timeline", "alice-p", "conv-x", "--json"});
  ASSERT_EQ(mine.exit_code, 0) << mine.Describe();
  EXPECT_TRUE(absl::StrContains(mine.out, "diary.md")) << mine.out;

  const RunResult theirs = as(kBob, {"timeline", "alice-p", "conv-x"});
  EXPECT_EQ(theirs.exit_code, 1) << theirs.Describe();
  EXPECT_TRUE(absl::StrContains(theirs.err, "unauthorized")) << theirs.err;
  EXPECT_TRUE(absl::StrContains(theirs.err, "uid 1000")) << theirs.err;
  EXPECT_FALSE(absl::StrContains(theirs.out + theirs.err, "diary.md"));

  ASSERT_EQ(as(kAlice, {"project", "stop", "alice-p"}).exit_code, 0);
  // Stopped: its owner is no longer known, so admins only.
  const RunResult later = as(kBob, {"timeline", "alice-p", "conv-x"});
  EXPECT_EQ(later.exit_code, 1) << later.Describe();
  EXPECT_TRUE(absl::StrContains(later.err, "project_not_found")) << later.err;
  EXPECT_FALSE(absl::StrContains(later.out + later.err, "diary.md"));
  const RunResult admin = as(-1, {"timeline", "alice-p", "conv-x", "--json"});
  EXPECT_EQ(admin.exit_code, 0) << admin.Describe();
  EXPECT_TRUE(absl::StrContains(admin.out, "diary.md")) << admin.out;
  EXPECT_EQ(daemon.StopCleanly(), "");
}

}  // namespace
}  // namespace jcs::serve_test
