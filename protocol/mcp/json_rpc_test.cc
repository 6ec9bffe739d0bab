#include "protocol/mcp/json_rpc.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

TEST(ParseMessageTest, Request) {
  ParseResult r = ParseMessage(
      R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"a":1}})");
  ASSERT_TRUE(r.message.has_value());
  EXPECT_EQ(r.message->kind, Message::Kind::kRequest);
  EXPECT_EQ(r.message->id, 7);
  EXPECT_EQ(r.message->method, "tools/list");
  EXPECT_EQ(r.message->params, json({{"a", 1}}));
}

TEST(ParseMessageTest, StringIdAndAbsentParams) {
  ParseResult r = ParseMessage(R"({"jsonrpc":"2.0","id":"x","method":"ping"})");
  ASSERT_TRUE(r.message.has_value());
  EXPECT_EQ(r.message->id, "x");
  EXPECT_TRUE(r.message->params.is_null());
}

TEST(ParseMessageTest, Notification) {
  ParseResult r = ParseMessage(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}})");
  ASSERT_TRUE(r.message.has_value());
  EXPECT_EQ(r.message->kind, Message::Kind::kNotification);
}

TEST(ParseMessageTest, Response) {
  ParseResult r = ParseMessage(R"({"jsonrpc":"2.0","id":1,"result":{}})");
  ASSERT_TRUE(r.message.has_value());
  EXPECT_EQ(r.message->kind, Message::Kind::kResponse);
  r = ParseMessage(R"({"jsonrpc":"2.0","id":1,"result":{},"error":{}})");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->code, kInvalidRequest);
  EXPECT_EQ(r.error_id, 1);
}

TEST(ParseMessageTest, MalformedJsonIsParseError) {
  for (const char* line : {"{", "not json", "{\"jsonrpc\":\"2.0\",}",
                           "\"\xff\xfe\"" /* invalid UTF-8 */}) {
    ParseResult r = ParseMessage(line);
    ASSERT_TRUE(r.error.has_value()) << line;
    EXPECT_EQ(r.error->code, kParseError) << line;
    EXPECT_TRUE(r.error_id.is_null());
  }
}

TEST(ParseMessageTest, DeepNestingIsParseError) {
  const std::string deep =
      R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"a":)" +
      std::string(100, '[') + std::string(100, ']') + "}}";
  ParseResult r = ParseMessage(deep);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->code, kParseError);
  EXPECT_NE(r.error->message.find("nested deeper than 64"), std::string::npos);
}

TEST(ParseMessageTest, InvalidRequests) {
  struct Case {
    const char* line;
    const char* message_part;
    json id;
  };
  const Case cases[] = {
      {R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", "batches", nullptr},
      {"42", "JSON-RPC 2.0 object", nullptr},
      {R"({"id":1,"method":"ping"})", "jsonrpc must be \"2.0\"", 1},
      {R"({"jsonrpc":"1.0","id":"a","method":"ping"})", "jsonrpc", "a"},
      {R"({"jsonrpc":"2.0","id":1,"method":5})", "method must be a string", 1},
      {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})", "id must be", nullptr},
      {R"({"jsonrpc":"2.0","id":null,"method":"ping"})", "id must be", nullptr},
      {R"({"jsonrpc":"2.0","id":{},"method":"ping"})", "id must be", nullptr},
      {R"({"jsonrpc":"2.0","id":1})", "expected a method", 1},
  };
  for (const Case& c : cases) {
    ParseResult r = ParseMessage(c.line);
    ASSERT_TRUE(r.error.has_value()) << c.line;
    EXPECT_EQ(r.error->code, kInvalidRequest) << c.line;
    EXPECT_NE(r.error->message.find(c.message_part), std::string::npos)
        << c.line << ": " << r.error->message;
    EXPECT_EQ(r.error_id, c.id) << c.line;
  }
}

TEST(ParseMessageTest, NonObjectParamsAreInvalidParams) {
  ParseResult r =
      ParseMessage(R"({"jsonrpc":"2.0","id":4,"method":"ping","params":[1]})");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->code, kInvalidParams);
  EXPECT_EQ(r.error_id, 4);
}

TEST(SerializeLineTest, OneLineEvenWithNewlinesAndBadUtf8) {
  const std::string line = SerializeLine(
      ResultResponse(1, {{"text", std::string("a\nb\r\xff", 5)}}));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const json back = json::parse(line);
  EXPECT_EQ(back["result"]["text"], "a\nb\r\xEF\xBF\xBD");
  EXPECT_EQ(back["jsonrpc"], "2.0");
}

TEST(SerializeLineTest, ErrorShape) {
  const json doc = ErrorResponse(nullptr, {kParseError, "parse error"});
  EXPECT_EQ(doc, json::parse(R"({"jsonrpc":"2.0","id":null,
      "error":{"code":-32700,"message":"parse error"}})"));
}

std::vector<LineReader::Item> Drain(LineReader& reader) {
  std::vector<LineReader::Item> items;
  while (std::optional<LineReader::Item> item = reader.Next()) {
    items.push_back(*item);
  }
  return items;
}

TEST(LineReaderTest, SplitsLinesAcrossFeeds) {
  LineReader reader(100);
  reader.Feed("{\"a\":1}\n{\"b\"");
  reader.Feed(":2}\r\n\n   \n{\"c\":3}");
  std::vector<LineReader::Item> items = Drain(reader);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].line, "{\"a\":1}");
  EXPECT_EQ(items[1].line, "{\"b\":2}");
  reader.Feed("\n");
  items = Drain(reader);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].line, "{\"c\":3}");
}

TEST(LineReaderTest, OversizedLineReportedOnceAndNotBuffered) {
  LineReader reader(10);
  reader.Feed("0123456789\n");  // exactly at the bound
  reader.Feed(std::string(8, 'x'));
  reader.Feed(std::string(8, 'x'));  // passes the bound: reported now
  std::vector<LineReader::Item> items = Drain(reader);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].line, "0123456789");
  EXPECT_TRUE(items[1].oversized);
  for (int i = 0; i < 1000; ++i) reader.Feed(std::string(1000, 'y'));
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_FALSE(reader.Next().has_value());
  reader.Feed("yyy\nok\n");
  items = Drain(reader);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].line, "ok");
}

TEST(LineReaderTest, BoundCountsWithoutCarriageReturn) {
  LineReader reader(4);
  reader.Feed("abcd\r\nabcde\n");
  std::vector<LineReader::Item> items = Drain(reader);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].line, "abcd");
  EXPECT_TRUE(items[1].oversized);
}

}  // namespace
}  // namespace jcs::protocol::mcp
