#include "runtime/conversation/openai_wire.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/conversation/http_chunked.h"
#include "runtime/conversation/llm_error.h"
#include "runtime/conversation/openai_tool_names.h"

namespace jcs::runtime::conversation {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ToolNameMapTest, MapsDotsReadablyAndBackForTheWholeCatalog) {
  const std::vector<std::string> catalog = {
      "fs.read", "fs_read", "git.status",         "shell",
      "a/b c",   "",        std::string(80, 'x'), std::string(80, 'x') + ".y"};
  ToolNameMap names(catalog);
  std::set<std::string> api_names;
  for (const std::string& name : catalog) {
    std::string api = names.ToApi(name);
    EXPECT_TRUE(IsValidApiToolName(api)) << name << " -> " << api;
    EXPECT_EQ(names.FromApi(api), name) << api;
    api_names.insert(api);
  }
  EXPECT_EQ(api_names.size(), catalog.size());  // no two tools share a name
  // A valid name keeps itself; the dotted twin gets a hashed suffix.
  EXPECT_EQ(names.ToApi("fs_read"), "fs_read");
  EXPECT_EQ(names.ToApi("shell"), "shell");
  EXPECT_EQ(names.ToApi("git.status"), "git_status");
  EXPECT_THAT(names.ToApi("fs.read"), ::testing::StartsWith("fs_read_"));
  // An unknown name comes back unchanged (the tool runtime rejects it).
  EXPECT_EQ(names.FromApi("rm_rf"), "rm_rf");
}

TEST(ToolNameMapTest, IsStableAcrossInstances) {
  ToolNameMap a({"fs.read", "fs_read"}), b({"fs_read", "fs.read"});
  EXPECT_EQ(a.ToApi("fs.read"), b.ToApi("fs.read"));
}

LlmRequest SampleRequest() {
  LlmRequest request;
  request.model = "gpt-test";
  request.system_prompt = "be brief";
  request.temperature = 0.25;
  request.max_tokens = 99;
  request.messages = {
      {"user", "read the readme", "", json::array()},
      {"assistant", "", "",
       json::array({{{"id", "call_1"},
                     {"name", "fs.read"},
                     {"arguments", {{"path", "README.md"}}}}})},
      {"tool", "# jcs", "call_1", json::array()},
  };
  request.tools = {
      {"fs.read",
       "Read a file",
       {{"type", "object"}, {"properties", {{"path", {{"type", "string"}}}}}}},
      {"shell", "Run a command", nullptr}};
  return request;
}

TEST(BuildChatRequestBodyTest, CarriesEverythingTheApiNeeds) {
  ToolNameMap names({"fs.read", "shell"});
  auto body = BuildChatRequestBody(SampleRequest(), names, true);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ((*body)["model"], "gpt-test");
  EXPECT_EQ((*body)["stream"], true);
  EXPECT_EQ((*body)["temperature"], 0.25);
  EXPECT_EQ((*body)["max_tokens"], 99);
  const json& m = (*body)["messages"];
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0], json({{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(m[2]["content"], nullptr);
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["name"], "fs_read");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"],
            R"({"path":"README.md"})");
  EXPECT_EQ(m[3], json({{"role", "tool"},
                        {"tool_call_id", "call_1"},
                        {"content", "# jcs"}}));
  const json& tools = (*body)["tools"];
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0]["type"], "function");
  EXPECT_EQ(tools[0]["function"]["name"], "fs_read");
  EXPECT_EQ(tools[0]["function"]["description"], "Read a file");
  EXPECT_EQ(tools[0]["function"]["parameters"]["properties"]["path"]["type"],
            "string");
  // A tool without a schema still gets a valid parameters object.
  EXPECT_EQ(tools[1]["function"]["parameters"]["type"], "object");
}

TEST(BuildChatRequestBodyTest, OptionalFieldsAreLeftOut) {
  LlmRequest request;
  request.model = "m";
  request.messages = {{"user", "hi", "", json::array()}};
  auto body = BuildChatRequestBody(request, ToolNameMap({}), false);
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body->contains("temperature"));
  EXPECT_FALSE(body->contains("max_tokens"));
  EXPECT_FALSE(body->contains("tools"));
  EXPECT_EQ((*body)["messages"].size(), 1u);  // no empty system prompt
}

