#include "runtime/conversation/llm_openai.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/conversation/llm_error.h"
#include "runtime/conversation/openai_stub_server.h"
#include "telemetry/bus.h"

namespace jcs::runtime::conversation {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Looks like an OpenAI key, so the generic redaction would catch it too; the
// adapter must not rely on that (KeyEchoedByTheProvider uses another shape).
constexpr char kKey[] = "sk-test-0123456789abcdefSECRET";

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/oXXXXXX");
  if (mkdtemp(dir.data()) == nullptr) abort();
  return dir;
}

struct Outcome {
  std::optional<absl::StatusOr<LlmResponse>> result;
  std::vector<std::string> deltas;
  int done_calls = 0;
  // Deltas seen when done ran: they must all come first.
  size_t deltas_before_done = 0;
};

class OpenAiAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    auto stub = OpenAiStubServer::Start();
    ASSERT_TRUE(stub.ok()) << stub.status();
    stub_ = *std::move(stub);
  }
  void TearDown() override {
    adapter_.reset();  // before the loop
    stub_.reset();
  }

  void MakeAdapter(bool stream, std::string key = kKey,
                   size_t max_bytes = 8 << 20, int max_concurrent = 16) {
    OpenAiOptions options;
    options.base_url = stub_->base_url();
    options.api_key = std::move(key);
    options.default_model = "gpt-test";
    options.stream = stream;
    options.max_response_bytes = max_bytes;
    options.max_concurrent = max_concurrent;
    auto adapter = OpenAiAdapter::Create(loop_.get(), options);
    ASSERT_TRUE(adapter.ok()) << adapter.status();
    adapter_ = *std::move(adapter);
  }

  // Runs the loop until `done` or 20 s.
  bool RunUntil(const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!done()) {
      if (absl::Now() > deadline) return false;
      if (!loop_->RunOnce(absl::Milliseconds(10)).ok()) return false;
    }
    return true;
  }

  std::shared_ptr<Outcome> Start(LlmRequest request) {
    auto outcome = std::make_shared<Outcome>();
    adapter_->Complete(
        std::move(request),
        [outcome](std::string delta) { outcome->deltas.push_back(delta); },
        [outcome](absl::StatusOr<LlmResponse> result) {
          ++outcome->done_calls;
          outcome->deltas_before_done = outcome->deltas.size();
          outcome->result = std::move(result);
        });
    return outcome;
  }

  absl::StatusOr<LlmResponse> Complete(LlmRequest request,
                                       Outcome* seen = nullptr) {
    auto outcome = Start(std::move(request));
    EXPECT_EQ(outcome->done_calls, 0);  // never inline
    EXPECT_TRUE(RunUntil([&] { return outcome->done_calls > 0; }));
    if (seen != nullptr) *seen = *outcome;
    if (!outcome->result.has_value()) return absl::UnknownError("no result");
    return *outcome->result;
  }

  static LlmRequest Request() {
    LlmRequest request;
    request.project_id = "p1";
    request.conversation_id = "c1";
    request.correlation_id = "corr1";
    request.system_prompt = "You are terse.";
    request.temperature = 0.3;
    request.max_tokens = 64;
    request.timeout_ms = 10000;
    request.messages = {
        {"user", "what is in the readme?", "", json::array()},
        {"assistant", "", "",
         json::array({{{"id", "call_1"},
                       {"name", "fs.read"},
                       {"arguments", {{"path", "README.md"}}}}})},
        {"tool", "# jcs\nA sandbox.", "call_1", json::array()},
    };
    request.tools = {{"fs.read",
                      "Read a file",
                      {{"type", "object"},
                       {"properties", {{"path", {{"type", "string"}}}}},
                       {"required", {"path"}}}},
                     {"git.status", "Show the status", nullptr}};
    return request;
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<OpenAiStubServer> stub_;
  std::unique_ptr<OpenAiAdapter> adapter_;
};

const char kToolCallBody[] = R"({
  "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test-0613",
  "choices": [{"index": 0, "finish_reason": "tool_calls",
    "message": {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_2", "type": "function", "function": {
        "name": "git_status", "arguments": "{\"short\":true}"}}]}}]})";

