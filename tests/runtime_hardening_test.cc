// Port of the original runtime_hardening acceptance suite
// (/work/shared/spec/original-behaviour.md §10.1) to jcs: every case runs
// through a real `jcs serve` and the real `jcs project|tool|diagnostics`
// CLI, with the same inputs, outcomes and event counts, adapted to jcs's
// tools:
//   - `command.run.example_command {path}` -> fs.read / fs.write (path checks)
//     or `exec` with the path-bearing string in argv (the argument scan
//     JSON-decodes and opaque-scans every argv string);
//   - network-capable tools -> `exec.network` running `/bin/true URL...`
//     (the URL-bearing strings are in argv; the jail has no network anyway);
//   - the nested and JSON-wrapped argument forms (`payload.path`, a JSON
//     string `payload`, `request.endpoint`, ...) cannot be top-level keys:
//     every jcs tool's schema has additionalProperties false and the argument
//     scan runs after schema validation. They are expressed as JSON documents
//     inside argv strings, which the scan decodes and walks the same way.
// Deliberate jcs deviations (quirks fixed): unknown tools fail with
// `unknown_tool`; repeated timeouts alert once per crossing of the threshold
// within the 5-minute window (case 45); env values really reach the program
// (case 27); timeouts use tool_timeout_ms on a real `sleep` and kill the
// jail's whole process tree (case 46); the output cap is also enforced while
// an exec program runs (cases 2, 47); the artifact cap holds for fs.write
// and results, an exec program's files are bounded by jail_fsize (case 48).
//
// Case map (§10.1 -> test):
//    1 SchemaValidationRejectsMissingRequiredArgs
//    2 OutputSizeCapRejectsLargeResults (+ ExecOutputIsCappedWhileRunning)
//    3 PolicyDecisionsAreAuditedAndEmitted
//   13 SandboxViolationEmitsSecuritySignal
//   14 NestedAndJsonWrappedPathArgsAreValidated
//   15 OpaqueSerializedPathPayloadsAreValidated
//   16 OutsideRootAllowlistPermitsReasonCodedExceptions
//      (+ AllowlistedOutsidePathStaysOutOfReachOfFsTools)
//   17 OutsideRootAllowlistDoesNotBypassSensitiveDenylist
//   18 SensitiveAllowlistPermitsAllowlistedOutsideSensitivePath
//   21 (conversation cancel of async calls) and 22 (tracked process trees
//      of async calls killed on cancel): tool_runtime_policy_test's
//      CancelKillsTheCallsProcessTreeAndDropsItsResult (jcs cancels by call
//      id or conversation id; the jail's cgroup is the tracked tree)
//   23 TimeoutKillsTheWholeProcessTree (the workspace session's analogue is
//      the jail)
//   24 SuccessfulCallLeavesNothingBehind
//   25 SensitivePathsAreDeniedByDefault
//   26 EnvPassthroughIsDeniedByDefault
//   27 EnvAllowlistPassesValuesToTheProgram
//   28 EnvPayloadMustBeAMapOfValidNames
//   29 SensitivePathAllowlistPermitsDenylistedPaths
//   30 SensitiveArtifactsAreFlagged, HarmlessResultsAreNotFlagged
//      HarmlessExecResultIsNotFlagged
//   31 NetworkDenyByDefaultHidesAndRejectsNetworkTools
//   32 NetworkAllowExposesAndRunsNetworkTools
//   33 NetworkAllowlistBlocksOtherEndpoints
//   34 NetworkAllowlistInspectsNestedTargets
//   35 NetworkAllowlistInspectsJsonEncodedEndpoints
//   36 NetworkAllowlistInspectsJsonWrappersUnderOtherKeys
//   37 NetworkAllowlistInspectsOpaqueStrings
//   38 HighRiskSchemesAreDeniedByDefault
//   39 SchemeCheckInspectsNestedTargets
//   40 SchemeCheckInspectsJsonEncodedEndpoints
//   41 SchemeCheckInspectsJsonWrappersUnderOtherKeys
//   42 SchemeCheckInspectsOpaqueStrings
//   43 AllowedSchemesOptionPermitsFtp
//      AllowedSchemesAreShownSorted
//   45 RepeatedTimeoutsEscalateOncePerCrossing
//   46 TimeoutKillsTheWholeProcessTree
//   47 RuntimeOptionsTuneTheOutputCap
//   48 ArtifactCapAppliesToWritesNotToExecFiles
//   49 ProjectConcurrencyLimitRejectsOverLimitCalls
//   50 ConversationConcurrencyQuota
//   51 AssetReloadCapturesParseFailuresWithoutCrashing
//   52 StrictAssetLoadingFailsStartOnParseErrors
//   54 WatcherStormIsDebounced
//
//   44 SecretsAreRedactedBeforePersistence (through the daemon, down to the
//      journal's files; the case's exact payload: telemetry/bus_test.cc
//      SecretsAreRedactedBeforeTheRingsAndTheSinks)
//
// Conversation cases, in tests/conversation_test.cc (a real daemon and the
// real `jcs conversation` / `jcs timeline` CLI):
//    4 CorrelationIdIsPropagatedAcrossLlmToolAndPolicy
//    5 CorrelationIdIsGeneratedAndReused
//    6 IncidentTimelineMergesBothSourcesBoundedAndFiltered
//    7 CancelledRunningCallIsCancelledInTheIncidentTimeline
//    8, 9, 12 IncidentTimelineOutlivesTheConversationAndProject
//   10, 11 runtime/conversation/incident_timeline_test.cc
//      ConversationToolFailedCancelledReasonOrMessage, over journal rows:
//      clients cannot inject conversation.tool.failed (reserved_type), so
//      the atom and message forms exist only in journaled history
//   19 CancelEmitsToolCancelledForPendingCalls
//   20 AsyncToolRequestCompletesInTheBackground
//   53 InvalidAdapterFailsTurnsAndConversationStaysUsable
//   55 ConcurrentConversationsInManyProjectsStayIsolated
// runtime_diagnostics 1 and 3: conversation_test.cc
// DiagnosticsExposeConversationsAndCounters,
// DeniedModelToolCallIsCountedWithoutDegradingHealth.
//
// asset_store_loading 1-3 and runtime_diagnostics 2 (the watcher reloads):
// tests/asset_store_loading_test.cc.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tool_harness.h"

namespace jcs::serve_test {
namespace {

using ::nlohmann::json;

class RuntimeHardeningTest : public ToolFixture {
 protected:
  // The newest recent_decisions entry.
  json NewestDecision(const std::string& project) {
    json diag = Diagnostics(project);
    const json& decisions = diag["policy"]["recent_decisions"];
    EXPECT_TRUE(decisions.is_array() && !decisions.empty()) << diag;
    return decisions.is_array() && !decisions.empty() ? decisions[0] : json();
  }

