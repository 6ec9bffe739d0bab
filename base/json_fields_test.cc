#include "base/json_fields.h"

#include "gtest/gtest.h"

namespace jcs::json_fields {
namespace {

using nlohmann::json;

// Each input that made nlohmann's value() throw reads as absent instead.
TEST(JsonFieldsTest, AMemberOfAnotherTypeReadsAsTheFallback) {
  const json doc = json::parse(R"({"kind": [1], "ok": "yes", "n": "7",
                                    "o": [], "flag": 1})");
  EXPECT_EQ(String(doc, "kind", "dflt"), "dflt");
  EXPECT_EQ(Bool(doc, "ok", true), true);
  EXPECT_EQ(Bool(doc, "flag", false), false);
  EXPECT_EQ(Int(doc, "n", -1), -1);
  EXPECT_EQ(Object(doc, "o"), json::object());
  EXPECT_EQ(Array(doc, "ok"), json::array());
  EXPECT_THROW((void)doc.value("kind", ""), json::type_error);
}

TEST(JsonFieldsTest, ANonObjectReadsAsEmpty) {
  for (const json& doc : {json(), json::array({1}), json("s"), json(3)}) {
    EXPECT_EQ(String(doc, "k", "f"), "f");
    EXPECT_EQ(Int(doc, "k", 9), 9);
    EXPECT_TRUE(Member(doc, "k").is_null());
  }
}

TEST(JsonFieldsTest, PresentMembersOfTheRightTypeAreReturned) {
  const json doc = json::parse(R"({"s": "v", "b": false, "i": -12,
                                    "u": 18446744073709551615,
                                    "o": {"x": 1}, "f": 1.5})");
  EXPECT_EQ(String(doc, "s"), "v");
  EXPECT_EQ(String(doc, "missing"), "");
  EXPECT_FALSE(Bool(doc, "b", true));
  EXPECT_EQ(Int(doc, "i", 0), -12);
  EXPECT_EQ(Int(doc, "u", 5), 5);  // does not fit int64_t
  EXPECT_EQ(Int(doc, "f", 5), 5);  // not an integer
  EXPECT_EQ(Object(doc, "o"), json({{"x", 1}}));
  EXPECT_EQ(Member(doc, "o")["x"], 1);
  EXPECT_EQ(Array(json::parse(R"({"a": [1, 2]})"), "a"), json::array({1, 2}));
}

}  // namespace
}  // namespace jcs::json_fields