TEST_F(OpenAiAdapterTest, NonStreamedToolCallAndWhatWentOverTheWire) {
  MakeAdapter(/*stream=*/false);
  stub_->Enqueue(OpenAiStubServer::Json(200, kToolCallBody));
  auto response = Complete(Request());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->provider, "openai");
  EXPECT_EQ(response->model, "gpt-test-0613");
  EXPECT_EQ(response->finish_reason, "tool_calls");
  ASSERT_EQ(response->tool_calls.size(), 1u);
  EXPECT_EQ(response->tool_calls[0].id, "call_2");
  EXPECT_EQ(response->tool_calls[0].name, "git.status");  // mapped back
  EXPECT_EQ(response->tool_calls[0].arguments, json({{"short", true}}));

  std::vector<OpenAiStubServer::Received> got = stub_->received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].request_line, "POST /v1/chat/completions HTTP/1.1");
  EXPECT_EQ(got[0].headers["authorization"], absl::StrCat("Bearer ", kKey));
  EXPECT_EQ(got[0].headers["content-type"], "application/json");
  json body = json::parse(got[0].body);
  EXPECT_EQ(body["model"], "gpt-test");
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["temperature"], 0.3);
  EXPECT_EQ(body["max_tokens"], 64);
  ASSERT_EQ(body["messages"].size(), 4u);
  EXPECT_EQ(body["messages"][0],
            json({{"role", "system"}, {"content", "You are terse."}}));
  EXPECT_EQ(body["messages"][1]["role"], "user");
  EXPECT_EQ(body["messages"][2]["tool_calls"][0]["function"]["name"],
            "fs_read");
  EXPECT_EQ(body["messages"][3], json({{"role", "tool"},
                                       {"tool_call_id", "call_1"},
                                       {"content", "# jcs\nA sandbox."}}));
  ASSERT_EQ(body["tools"].size(), 2u);
  EXPECT_EQ(body["tools"][0]["type"], "function");
  EXPECT_EQ(body["tools"][0]["function"]["name"], "fs_read");
  EXPECT_EQ(body["tools"][0]["function"]["parameters"]["required"],
            json({"path"}));
  EXPECT_EQ(body["tools"][1]["function"]["name"], "git_status");
}

TEST_F(OpenAiAdapterTest, StreamedAnswerDeliversDeltasInOrderBeforeDone) {
  MakeAdapter(/*stream=*/true);
  stub_->Enqueue(OpenAiStubServer::Sse(
      {R"({"model":"gpt-s","choices":[{"delta":{"role":"assistant","content":""}}]})",
       R"({"choices":[{"delta":{"content":"The "}}]})",
       R"({"choices":[{"delta":{"content":"readme "}}]})",
       R"({"choices":[{"delta":{"content":"says hi."},"finish_reason":"stop"}]})",
       "[DONE]"}));
  Outcome seen;
  auto response = Complete(Request(), &seen);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->text, "The readme says hi.");
  EXPECT_THAT(response->delta_chunks,
              ElementsAre("The ", "readme ", "says hi."));
  EXPECT_THAT(seen.deltas, ElementsAre("The ", "readme ", "says hi."));
  EXPECT_EQ(seen.deltas_before_done, 3u);
  EXPECT_EQ(seen.done_calls, 1);
  EXPECT_EQ(response->finish_reason, "stop");
  EXPECT_EQ(response->model, "gpt-s");
  std::vector<OpenAiStubServer::Received> got = stub_->received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(json::parse(got[0].body)["stream"], true);
  EXPECT_EQ(got[0].headers["accept"], "text/event-stream");
}

TEST_F(OpenAiAdapterTest, StreamedToolCallFragmentsAreAssembled) {
  MakeAdapter(/*stream=*/true);
  stub_->Enqueue(OpenAiStubServer::Sse(
      {R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"fs_read","arguments":""}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\": \"src/main.cc\"}"}}]}}]})",
       R"({"choices":[{"delta":{},"finish_reason":"tool_calls"}]})",
       "[DONE]"}));
  auto response = Complete(Request());
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->tool_calls.size(), 1u);
  EXPECT_EQ(response->tool_calls[0].id, "call_9");
  EXPECT_EQ(response->tool_calls[0].name, "fs.read");
  EXPECT_EQ(response->tool_calls[0].arguments, json({{"path", "src/main.cc"}}));
  EXPECT_EQ(response->finish_reason, "tool_calls");
  EXPECT_TRUE(response->text.empty());
}

