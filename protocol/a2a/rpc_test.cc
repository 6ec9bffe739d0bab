#include "protocol/a2a/rpc.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

json Send(json message, json extra = json::object()) {
  json params = {{"message", std::move(message)}};
  params.update(extra);
  return {{"jsonrpc", "2.0"},
          {"id", "r1"},
          {"method", "message/send"},
          {"params", params}};
}

json TextMessage(const std::string& text) {
  return {{"kind", "message"},
          {"messageId", "m1"},
          {"role", "user"},
          {"parts", json::array({{{"kind", "text"}, {"text", text}}})}};
}

int ErrorCode(const json& doc) {
  ParseResult parsed = ParseRequest(doc.dump());
  return parsed.error.has_value() ? parsed.error->code : 0;
}

TEST(RpcTest, ParsesMessageSend) {
  json message = TextMessage("hello");
  message["parts"].push_back({{"kind", "text"}, {"text", "world"}});
  message["taskId"] = "a2a-1";
  message["metadata"] = {{"llm", {{"delay_ms", 5}}}};
  ParseResult parsed = ParseRequest(
      Send(message, {{"configuration", {{"blocking", false}}}}).dump());
  ASSERT_TRUE(parsed.request.has_value()) << parsed.error->message;
  const Request& r = *parsed.request;
  EXPECT_EQ(r.id, "r1");
  EXPECT_EQ(r.method, Method::kMessageSend);
  EXPECT_EQ(r.send.text, "hello\nworld");
  EXPECT_EQ(r.send.task_id, "a2a-1");
  EXPECT_EQ(r.send.llm["delay_ms"], 5);
  EXPECT_FALSE(r.send.blocking);
}

TEST(RpcTest, RefusesBadMessagesNamingTheField) {
  EXPECT_EQ(ErrorCode(Send(TextMessage("   "))), kInvalidParams);
  json agent = TextMessage("x");
  agent["role"] = "agent";
  EXPECT_EQ(ErrorCode(Send(agent)), kInvalidParams);
  json file = TextMessage("x");
  file["parts"] = json::array({{{"kind", "file"}, {"file", {{"uri", "x"}}}}});
  EXPECT_EQ(ErrorCode(Send(file)), kContentTypeNotSupported);
  json no_id = TextMessage("x");
  no_id.erase("messageId");
  ParseResult parsed = ParseRequest(Send(no_id).dump());
  ASSERT_TRUE(parsed.error.has_value());
  EXPECT_NE(parsed.error->message.find("message.messageId"), std::string::npos);
  EXPECT_EQ(parsed.error_id, "r1");
  json bad_task = TextMessage("x");
  bad_task["taskId"] = "../../etc";
  EXPECT_EQ(ErrorCode(Send(bad_task)), kTaskNotFound);
  EXPECT_EQ(
      ErrorCode(Send(TextMessage(std::string(kMaxMessageTextBytes + 1, 'a')))),
      kInvalidParams);
  EXPECT_EQ(
      ErrorCode(Send(TextMessage("x"),
                     {{"configuration",
                       {{"pushNotificationConfig", {{"url", "http://x"}}}}}})),
      kPushNotificationNotSupported);
}

// Found by rpc_fuzz: a member of another type than expected made
// nlohmann's value() throw, which aborted the daemon. Each one is an
// invalid-params error naming the field.
TEST(RpcTest, MembersOfTheWrongTypeAreInvalidParamsNotACrash) {
  struct Case {
    const char* name;
    json message;
    const char* field;
  };
  json kind_array = TextMessage("x");
  kind_array["kind"] = json::array({{{"kind", "text"}, {"text", "b"}}});
  json role_number = TextMessage("x");
  role_number["role"] = 7;
  json part_kind_object = TextMessage("x");
  part_kind_object["parts"][0]["kind"] = {{"text", 1}};
  json id_array = TextMessage("x");
  id_array["messageId"] = json::array();
  for (const Case& c :
       {Case{"kind", kind_array, "message.kind"},
        Case{"role", role_number, "message.role"},
        Case{"part kind", part_kind_object, "message.parts[0].kind"},
        Case{"messageId", id_array, "message.messageId"}}) {
    ParseResult parsed = ParseRequest(Send(c.message).dump());
    ASSERT_TRUE(parsed.error.has_value()) << c.name;
    EXPECT_EQ(parsed.error->code, kInvalidParams) << c.name;
    EXPECT_NE(parsed.error->message.find(c.field), std::string::npos)
        << c.name << ": " << parsed.error->message;
  }
  // The fuzzer's input, as it came.
  ParseResult fuzzed = ParseRequest(
      R"({"jsonrpc":"2.0","id":"s","method":"message/stream","params":)"
      R"({"message":{"kind":[{"kind":"text","dext":"a"},{"kind":"text",)"
      R"("text":"b"}],"metadataLength":2}}})");
  ASSERT_TRUE(fuzzed.error.has_value());
  EXPECT_EQ(fuzzed.error->code, kInvalidParams);
}

TEST(RpcTest, TaskMethodsNeedAValidId) {
  const auto doc = [](const std::string& method, json params) {
    return json{{"jsonrpc", "2.0"},
                {"id", 3},
                {"method", method},
                {"params", std::move(params)}};
  };
  ParseResult parsed = ParseRequest(
      doc("tasks/get", {{"id", "t"}, {"historyLength", 2}}).dump());
  ASSERT_TRUE(parsed.request.has_value());
  EXPECT_EQ(parsed.request->task_id, "t");
  EXPECT_EQ(parsed.request->history_length, 2);
  EXPECT_EQ(ErrorCode(doc("tasks/cancel", json::object())), kInvalidParams);
  EXPECT_EQ(ErrorCode(doc("tasks/cancel", {{"id", 5}})), kInvalidParams);
  EXPECT_EQ(ErrorCode(doc("tasks/resubscribe", {{"id", "a b"}})),
            kTaskNotFound);
  EXPECT_EQ(ErrorCode(doc("tasks/get", {{"id", "t"}, {"historyLength", -1}})),
            kInvalidParams);
  EXPECT_EQ(ErrorCode(doc("tasks/pushNotificationConfig/get", json::object())),
            kPushNotificationNotSupported);
  EXPECT_EQ(
      ErrorCode(doc("agent/getAuthenticatedExtendedCard", json::object())),
      kAuthenticatedExtendedCardNotConfigured);
  EXPECT_EQ(ErrorCode(doc("tasks/list", json::object())), kMethodNotFound);
}

TEST(RpcTest, EnvelopeErrors) {
  EXPECT_EQ(ParseRequest("{").error->code, kParseError);
  EXPECT_EQ(ParseRequest("[]").error->code, kInvalidRequest);
  EXPECT_EQ(
      ParseRequest(R"({"jsonrpc":"2.0","method":"tasks/get"})").error->code,
      kInvalidRequest);  // a notification: A2A answers every method
  EXPECT_EQ(
      ParseRequest(std::string(100, '[') + std::string(100, ']')).error->code,
      kParseError);
}

}  // namespace
}  // namespace jcs::protocol::a2a
