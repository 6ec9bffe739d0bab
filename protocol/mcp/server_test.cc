#include "protocol/mcp/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/version.h"
#include "gtest/gtest.h"
#include "runtime/tools/tool_catalog.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// A backend whose calls named "block" run until cancelled; everything else
// answers at once with a document built from the arguments.
class FakeBackend : public ToolBackend {
 public:
  absl::StatusOr<json> ListTools() override {
    if (fail_list) return absl::UnavailableError("daemon unreachable");
    json tools = json::array();
    for (const runtime::ToolSpec& tool : runtime::BuiltinTools()) {
      tools.push_back(runtime::ToolToJson(tool));
    }
    return tools;
  }

  absl::StatusOr<json> RunTool(
      const std::string& name, const json& args, const json& meta,
      const std::function<void(const std::string&)>& started) override {
    std::unique_lock<std::mutex> lock(mu);
    const std::string call_id = "call-" + std::to_string(++next);
    if (name == "unreachable") return absl::UnavailableError("no daemon");
    if (name == "nope") {
      return json{
          {"status", "error"}, {"tool", name}, {"reason", "unknown_tool"}};
    }
    if (name == "denied") {
      return json{{"status", "error"},
                  {"tool", name},
                  {"call_id", call_id},
                  {"reason", "outside_root"},
                  {"detail", {{"path", "../../etc/shadow"}}}};
    }
    if (name == "asset.list") {
      if (deny_assets) return json{{"status", "error"}, {"reason", "denied"}};
      json items = json::array();
      if (args["type"] == "skill") {
        items.push_back({{"type", "skill"},
                         {"name", "greet me"},
                         {"path", ".jido/skills/greet me.md"}});
      }
      if (args["type"] == "command") {
        for (const char* command : {"review", "vanished"}) {
          items.push_back(
              {{"type", "command"},
               {"name", command},
               {"path", std::string(".jido/commands/") + command + ".md"}});
        }
      }
      return json{{"status", "ok"}, {"result", {{"items", items}}}};
    }
    if (name == "asset.get") {
      asset_gets.push_back(args);
      if (args == json{{"type", "skill"}, {"key", "greet me"}}) {
        return json{{"status", "ok"},
                    {"result", {{"asset", {{"content", "# Greet\n"}}}}}};
      }
      if (args == json{{"type", "command"}, {"key", "review"}}) {
        return json{
            {"status", "ok"},
            {"result",
             {{"asset",
               {{"type", "command"},
                {"name", "review"},
                {"path", ".jido/commands/review.md"},
                {"content",
                 "---\ndescription: Reviews a file\njido:\n  schema:\n"
                 "    file: {type: string, required: true, doc: the file}\n"
                 "---\nReview {{file}} ({{ depth }}).\n"},
                {"frontmatter",
                 {{"description", "Reviews a file"},
                  {"jido",
                   {{"schema",
                     {{"file",
                       {{"type", "string"},
                        {"required", true},
                        {"doc", "the file"}}}}}}}}}}}}}};
      }
      if (args["key"] == ".env") {
        return json{{"status", "error"},
                    {"reason", "sensitive_path_denied"},
                    {"detail", {{"key", ".env"}}}};
      }
      // As the tool runtime reports a tool's own failure.
      return json{{"status", "error"},
                  {"reason", "tool_failed"},
                  {"detail", {{"reason", "asset_not_found"}}}};
    }
    if (name == "block") {
      // Waits for the test to let the id out (the cancel-before-id race).
      cv.wait(lock, [&] { return release_started; });
      lock.unlock();
      started(call_id);
      lock.lock();
      running.insert(call_id);
      cv.notify_all();
      cv.wait(lock, [&] { return cancelled.count(call_id) > 0; });
      running.erase(call_id);
      cv.notify_all();  // WaitRunning(0)
      return json{{"status", "error"}, {"tool", name}, {"reason", "cancelled"}};
    }
    started(call_id);
    return json{{"status", "ok"},
                {"tool", name},
                {"call_id", call_id},
                {"result", args},
                {"meta_seen", meta}};
  }