TEST_F(OpenAiAdapterTest, AServerThatIgnoresStreamIsStillUnderstood) {
  MakeAdapter(/*stream=*/true);
  stub_->Enqueue(OpenAiStubServer::Json(200, kToolCallBody));
  auto response = Complete(Request());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->tool_calls[0].name, "git.status");
}

TEST_F(OpenAiAdapterTest, Http500IsUnavailableWithTheProviderMessage) {
  MakeAdapter(/*stream=*/true);
  stub_->Enqueue(OpenAiStubServer::Json(
      500,
      R"({"error":{"message":"The server had an error","type":"server_error"}})"));
  auto response = Complete(Request());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmHttpError);
  EXPECT_THAT(response.status().message(), HasSubstr("HTTP 500"));
  EXPECT_THAT(response.status().message(),
              HasSubstr("The server had an error"));
}

TEST_F(OpenAiAdapterTest, KeyEchoedByTheProviderIsInNoErrorAndNoEvent) {
  // A key of no well-known shape: only the adapter's own scrubbing hides it.
  const std::string key = "k3y-0f-n0-kn0wn-shape-XYZ";
  MakeAdapter(/*stream=*/false, key);
  stub_->Enqueue(OpenAiStubServer::Json(
      401, absl::StrCat(R"({"error":{"message":"Incorrect API key provided: )",
                        key, R"(. Get one at example.com"}})")));
  auto response = Complete(Request());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(response.status().message(), HasSubstr("Incorrect API key"));
  EXPECT_THAT(response.status().message(), Not(HasSubstr(key)));
  EXPECT_THAT(response.status().ToString(), Not(HasSubstr(key)));
  // On the wire it was sent.
  EXPECT_EQ(stub_->received().at(0).headers["authorization"],
            absl::StrCat("Bearer ", key));

  // Everything the adapter gives the conversation runtime, emitted as the
  // runtime emits it, reaches no event sink with the key.
  telemetry::Bus bus;
  std::vector<std::string> seen;
  bus.AddSink(
      [&seen](const telemetry::Event& e) { seen.push_back(e.payload.dump()); });
  bus.Emit("conversation.llm.requested", {{"project_id", "p1"},
                                          {"conversation_id", "c1"},
                                          {"data", adapter_->Describe()}});
  bus.Emit("conversation.llm.failed",
           {{"project_id", "p1"},
            {"conversation_id", "c1"},
            {"data", {{"reason", response.status().ToString()}}}});
  ASSERT_EQ(seen.size(), 2u);
  for (const std::string& payload : seen) {
    EXPECT_THAT(payload, Not(HasSubstr(key)));
  }
  EXPECT_EQ(adapter_->Describe()["auth"], "bearer");
}

TEST_F(OpenAiAdapterTest, MalformedBodyIsDataLoss) {
  MakeAdapter(/*stream=*/false);
  stub_->Enqueue(OpenAiStubServer::Json(200, R"({"choices":[{"message":)"));
  auto response = Complete(Request());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmMalformedResponse);
}

TEST_F(OpenAiAdapterTest, StreamEndingWithoutDoneIsTruncated) {
  MakeAdapter(/*stream=*/true);
  stub_->Enqueue(OpenAiStubServer::Sse(
      {R"({"choices":[{"delta":{"content":"half an ans"}}]})"}));
  Outcome seen;
  auto response = Complete(Request(), &seen);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmStreamTruncated);
  EXPECT_THAT(response.status().message(), HasSubstr("[DONE]"));
  EXPECT_THAT(seen.deltas, ElementsAre("half an ans"));
}

TEST_F(OpenAiAdapterTest, SlowResponsePastTheTimeoutIsDeadlineExceeded) {
  MakeAdapter(/*stream=*/true);
  stub_->EnqueueHang(OpenAiStubServer::SseHead() +
                     OpenAiStubServer::Chunk(
                         "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"
                         "\n\n"));
  LlmRequest request = Request();
  request.timeout_ms = 300;
  const absl::Time start = absl::Now();
  auto response = Complete(std::move(request));
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmTimeout);
  EXPECT_THAT(response.status().message(), HasSubstr("llm_timeout_ms"));
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(10));
  // The adapter hung up: the stub sees the connection end.
  EXPECT_TRUE(RunUntil([&] { return stub_->finished() == 1; }));
  EXPECT_TRUE(RunUntil([&] { return adapter_->running() == 0; }));
}

