// The `jcs` CLI against a real `jcs serve`: `project start|stop|list` and
// `diagnostics`, their plain and --json outputs, and every start_project error
// (runtime options, root, data dir, project id, duplicates, unknown projects)
// reported on stderr with a non-zero exit. Options given as `--opt K=V` and as
// an `--options FILE` JSON object must validate identically.
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"

namespace jcs::serve_test {
namespace {

class ServeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = roots_.MakeOwnedDir("project");
    ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
  }
  void TearDown() override { EXPECT_EQ(daemon_.StopCleanly(), ""); }

  // `jcs ARGS... --socket <daemon>`.
  RunResult Cli(std::vector<std::string> args, RunOptions options = {}) {
    args.push_back("--socket");
    args.push_back(daemon_.socket_path());
    options.timeout_s = 20;
    return RunJcs(args, options);
  }

  // Starts a project through the CLI and returns its id (fails the test
  // otherwise).
  std::string StartOk(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"project", "start", root_};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = Cli(args);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    // Nothing on stderr but the notice of inert options (e.g. watcher).
    EXPECT_TRUE(r.err.empty() ||
                (r.ErrLines() == 1 &&
                 r.err.rfind("jcs project start: accepted but not acted on "
                             "yet: ",
                             0) == 0))
        << r.Describe();
    std::string id = r.out;
    if (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }

  nlohmann::json ListJson() {
    const RunResult r = Cli({"project", "list", "--json"});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  nlohmann::json DiagnosticsJson(const std::string& id) {
    const RunResult r = Cli({"diagnostics", id, "--json"});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  // A failed command: non-zero exit, empty stdout, one stderr line that
  // contains every string in `expected`.
  void ExpectError(const RunResult& r,
                   const std::vector<std::string>& expected) {
    EXPECT_TRUE(r.exited && r.exit_code != 0) << r.Describe();
    EXPECT_EQ(r.out, "") << r.Describe();
    EXPECT_EQ(r.ErrLines(), 1) << r.Describe();
    for (const std::string& e : expected) {
      EXPECT_NE(r.err.find(e), std::string::npos)
          << "expected '" << e << "' in stderr:\n"
          << r.err;
    }
  }

  TempDir roots_;
  std::string root_;
  Daemon daemon_;
};

TEST_F(ServeCliTest, StartPrintsTheIdAloneOnStdout) {
  const RunResult r = Cli({"project", "start", root_});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.err, "");
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  const std::string id = r.out.substr(0, r.out.size() - 1);
  EXPECT_EQ(id.find_first_of(" \t\n"), std::string::npos) << r.out;
  EXPECT_FALSE(id.empty());

  const RunResult named = Cli({"project", "start", roots_.MakeOwnedDir("named"),
                               "--project-id", "  my.proj-1 "});
  ASSERT_TRUE(named.exited && named.exit_code == 0) << named.Describe();
  EXPECT_EQ(named.out, "my.proj-1\n");  // trimmed

  // The captured ids are the ones the daemon knows.
  nlohmann::json list = ListJson();
  ASSERT_TRUE(list.is_array());
  std::set<std::string> ids;
  for (nlohmann::json& p : list) ids.insert(p["project_id"]);
  EXPECT_EQ(ids, (std::set<std::string>{id, "my.proj-1"}));
}

TEST_F(ServeCliTest, JsonOutputsParse) {
  const RunResult start =
      Cli({"project", "start", root_, "--json", "--data-dir", "dd"});
  ASSERT_TRUE(start.exited && start.exit_code == 0) << start.Describe();
  nlohmann::json started = nlohmann::json::parse(start.out, nullptr, false);
  ASSERT_TRUE(started.is_object()) << start.out;
  ASSERT_TRUE(started["project_id"].is_string()) << start.out;
  const std::string id = started["project_id"];

  nlohmann::json list = ListJson();
  ASSERT_TRUE(list.is_array()) << list;
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["project_id"], id);
  EXPECT_EQ(list[0]["root_path"], root_);
  EXPECT_EQ(list[0]["data_dir"], "dd");
  EXPECT_EQ(list[0]["conversation_count"], 0);
  EXPECT_EQ(list[0]["run_as"], started["run_as"]);
  EXPECT_EQ(started["run_as"],
            nlohmann::json::parse(
                R"({"uid": 1000, "gid": 1000, "source": "root_owner"})"));
  EXPECT_TRUE(list[0]["started_at"].is_string());
  EXPECT_FALSE(list[0]["started_at"].get<std::string>().empty());

