#include "telemetry/redact.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::telemetry {
namespace {

using nlohmann::json;

TEST(RedactTest, SecretKeysLoseTheirValueWhateverItIs) {
  json payload = {
      {"api_key", "k-123"}, {"Authorization", {{"scheme", "Bearer"}}},
      {"X-Access-Key", 42}, {"db.password", nullptr},
      {"privateKey", "p"},  // normalizes to privatekey: no match
      {"private-key", "p"}, {"client_credentials", {1, 2}},
      {"tool", "exec"}};
  Redact(payload);
  EXPECT_EQ(payload["api_key"], kRedacted);
  EXPECT_EQ(payload["Authorization"], kRedacted);
  EXPECT_EQ(payload["X-Access-Key"], kRedacted);
  EXPECT_EQ(payload["db.password"], kRedacted);
  EXPECT_EQ(payload["privateKey"], "p");
  EXPECT_EQ(payload["private-key"], kRedacted);
  EXPECT_EQ(payload["client_credentials"], kRedacted);
  EXPECT_EQ(payload["tool"], "exec");
}

// The spec's example and acceptance case 44.
TEST(RedactTest, TheSpecsExamples) {
  const std::string out = RedactString("authorization=Bearer dont-log-this");
  EXPECT_EQ(out.find("dont-log-this"), std::string::npos) << out;
  EXPECT_NE(out.find("[REDACTED]"), std::string::npos);

  json error = {{"api_key", "dont-log-this"},
                {"authorization", "Bearer dont-log-this"},
                {"nested", {{"token", "dont-log-this"}}},
                {"reason", "request failed: token=dont-log-this"}};
  Redact(error);
  EXPECT_EQ(error["api_key"], kRedacted);
  EXPECT_EQ(error["authorization"], kRedacted);
  EXPECT_EQ(error["nested"]["token"], kRedacted);
  EXPECT_EQ(error["reason"], "request failed: token=[REDACTED]");
  EXPECT_EQ(error.dump().find("dont-log-this"), std::string::npos);
}

TEST(RedactTest, StringPatterns) {
  EXPECT_EQ(RedactString("curl -H 'Authorization: bearer abc.def-ghi=='"),
            "curl -H 'Authorization: [REDACTED] [REDACTED]'");
  EXPECT_EQ(RedactString("use Bearer eyJhbGciOi.x_y~z+/ now"),
            "use Bearer [REDACTED] now");
  EXPECT_EQ(RedactString("API-KEY = abc123, next"),
            "API-KEY = [REDACTED], next");
  EXPECT_EQ(RedactString("password:hunter2;user=bob"),
            "password:[REDACTED];user=bob");
  EXPECT_EQ(RedactString("gh ghp_0123456789abcdefghijAB done"),
            "gh [REDACTED] done");
  EXPECT_EQ(RedactString("github_pat_11ABCDEFG0123456789_abcdef"),
            "[REDACTED]");
  EXPECT_EQ(RedactString("key sk-abcdefghijklmnop1234"), "key [REDACTED]");
  EXPECT_EQ(RedactString("AKIAIOSFODNN7EXAMPLE in env"), "[REDACTED] in env");
  EXPECT_EQ(RedactString("slack xoxb-1234567890-abc"), "slack [REDACTED]");
  // Too short to be those tokens, and ordinary words: unchanged.
  EXPECT_EQ(RedactString("ghp_short sk-123 tokens are counted"),
            "ghp_short sk-123 tokens are counted");
}

TEST(RedactTest, SecretsNestedInListsMapsAndJsonStrings) {
  json payload = {
      {"result",
       {{"stdout", "line1\nexport GITHUB_TOKEN=ghp_0123456789abcdefghijXY\n"},
        {"items", {"ok", {{"secret_value", 1}}, {"sk-abcdefghijklmnopqrst"}}}}},
      {"error", R"({"message":"denied","headers":{"Authorization":"x"}})"},
      {"list_doc", R"([{"password":"p4ss"},"Bearer abcdef"])"}};
  Redact(payload);
  EXPECT_EQ(payload["result"]["stdout"],
            "line1\nexport GITHUB_TOKEN=[REDACTED]\n");
  EXPECT_EQ(payload["result"]["items"][1]["secret_value"], kRedacted);
  EXPECT_EQ(payload["result"]["items"][2][0], kRedacted);
  const json error = json::parse(payload["error"].get<std::string>());
  EXPECT_EQ(error["headers"]["Authorization"], kRedacted);
  EXPECT_EQ(error["message"], "denied");
  const json list = json::parse(payload["list_doc"].get<std::string>());
  EXPECT_EQ(list[0]["password"], kRedacted);
  EXPECT_EQ(list[1], "Bearer [REDACTED]");
  EXPECT_EQ(payload.dump().find("p4ss"), std::string::npos);
}

// Found by redact_fuzz: a token as a key (here inside a JSON string, as a
// tool's output carries it) survived, since only values were redacted.
TEST(RedactTest, KeysAreRedactedWithoutLosingMembers) {
  json payload = {
      {"sk-abcdefghijklmnopqrst", 1},
      {"sk-zyxwvutsrqponmlkjihg", 2},
      {"[REDACTED]", 3},
      {"token: hunter2", "x"},
      {R"({"password":"p4ss"})", 4},
      {"plain", 5},
      {"api6",
       R"({"sbcd AKIAIOSFODNN7EXAMPLE; sk-hghijnAAACAAACAAAAAe3":"z"})"}};
  Redact(payload);
  const std::string text = payload.dump();
  for (const char* secret :
       {"abcdefghijklmnopqrst", "zyxwvutsrqponmlkjihg", "hunter2", "p4ss",
        "IOSFODNN7EXAMPLE", "hghijnAAACAAACAAAAAe3"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << ": " << text;
  }
  // Seven members in, seven out: a redacted key that meets another gets a
  // suffix instead of overwriting it.
  EXPECT_EQ(payload.size(), 7u) << text;
  EXPECT_EQ(payload["[REDACTED]"], 3) << text;
  EXPECT_EQ(payload["[REDACTED]#2"], 1) << text;
  EXPECT_EQ(payload["[REDACTED]#3"], 2) << text;
  EXPECT_EQ(payload["token: [REDACTED]"], kRedacted) << text;
  // The key names a password: its value goes too, as under any secret key.
  EXPECT_EQ(payload[R"({"password":"[REDACTED]"})"], kRedacted) << text;
  EXPECT_EQ(payload["plain"], 5);
}

TEST(RedactTest, DeepNestingIsCutNotWalkedForever) {
  json deep = "token=abc";
  for (int i = 0; i < 200; ++i) deep = json::array({deep});
  Redact(deep);
  EXPECT_EQ(deep.dump().find("abc"), std::string::npos);
  EXPECT_NE(deep.dump().find(kRedacted), std::string::npos);
}

TEST(RedactTest, HostileInputStaysLinear) {
  // A backtracking engine would take ages on this; RE2 does not.
  std::string hostile = "Bearer ";
  hostile += std::string(1 << 20, 'a');
  hostile += "!token=";
  hostile += std::string(1 << 20, ' ');
  const std::string out = RedactString(hostile);
  EXPECT_EQ(out.rfind("Bearer [REDACTED]!", 0), 0u);
}

}  // namespace
}  // namespace jcs::telemetry