  // exec.network running /bin/true with `arg` as its only argument.
  ToolResponse NetworkCall(const std::string& project, const std::string& arg) {
    return Tool(project, "exec.network", ExecArgs({"/bin/true", arg}));
  }
};

bool Contains(const json& list, const std::string& value) {
  return list.is_array() &&
         std::find(list.begin(), list.end(), json(value)) != list.end();
}

// §10.1 case 1.
TEST_F(RuntimeHardeningTest, SchemaValidationRejectsMissingRequiredArgs) {
  const std::string p = StartProject();
  const ToolResponse r = Tool(p, "asset.search", {{"type", "skill"}});
  ASSERT_TRUE(ExpectError(r, "invalid_tool_args"));
  EXPECT_EQ(r.detail()["kind"], "missing_required_args") << r.Describe();
  EXPECT_EQ(r.detail()["keys"], json({"query"})) << r.Describe();
  // Schema failures never reach the policy.
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "policy.allowed") + Count(diag, "policy.denied"), 0)
      << diag;
  EXPECT_EQ(Count(diag, "tool.failed"), 1) << diag;
  // jcs deviation: an unknown tool is its own reason.
  EXPECT_TRUE(
      ExpectError(Tool(p, "no.such.tool", json::object()), "unknown_tool"));
}

// §10.1 case 2.
TEST_F(RuntimeHardeningTest, OutputSizeCapRejectsLargeResults) {
  const std::string p = StartProject({{"tool_max_output_bytes", 64}});
  const ToolResponse r = Tool(p, "asset.list", {{"type", "skill"}});
  ASSERT_TRUE(ExpectError(r, "output_too_large"));
  EXPECT_EQ(r.detail()["max"], 64) << r.Describe();
  EXPECT_GT(r.detail()["size"].get<int64_t>(), 64) << r.Describe();
  EXPECT_FALSE(r.doc.contains("result")) << r.Describe();
  // The same call fits under the default cap (a second project on the same
  // root once the first has stopped: roots may not overlap).
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  const std::string q = StartProject({}, {"--project-id", "default-cap"});
  const ToolResponse ok = Tool(q, "asset.list", {{"type", "skill"}});
  ASSERT_TRUE(ExpectOk(ok));
  EXPECT_EQ(ok.result()["items"].size(), 3u) << ok.Describe();
}

// §10.1 cases 2/47, exec: the cap is enforced while the program runs (`yes`
// never ends on its own; the timeout is far away).
TEST_F(RuntimeHardeningTest, ExecOutputIsCappedWhileRunning) {
  const std::string p =
      StartProject({{"tool_max_output_bytes", 64}, {"tool_timeout_ms", 30000}});
  const double start = NowSeconds();
  const ToolResponse r = Tool(p, "exec", ExecArgs({"yes"}));
  const double elapsed = NowSeconds() - start;
  ASSERT_TRUE(ExpectError(r, "output_too_large"));
  EXPECT_EQ(r.detail()["max"], 64) << r.Describe();
  EXPECT_LT(elapsed, 10.0) << "`yes` was not killed at the output cap";
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "tool.child_processes_terminated"), 1) << diag;
  EXPECT_EQ(Count(diag, "tool.timeout"), 0) << diag;
  EXPECT_EQ(diag["tools"]["running_calls"], json::array()) << diag;
}

// Call metadata of the wrong types once made nlohmann's value() throw in
// the daemon's loop, aborting it for every project. A member of another
// type reads as absent: the call runs with a fresh correlation id, and the
// daemon serves the next call.
TEST_F(RuntimeHardeningTest, MetadataOfTheWrongTypesDoesNotStopTheDaemon) {
  const std::string p = StartProject({});
  const ToolResponse odd =
      Tool(p, "asset.list", {{"type", "skill"}},
           {"--meta", R"({"correlation_id": 5, "conversation_id": ["c"],)"
                      R"( "run_mode": {"a": 1}, "async": "yes"})"});
  ASSERT_TRUE(ExpectOk(odd));
  ASSERT_TRUE(odd.doc["correlation_id"].is_string()) << odd.Describe();
  EXPECT_FALSE(odd.doc["correlation_id"].get<std::string>().empty());
  EXPECT_NE(odd.doc["correlation_id"], "5");
  EXPECT_EQ(odd.doc.value("conversation_id", json()), json()) << odd.Describe();
  const ToolResponse next = Tool(p, "asset.list", {{"type", "skill"}});
  EXPECT_TRUE(ExpectOk(next));
}

// §10.1 case 3.
TEST_F(RuntimeHardeningTest, PolicyDecisionsAreAuditedAndEmitted) {
  const std::string p =
      StartProject({{"allow_tools", json::array({"asset.list"})}});
  const ToolResponse allowed =
      Tool(p, "asset.list", {{"type", "skill"}},
           {"--conversation", "conv-audit", "--correlation-id", "corr-a1"});
  ASSERT_TRUE(ExpectOk(allowed));
  EXPECT_EQ(allowed.doc["correlation_id"], "corr-a1");
  EXPECT_EQ(allowed.doc["conversation_id"], "conv-audit");
  const ToolResponse denied =
      Tool(p, "asset.search", {{"type", "skill"}, {"query", "alpha"}},
           {"--conversation", "conv-audit", "--correlation-id", "corr-a2"});
  ASSERT_TRUE(ExpectError(denied, "denied"));
  EXPECT_EQ(denied.doc["correlation_id"], "corr-a2");
  EXPECT_EQ(denied.doc["conversation_id"], "conv-audit");

  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "policy.allowed"), 1) << diag;
  EXPECT_EQ(Count(diag, "policy.denied"), 1) << diag;
  // Tool allow/deny denials emit no security signal.
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 0) << diag;
  const json& decisions = diag["policy"]["recent_decisions"];
  ASSERT_TRUE(decisions.is_array()) << diag;
  ASSERT_EQ(decisions.size(), 2u) << diag;
  // Newest first.
  EXPECT_EQ(decisions[0]["tool_name"], "asset.search");
  EXPECT_EQ(decisions[0]["reason"], "denied");
  EXPECT_EQ(decisions[0]["decision"], "deny");
  EXPECT_EQ(decisions[0]["correlation_id"], "corr-a2");
  EXPECT_EQ(decisions[0]["conversation_id"], "conv-audit");
  EXPECT_EQ(decisions[1]["tool_name"], "asset.list");
  EXPECT_EQ(decisions[1]["reason"], "allowed");
  EXPECT_EQ(decisions[1]["decision"], "allow");
  EXPECT_EQ(decisions[1]["correlation_id"], "corr-a1");
  EXPECT_EQ(decisions[1]["conversation_id"], "conv-audit");
  EXPECT_EQ(diag["policy"]["allow_tools"], json({"asset.list"})) << diag;
}