  absl::Status CancelTool(const std::string& call_id) override {
    std::lock_guard<std::mutex> lock(mu);
    cancelled.insert(call_id);
    cv.notify_all();
    return absl::OkStatus();
  }

  absl::Status AuthorizeProtocol(const std::string& operation) override {
    std::lock_guard<std::mutex> lock(mu);
    operations.push_back(operation);
    if (protocol_unreachable) return absl::UnavailableError("no daemon");
    if (protocol_denied) {
      return absl::PermissionDeniedError(
          "protocol_denied: mcp is not in project p's protocol_allowlist");
    }
    return absl::OkStatus();
  }

  bool WaitRunning(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, seconds(10), [&] { return running.size() == n; });
  }
  void ReleaseStarted() {
    std::lock_guard<std::mutex> lock(mu);
    release_started = true;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  int next = 0;
  bool fail_list = false;
  bool deny_assets = false;
  std::vector<json> asset_gets;
  std::vector<std::string> operations;  // AuthorizeProtocol's
  bool protocol_denied = false;
  bool protocol_unreachable = false;
  bool release_started = true;
  std::set<std::string> running;
  std::set<std::string> cancelled;
};

// Collects the server's lines; waits for them with a deadline.
class Output {
 public:
  std::function<void(std::string_view)> Writer() {
    return [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
      lines_.push_back(json::parse(line));
      cv_.notify_all();
    };
  }
  // The first message with this id (responses) or method (notifications).
  json WaitFor(const json& id, const char* method = nullptr) {
    std::unique_lock<std::mutex> lock(mu_);
    json found;
    cv_.wait_for(lock, seconds(10), [&] {
      for (const json& line : lines_) {
        if (method != nullptr ? line.value("method", "") == method
                              : line.contains("id") && line["id"] == id) {
          found = line;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<json> All(const char* method) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> found;
    for (const json& line : lines_) {
      if (line.value("method", "") == method) found.push_back(line);
    }
    return found;
  }
  size_t CountId(const json& id) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const json& line : lines_)
      n += line.contains("id") && line["id"] == id;
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> lines_;
};

std::string Request(const json& id, const std::string& method,
                    json params = json::object()) {
  return json{
      {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}
      .dump();
}

std::string InitLine(const std::string& version = "2025-11-25") {
  return Request(0, "initialize",
                 {{"protocolVersion", version},
                  {"capabilities", json::object()},
                  {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
}

class McpServerTest : public ::testing::Test {
 protected:
  FakeBackend backend;
  Output out;
  McpServer server{&backend, out.Writer()};

  void Init() {
    server.HandleLine(InitLine());
    ASSERT_TRUE(out.WaitFor(0).contains("result"));
  }
};

TEST_F(McpServerTest, InitializeNegotiatesTheVersion) {
  for (const auto& [asked, want] :
       std::vector<std::pair<std::string, std::string>>{
           {"2025-06-18", "2025-06-18"},
           {"2025-03-26", "2025-03-26"},
           {"2024-11-05", "2025-11-25"},
           {"2025-11-25", "2025-11-25"}}) {
    FakeBackend b;
    Output o;
    McpServer s(&b, o.Writer());
    s.HandleLine(InitLine(asked));
    const json reply = o.WaitFor(0);
    EXPECT_EQ(reply["result"]["protocolVersion"], want) << asked;
    EXPECT_EQ(reply["result"]["serverInfo"]["name"], "jcs");
    EXPECT_EQ(reply["result"]["serverInfo"]["version"], kJcsVersion);
    EXPECT_TRUE(reply["result"]["capabilities"]["tools"].is_object());
    EXPECT_TRUE(reply["result"]["capabilities"]["logging"].is_object());
  }
}

TEST_F(McpServerTest, InitializeErrors) {
  server.HandleLine(Request(1, "initialize", {{"protocolVersion", 5}}));
  EXPECT_EQ(out.WaitFor(1)["error"]["code"], kInvalidParams);
  Init();
  server.HandleLine(InitLine());
  server.HandleLine(Request(2, "ping"));
  ASSERT_TRUE(out.WaitFor(2).contains("result"));
  EXPECT_EQ(out.CountId(0), 2u);  // the second initialize got its error
}

TEST_F(McpServerTest, OnlyPingBeforeInitialize) {
  server.HandleLine(Request(1, "ping"));
  EXPECT_EQ(out.WaitFor(1)["result"], json::object());
  server.HandleLine(Request(2, "tools/list"));
  const json reply = out.WaitFor(2);
  EXPECT_EQ(reply["error"]["code"], kInvalidRequest);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("initialize"),
            std::string::npos);
}

TEST_F(McpServerTest, ProtocolErrors) {
  Init();
  server.HandleLine("{oops");
  EXPECT_EQ(out.WaitFor(nullptr)["error"]["code"], kParseError);
  server.HandleLine(Request(1, "resources/templates/list"));
  EXPECT_EQ(out.WaitFor(1)["error"]["code"], kMethodNotFound);
  server.HandleLine(Request(2, "tools/call", {{"name", 3}}));
  EXPECT_EQ(out.WaitFor(2)["error"]["code"], kInvalidParams);
  server.HandleLine(
      Request(3, "tools/call", {{"name", "exec"}, {"arguments", "x"}}));
  EXPECT_EQ(out.WaitFor(3)["error"]["code"], kInvalidParams);
  server.HandleLine(Request(4, "logging/setLevel", {{"level", "loud"}}));
  const json reply = out.WaitFor(4);
  EXPECT_EQ(reply["error"]["code"], kInvalidParams);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("debug, info"),
            std::string::npos);
}

TEST_F(McpServerTest, ToolsListCarriesSchemasAndHints) {
  Init();
  server.HandleLine(Request("l", "tools/list"));
  const json tools = out.WaitFor("l")["result"]["tools"];
  ASSERT_EQ(tools.size(), runtime::BuiltinTools().size());
  std::map<std::string, json> by_name;
  for (const json& tool : tools) by_name[tool["name"]] = tool;
  EXPECT_EQ(by_name["fs.read"]["annotations"]["readOnlyHint"], true);
  EXPECT_EQ(by_name["fs.read"]["annotations"]["destructiveHint"], false);
  EXPECT_EQ(by_name["asset.search"]["annotations"]["readOnlyHint"], true);
  EXPECT_EQ(by_name["fs.write"]["annotations"]["destructiveHint"], true);
  EXPECT_EQ(by_name["exec"]["annotations"]["readOnlyHint"], false);
  EXPECT_EQ(by_name["exec"]["annotations"]["destructiveHint"], true);
  EXPECT_EQ(by_name["exec"]["annotations"]["openWorldHint"], false);
  EXPECT_EQ(by_name["exec.network"]["annotations"]["openWorldHint"], true);
  EXPECT_EQ(by_name["exec"]["inputSchema"]["type"], "object");
  EXPECT_EQ(by_name["exec"]["inputSchema"]["required"], json({"argv"}));
}

TEST_F(McpServerTest, ToolsListBackendFailureIsInternalError) {
  Init();
  backend.fail_list = true;
  server.HandleLine(Request(1, "tools/list"));
  const json reply = out.WaitFor(1);
  EXPECT_EQ(reply["error"]["code"], kInternalError);
  EXPECT_NE(
      reply["error"]["message"].get<std::string>().find("daemon unreachable"),
      std::string::npos);
}

TEST_F(McpServerTest, CallResults) {
  Init();
  server.HandleLine(Request(
      1, "tools/call", {{"name", "fs.read"}, {"arguments", {{"path", "a"}}}}));
  json result = out.WaitFor(1)["result"];
  EXPECT_EQ(result["isError"], false);
  EXPECT_EQ(result["structuredContent"]["result"], json({{"path", "a"}}));
  EXPECT_EQ(json::parse(result["content"][0]["text"].get<std::string>()),
            result["structuredContent"]);

  server.HandleLine(Request(2, "tools/call", {{"name", "denied"}}));
  result = out.WaitFor(2)["result"];
  EXPECT_EQ(result["isError"], true);
  const std::string text = result["content"][0]["text"];
  EXPECT_EQ(text.rfind("denied failed: outside_root: ", 0), 0u) << text;
  EXPECT_NE(text.find("../../etc/shadow"), std::string::npos);
  EXPECT_EQ(result["structuredContent"]["reason"], "outside_root");

  server.HandleLine(Request(3, "tools/call", {{"name", "nope"}}));
  EXPECT_EQ(out.WaitFor(3)["error"]["code"], kInvalidParams);

  server.HandleLine(Request(4, "logging/setLevel", {{"level", "error"}}));
  ASSERT_TRUE(out.WaitFor(4).contains("result"));
  server.HandleLine(Request(5, "tools/call", {{"name", "unreachable"}}));
  const json reply = out.WaitFor(5);
  EXPECT_EQ(reply["error"]["code"], kInternalError);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("no daemon"),
            std::string::npos);
  EXPECT_EQ(out.WaitFor(nullptr, "notifications/message")["params"]["level"],
            "error");
}

TEST_F(McpServerTest, AssetsAsResources) {
  Init();
  server.HandleLine(Request(1, "resources/list"));
  const json resources = out.WaitFor(1)["result"]["resources"];
  ASSERT_EQ(resources.size(), 3u) << resources;  // a skill, two commands
  EXPECT_EQ(resources[0]["uri"], "jcs://assets/skill/greet%20me");
  EXPECT_EQ(resources[1]["uri"], "jcs://assets/command/review");
  server.HandleLine(
      Request(2, "resources/read", {{"uri", "jcs://assets/skill/greet%20me"}}));
  const json contents = out.WaitFor(2)["result"]["contents"];
  ASSERT_EQ(contents.size(), 1u);
  EXPECT_EQ(contents[0]["text"], "# Greet\n");
  EXPECT_EQ(contents[0]["mimeType"], "text/markdown");
  server.HandleLine(
      Request(3, "resources/read", {{"uri", "jcs://assets/skill/other"}}));
  EXPECT_EQ(out.WaitFor(3)["error"]["code"], kResourceNotFound);
  server.HandleLine(
      Request(4, "resources/read", {{"uri", "jcs://assets/skill/.env"}}));
  json reply = out.WaitFor(4);
  EXPECT_EQ(reply["error"]["code"], kInternalError);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find(
                "sensitive_path_denied"),
            std::string::npos);
  // A URI that names no asset never reaches the backend.
  const size_t gets = backend.asset_gets.size();
  server.HandleLine(
      Request(5, "resources/read", {{"uri", "file:///etc/shadow"}}));
  EXPECT_EQ(out.WaitFor(5)["error"]["code"], kInvalidParams);
  EXPECT_EQ(backend.asset_gets.size(), gets);
  // The policy hides asset.list: no resources.
  backend.deny_assets = true;
  server.HandleLine(Request(6, "resources/list"));
  EXPECT_EQ(out.WaitFor(6)["result"]["resources"], json::array());
}

TEST_F(McpServerTest, CancelKillsTheCallAndSendsNoResponse) {
  Init();
  server.HandleLine(Request("slow", "tools/call", {{"name", "block"}}));
  ASSERT_TRUE(backend.WaitRunning(1));
  // A running call does not hold up other requests.
  server.HandleLine(Request(7, "ping"));
  ASSERT_TRUE(out.WaitFor(7).contains("result"));
  server.HandleLine(
      json{{"jsonrpc", "2.0"},
           {"method", "notifications/cancelled"},
           {"params", {{"requestId", "slow"}, {"reason", "user"}}}}
          .dump());
  ASSERT_TRUE(backend.WaitRunning(0));
  {
    std::lock_guard<std::mutex> lock(backend.mu);
    EXPECT_EQ(backend.cancelled, std::set<std::string>({"call-1"}));
  }
  // The call's thread has ended (Shutdown joins it): still no response.
  server.Shutdown();
  EXPECT_EQ(out.CountId("slow"), 0u);
}

TEST_F(McpServerTest, CancelBeforeTheCallIdIsKnown) {
  Init();
  backend.release_started = false;
  server.HandleLine(Request(9, "tools/call", {{"name", "block"}}));
  server.HandleLine(json{{"jsonrpc", "2.0"},
                         {"method", "notifications/cancelled"},
                         {"params", {{"requestId", 9}}}}
                        .dump());
  backend.ReleaseStarted();
  // The call's thread cancels it as soon as the id is known.
  server.Shutdown();
  std::lock_guard<std::mutex> lock(backend.mu);
  EXPECT_EQ(backend.cancelled.size(), 1u);
  EXPECT_TRUE(backend.running.empty());
  EXPECT_EQ(out.CountId(9), 0u);
}

TEST(McpProgressTest, ProgressWhileRunningOnlyWithAToken) {
  FakeBackend backend;
  Output out;
  McpServer server(&backend, out.Writer(), std::chrono::milliseconds(10));
  server.HandleLine(InitLine());
  ASSERT_TRUE(out.WaitFor(0).contains("result"));
  server.HandleLine(Request(1, "tools/call", {{"name", "block"}}));
  server.HandleLine(
      Request(2, "tools/call",
              {{"name", "block"}, {"_meta", {{"progressToken", "tok"}}}}));
  ASSERT_TRUE(backend.WaitRunning(2));
  const json first = out.WaitFor(nullptr, "notifications/progress");
  ASSERT_TRUE(first.is_object());
  EXPECT_EQ(first["params"]["progressToken"], "tok");
  EXPECT_NE(first["params"]["message"].get<std::string>().find("running for"),
            std::string::npos);
  // Values only grow, and only the call with a token gets them.
  std::vector<json> progress;
  for (int i = 0; i < 500 && progress.size() < 3; ++i) {
    progress = out.All("notifications/progress");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(progress.size(), 3u);
  for (size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i]["params"]["progressToken"], "tok");
    if (i > 0) {
      EXPECT_GT(progress[i]["params"]["progress"].get<int64_t>(),
                progress[i - 1]["params"]["progress"].get<int64_t>());
    }
  }
  server.Shutdown();
}

TEST_F(McpServerTest, DuplicateRunningIdIsRefused) {
  Init();
  server.HandleLine(Request(5, "tools/call", {{"name", "block"}}));
  ASSERT_TRUE(backend.WaitRunning(1));
  server.HandleLine(Request(5, "tools/call", {{"name", "fs.list"}}));
  EXPECT_EQ(out.WaitFor(5)["error"]["code"], kInvalidRequest);
}

// Serve() over pipes: oversized lines, and input ending while a call runs.
TEST(McpServeTest, PipesOversizedAndEndOfInputCancels) {
  FakeBackend backend;
  int in[2], out[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  absl::Status served;
  std::thread server(
      [&] { served = McpServer::Serve(&backend, in[0], out[1]); });
  std::thread writer([&] {
    std::string input = InitLine() + "\n" +
                        std::string(kMaxMessageBytes + 10, 'x') + "\n" +
                        Request(1, "ping") + "\n" +
                        Request(2, "tools/call", {{"name", "block"}}) + "\n";
    for (std::string_view rest = input; !rest.empty();) {
      const ssize_t n = write(in[1], rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<size_t>(n));
    }
    EXPECT_TRUE(backend.WaitRunning(1));
    close(in[1]);  // the client goes away
  });
  writer.join();
  server.join();
  close(in[0]);
  close(out[1]);
  EXPECT_TRUE(served.ok()) << served;
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  close(out[0]);
  std::vector<json> lines;
  for (size_t start = 0, end;
       (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(json::parse(text.substr(start, end - start)));
  }
  ASSERT_EQ(lines.size(), 3u) << text;
  EXPECT_EQ(lines[0]["id"], 0);
  EXPECT_TRUE(lines[1]["id"].is_null());
  EXPECT_EQ(lines[1]["error"]["code"], kInvalidRequest);
  EXPECT_NE(lines[1]["error"]["message"].get<std::string>().find("larger than"),
            std::string::npos);
  EXPECT_EQ(lines[2]["id"], 1);
  std::lock_guard<std::mutex> lock(backend.mu);
  EXPECT_EQ(backend.cancelled.size(), 1u);
  EXPECT_TRUE(backend.running.empty());
}

// A readable stop fd (the command's SIGTERM signalfd) ends serving like the
// end of input: running calls are cancelled.
TEST(McpServeTest, StopFdEndsServing) {
  FakeBackend backend;
  int in[2], out[2], stop[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(stop, O_CLOEXEC), 0);
  absl::Status served;
  std::thread server(
      [&] { served = McpServer::Serve(&backend, in[0], out[1], stop[0]); });
  const std::string input =
      InitLine() + "\n" + Request(2, "tools/call", {{"name", "block"}}) + "\n";
  ASSERT_EQ(write(in[1], input.data(), input.size()),
            static_cast<ssize_t>(input.size()));
  ASSERT_TRUE(backend.WaitRunning(1));
  ASSERT_EQ(write(stop[1], "x", 1), 1);
  server.join();  // in[1] is still open: only the stop fd ended it
  EXPECT_TRUE(served.ok()) << served;
  std::lock_guard<std::mutex> lock(backend.mu);
  EXPECT_EQ(backend.cancelled.size(), 1u);
  for (int fd : {in[0], in[1], out[0], out[1], stop[0], stop[1]}) close(fd);
}

}  // namespace
}  // namespace jcs::protocol::mcp

namespace jcs::protocol::mcp {
namespace {

// protocol_allowlist: every MCP operation is asked about first; a denial is
// -32003 and the operation does nothing (no tool runs, nothing is listed).
TEST_F(McpServerTest, CommandsAsPrompts) {
  Init();
  EXPECT_EQ(out.WaitFor(0)["result"]["capabilities"]["prompts"],
            json({{"listChanged", false}}));
  server.HandleLine(Request(1, "prompts/list"));
  const json prompts = out.WaitFor(1)["result"]["prompts"];
  // "vanished" is listed but gone by its asset.get: not a prompt.
  ASSERT_EQ(prompts.size(), 1u) << prompts;
  EXPECT_EQ(prompts[0], json({{"name", "review"},
                              {"description", "Reviews a file"},
                              {"arguments",
                               {{{"name", "file"},
                                 {"required", true},
                                 {"description", "the file"}}}}}));
  server.HandleLine(Request(
      2, "prompts/get",
      {{"name", "review"}, {"arguments", {{"file", "a.cc"}, {"depth", "2"}}}}));
  const json got = out.WaitFor(2)["result"];
  EXPECT_EQ(
      got["messages"],
      json::array(
          {{{"role", "user"},
            {"content", {{"type", "text"}, {"text", "Review a.cc (2).\n"}}}}}))
      << got;
  // Errors: -32602 for an unknown prompt, a missing required argument, a
  // sensitive name and arguments that are not strings.
  const std::vector<json> bad = {
      {{"name", "nosuch"}},
      {{"name", "review"}},
      {{"name", "review"}, {"arguments", {{"depth", "2"}}}},
      {{"name", "review"}, {"arguments", {{"file", 7}}}},
      {{"name", "review"}, {"arguments", "file=a"}},
      {{"name", ".env"}},
      {{"name", ""}},
      json::object()};
  int id = 3;
  for (const json& params : bad) {
    server.HandleLine(Request(id, "prompts/get", params));
    const json reply = out.WaitFor(id);
    EXPECT_EQ(reply["error"]["code"], kInvalidParams) << params << reply;
    ++id;
  }
  // The policy hides the asset tools: no prompts.
  backend.deny_assets = true;
  server.HandleLine(Request(id, "prompts/list"));
  EXPECT_EQ(out.WaitFor(id)["result"]["prompts"], json::array());
}

TEST(McpServerProtocolTest, EveryOperationIsAuthorized) {
  FakeBackend backend;
  Output out;
  McpServer server(&backend, out.Writer());
  server.HandleLine(InitLine());
  ASSERT_TRUE(out.WaitFor(0).contains("result"));
  const std::vector<std::pair<std::string, json>> requests = {
      {"ping", json::object()},
      {"tools/list", json::object()},
      {"tools/call", {{"name", "echo"}, {"arguments", json::object()}}},
      {"logging/setLevel", {{"level", "debug"}}},
      {"resources/list", json::object()},
      {"resources/read", {{"uri", "jcs://assets/skill/greet%20me"}}},
      {"prompts/list", json::object()},
      {"prompts/get", {{"name", "review"}}}};
  backend.protocol_denied = true;
  int id = 1;
  for (const auto& request : requests) {
    server.HandleLine(Request(id, request.first, request.second));
    const json reply = out.WaitFor(id);
    ASSERT_TRUE(reply.contains("error")) << request.first << reply;
    EXPECT_EQ(reply["error"]["code"], kProtocolDenied) << request.first;
    EXPECT_NE(
        reply["error"]["message"].get<std::string>().find("protocol_allowlist"),
        std::string::npos);
    ++id;
  }
  {
    std::lock_guard<std::mutex> lock(backend.mu);
    EXPECT_EQ(backend.operations,
              (std::vector<std::string>{"initialize", "ping", "tools.list",
                                        "tools.call", "logging.setLevel",
                                        "resources.list", "resources.read",
                                        "prompts.list", "prompts.get"}));
    EXPECT_EQ(backend.next, 0);  // no tool ran
    EXPECT_TRUE(backend.asset_gets.empty());
  }
  // A denied initialize: the session never starts.
  FakeBackend denied;
  denied.protocol_denied = true;
  Output out2;
  McpServer fresh(&denied, out2.Writer());
  fresh.HandleLine(InitLine());
  EXPECT_EQ(out2.WaitFor(0)["error"]["code"], kProtocolDenied);
  denied.protocol_denied = false;
  fresh.HandleLine(Request(1, "tools/list"));
  EXPECT_EQ(out2.WaitFor(1)["error"]["code"], kInvalidRequest);  // no init
}

TEST(McpServerProtocolTest, UnreachableCheckFailsClosed) {
  FakeBackend backend;
  backend.protocol_unreachable = true;
  Output out;
  McpServer server(&backend, out.Writer());
  server.HandleLine(InitLine());
  EXPECT_EQ(out.WaitFor(0)["error"]["code"], kInternalError);
}

TEST(McpServerProtocolTest, UnknownMethodsAndNotificationsAreNotAsked) {
  FakeBackend backend;
  Output out;
  McpServer server(&backend, out.Writer());
  server.HandleLine(InitLine());
  ASSERT_TRUE(out.WaitFor(0).contains("result"));
  server.HandleLine(Request(1, "evil/label"));
  EXPECT_EQ(out.WaitFor(1)["error"]["code"], kMethodNotFound);
  server.HandleLine(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}})");
  server.HandleLine(Request(2, "ping"));
  ASSERT_TRUE(out.WaitFor(2).contains("result"));
  std::lock_guard<std::mutex> lock(backend.mu);
  EXPECT_EQ(backend.operations,
            (std::vector<std::string>{"initialize", "ping"}));
}

}  // namespace
}  // namespace jcs::protocol::mcp

