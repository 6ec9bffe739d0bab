// Test fixture for the tool-runtime acceptance suites (runtime_hardening_test,
// tool_runtime_policy_test): one real `jcs serve` per test, a project root
// owned by the jail user (uid 1000) with a few skills, a sibling "outside"
// directory for escape attempts, and the real `jcs tool|project|diagnostics`
// CLI with its response documents parsed.
#ifndef JCS_TESTS_TOOL_HARNESS_H_
#define JCS_TESTS_TOOL_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs::serve_test {

// The owner of the project roots created here: the in-process file tools use
// the root owner's identity and the jail user can write the root.
inline constexpr uid_t kProjectUid = 1000;
inline constexpr gid_t kProjectGid = 1000;

// One `jcs tool run ... --json` invocation.
struct ToolResponse {
  RunResult run;
  nlohmann::json doc;  // parsed stdout; discarded when it is not JSON
  std::string status() const;
  std::string reason() const;
  const nlohmann::json& detail() const;
  const nlohmann::json& result() const;
  std::string Describe() const;
};

// {"argv": argv}.
nlohmann::json ExecArgs(const std::vector<std::string>& argv);

// A decimal that no other process on the host has in its argv, usable as a
// `sleep` duration: "100.<pid><counter><random>".
std::string UniqueSleepMarker();
// Number of processes whose argv contains `needle` as a whole argument.
int CountProcessesWithArg(const std::string& needle);

// Polls `done` every 20 ms until it returns true or `timeout_s` passes.
bool WaitFor(const std::function<bool()>& done, double timeout_s);

class ToolFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // `jcs ARGS... --socket <daemon>` (timeout 60 s).
  RunResult Cli(std::vector<std::string> args);

  // Starts a project on root_ with `options` (a JSON object, passed as an
  // --options FILE when not empty) and extra CLI args; returns its id, or ""
  // after recording a test failure.
  std::string StartProject(const nlohmann::json& options = {},
                           std::vector<std::string> extra = {});
  // The same, returning the raw CLI result (for expected failures).
  RunResult StartProjectRaw(const nlohmann::json& options,
                            std::vector<std::string> extra = {});

  // `jcs tool run PROJECT NAME --args ARGS --json FLAGS...`. Checks the CLI
  // contract on the way: exit 0 for ok/accepted, exit 1 with
  // "jcs tool: REASON" on stderr for errors.
  ToolResponse Tool(const std::string& project, const std::string& name,
                    const nlohmann::json& args,
                    std::vector<std::string> flags = {});
  // `jcs tool list PROJECT --json` names, in order.
  std::vector<std::string> ToolNames(const std::string& project);
  // `jcs diagnostics PROJECT --json`.
  nlohmann::json Diagnostics(const std::string& project);
  // diagnostics.telemetry.event_counts[event] (0 when absent).
  static int64_t Count(const nlohmann::json& diagnostics,
                       const std::string& event);
  int64_t Count(const std::string& project, const std::string& event);

  // Files: in the root (owned by the project user) and next to it.
  std::string WriteRootFile(const std::string& rel, const std::string& content,
                            mode_t mode = 0644);
  std::string MakeRootDir(const std::string& rel);
  // Plants root_/rel -> target (owned by the project user).
  std::string PlantSymlink(const std::string& target, const std::string& rel);
  std::string WriteOutsideFile(const std::string& rel,
                               const std::string& content, mode_t mode = 0644);

  // Assertion helpers (non-fatal; they return whether they held).
  bool ExpectOk(const ToolResponse& r);
  bool ExpectError(const ToolResponse& r, const std::string& reason);

  TempDir dir_;
  std::string root_;     // dir_/project, owned by uid 1000
  std::string outside_;  // dir_/outside, owned by root, world-readable
  Daemon daemon_;
  int options_files_ = 0;
};

}  // namespace jcs::serve_test

#endif  // JCS_TESTS_TOOL_HARNESS_H_