// §10.1 case 13.
TEST_F(RuntimeHardeningTest, SandboxViolationEmitsSecuritySignal) {
  WriteOutsideFile("../outside.md", "outside content\n");
  const std::string p = StartProject();
  const ToolResponse r = Tool(p, "fs.read", {{"path", "../outside.md"}});
  ASSERT_TRUE(ExpectError(r, "outside_root"));
  EXPECT_EQ(r.detail()["path"], "../outside.md") << r.Describe();
  EXPECT_EQ(r.run.out.find("outside content"), std::string::npos);
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 1) << diag;
  EXPECT_EQ(Count(diag, "policy.denied"), 1) << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 0) << diag;
  EXPECT_EQ(diag["policy"]["recent_decisions"][0]["reason"], "outside_root");
  // fs.write is checked the same way, and nothing is written.
  const ToolResponse w =
      Tool(p, "fs.write", {{"path", "../written.md"}, {"content", "x"}});
  EXPECT_TRUE(ExpectError(w, "outside_root"));
  EXPECT_FALSE(PathExists(dir_.Sub("written.md")));
  EXPECT_EQ(Count(p, "security.sandbox_violation"), 2);
}

// §10.1 case 14: `{payload: {path: "../x"}}` and `{payload: "{\"path\":
// \"../x\"}"}`, carried as JSON documents in argv strings.
TEST_F(RuntimeHardeningTest, NestedAndJsonWrappedPathArgsAreValidated) {
  const std::string p = StartProject();
  const json nested = {{"payload", {{"path", "../x"}}}};
  const json wrapped = {{"payload", json({{"path", "../x"}}).dump()}};
  const ToolResponse a =
      Tool(p, "exec", ExecArgs({"/bin/true", nested.dump()}));
  ASSERT_TRUE(ExpectError(a, "outside_root"));
  EXPECT_EQ(a.detail()["path"], "../x") << a.Describe();
  const ToolResponse b =
      Tool(p, "exec", ExecArgs({"/bin/true", wrapped.dump()}));
  ASSERT_TRUE(ExpectError(b, "outside_root"));
  EXPECT_EQ(b.detail()["path"], "../x") << b.Describe();
  // The same documents pointing inside the root are fine.
  const json inside = {{"payload", {{"path", "notes/x.md"}}}};
  EXPECT_TRUE(
      ExpectOk(Tool(p, "exec", ExecArgs({"/bin/true", inside.dump()}))));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 2) << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 1) << diag;
}

// §10.1 case 15.
TEST_F(RuntimeHardeningTest, OpaqueSerializedPathPayloadsAreValidated) {
  MakeRootDir(".jido/commands");
  WriteRootFile(".jido/commands/example_command.md", "# Example\n");
  const std::string p = StartProject();
  // `payload: "path=../x"` (an opaque string).
  const ToolResponse a = Tool(p, "exec", ExecArgs({"/bin/true", "path=../x"}));
  ASSERT_TRUE(ExpectError(a, "outside_root"));
  EXPECT_EQ(a.detail()["path"], "../x") << a.Describe();
  // `path: "path=../x"`: the literal resolves inside the root, the opaque
  // scan finds ../x.
  const ToolResponse b = Tool(p, "fs.read", {{"path", "path=../x"}});
  ASSERT_TRUE(ExpectError(b, "outside_root"));
  EXPECT_EQ(b.detail()["path"], "../x") << b.Describe();
  // An opaque path inside the root is fine.
  EXPECT_TRUE(ExpectOk(
      Tool(p, "exec",
           ExecArgs({"/bin/true", "path=.jido/commands/example_command.md"}))));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 2) << diag;
  EXPECT_EQ(Count(diag, "policy.allowed"), 1) << diag;
}

// §10.1 case 16.
TEST_F(RuntimeHardeningTest, OutsideRootAllowlistPermitsReasonCodedExceptions) {
  const std::string notes = WriteOutsideFile("notes.md", "shared notes\n");
  const std::string p = StartProject(
      {{"outside_root_allowlist",
        json::array({{{"path", notes}, {"reason_code", "shared_docs"}}})}});
  const ToolResponse r =
      Tool(p, "exec", ExecArgs({"/bin/true", "path=" + notes}));
  ASSERT_TRUE(ExpectOk(r));
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["policy"]["outside_root_allowlist"],
            json::array({{{"pattern", notes}, {"reason_code", "shared_docs"}}}))
      << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_exception_used"), 1) << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 0) << diag;
  const json& decision = diag["policy"]["recent_decisions"][0];
  EXPECT_EQ(decision["reason"], "allowed") << diag;
  EXPECT_EQ(decision["outside_root_exception_reason_codes"],
            json({"shared_docs"}))
      << diag;
  // A path next to it is not covered.
  const ToolResponse other = Tool(
      p, "exec", ExecArgs({"/bin/true", "path=" + outside_ + "/other.md"}));
  EXPECT_TRUE(ExpectError(other, "outside_root"));
  EXPECT_EQ(Count(p, "security.sandbox_violation"), 1);
}

// §10.1 case 16, jcs: the exception is a policy decision only. The file
// tools stay confined to the root (openat2 RESOLVE_BENEATH) and the jail
// does not mount allowlisted paths, so the content stays out of reach.
TEST_F(RuntimeHardeningTest, AllowlistedOutsidePathStaysOutOfReachOfFsTools) {
  const std::string notes = WriteOutsideFile("notes.md", "shared notes\n");
  const std::string p = StartProject(
      {{"outside_root_allowlist",
        json::array({{{"path", notes}, {"reason_code", "shared_docs"}}})}});
  const ToolResponse read = Tool(p, "fs.read", {{"path", notes}});
  EXPECT_TRUE(ExpectError(read, "outside_root"));
  EXPECT_EQ(read.run.out.find("shared notes"), std::string::npos);
  // The fs tool's refusal of a path the operator allowlisted is no escape
  // attempt: no violation to page on, no denial decision.
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 0) << diag;
  EXPECT_EQ(Count(diag, "policy.denied"), 0) << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_exception_used"), 1) << diag;
  const ToolResponse cat = Tool(p, "exec", ExecArgs({"cat", notes}));
  ASSERT_TRUE(ExpectOk(cat));
  EXPECT_NE(cat.result()["exit_code"], 0) << cat.Describe();
  EXPECT_EQ(cat.run.out.find("shared notes"), std::string::npos);
}

// §10.1 case 17.
TEST_F(RuntimeHardeningTest,
       OutsideRootAllowlistDoesNotBypassSensitiveDenylist) {
  const std::string env = WriteOutsideFile(".env", "OUTSIDE_SECRET=1\n");
  const std::string p = StartProject(
      {{"outside_root_allowlist",
        json::array({{{"path", env}, {"reason_code", "shared_env"}}})}});
  const ToolResponse r = Tool(p, "fs.read", {{"path", env}});
  ASSERT_TRUE(ExpectError(r, "sensitive_path_denied"));
  EXPECT_EQ(r.run.out.find("OUTSIDE_SECRET"), std::string::npos);
  const ToolResponse e =
      Tool(p, "exec", ExecArgs({"/bin/true", "path=" + env}));
  EXPECT_TRUE(ExpectError(e, "sensitive_path_denied"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sensitive_path_denied"), 2) << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_exception_used"), 0) << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 0) << diag;
}