TEST_F(OpenAiAdapterTest, OversizedStreamIsAnErrorAtTheDefaultCap) {
  MakeAdapter(/*stream=*/true);  // 8 MiB, the default
  const std::string event = "data: {\"choices\":[{\"delta\":{\"content\":\"" +
                            std::string(4000, 'z') + "\"}}]}\n\n";
  stub_->EnqueueEndless(OpenAiStubServer::SseHead(),
                        OpenAiStubServer::Chunk(event));
  Outcome seen;
  auto response = Complete(Request(), &seen);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmResponseTooLarge);
  EXPECT_THAT(response.status().message(), HasSubstr("8388608"));
  size_t delivered = 0;
  for (const std::string& d : seen.deltas) delivered += d.size();
  EXPECT_LE(delivered, size_t{8} << 20);
  EXPECT_GT(delivered, size_t{7} << 20);
  EXPECT_TRUE(RunUntil([&] { return stub_->finished() == 1; }));
}

TEST_F(OpenAiAdapterTest, OversizedBodyIsAnError) {
  MakeAdapter(/*stream=*/false, kKey, /*max_bytes=*/1000);
  stub_->Enqueue(OpenAiStubServer::Json(200, std::string(5000, ' ') + "{}"));
  auto response = Complete(Request());
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmResponseTooLarge);
}

TEST_F(OpenAiAdapterTest, ConnectionRefusedIsUnavailable) {
  // A port that was just bound on loopback and closed: nobody listens.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  OpenAiOptions options;
  options.base_url = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port));
  options.default_model = "m";
  auto adapter = OpenAiAdapter::Create(loop_.get(), options);
  ASSERT_TRUE(adapter.ok());
  adapter_ = *std::move(adapter);
  auto response = Complete(Request());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmConnectionFailed);
  EXPECT_THAT(response.status().message(), HasSubstr("Connection refused"));
}

TEST_F(OpenAiAdapterTest, HttpsToAPlainServerIsATlsError) {
  stub_->EnqueueImmediate(OpenAiStubServer::Json(400, "{}"));
  OpenAiOptions options;
  options.base_url = absl::StrCat("https://127.0.0.1:", stub_->port(), "/v1");
  options.default_model = "m";
  auto adapter = OpenAiAdapter::Create(loop_.get(), options);
  ASSERT_TRUE(adapter.ok());
  adapter_ = *std::move(adapter);
  auto response = Complete(Request());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmTlsError) << response.status();
}

TEST_F(OpenAiAdapterTest, CancelAllEndsTheRequestWithoutDone) {
  MakeAdapter(/*stream=*/true);
  stub_->EnqueueHang(OpenAiStubServer::SseHead());
  LlmRequest request = Request();
  request.timeout_ms = 60000;
  auto outcome = Start(std::move(request));
  ASSERT_TRUE(RunUntil([&] { return stub_->received().size() == 1; }));
  adapter_->CancelAll();
  // The connection is dropped at once (long before the 60 s timeout) and
  // the thread is gone; done never runs.
  EXPECT_TRUE(RunUntil([&] { return stub_->finished() == 1; }));
  EXPECT_TRUE(RunUntil([&] { return adapter_->running() == 0; }));
  loop_->RunOnce(absl::ZeroDuration()).IgnoreError();
  EXPECT_EQ(outcome->done_calls, 0);
}

TEST_F(OpenAiAdapterTest, DestroyingTheAdapterMidRequestIsPromptAndSilent) {
  MakeAdapter(/*stream=*/true);
  stub_->EnqueueHang(OpenAiStubServer::SseHead());
  LlmRequest request = Request();
  request.timeout_ms = 60000;
  auto outcome = Start(std::move(request));
  ASSERT_TRUE(RunUntil([&] { return stub_->received().size() == 1; }));
  const absl::Time start = absl::Now();
  adapter_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (int i = 0; i < 3; ++i) {
    loop_->RunOnce(absl::ZeroDuration()).IgnoreError();
  }
  EXPECT_EQ(outcome->done_calls, 0);
}