namespace jcs::protocol::mcp {
namespace {

TEST(McpServerToolsChangedTest, NotifiedOnlyOnceInitialized) {
  FakeBackend backend;
  Output out;
  McpServer server(&backend, out.Writer());
  server.set_list_changed(true);
  server.NotifyListsChanged();  // before initialize: nothing
  server.HandleLine(InitLine());
  const json init = out.WaitFor(0);
  for (const char* list : {"tools", "prompts", "resources"}) {
    EXPECT_EQ(init["result"]["capabilities"][list]["listChanged"], true)
        << list;
  }
  EXPECT_TRUE(out.All("notifications/tools/list_changed").empty());
  server.NotifyListsChanged();
  for (const char* method : {"notifications/tools/list_changed",
                             "notifications/prompts/list_changed",
                             "notifications/resources/list_changed"}) {
    EXPECT_FALSE(out.WaitFor(nullptr, method).is_null()) << method;
    EXPECT_EQ(out.All(method).size(), 1u) << method;
  }
}

TEST(McpServerToolsChangedTest, NotAdvertisedWithoutAWatch) {
  FakeBackend backend;
  Output out;
  McpServer server(&backend, out.Writer());
  server.HandleLine(InitLine());
  EXPECT_EQ(out.WaitFor(0)["result"]["capabilities"]["tools"]["listChanged"],
            false);
}

}  // namespace
}  // namespace jcs::protocol::mcp