// §10.1 case 18.
TEST_F(RuntimeHardeningTest,
       SensitiveAllowlistPermitsAllowlistedOutsideSensitivePath) {
  const std::string env = WriteOutsideFile(".env", "OUTSIDE_SECRET=1\n");
  const std::string p = StartProject(
      {{"outside_root_allowlist",
        json::array({{{"path", env}, {"reason_code", "shared_env"}}})},
       {"sensitive_path_allowlist", json::array({".env"})}});
  const ToolResponse r =
      Tool(p, "exec", ExecArgs({"/bin/true", "path=" + env}));
  ASSERT_TRUE(ExpectOk(r));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sandbox_exception_used"), 1) << diag;
  EXPECT_EQ(Count(diag, "security.sensitive_path_denied"), 0) << diag;
  EXPECT_EQ(diag["policy"]["recent_decisions"][0]
                ["outside_root_exception_reason_codes"],
            json({"shared_env"}))
      << diag;
}

// §10.1 case 25.
TEST_F(RuntimeHardeningTest, SensitivePathsAreDeniedByDefault) {
  WriteRootFile(".env", "ROOT_SECRET=abc\n");
  MakeRootDir("keys");
  WriteRootFile("keys/server.pem", "PEM\n");
  const std::string p = StartProject();
  const ToolResponse r = Tool(p, "fs.read", {{"path", ".env"}});
  ASSERT_TRUE(ExpectError(r, "sensitive_path_denied"));
  EXPECT_EQ(r.run.out.find("ROOT_SECRET"), std::string::npos);
  EXPECT_TRUE(ExpectError(Tool(p, "fs.read", {{"path", "keys/server.pem"}}),
                          "sensitive_path_denied"));
  EXPECT_TRUE(ExpectError(
      Tool(p, "fs.write", {{"path", ".env.local"}, {"content", "X=1"}}),
      "sensitive_path_denied"));
  EXPECT_FALSE(PathExists(root_ + "/.env.local"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sensitive_path_denied"), 3) << diag;
  EXPECT_EQ(Count(diag, "security.sandbox_violation"), 0) << diag;
}

// §10.1 case 26.
TEST_F(RuntimeHardeningTest, EnvPassthroughIsDeniedByDefault) {
  const std::string p = StartProject();
  json args = ExecArgs({"sh", "-c", "echo $OPENAI_API_KEY"});
  args["env"] = {{"OPENAI_API_KEY", "sk-test-value"}, {"LANG", "C"}};
  const ToolResponse r = Tool(p, "exec", args);
  ASSERT_TRUE(ExpectError(r, "env_vars_not_allowed"));
  EXPECT_EQ(r.detail()["denied_env_keys"], json({"LANG", "OPENAI_API_KEY"}))
      << r.Describe();
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.env_denied"), 1) << diag;
  // Env checks run before the policy: no decision, nothing started.
  EXPECT_EQ(Count(diag, "policy.allowed") + Count(diag, "policy.denied"), 0)
      << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 0) << diag;
}

// §10.1 case 27 (jcs: the values really reach the program).
TEST_F(RuntimeHardeningTest, EnvAllowlistPassesValuesToTheProgram) {
  const std::string p = StartProject(
      {{"tool_env_allowlist", json::array({"LANG", "OPENAI_API_KEY"})}});
  json args = ExecArgs({"sh", "-c", "echo \"$OPENAI_API_KEY|$LANG\""});
  args["env"] = {{"OPENAI_API_KEY", "allowed-value-123"}, {"LANG", "C.UTF-8"}};
  const ToolResponse r = Tool(p, "exec", args);
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["stdout"], "allowed-value-123|C.UTF-8\n")
      << r.Describe();
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["runtime_opts"]["tool_env_allowlist"],
            json({"LANG", "OPENAI_API_KEY"}))
      << diag;
  EXPECT_EQ(Count(diag, "security.env_denied"), 0) << diag;
  // A key outside the list is still denied.
  json more = ExecArgs({"/bin/true"});
  more["env"] = {{"LANG", "C"}, {"AWS_SECRET_ACCESS_KEY", "x"}};
  const ToolResponse denied = Tool(p, "exec", more);
  ASSERT_TRUE(ExpectError(denied, "env_vars_not_allowed"));
  EXPECT_EQ(denied.detail()["denied_env_keys"],
            json({"AWS_SECRET_ACCESS_KEY"}));
}

// §10.1 case 28: env as a list is invalid_env_payload with
// security.env_denied (exec's schema leaves `env`'s shape to the env check),
// and so are invalid variable names and non-string values.
TEST_F(RuntimeHardeningTest, EnvPayloadMustBeAMapOfValidNames) {
  const std::string p = StartProject(
      {{"tool_env_allowlist", json::array({"LANG", "OPENAI_API_KEY"})}});
  json list = ExecArgs({"/bin/true"});
  list["env"] = json::array({"OPENAI_API_KEY=x"});
  const ToolResponse a = Tool(p, "exec", list);
  ASSERT_TRUE(ExpectError(a, "invalid_env_payload"));
  EXPECT_EQ(Count(p, "security.env_denied"), 1);

  json bad_name = ExecArgs({"/bin/true"});
  bad_name["env"] = {{"BAD-NAME", "x"}};
  EXPECT_TRUE(ExpectError(Tool(p, "exec", bad_name), "invalid_env_payload"));
  json bad_value = ExecArgs({"/bin/true"});
  bad_value["env"] = {{"LANG", 5}};
  EXPECT_TRUE(ExpectError(Tool(p, "exec", bad_value), "invalid_env_payload"));
  json blank = ExecArgs({"/bin/true"});
  blank["env"] = {{"", "x"}};
  EXPECT_TRUE(ExpectError(Tool(p, "exec", blank), "invalid_env_payload"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.env_denied"), 4) << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 0) << diag;
  // An empty map is fine.
  json empty = ExecArgs({"/bin/true"});
  empty["env"] = json::object();
  EXPECT_TRUE(ExpectOk(Tool(p, "exec", empty)));
}

// §10.1 case 29.
TEST_F(RuntimeHardeningTest, SensitivePathAllowlistPermitsDenylistedPaths) {
  WriteRootFile(".env", "ROOT_SETTING=visible\n");
  const std::string p =
      StartProject({{"sensitive_path_allowlist", json::array({".env"})}});
  const ToolResponse r = Tool(p, "fs.read", {{"path", ".env"}});
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["content"], "ROOT_SETTING=visible\n") << r.Describe();
  // The jail does not mask it either.
  const ToolResponse cat = Tool(p, "exec", ExecArgs({"cat", ".env"}));
  ASSERT_TRUE(ExpectOk(cat));
  EXPECT_EQ(cat.result()["stdout"], "ROOT_SETTING=visible\n") << cat.Describe();
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["policy"]["sensitive_path_allowlist"], json({".env"})) << diag;
  EXPECT_EQ(Count(diag, "security.sensitive_path_denied"), 0) << diag;
}