TEST(BuildChatRequestBodyTest, RejectsWhatTheApiWouldRejectNamingTheField) {
  LlmRequest request = SampleRequest();
  request.model.clear();
  auto no_model = BuildChatRequestBody(request, ToolNameMap({}), true);
  EXPECT_EQ(LlmErrorKind(no_model.status()), kLlmBadRequest);
  EXPECT_THAT(no_model.status().message(), HasSubstr("llm_model"));

  request = SampleRequest();
  request.messages[1].role = "robot";
  auto bad_role = BuildChatRequestBody(request, ToolNameMap({}), true);
  EXPECT_THAT(bad_role.status().message(), HasSubstr("messages[1].role"));

  request = SampleRequest();
  request.messages[2].tool_call_id.clear();
  auto no_id = BuildChatRequestBody(request, ToolNameMap({}), true);
  EXPECT_THAT(no_id.status().message(), HasSubstr("messages[2]"));
}

TEST(ParseChatCompletionTest, ToolCallsMapBackToCatalogNames) {
  ToolNameMap names({"fs.read"});
  auto response = ParseChatCompletion(
      R"({"model":"gpt","choices":[{"message":{"content":null,"tool_calls":[
          {"id":"c1","type":"function","function":{"name":"fs_read",
           "arguments":"{\"path\":\"a\"}"}}]},"finish_reason":"tool_calls"}]})",
      names);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->model, "gpt");
  EXPECT_EQ(response->provider, "openai");
  EXPECT_EQ(response->finish_reason, "tool_calls");
  ASSERT_EQ(response->tool_calls.size(), 1u);
  EXPECT_EQ(response->tool_calls[0].id, "c1");
  EXPECT_EQ(response->tool_calls[0].name, "fs.read");
  EXPECT_EQ(response->tool_calls[0].arguments, json({{"path", "a"}}));
}

TEST(ParseChatCompletionTest, MalformedBodiesAreDistinctErrors) {
  ToolNameMap names({});
  for (
      const char* body :
      {"", "{", "[]", R"({"choices":[]})", R"({"choices":[{"message":1}]})",
       R"({"choices":[{"message":{"content":5}}]})",
       R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"x","arguments":"[1]"}}]}}]})",
       R"({"error":{"message":"x"}})"}) {
    auto response = ParseChatCompletion(body, names);
    ASSERT_FALSE(response.ok()) << body;
    EXPECT_EQ(LlmErrorKind(response.status()), kLlmMalformedResponse) << body;
    EXPECT_EQ(response.status().code(), absl::StatusCode::kDataLoss);
  }
  // Nesting past the bound is rejected, not recursed into.
  std::string deep = R"({"choices":[{"message":{"content":"x","extra":)" +
                     std::string(100, '[') + std::string(100, ']') + "}}]}";
  EXPECT_FALSE(ParseChatCompletion(deep, names).ok());
}

TEST(ProviderErrorMessageTest, TakesTheMessageAndKeepsItPrintableAndShort) {
  EXPECT_EQ(ProviderErrorMessage(R"({"error":{"message":"quota exceeded"}})"),
            "quota exceeded");
  EXPECT_EQ(ProviderErrorMessage("bad\x01gateway"), "bad gateway");
  EXPECT_EQ(ProviderErrorMessage(std::string(5000, 'a')).size(), 512u);
}

std::vector<std::string> Events(const std::vector<std::string>& pieces,
                                absl::Status* status = nullptr) {
  std::vector<std::string> events;
  SseDecoder decoder([&events](std::string data) {
    events.push_back(data);
    return absl::OkStatus();
  });
  absl::Status s;
  for (const std::string& piece : pieces) {
    s = decoder.Feed(piece);
    if (!s.ok()) break;
  }
  if (status != nullptr) *status = s;
  return events;
}

TEST(SseDecoderTest, SplitsEventsWhereverTheBytesWereCut) {
  const std::string stream =
      ": comment\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\nid: 1\n\ndata: "
      "[DONE]\n\n";
  EXPECT_THAT(Events({stream}), ElementsAre("a\nb", "[DONE]"));
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_THAT(Events({stream.substr(0, cut), stream.substr(cut)}),
                ElementsAre("a\nb", "[DONE]"))
        << cut;
  }
}