  nlohmann::json diag = DiagnosticsJson(id);
  ASSERT_TRUE(diag.is_object());
  EXPECT_EQ(diag["project_id"], id);
  // Without --json diagnostics is still a JSON document (indented).
  const RunResult pretty = Cli({"diagnostics", id});
  ASSERT_TRUE(pretty.exited && pretty.exit_code == 0) << pretty.Describe();
  EXPECT_EQ(nlohmann::json::parse(pretty.out, nullptr, false), diag);

  const RunResult stop = Cli({"project", "stop", id, "--json"});
  ASSERT_TRUE(stop.exited && stop.exit_code == 0) << stop.Describe();
  nlohmann::json stopped = nlohmann::json::parse(stop.out, nullptr, false);
  EXPECT_TRUE(stopped.is_object()) << stop.out;
  EXPECT_EQ(ListJson(), nlohmann::json::array());
}

TEST_F(ServeCliTest, PlainListShowsProjects) {
  RunResult r = Cli({"project", "list"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const std::string empty_listing = r.out;
  const std::string id = StartOk({"--project-id", "listed"});
  r = Cli({"project", "list"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_NE(r.out.find("listed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(root_), std::string::npos) << r.out;
  EXPECT_GT(r.out.size(), empty_listing.size());
}

TEST_F(ServeCliTest, DiagnosticsShowsOptionsAndTelemetry) {
  const std::string id =
      StartOk({"--opt", "tool_timeout_ms=1234", "--opt",
               "allow_tools=[\"read\",\"write\"]", "--opt",
               "network_egress_policy=allow", "--opt", "watcher=true", "--opt",
               "outside_root_allowlist=[{\"path\":\"/opt/sdk\",\"reason_"
               "code\":\"toolchain\"}]"});
  nlohmann::json diag = DiagnosticsJson(id);
  ASSERT_TRUE(diag.is_object());
  nlohmann::json opts = diag["runtime_opts"];
  // Only the options that were passed, and (spec §1.1 diagnostics) never
  // allow_tools / deny_tools.
  EXPECT_EQ(opts.size(), 4u) << diag;
  EXPECT_FALSE(opts.contains("allow_tools")) << diag;
  EXPECT_EQ(opts["tool_timeout_ms"], 1234) << diag;
  EXPECT_EQ(opts["network_egress_policy"], "allow") << diag;
  EXPECT_EQ(opts["watcher"], true) << diag;
  ASSERT_TRUE(opts["outside_root_allowlist"].is_array()) << diag;
  EXPECT_EQ(opts["outside_root_allowlist"].size(), 1u) << diag;
  EXPECT_EQ(diag["telemetry"]["event_counts"]["project.started"], 1) << diag;
  EXPECT_TRUE(diag["telemetry"]["recent_errors"].is_array()) << diag;
  EXPECT_EQ(diag["root_path"], root_);
}

TEST_F(ServeCliTest, StopRemovesTheProject) {
  const std::string id = StartOk();
  RunResult r = Cli({"project", "stop", id});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(ListJson(), nlohmann::json::array());
  ExpectError(Cli({"project", "stop", id}), {"project_not_found", id});
  ExpectError(Cli({"diagnostics", id}), {"project_not_found", id});
  // The id can be reused after the stop.
  EXPECT_EQ(StartOk({"--project-id", id}), id);
}

struct OptCase {
  std::string key;
  std::string opt_value;   // after "KEY=" on the command line
  std::string json_value;  // the same value as JSON
  std::string reason;
};

const std::vector<OptCase>& OptionErrorCases() {
  static const std::vector<OptCase> cases = {
      {"no_such_option", "1", "1", "unknown_option"},
      {"Tool_timeout_ms", "5", "5", "unknown_option"},
      {"tool_timeout_ms", "-1", "-1", "expected_positive_integer"},
      {"tool_timeout_ms", "0", "0", "expected_positive_integer"},
      {"tool_timeout_ms", "1.5", "1.5", "expected_positive_integer"},
      {"tool_timeout_ms", "\"5\"", "\"5\"", "expected_positive_integer"},
      {"jail_pids", "true", "true", "expected_positive_integer"},
      {"tool_max_concurrency_per_conversation", "-1", "-1",
       "expected_non_negative_integer"},
      {"allow_tools", "5", "5", "expected_list_of_strings"},
      {"deny_tools", "[1]", "[1]", "expected_list_of_strings"},
      {"deny_tools", "null", "null", "expected_list_of_strings"},
      {"network_allowlist", "example.com", "\"example.com\"",
       "expected_list_of_strings"},
      {"network_egress_policy", "maybe", "\"maybe\"", "expected_allow_or_deny"},
      {"network_egress_policy", "ALLOW", "\"ALLOW\"", "expected_allow_or_deny"},
      {"watcher", "yes", "\"yes\"", "expected_boolean"},
      {"outside_root_allowlist",
       "[{\"path\":\"/a\",\"reason_code\":\"x\"},{\"path\":\"/b\"}]",
       "[{\"path\":\"/a\",\"reason_code\":\"x\"},{\"path\":\"/b\"}]",
       "invalid_entry[1]: missing_reason_code"},
      {"outside_root_allowlist", "[{\"reason_code\":\"x\"}]",
       "[{\"reason_code\":\"x\"}]",
       "invalid_entry[0]: missing_path_or_pattern"},
      {"outside_root_allowlist", "[\"/etc\"]", "[\"/etc\"]",
       "invalid_entry[0]: expected_map_entry"},
      {"outside_root_allowlist", "/etc", "\"/etc\"",
       "expected_list_of_reason_coded_maps"},
      {"jail_memory", "12Q", "\"12Q\"", "expected_size"},
      {"jail_cpus", "0", "0", "expected_positive_number"},
      {"llm_temperature", "hot", "\"hot\"", "expected_number_or_nil"},
  };
  return cases;
}

TEST_F(ServeCliTest, InvalidRuntimeOptionsNameKeyAndReason) {
  for (const OptCase& c : OptionErrorCases()) {
    SCOPED_TRACE(c.key + "=" + c.opt_value);
    const RunResult r =
        Cli({"project", "start", root_, "--opt", c.key + "=" + c.opt_value});
    ExpectError(r, {"invalid_runtime_opt", "key: \"" + c.key + "\"",
                    "reason: \"" + c.reason + "\""});
  }
  // Nothing was started, and no layout was created.
  EXPECT_EQ(ListJson(), nlohmann::json::array());
  EXPECT_FALSE(PathExists(root_ + "/.jido"));
}

TEST_F(ServeCliTest, OptionsFileAndOptFlagsValidateIdentically) {
  int n = 0;
  for (const OptCase& c : OptionErrorCases()) {
    SCOPED_TRACE(c.key + "=" + c.opt_value);
    const std::string file =
        roots_.WriteFile(absl::StrCat("opts", n++, ".json"),
                         absl::StrCat("{\"", c.key, "\": ", c.json_value, "}"));
    const RunResult via_opt =
        Cli({"project", "start", root_, "--opt", c.key + "=" + c.opt_value});
    const RunResult via_file =
        Cli({"project", "start", root_, "--options", file});
    EXPECT_EQ(via_opt.exit_code, via_file.exit_code)
        << via_opt.Describe() << via_file.Describe();
    EXPECT_EQ(via_opt.err, via_file.err);
    EXPECT_EQ(via_file.out, "");
  }
  // Valid options: the same normalized runtime_opts either way.
  const std::vector<std::pair<std::string, std::string>> valid = {
      {"tool_timeout_ms", "500"},
      {"tool_env_allowlist", "[\"LANG\"]"},
      {"protocol_allowlist", "[\"MCP\"]"},
      {"network_egress_policy", "\"deny\""},
      {"network_allowlist", "[\"example.com\"]"},
      {"strict_asset_loading", "true"},
      {"jail_memory", "\"64M\""},
      {"jail_cpus", "1.5"},
      {"outside_root_allowlist",
       "[{\"pattern\":\"/usr/share/**\",\"reason_code\":\" docs \"}]"},
  };
  std::vector<std::string> opt_args = {"project", "start", root_,
                                       "--project-id", "via-opt"};
  nlohmann::json file_doc = nlohmann::json::object();
  for (const auto& [key, value] : valid) {
    opt_args.push_back("--opt");
    opt_args.push_back(key + "=" + value);
    file_doc[key] = nlohmann::json::parse(value);
  }
  const std::string file = roots_.WriteFile("valid.json", file_doc.dump());
  RunResult r = Cli(opt_args);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  r = Cli({"project", "start", roots_.MakeOwnedDir("via-file"), "--project-id",
           "via-file", "--options", file});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  nlohmann::json a = DiagnosticsJson("via-opt")["runtime_opts"];
  nlohmann::json b = DiagnosticsJson("via-file")["runtime_opts"];
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), valid.size()) << a;

  // --opt after --options overrides the file's value for the same key.
  const std::string base =
      roots_.WriteFile("base.json", "{\"watcher\": false}");
  r = Cli({"project", "start", roots_.MakeOwnedDir("override"), "--project-id",
           "override", "--options", base, "--opt", "watcher=true"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  EXPECT_EQ(DiagnosticsJson("override")["runtime_opts"]["watcher"], true);
}

TEST_F(ServeCliTest, UnreadableOrMalformedOptionsFileIsAUsageError) {
  const std::string not_json = roots_.WriteFile("bad.json", "{tool: ");
  const std::string not_object = roots_.WriteFile("list.json", "[1, 2]");
  for (const std::string& file :
       {not_json, not_object, roots_.Sub("missing.json")}) {
    SCOPED_TRACE(file);
    const RunResult r = Cli({"project", "start", root_, "--options", file});
    EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
    EXPECT_NE(r.err.find(file), std::string::npos) << r.Describe();
    EXPECT_EQ(r.out, "");
  }
  const RunResult r = Cli({"project", "start", root_, "--opt", "noequals"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("expected_key_value_tuple"), std::string::npos)
      << r.Describe();
  EXPECT_EQ(ListJson(), nlohmann::json::array());
}

TEST_F(ServeCliTest, RootDataDirAndProjectIdErrors) {
  const std::string file = roots_.WriteFile("plain-file", "x");
  ExpectError(Cli({"project", "start", roots_.Sub("missing")}),
              {"invalid_root_path", "enoent"});
  ExpectError(Cli({"project", "start", file}),
              {"invalid_root_path", "not_directory"});
  ExpectError(Cli({"project", "start", ""}), {"invalid_root_path"});
  ExpectError(Cli({"project", "start", root_, "--data-dir", "/abs"}),
              {"invalid_data_dir", "must_be_relative"});
  ExpectError(Cli({"project", "start", root_, "--data-dir", "a/../b"}),
              {"invalid_data_dir", "must_not_traverse"});
  ExpectError(Cli({"project", "start", root_, "--data-dir", ".."}),
              {"invalid_data_dir", "must_not_traverse"});
  ExpectError(Cli({"project", "start", root_, "--opt", "data_dir=/abs"}),
              {"invalid_data_dir", "must_be_relative"});
  ExpectError(Cli({"project", "start", root_, "--project-id", "a/b"}),
              {"invalid_project_id", "invalid_chars"});
  ExpectError(Cli({"project", "start", root_, "--project-id", ".hidden"}),
              {"invalid_project_id", "invalid_chars"});
  ExpectError(Cli({"project", "start", root_, "--project-id", "   "}),
              {"invalid_project_id", "empty"});
  ExpectError(
      Cli({"project", "start", root_, "--project-id", std::string(129, 'a')}),
      {"invalid_project_id", "too_long"});
  EXPECT_EQ(ListJson(), nlohmann::json::array());

  StartOk({"--project-id", "twice"});
  ExpectError(Cli({"project", "start", root_, "--project-id", "twice"}),
              {"already_started", "twice"});
  ExpectError(Cli({"project", "stop", "never-started"}),
              {"project_not_found", "never-started"});
  ExpectError(Cli({"diagnostics", "never-started"}),
              {"project_not_found", "never-started"});
}

// A relative ROOT means relative to the caller's working directory: the
// daemon runs elsewhere (its own cwd), so the CLI has to resolve it.
TEST_F(ServeCliTest, RelativeRootIsResolvedAgainstTheCallersDirectory) {
  // A sibling of the root (a project inside another is refused).
  const std::string sub = roots_.MakeOwnedDir("sub");
  RunOptions in_root;
  in_root.cwd = root_;
  in_root.unset_env = {"BUILD_WORKING_DIRECTORY"};  // only `bazel run` sets it
  RunResult r = Cli({"project", "start", ".", "--project-id", "dot"}, in_root);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  r = Cli({"project", "start", "../sub", "--project-id", "sub"}, in_root);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  std::map<std::string, std::string> roots;
  for (nlohmann::json& p : ListJson()) {
    roots[p["project_id"]] = p["root_path"];
  }
  EXPECT_EQ(roots["dot"], root_)
      << "`jcs project start .` run in " << root_
      << " started a project rooted at the daemon's working directory";
  EXPECT_EQ(roots["sub"], sub);
}

TEST_F(ServeCliTest, SocketFromEnvironment) {
  RunOptions env;
  env.extra_env = {"JCS_SOCKET=" + daemon_.socket_path()};
  env.timeout_s = 20;
  const RunResult r = RunJcs({"project", "start", root_}, env);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  const RunResult list = RunJcs({"project", "list", "--json"}, env);
  ASSERT_TRUE(list.exited && list.exit_code == 0) << list.Describe();
  EXPECT_EQ(nlohmann::json::parse(list.out, nullptr, false).size(), 1u);
  // --socket wins over $JCS_SOCKET.
  RunOptions wrong_env;
  wrong_env.extra_env = {"JCS_SOCKET=" + roots_.Sub("nowhere.sock")};
  const RunResult flag = Cli({"project", "list", "--json"}, wrong_env);
  EXPECT_TRUE(flag.exited && flag.exit_code == 0) << flag.Describe();
}

TEST_F(ServeCliTest, NoDaemonGivesAClearConnectError) {
  // A missing socket (ENOENT) and a dead socket file (ECONNREFUSED).
  const std::string missing = roots_.Sub("missing.sock");
  const std::string dead = roots_.Sub("dead.sock");
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, dead.data(), dead.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // bound, never listening: connect() is refused
  for (const std::string& socket : {missing, dead}) {
    for (const std::vector<std::string>& cmd :
         std::vector<std::vector<std::string>>{{"project", "start", root_},
                                               {"project", "stop", "x"},
                                               {"project", "list"},
                                               {"project", "list", "--json"},
                                               {"diagnostics", "x"}}) {
      std::vector<std::string> args = cmd;
      args.push_back("--socket");
      args.push_back(socket);
      SCOPED_TRACE(absl::StrCat(cmd[0], " ", cmd[1], " @ ", socket));
      const RunResult r = RunJcs(args, TimeoutAfter(20));
      EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
      EXPECT_EQ(r.out, "");
      EXPECT_EQ(r.ErrLines(), 1) << r.Describe();
      EXPECT_NE(r.err.find("cannot connect"), std::string::npos)
          << r.Describe();
      EXPECT_NE(r.err.find(socket), std::string::npos) << r.Describe();
      EXPECT_NE(r.err.find("is `jcs serve` running?"), std::string::npos)
          << r.Describe();
    }
  }
  // The same through $JCS_SOCKET.
  RunOptions env;
  env.extra_env = {"JCS_SOCKET=" + missing};
  const RunResult r = RunJcs({"project", "list"}, env);
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_NE(r.err.find("is `jcs serve` running?"), std::string::npos)
      << r.Describe();
}

TEST_F(ServeCliTest, UsageErrorsExit2) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"project"},
           {"project", "frobnicate"},
           {"project", "start"},
           {"project", "start", "a", "b"},
           {"project", "stop"},
           {"project", "list", "extra"},
           {"project", "list", "--bogus"},
           {"project", "stop", "x", "--opt", "a=1"},
           {"diagnostics"}}) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    const RunResult r = Cli(args);
    EXPECT_TRUE(r.exited && r.exit_code == 2) << r.Describe();
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("usage"), std::string::npos) << r.Describe();
  }
}

}  // namespace
}  // namespace jcs::serve_test