// §10.1 case 30.
TEST_F(RuntimeHardeningTest, SensitiveArtifactsAreFlagged) {
  const std::string key = "sk-abcdefghij0123456789ABCD";
  WriteRootFile("config.json", "{\"api_key\":\"" + key + "\"}\n");
  const std::string p = StartProject();
  const ToolResponse r =
      Tool(p, "exec", ExecArgs({"sh", "-c", "echo api_key: " + key}));
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_TRUE(Contains(r.doc["risk_flags"], "sensitive_artifact_detected"))
      << r.Describe();
  EXPECT_GE(r.doc.value("sensitivity_findings_count", 0), 1) << r.Describe();
  EXPECT_TRUE(Contains(r.doc["sensitivity_finding_kinds"], "openai_key"))
      << r.Describe();
  const ToolResponse read = Tool(p, "fs.read", {{"path", "config.json"}});
  ASSERT_TRUE(ExpectOk(read));
  EXPECT_TRUE(Contains(read.doc["risk_flags"], "sensitive_artifact_detected"))
      << read.Describe();
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.sensitive_artifact_detected"), 2) << diag;
  EXPECT_EQ(Count(diag, "tool.completed"), 2) << diag;
}

// §10.1 case 30, the other side: harmless results carry no flags.
TEST_F(RuntimeHardeningTest, HarmlessResultsAreNotFlagged) {
  WriteRootFile("notes.txt", "nothing secret here\n");
  const std::string p = StartProject();
  const ToolResponse read = Tool(p, "fs.read", {{"path", "notes.txt"}});
  ASSERT_TRUE(ExpectOk(read));
  EXPECT_FALSE(read.doc.contains("risk_flags")) << read.Describe();
  const ToolResponse list = Tool(p, "asset.list", {{"type", "skill"}});
  ASSERT_TRUE(ExpectOk(list));
  EXPECT_FALSE(list.doc.contains("risk_flags")) << list.Describe();
  EXPECT_EQ(Count(p, "security.sensitive_artifact_detected"), 0);
}

// jcs\'s own timing of a jailed call sits beside the result (timing_us),
// not in it, so a harmless program\'s result is never flagged.
TEST_F(RuntimeHardeningTest, HarmlessExecResultIsNotFlagged) {
  const std::string p = StartProject();
  const ToolResponse clean = Tool(p, "exec", ExecArgs({"echo", "hello"}));
  ASSERT_TRUE(ExpectOk(clean));
  EXPECT_FALSE(clean.doc.contains("risk_flags")) << clean.Describe();
  EXPECT_EQ(Count(p, "security.sensitive_artifact_detected"), 0);
}

// §10.1 case 31.
TEST_F(RuntimeHardeningTest, NetworkDenyByDefaultHidesAndRejectsNetworkTools) {
  const std::string p = StartProject();
  const std::vector<std::string> names = ToolNames(p);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec.network"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec"), 1);
  const ToolResponse r = NetworkCall(p, "https://api.example.com/v1");
  ASSERT_TRUE(ExpectError(r, "network_denied"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.network_denied"), 1) << diag;
  EXPECT_EQ(Count(diag, "tool.started"), 0) << diag;
  EXPECT_EQ(diag["policy"]["network_egress_policy"], "deny") << diag;
}

// §10.1 case 32.
TEST_F(RuntimeHardeningTest, NetworkAllowExposesAndRunsNetworkTools) {
  const std::string p = StartProject({{"network_egress_policy", "allow"}});
  const std::vector<std::string> names = ToolNames(p);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec.network"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "exec"), 1);
  const ToolResponse r = NetworkCall(p, "https://api.example.com/v1");
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["exit_code"], 0) << r.Describe();
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.network_denied"), 0) << diag;
  EXPECT_EQ(diag["runtime_opts"]["network_egress_policy"], "allow") << diag;
}

// §10.1 case 33.
TEST_F(RuntimeHardeningTest, NetworkAllowlistBlocksOtherEndpoints) {
  const std::string p =
      StartProject({{"network_egress_policy", "allow"},
                    {"network_allowlist", json::array({"example.com"})}});
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "https://api.example.com/v1")));
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "https://example.com/")));
  const ToolResponse r = NetworkCall(p, "https://evil.test/collect");
  ASSERT_TRUE(ExpectError(r, "network_endpoint_denied"));
  EXPECT_EQ(r.detail()["host"], "evil.test") << r.Describe();
  // A suffix that is not a subdomain does not match.
  EXPECT_TRUE(ExpectError(NetworkCall(p, "https://notexample.com/"),
                          "network_endpoint_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 2);
}

// §10.1 case 34.
TEST_F(RuntimeHardeningTest, NetworkAllowlistInspectsNestedTargets) {
  const std::string p =
      StartProject({{"network_egress_policy", "allow"},
                    {"network_allowlist", json::array({"example.com"})}});
  EXPECT_TRUE(ExpectOk(NetworkCall(
      p, json({{"request", {{"endpoint", "https://api.example.com/v1"}}}})
             .dump())));
  EXPECT_TRUE(ExpectOk(NetworkCall(
      p, json({{"connection", {{"host", "api.example.com:443"}}}}).dump())));
  const ToolResponse r = NetworkCall(
      p, json({{"requests",
                json::array({{{"endpoint", "https://evil.test/v1"}}})}})
             .dump());
  ASSERT_TRUE(ExpectError(r, "network_endpoint_denied"));
  EXPECT_EQ(r.detail()["host"], "evil.test") << r.Describe();
  EXPECT_EQ(Count(p, "security.network_denied"), 1);
}

// §10.1 case 35.
TEST_F(RuntimeHardeningTest, NetworkAllowlistInspectsJsonEncodedEndpoints) {
  const std::string p =
      StartProject({{"network_egress_policy", "allow"},
                    {"network_allowlist", json::array({"example.com"})}});
  auto endpoint = [](const json& inner) {
    return json({{"endpoint", inner.dump()}}).dump();
  };
  EXPECT_TRUE(ExpectOk(
      NetworkCall(p, endpoint({{"url", "https://api.example.com/v1"}}))));
  EXPECT_TRUE(
      ExpectOk(NetworkCall(p, endpoint({{"host", "api.example.com"}}))));
  EXPECT_TRUE(
      ExpectError(NetworkCall(p, endpoint({{"url", "https://evil.test/v1"}})),
                  "network_endpoint_denied"));
  EXPECT_TRUE(ExpectError(NetworkCall(p, endpoint({{"host", "evil.test"}})),
                          "network_endpoint_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 2);
}

// §10.1 case 36.
TEST_F(RuntimeHardeningTest,
       NetworkAllowlistInspectsJsonWrappersUnderOtherKeys) {
  const std::string p =
      StartProject({{"network_egress_policy", "allow"},
                    {"network_allowlist", json::array({"example.com"})}});
  auto payload = [](const std::string& url) {
    return json({{"payload", json({{"request", {{"endpoint", url}}}}).dump()}})
        .dump();
  };
  EXPECT_TRUE(ExpectOk(NetworkCall(p, payload("https://api.example.com/v1"))));
  EXPECT_TRUE(ExpectError(NetworkCall(p, payload("https://evil.test/v1")),
                          "network_endpoint_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 1);
}

// §10.1 case 37.
TEST_F(RuntimeHardeningTest, NetworkAllowlistInspectsOpaqueStrings) {
  const std::string p =
      StartProject({{"network_egress_policy", "allow"},
                    {"network_allowlist", json::array({"example.com"})}});
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "curl https://api.example.com/v1")));
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "host=api.example.com:443")));
  EXPECT_TRUE(ExpectError(NetworkCall(p, "fetch https://evil.test/v1"),
                          "network_endpoint_denied"));
  EXPECT_TRUE(ExpectError(NetworkCall(p, "host=evil.test:443"),
                          "network_endpoint_denied"));
  // Every argv element is scanned, not only the first argument.
  EXPECT_TRUE(
      ExpectError(Tool(p, "exec.network",
                       ExecArgs({"/bin/true", "https://api.example.com/ok",
                                 "https://evil.test/bad"})),
                  "network_endpoint_denied"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.network_denied"), 3) << diag;
  EXPECT_EQ(Count(diag, "tool.completed"), 2) << diag;
}

// §10.1 case 38.
TEST_F(RuntimeHardeningTest, HighRiskSchemesAreDeniedByDefault) {
  const std::string p = StartProject({{"network_egress_policy", "allow"}});
  const ToolResponse r =
      NetworkCall(p, json({{"url", "ftp://files.example.com/dump"}}).dump());
  ASSERT_TRUE(ExpectError(r, "network_protocol_denied"));
  EXPECT_EQ(r.detail()["scheme"], "ftp") << r.Describe();
  EXPECT_TRUE(ExpectError(NetworkCall(p, "gopher://example.com/"),
                          "network_protocol_denied"));
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "http://example.com/")));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.network_denied"), 2) << diag;
  EXPECT_EQ(diag["policy"]["network_allowed_schemes"], json({"http", "https"}))
      << diag;
}