TEST(SseDecoderTest, AnOverlongLineIsAnErrorNotAnAllocation) {
  absl::Status status;
  std::string piece(64 << 10, 'x');
  std::vector<std::string> pieces(kMaxSseLineBytes / piece.size() + 2, piece);
  pieces.insert(pieces.begin(), "data: ");
  Events(pieces, &status);
  EXPECT_EQ(LlmErrorKind(status), kLlmResponseTooLarge);
}

TEST(StreamAssemblerTest, AssemblesTextAndToolCallFragments) {
  ToolNameMap names({"fs.read"});
  std::vector<std::string> deltas;
  StreamAssembler assembler(names,
                            [&deltas](std::string d) { deltas.push_back(d); });
  for (
      const char* event :
      {R"({"model":"gpt","choices":[{"delta":{"role":"assistant","content":"Hi"}}]})",
       R"({"choices":[{"delta":{"content":" there"}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"fs_","arguments":"{\"pa"}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"read","arguments":"th\":\"x\"}"}}]}}]})",
       R"({"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"shell","arguments":""}}]}}]})",
       R"({"choices":[{"delta":{},"finish_reason":"tool_calls"}]})",
       R"({"choices":[],"usage":{"total_tokens":3}})", "[DONE]"}) {
    ASSERT_TRUE(assembler.OnEvent(event).ok()) << event;
  }
  auto response = assembler.Finish();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(deltas, ElementsAre("Hi", " there"));
  EXPECT_EQ(response->text, "Hi there");
  EXPECT_THAT(response->delta_chunks, ElementsAre("Hi", " there"));
  EXPECT_EQ(response->model, "gpt");
  EXPECT_EQ(response->finish_reason, "tool_calls");
  ASSERT_EQ(response->tool_calls.size(), 2u);
  EXPECT_EQ(response->tool_calls[0].name, "fs.read");
  EXPECT_EQ(response->tool_calls[0].arguments, json({{"path", "x"}}));
  EXPECT_EQ(response->tool_calls[1].name, "shell");
  EXPECT_EQ(response->tool_calls[1].arguments, json::object());
}

TEST(StreamAssemblerTest, StreamWithoutDoneIsTruncated) {
  ToolNameMap names({});
  StreamAssembler assembler(names, nullptr);
  ASSERT_TRUE(
      assembler.OnEvent(R"({"choices":[{"delta":{"content":"x"}}]})").ok());
  auto response = assembler.Finish();
  EXPECT_EQ(LlmErrorKind(response.status()), kLlmStreamTruncated);
}

TEST(StreamAssemblerTest, HostileIndexesAndBadChunksAreRejected) {
  ToolNameMap names({});
  for (const char* event :
       {"{", R"({"choices":[{"delta":{"tool_calls":[{"index":1000000000}]}}]})",
        R"({"choices":[{"delta":{"tool_calls":[{"index":-1}]}}]})",
        R"({"choices":[{"delta":{"content":7}}]})"}) {
    StreamAssembler assembler(names, nullptr);
    absl::Status status = assembler.OnEvent(event);
    EXPECT_EQ(LlmErrorKind(status), kLlmMalformedResponse) << event;
  }
  StreamAssembler assembler(names, nullptr);
  absl::Status error =
      assembler.OnEvent(R"({"error":{"message":"server overloaded"}})");
  EXPECT_THAT(error.message(), HasSubstr("server overloaded"));
}

TEST(ChunkedDecoderTest, DecodesSplitAnywhere) {
  const std::string wire = "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n";
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    ChunkedDecoder decoder;
    std::string out;
    ASSERT_TRUE(decoder.Feed(wire.substr(0, cut), &out).ok());
    ASSERT_TRUE(decoder.Feed(wire.substr(cut), &out).ok());
    EXPECT_EQ(out, "hello world");
    EXPECT_TRUE(decoder.done());
  }
}

TEST(ChunkedDecoderTest, RejectsBadFraming) {
  for (const char* wire :
       {"zz\r\n", "5\r\nhelloXX\r\n", "fffffffffffffff\r\n", "\r\n"}) {
    ChunkedDecoder decoder;
    std::string out;
    EXPECT_FALSE(decoder.Feed(wire, &out).ok()) << wire;
  }
  ChunkedDecoder decoder;
  std::string out;
  EXPECT_FALSE(decoder.Feed(std::string(5000, '1'), &out).ok());
}

}  // namespace
}  // namespace jcs::runtime::conversation
