#include "runtime/policy/env_policy.h"

#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/project/runtime_options.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

ValidatedOptions WithAllowlist(std::vector<std::string> allowlist) {
  ValidatedOptions options;
  options.tool_env_allowlist = std::move(allowlist);
  return options;
}

TEST(CheckEnvPayloadTest, AbsentIsOk) {
  const EnvDecision d = CheckEnvPayload(json{{"argv", {"ls"}}}, {});
  EXPECT_TRUE(d.ok);
  EXPECT_THAT(d.env, IsEmpty());
  EXPECT_TRUE(CheckEnvPayload(json::array(), {}).ok);
}

TEST(CheckEnvPayloadTest, EmptyObjectIsOk) {
  EXPECT_TRUE(CheckEnvPayload(json{{"env", json::object()}}, {}).ok);
}

TEST(CheckEnvPayloadTest, NonObjectIsInvalid) {
  for (const json& env :
       {json("A=1"), json::array({"A"}), json(nullptr), json(1)}) {
    const EnvDecision d = CheckEnvPayload(json{{"env", env}}, {});
    EXPECT_FALSE(d.ok) << env.dump();
    EXPECT_EQ(d.reason, kInvalidEnvPayload) << env.dump();
  }
}

TEST(CheckEnvPayloadTest, BadKeysAreInvalid) {
  const ValidatedOptions options = WithAllowlist({"A"});
  for (const char* key : {"", "  ", "1A", "A-B", "A=B", "A B"}) {
    const EnvDecision d =
        CheckEnvPayload(json{{"env", {{"A", "1"}, {key, "x"}}}}, options);
    EXPECT_EQ(d.reason, kInvalidEnvPayload) << "key '" << key << "'";
    EXPECT_THAT(d.env, IsEmpty());
  }
}

TEST(CheckEnvPayloadTest, NonStringValuesAreInvalid) {
  const ValidatedOptions options = WithAllowlist({"A"});
  for (const json& value :
       {json(1), json(true), json(nullptr), json::array(), json::object()}) {
    EXPECT_EQ(CheckEnvPayload(json{{"env", {{"A", value}}}}, options).reason,
              kInvalidEnvPayload)
        << value.dump();
  }
  EXPECT_EQ(
      CheckEnvPayload(json{{"env", {{"A", std::string("a\0b", 3)}}}}, options)
          .reason,
      kInvalidEnvPayload);
}

TEST(CheckEnvPayloadTest, InvalidWinsOverDenied) {
  EXPECT_EQ(
      CheckEnvPayload(json{{"env", {{"DENIED", "1"}, {"OK", 2}}}}, {}).reason,
      kInvalidEnvPayload);
}

TEST(CheckEnvPayloadTest, DeniedKeysSortedAndUnique) {
  const ValidatedOptions options = WithAllowlist({"PATH"});
  const EnvDecision d = CheckEnvPayload(
      json{{"env", {{"ZED", "1"}, {"PATH", "/bin"}, {"ALPHA", "2"}}}}, options);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.reason, kEnvVarsNotAllowed);
  EXPECT_THAT(d.denied_keys, ElementsAre("ALPHA", "ZED"));
  EXPECT_THAT(d.env, IsEmpty());
  // Default allowlist is empty: deny-all, case-sensitive.
  EXPECT_THAT(
      CheckEnvPayload(json{{"env", {{"path", "x"}}}}, options).denied_keys,
      ElementsAre("path"));
}

TEST(CheckEnvPayloadTest, AllowedEnvReturned) {
  const ValidatedOptions options = WithAllowlist({"LANG", "_X1", "EMPTY"});
  const EnvDecision d = CheckEnvPayload(
      json{{"env", {{"LANG", "C.UTF-8"}, {"_X1", "a=b"}, {"EMPTY", ""}}}},
      options);
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.reason, "");
  EXPECT_THAT(d.env, ElementsAre(Pair("EMPTY", ""), Pair("LANG", "C.UTF-8"),
                                 Pair("_X1", "a=b")));
}

TEST(IsValidEnvKeyTest, Syntax) {
  EXPECT_TRUE(IsValidEnvKey("A"));
  EXPECT_TRUE(IsValidEnvKey("_"));
  EXPECT_TRUE(IsValidEnvKey("a_B9"));
  EXPECT_FALSE(IsValidEnvKey(""));
  EXPECT_FALSE(IsValidEnvKey("9A"));
  EXPECT_FALSE(IsValidEnvKey("Ä"));
}

}  // namespace
}  // namespace jcs::runtime