// §10.1 case 39.
TEST_F(RuntimeHardeningTest, SchemeCheckInspectsNestedTargets) {
  const std::string p = StartProject({{"network_egress_policy", "allow"}});
  EXPECT_TRUE(ExpectError(
      NetworkCall(
          p, json({{"request", {{"endpoint", "ftp://files.example.com/x"}}}})
                 .dump()),
      "network_protocol_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 1);
}

// §10.1 case 40.
TEST_F(RuntimeHardeningTest, SchemeCheckInspectsJsonEncodedEndpoints) {
  const std::string p = StartProject({{"network_egress_policy", "allow"}});
  EXPECT_TRUE(ExpectError(
      NetworkCall(p,
                  json({{"endpoint",
                         json({{"url", "ftp://files.example.com/x"}}).dump()}})
                      .dump()),
      "network_protocol_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 1);
}

// §10.1 case 41.
TEST_F(RuntimeHardeningTest, SchemeCheckInspectsJsonWrappersUnderOtherKeys) {
  const std::string p = StartProject({{"network_egress_policy", "allow"}});
  EXPECT_TRUE(ExpectError(
      NetworkCall(
          p, json({{"payload",
                    json({{"request", {{"url", "ftp://files.example.com/x"}}}})
                        .dump()}})
                 .dump()),
      "network_protocol_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 1);
}

// §10.1 case 42.
TEST_F(RuntimeHardeningTest, SchemeCheckInspectsOpaqueStrings) {
  const std::string p = StartProject({{"network_egress_policy", "allow"}});
  EXPECT_TRUE(ExpectError(NetworkCall(p, "curl ftp://files.example.com/x"),
                          "network_protocol_denied"));
  EXPECT_TRUE(ExpectError(
      Tool(p, "exec.network",
           ExecArgs({"sh", "-c", "curl -s ftp://files.example.com/x"})),
      "network_protocol_denied"));
  EXPECT_EQ(Count(p, "security.network_denied"), 2);
}

// §10.1 case 43 (the outcome part).
TEST_F(RuntimeHardeningTest, AllowedSchemesOptionPermitsFtp) {
  const std::string p = StartProject(
      {{"network_egress_policy", "allow"},
       {"network_allowed_schemes", json::array({"https", "ftp"})}});
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "curl ftp://files.example.com/x")));
  EXPECT_TRUE(ExpectOk(NetworkCall(p, "https://api.example.com/v1")));
  // http is no longer in the list.
  EXPECT_TRUE(ExpectError(NetworkCall(p, "http://example.com/"),
                          "network_protocol_denied"));
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "security.network_denied"), 1) << diag;
  const json& schemes = diag["policy"]["network_allowed_schemes"];
  ASSERT_TRUE(schemes.is_array()) << diag;
  EXPECT_EQ(schemes.size(), 2u) << diag;
  EXPECT_TRUE(Contains(schemes, "ftp")) << diag;
  EXPECT_TRUE(Contains(schemes, "https")) << diag;
}

// §10.1 case 43 (spec §3.4/§3.5): diagnostics show the policy lists sorted
// and deduplicated.
TEST_F(RuntimeHardeningTest, AllowedSchemesAreShownSorted) {
  const std::string p = StartProject(
      {{"network_egress_policy", "allow"},
       {"network_allowed_schemes", json::array({"https", "ftp", "https"})}});
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["policy"]["network_allowed_schemes"], json({"ftp", "https"}))
      << diag;
}

// §10.1 case 44, through the daemon: a failure whose details carry secrets
// (a path and an outside path spelled like credentials) is redacted in
// recent_errors, and nothing of the secret reaches the journal's files.
TEST_F(RuntimeHardeningTest, SecretsAreRedactedBeforePersistence) {
  const std::string p = StartProject();
  const ToolResponse missing =
      Tool(p, "fs.read", {{"path", "api_key=dont-log-this"}});
  EXPECT_EQ(missing.status(), "error") << missing.Describe();
  const ToolResponse outside =
      Tool(p, "fs.read", {{"path", "../token: dont-log-this"}});
  ASSERT_TRUE(ExpectError(outside, "outside_root"));
  const json diag = Diagnostics(p);
  const json& errors = diag["telemetry"]["recent_errors"];
  ASSERT_GE(errors.size(), 2u) << diag;
  EXPECT_EQ(diag.dump().find("dont-log-this"), std::string::npos) << diag;
  EXPECT_NE(errors.dump().find("api_key=[REDACTED]"), std::string::npos)
      << errors;
  EXPECT_NE(errors.dump().find("token: [REDACTED]"), std::string::npos)
      << errors;
  // Once the project stops its journal rows are durable: read every file
  // of the state directory (the SQLite database, its WAL) byte for byte.
  RunResult stopped = Cli({"project", "stop", p});
  ASSERT_TRUE(stopped.exited && stopped.exit_code == 0) << stopped.Describe();
  size_t files = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(daemon_.state_dir())) {
    if (!entry.is_regular_file()) continue;
    const std::string bytes = ReadFileOrEmpty(entry.path().string());
    ++files;
    EXPECT_EQ(bytes.find("dont-log-this"), std::string::npos) << entry.path();
  }
  EXPECT_GT(files, 0u);
}

