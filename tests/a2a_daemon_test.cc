// The A2A gateway through a real daemon on its Unix socket (issue 15): the
// agent card (per project and at the root), message/send answered by the
// project's conversation, message/stream through a tool call to its final
// event, tasks/resubscribe, a project that leaves A2A out of its
// protocol_allowlist (security.protocol_denied in the daemon's log), and
// SO_PEERCRED refusing a uid the daemon does not allow.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/serve_harness.h"

namespace jcs {
namespace {

namespace st = serve_test;
using nlohmann::json;

// One HTTP/1.1 exchange over the Unix socket at `path` (Connection: close):
// everything the daemon sent.
std::string Exchange(const std::string& path, const std::string& request) {
  const int fd = st::ConnectUnix(path);
  if (fd < 0) return "connect failed";
  st::SendAll(fd, request);
  std::string out;
  char buffer[8192];
  const double deadline = st::NowSeconds() + 30;
  while (st::NowSeconds() < deadline) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

std::string Get(const std::string& target) {
  return absl::StrCat("GET ", target,
                      " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                      "\r\n");
}

std::string Post(const std::string& target, const json& body) {
  const std::string text = body.dump();
  return absl::StrCat("POST ", target,
                      " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: ",
                      text.size(), "\r\n\r\n", text);
}

json Body(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  if (at == std::string::npos) return nullptr;
  return json::parse(response.substr(at + 4), nullptr, false);
}

// The JSON-RPC documents of an SSE answer, in order.
std::vector<json> Events(const std::string& response) {
  std::vector<json> out;
  size_t at = 0;
  while ((at = response.find("data: ", at)) != std::string::npos) {
    const size_t end = response.find("\n\n", at);
    if (end == std::string::npos) break;
    out.push_back(
        json::parse(response.substr(at + 6, end - at - 6), nullptr, false));
    at = end;
  }
  return out;
}

json Send(const std::string& text, const json& extra = json::object()) {
  json message = {{"kind", "message"},
                  {"messageId", "m-" + text},
                  {"role", "user"},
                  {"parts", json::array({{{"kind", "text"}, {"text", text}}})}};
  message.update(extra);
  return {{"jsonrpc", "2.0"},
          {"id", 1},
          {"method", "message/send"},
          {"params", {{"message", message}}}};
}

class A2aDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<st::Daemon>();
    a2a_socket_ = daemon_->dir().Sub("a2a.sock");
    daemon_->WriteConfig(absl::StrCat("socket_path: \"", daemon_->socket_path(),
                                      "\"\nstate_dir: \"", daemon_->state_dir(),
                                      "\"\na2a_http_socket: \"", a2a_socket_,
                                      "\"\na2a_http_socket_mode: 0666\n"));
    ASSERT_TRUE(daemon_->Start()) << daemon_->Log();
    ASSERT_NE(daemon_->Log().find("A2A HTTP on " + a2a_socket_),
              std::string::npos)
        << daemon_->Log();
  }

  void StartProject(const std::string& id, const std::string& opts = "") {
    const std::string root = daemon_->dir().MakeOwnedDir("root-" + id);
    std::vector<std::string> args = {"project",
                                     "start",
                                     root,
                                     "--project-id",
                                     id,
                                     "--socket",
                                     daemon_->socket_path()};
    if (!opts.empty()) {
      args.push_back("--opt");
      args.push_back(opts);
    }
    const st::RunResult r = st::RunJcs(args, st::TimeoutAfter(30));
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  }

  std::unique_ptr<st::Daemon> daemon_;
  std::string a2a_socket_;
};

TEST_F(A2aDaemonTest, ConversationAsTaskEndToEnd) {
  StartProject("app");
  // The root card names the only project.
  std::string out = Exchange(a2a_socket_, Get("/.well-known/agent-card.json"));
  ASSERT_EQ(out.rfind("HTTP/1.1 200 ", 0), 0u) << out;
  json card = Body(out);
  EXPECT_EQ(card["url"], "http://localhost/projects/app/a2a");
  EXPECT_EQ(card["capabilities"]["extensions"][0]["params"]["agent_id"],
            "jidocodeserver:app");
  EXPECT_FALSE(card.contains("security"));  // SO_PEERCRED, no token

  out = Exchange(a2a_socket_, Post("/projects/app/a2a", Send("hello")));
  json task = Body(out)["result"];
  ASSERT_TRUE(task.is_object()) << out;
  EXPECT_EQ(task["status"]["state"], "completed") << task;
  EXPECT_EQ(task["history"].back()["parts"][0]["text"], "Acknowledged: hello");
  const std::string id = task["id"];

  // A turn through a tool: the stream shows the work and ends completed.
  json stream =
      Send("read it",
           {{"taskId", id},
            {"metadata",
             {{"llm",
               {{"tool_calls", json::array({{{"name", "fs.list"},
                                             {"args", json::object()}}})}}}}}});
  stream["method"] = "message/stream";
  out = Exchange(a2a_socket_, Post("/projects/app/a2a", stream));
  std::vector<json> events = Events(out);
  ASSERT_GE(events.size(), 3u) << out;
  EXPECT_EQ(events.front()["result"]["kind"], "task");
  bool tool_seen = false;
  for (const json& e : events) {
    if (e["result"].value("metadata", json::object()).value("event_type", "") ==
        "conversation.tool.requested") {
      tool_seen = true;
    }
  }
  EXPECT_TRUE(tool_seen) << out;
  EXPECT_EQ(events.back()["result"]["final"], true) << out;
  EXPECT_EQ(events.back()["result"]["status"]["state"], "completed") << out;

  // Resubscribing to a task that is not working: the task and its end.
  out = Exchange(a2a_socket_,
                 Post("/projects/app/a2a", {{"jsonrpc", "2.0"},
                                            {"id", 3},
                                            {"method", "tasks/resubscribe"},
                                            {"params", {{"id", id}}}}));
  events = Events(out);
  ASSERT_EQ(events.size(), 2u) << out;
  EXPECT_EQ(events[1]["result"]["status"]["state"], "completed");

  out = Exchange(a2a_socket_,
                 Post("/projects/app/a2a", {{"jsonrpc", "2.0"},
                                            {"id", 4},
                                            {"method", "tasks/get"},
                                            {"params", {{"id", id}}}}));
  EXPECT_GE(Body(out)["result"]["history"].size(), 4u) << out;
  EXPECT_EQ(
      Exchange(a2a_socket_, Get("/projects/nosuch/.well-known/agent-card.json"))
          .rfind("HTTP/1.1 404 ", 0),
      0u);
  EXPECT_EQ(daemon_->StopCleanly(), "");
}

TEST_F(A2aDaemonTest, ProtocolAllowlistWithoutA2a) {
  StartProject("closed", R"(protocol_allowlist=["mcp"])");
  std::string out = Exchange(
      a2a_socket_, Get("/projects/closed/.well-known/agent-card.json"));
  EXPECT_EQ(out.rfind("HTTP/1.1 403 ", 0), 0u) << out;
  EXPECT_EQ(Body(out)["error"]["code"], -32010);
  out = Exchange(a2a_socket_, Post("/projects/closed/a2a", Send("x")));
  EXPECT_EQ(Body(out)["error"]["code"], -32010) << out;
  EXPECT_FALSE(Body(out).contains("result"));
  // The structured log carries the events with their payload.
  const double deadline = st::NowSeconds() + 10;
  bool card = false;
  bool create = false;
  while (st::NowSeconds() < deadline && !(card && create)) {
    const std::string log = daemon_->Log();
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      const json e = json::parse(line, nullptr, false);
      if (!e.is_object() || e.value("event", "") != "security.protocol_denied")
        continue;
      const json p = e.value("payload", json::object());
      if (p.value("project_id", "") != "closed" ||
          p.value("protocol", "") != "a2a")
        continue;
      card = card || p.value("operation", "") == "agent.card";
      create = create || p.value("operation", "") == "task.create";
    }
    if (!(card && create)) usleep(50000);
  }
  EXPECT_TRUE(card && create) << daemon_->Log();
  // No conversation was started.
  const st::RunResult list =
      st::RunJcs({"project", "list", "--socket", daemon_->socket_path()},
                 st::TimeoutAfter(30));
  EXPECT_EQ(list.out.find("conversation_count\": 1"), std::string::npos)
      << list.out;
}

// Attack: a local uid the daemon does not allow reaches the socket (mode
// 0666 here) and is refused by SO_PEERCRED, before any project is touched.
TEST_F(A2aDaemonTest, UnixPeerNotAllowedIs403) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  StartProject("app");
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    if (setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    const std::string out =
        Exchange(a2a_socket_, Get("/projects/app/.well-known/agent-card.json"));
    (void)!write(pipe_fds[1], out.data(), out.size());
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0) {
    out.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(out.rfind("HTTP/1.1 403 ", 0), 0u) << out;
  // Refused at the socket, before any project is looked at (the control
  // service's own project check, "may not use project app", is the second
  // layer behind it).
  EXPECT_NE(out.find("uid 65534 may not use the jcs daemon"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace jcs