TEST_F(OpenAiAdapterTest, TooManyConcurrentRequestsAreRefused) {
  MakeAdapter(/*stream=*/true, kKey, 8 << 20, /*max_concurrent=*/1);
  stub_->EnqueueHang(OpenAiStubServer::SseHead());
  LlmRequest request = Request();
  request.timeout_ms = 60000;
  auto first = Start(request);
  auto second = Start(request);
  ASSERT_TRUE(RunUntil([&] { return second->done_calls == 1; }));
  EXPECT_EQ(LlmErrorKind(second->result->status()), kLlmOverloaded);
  EXPECT_EQ(first->done_calls, 0);
  adapter_->CancelAll();
}

TEST_F(OpenAiAdapterTest, BadRequestsFailOnTheLoopNotInline) {
  MakeAdapter(/*stream=*/true);
  LlmRequest request = Request();
  request.messages[0].role = "wizard";
  auto response = Complete(std::move(request));
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmBadRequest);
  EXPECT_THAT(response.status().message(), HasSubstr("messages[0].role"));
  EXPECT_TRUE(stub_->received().empty());
}

// Options from the project's runtime options.

ValidatedOptions RuntimeOptions(std::string base_url) {
  ValidatedOptions options;
  options.llm_base_url = std::move(base_url);
  options.llm_model = "gpt-x";
  return options;
}

TEST(OpenAiOptionsTest, KeyFromTheEnvironmentVariableNamedByTheOption) {
  ValidatedOptions runtime = RuntimeOptions("https://api.example.com/v1");
  runtime.llm_api_key_env = "MY_LLM_KEY";
  auto options = OpenAiOptionsFromRuntime(runtime, [](const char* name) {
    return std::string(name) == "MY_LLM_KEY" ? " sk-env-key\n" : nullptr;
  });
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->api_key, "sk-env-key");
  EXPECT_EQ(options->default_model, "gpt-x");
  EXPECT_EQ(options->base_url, "https://api.example.com/v1");
}

TEST(OpenAiOptionsTest, KeyFromAFileWinsOverTheEnvironment) {
  std::string path = TempDir() + "/key";
  std::ofstream(path) << "sk-file-key\n";
  ValidatedOptions runtime = RuntimeOptions("https://api.example.com/v1");
  runtime.llm_api_key_file = path;
  auto options = OpenAiOptionsFromRuntime(
      runtime, [](const char*) { return "sk-env-key"; });
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->api_key, "sk-file-key");
}

TEST(OpenAiOptionsTest, MissingOrBadKeysFailClosedWithoutShowingTheKey) {
  ValidatedOptions runtime = RuntimeOptions("https://api.example.com/v1");
  auto none =
      OpenAiOptionsFromRuntime(runtime, [](const char*) { return nullptr; });
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("OPENAI_API_KEY"));
  EXPECT_THAT(none.status().message(), HasSubstr("llm_api_key_file"));

  // A key with a line break would inject a header.
  std::string path = TempDir() + "/key";
  std::ofstream(path) << "sk-first-line\nX-Injected: 1\n";
  runtime.llm_api_key_file = path;
  auto injected =
      OpenAiOptionsFromRuntime(runtime, [](const char*) { return nullptr; });
  ASSERT_FALSE(injected.ok());
  EXPECT_THAT(injected.status().message(), Not(HasSubstr("sk-first-line")));
  EXPECT_THAT(injected.status().message(), HasSubstr(path));

  runtime.llm_api_key_file = TempDir();  // a directory
  auto dir =
      OpenAiOptionsFromRuntime(runtime, [](const char*) { return nullptr; });
  EXPECT_THAT(dir.status().message(), HasSubstr("regular file"));
}

TEST(OpenAiOptionsTest, PlainHttpOnlyToLoopbackAndNoKeyNeededThere) {
  auto local =
      OpenAiOptionsFromRuntime(RuntimeOptions("http://127.0.0.1:11434/v1"),
                               [](const char*) { return nullptr; });
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->api_key, "");
  for (const char* url :
       {"http://api.example.com/v1", "http://10.0.0.1/v1",
        "https://user:pw@api.example.com/v1", "https://x/v1?a=b",
        "https://x:99999/v1", "ftp://x"}) {
    auto options = OpenAiOptionsFromRuntime(RuntimeOptions(url),
                                            [](const char*) { return "sk-k"; });
    EXPECT_FALSE(options.ok()) << url;
    EXPECT_THAT(options.status().message(), HasSubstr("llm_base_url")) << url;
  }
}

}  // namespace
}  // namespace jcs::runtime::conversation