// §10.1 case 45 (jcs: one alert per crossing of the threshold).
TEST_F(RuntimeHardeningTest, RepeatedTimeoutsEscalateOncePerCrossing) {
  const std::string p = StartProject(
      {{"tool_timeout_ms", 200}, {"tool_timeout_alert_threshold", 2}});
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const double start = NowSeconds();
    const ToolResponse r = Tool(p, "exec", ExecArgs({"sleep", "5"}));
    EXPECT_LT(NowSeconds() - start, 4.0);
    ASSERT_TRUE(ExpectError(r, "timeout"));
    EXPECT_EQ(r.detail()["timeout_ms"], 200) << r.Describe();
  }
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "tool.timeout"), 3) << diag;
  EXPECT_EQ(Count(diag, "security.repeated_timeout_failures"), 1) << diag;
  const json& counts = diag["tools"]["timeout_counts"]["exec"];
  EXPECT_EQ(counts["in_window"], 3) << diag;
  EXPECT_EQ(counts["alerted"], true) << diag;
  // A success re-arms the alert: two more timeouts cross it again.
  ASSERT_TRUE(ExpectOk(Tool(p, "exec", ExecArgs({"/bin/true"}))));
  ASSERT_TRUE(
      ExpectError(Tool(p, "exec", ExecArgs({"sleep", "5"})), "timeout"));
  EXPECT_EQ(Count(p, "security.repeated_timeout_failures"), 2);
}

// §10.1 case 46: a background child and a foreground child of the program
// are both killed at the timeout.
TEST_F(RuntimeHardeningTest, TimeoutKillsTheWholeProcessTree) {
  const std::string p = StartProject({{"tool_timeout_ms", 1500}});
  const std::string marker = UniqueSleepMarker();
  const ToolResponse r =
      Tool(p, "exec",
           ExecArgs({"sh", "-c", "sleep " + marker + " & sleep " + marker}),
           {"--async"});
  ASSERT_EQ(r.status(), "accepted") << r.Describe();
  // Both sleeps run (so the check below can fail)...
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 2; }, 5))
      << CountProcessesWithArg(marker);
  // ...until the timeout ends the call.
  EXPECT_TRUE(WaitFor([&] { return Count(p, "tool.timeout") == 1; }, 10));
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 0; }, 5))
      << CountProcessesWithArg(marker) << " `sleep " << marker
      << "` processes survived the timeout";
  json diag = Diagnostics(p);
  EXPECT_EQ(Count(diag, "tool.child_processes_terminated"), 1) << diag;
  EXPECT_EQ(Count(diag, "tool.failed"), 1) << diag;
  EXPECT_EQ(Count(diag, "tool.completed"), 0) << diag;
  bool found = false;
  for (const json& e : diag["telemetry"]["recent_events"]) {
    if (e.value("event", "") == "tool.child_processes_terminated") {
      found = true;
      EXPECT_EQ(e["reason"], "timeout") << e;
      EXPECT_EQ(e["correlation_id"], r.doc["correlation_id"]) << e;
    }
  }
  EXPECT_TRUE(found) << diag;
  EXPECT_EQ(diag["tools"]["running_calls"], json::array()) << diag;
}

// §10.1 case 47.
TEST_F(RuntimeHardeningTest, RuntimeOptionsTuneTheOutputCap) {
  const std::string p = StartProject({}, {"--opt", "tool_max_output_bytes=64"});
  const ToolResponse r = Tool(p, "asset.list", {{"type", "skill"}});
  ASSERT_TRUE(ExpectError(r, "output_too_large"));
  EXPECT_EQ(r.detail()["max"], 64) << r.Describe();
  EXPECT_EQ(Diagnostics(p)["runtime_opts"]["tool_max_output_bytes"], 64);
  // A result under the cap still passes.
  WriteRootFile("a", "x");
  const ToolResponse small = Tool(p, "fs.read", {{"path", "a"}});
  EXPECT_TRUE(ExpectOk(small));
}

