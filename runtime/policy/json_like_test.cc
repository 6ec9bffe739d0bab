#include "runtime/policy/json_like.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

TEST(DecodeJsonLikeTest, DecodesOnlyJsonLookingStrings) {
  EXPECT_EQ(DecodeJsonLike(R"( {"path":"../x"})", 1024, 8),
            nlohmann::json({{"path", "../x"}}));
  EXPECT_EQ(DecodeJsonLike(R"(["a",1])", 1024, 8), nlohmann::json({"a", 1}));
  EXPECT_EQ(DecodeJsonLike(R"("../x")", 1024, 8), nlohmann::json("../x"));
  EXPECT_FALSE(DecodeJsonLike("path=../x", 1024, 8).has_value());
  EXPECT_FALSE(DecodeJsonLike("42", 1024, 8).has_value());
  EXPECT_FALSE(DecodeJsonLike("", 1024, 8).has_value());
  EXPECT_FALSE(DecodeJsonLike("   ", 1024, 8).has_value());
  EXPECT_FALSE(DecodeJsonLike("{not json", 1024, 8).has_value());
}

TEST(DecodeJsonLikeTest, BoundsSizeAndNesting) {
  EXPECT_FALSE(DecodeJsonLike(R"({"a":"bbbbbbbbbb"})", 10, 8).has_value());
  std::string deep(10000, '[');
  deep += std::string(10000, ']');
  bool cut = false;
  std::optional<nlohmann::json> decoded =
      DecodeJsonLike(deep, deep.size(), 4, &cut);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_TRUE(cut);
  int depth = 0;
  for (const nlohmann::json* v = &*decoded; v->is_array() && !v->empty();
       v = &(*v)[0]) {
    ++depth;
  }
  EXPECT_LE(depth, 4);
  cut = false;
  EXPECT_TRUE(DecodeJsonLike("[[1]]", 100, 4, &cut).has_value());
  EXPECT_FALSE(cut);
}

}  // namespace
}  // namespace jcs::runtime