// §10.1 case 48.
TEST_F(RuntimeHardeningTest, ArtifactCapAppliesToWritesNotToExecFiles) {
  const std::string p = StartProject({{"tool_max_artifact_bytes", 65536}});
  const ToolResponse w =
      Tool(p, "fs.write",
           {{"path", "big.txt"}, {"content", std::string(70000, 'a')}});
  ASSERT_TRUE(ExpectError(w, "artifact_too_large"));
  EXPECT_EQ(w.detail()["max"], 65536) << w.Describe();
  EXPECT_FALSE(PathExists(root_ + "/big.txt"));
  // At the cap it is fine.
  EXPECT_TRUE(ExpectOk(
      Tool(p, "fs.write",
           {{"path", "exact.txt"}, {"content", std::string(65536, 'a')}})));

  // exec: the files a program writes are not artifacts (a build or `git gc`
  // writes far more than a result may carry); RLIMIT_FSIZE is jail_fsize.
  const ToolResponse e =
      Tool(p, "exec", ExecArgs({"sh", "-c", "head -c 1M /dev/zero > big"}));
  ASSERT_TRUE(ExpectOk(e));
  EXPECT_EQ(e.result()["exit_code"], 0) << e.Describe();
  struct stat st;
  ASSERT_EQ(stat((root_ + "/big").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  // The program itself writing past jail_fsize: killed by SIGXFSZ, reported
  // as file_size_limit with the limit.
  ASSERT_EQ(Cli({"project", "stop", p}).exit_code, 0);
  const std::string q = StartProject({{"jail_fsize", 65536}});
  const ToolResponse direct =
      Tool(q, "exec",
           ExecArgs({"dd", "if=/dev/zero", "of=big2", "bs=1M", "count=1",
                     "status=none"}));
  EXPECT_TRUE(ExpectError(direct, "file_size_limit"));
  EXPECT_EQ(direct.detail()["limit_bytes"], 65536) << direct.Describe();
  EXPECT_EQ(direct.detail()["signal"], 25) << direct.Describe();
  ASSERT_EQ(stat((root_ + "/big2").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 65536);
}

// §10.1 case 49.
TEST_F(RuntimeHardeningTest, ProjectConcurrencyLimitRejectsOverLimitCalls) {
  const std::string p = StartProject({{"tool_max_concurrency", 1}});
  const ToolResponse first =
      Tool(p, "exec", ExecArgs({"sleep", "1"}), {"--async"});
  ASSERT_EQ(first.status(), "accepted") << first.Describe();
  const ToolResponse second = Tool(p, "asset.list", {{"type", "skill"}});
  ASSERT_TRUE(ExpectError(second, "max_concurrency_reached"));
  EXPECT_EQ(second.detail()["limit"], 1) << second.Describe();
  // The first call still completes.
  EXPECT_TRUE(WaitFor([&] { return Count(p, "tool.completed") == 1; }, 15));
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["tools"]["running_calls"], json::array()) << diag;
  bool first_completed = false;
  for (const json& e : diag["telemetry"]["recent_events"]) {
    if (e.value("event", "") == "tool.completed" &&
        e["correlation_id"] == first.doc["correlation_id"]) {
      first_completed = true;
    }
  }
  EXPECT_TRUE(first_completed) << diag;
  // And the slot is free again.
  EXPECT_TRUE(ExpectOk(Tool(p, "asset.list", {{"type", "skill"}})));
}

// §10.1 case 50.
TEST_F(RuntimeHardeningTest, ConversationConcurrencyQuota) {
  const std::string p =
      StartProject({{"tool_max_concurrency_per_conversation", 0}});
  const ToolResponse r =
      Tool(p, "asset.list", {{"type", "skill"}}, {"--conversation", "conv-1"});
  ASSERT_TRUE(ExpectError(r, "conversation_max_concurrency_reached"));
  EXPECT_EQ(r.detail()["limit"], 0) << r.Describe();
  EXPECT_EQ(r.doc["conversation_id"], "conv-1");
  EXPECT_TRUE(ExpectOk(Tool(p, "asset.list", {{"type", "skill"}})));
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["runtime_opts"]["tool_max_concurrency_per_conversation"], 0)
      << diag;
  EXPECT_EQ(Count(diag, "tool.completed"), 1) << diag;
}

// §10.1 case 24 (the original pruned dead child registrations after a
// successful run): after a successful call nothing of it is left running,
// not even a process the program left behind, and the runtime tracks no
// call.
TEST_F(RuntimeHardeningTest, SuccessfulCallLeavesNothingBehind) {
  const std::string p = StartProject();
  const std::string marker = UniqueSleepMarker();
  const ToolResponse r = Tool(
      p, "exec",
      ExecArgs({"sh", "-c", "(setsid sleep " + marker + " &); echo done"}));
  ASSERT_TRUE(ExpectOk(r));
  EXPECT_EQ(r.result()["stdout"], "done\n") << r.Describe();
  EXPECT_EQ(r.result()["descendants_killed"], 1) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return CountProcessesWithArg(marker) == 0; }, 5))
      << CountProcessesWithArg(marker) << " left behind";
  const json diag = Diagnostics(p);
  EXPECT_EQ(diag["tools"]["running_calls"], json::array()) << diag;
  EXPECT_EQ(Count(diag, "tool.completed"), 1) << diag;
}

// §10.1 case 51: a reload that meets an invalid-UTF-8 skill succeeds
// (lenient mode), records the error, and the tools keep working.
TEST_F(RuntimeHardeningTest, AssetReloadCapturesParseFailuresWithoutCrashing) {
  const std::string p = StartProject();
  WriteRootFile(".jido/skills/broken.md", "# Broken \xc3\x28\n");
  const RunResult r = Cli({"assets", "reload", p, "--json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(json::parse(r.out, nullptr, false).value("error_count", -1), 1)
      << r.Describe();
  const json diag = Diagnostics(p);
  EXPECT_EQ(diag["assets"]["loaded"], true) << diag["assets"];
  EXPECT_EQ(diag["assets"]["errors"][0]["reason"], "invalid_utf8");
  EXPECT_EQ(diag["assets"]["errors"][0]["path"], ".jido/skills/broken.md");
  const ToolResponse list = Tool(p, "asset.list", {{"type", "skill"}});
  ASSERT_TRUE(ExpectOk(list));
  EXPECT_EQ(list.result()["items"].size(), 3u) << list.Describe();
}

// §10.1 case 52: strict_asset_loading fails the start naming the file and
// the reason; a lenient start of the same root succeeds, records the error,
// and its tools work.
TEST_F(RuntimeHardeningTest, StrictAssetLoadingFailsStartOnParseErrors) {
  WriteRootFile(".jido/skills/broken.md", "# Broken \xff\n");
  const RunResult strict = StartProjectRaw({{"strict_asset_loading", true}},
                                           {"--project-id", "strict"});
  EXPECT_TRUE(strict.exited && strict.exit_code == 1) << strict.Describe();
  EXPECT_THAT(strict.err, ::testing::HasSubstr("start_project_failed"));
  EXPECT_THAT(strict.err, ::testing::HasSubstr("asset_load_failed"));
  EXPECT_THAT(strict.err,
              ::testing::HasSubstr(".jido/skills/broken.md: invalid_utf8"));
  // Nothing of the failed start is left running.
  const RunResult list = Cli({"project", "list", "--json"});
  EXPECT_EQ(list.out.find("strict"), std::string::npos) << list.Describe();

  const std::string p = StartProject();
  const json diag = Diagnostics(p);
  EXPECT_EQ(diag["assets"]["error_count"], 1) << diag["assets"];
  EXPECT_EQ(diag["assets"]["errors"][0]["reason"], "invalid_utf8");
  EXPECT_EQ(Count(diag, "project.assets_loaded"), 1);
  EXPECT_TRUE(ExpectOk(Tool(p, "asset.list", {{"type", "skill"}})));
}

// §10.1 case 54: 40 changes at a 30 ms debounce load the new skill with
// between 1 and 5 reloads.
TEST_F(RuntimeHardeningTest, WatcherStormIsDebounced) {
  const std::string p =
      StartProject({{"watcher", true}, {"watcher_debounce_ms", 30}});
  json diag = Diagnostics(p);
  EXPECT_EQ(diag["watcher_enabled"], true) << diag["assets"];
  EXPECT_EQ(Count(diag, "project.watcher_started"), 1);
  for (int i = 0; i < 40; ++i) {
    WriteRootFile(i == 39 ? ".jido/skills/storm_skill.md"
                          : absl::StrCat(".jido/skills/alpha.md"),
                  absl::StrCat("# Storm ", i, "\n"));
  }
  const auto loaded = [&] {
    const ToolResponse r = Tool(p, "asset.list", {{"type", "skill"}});
    return r.run.out.find("storm_skill") != std::string::npos;
  };
  ASSERT_TRUE(WaitFor(loaded, 10));
  // Settled: nothing pending, and the last reload is in the counts.
  ASSERT_TRUE(WaitFor(
      [&] {
        diag = Diagnostics(p);
        return diag["assets"]["watcher"]["pending_event_count"] == 0 &&
               Count(diag, "project.watcher_reload_completed") >= 1;
      },
      10));
  const int64_t reloads = Count(diag, "project.watcher_reload_completed");
  EXPECT_GE(reloads, 1);
  EXPECT_LE(reloads, 5);
  EXPECT_EQ(Count(diag, "project.assets_reloaded"), reloads);
}

}  // namespace
}  // namespace jcs::serve_test
