#include "runtime/policy/sensitive_scan.h"

#include <chrono>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace jcs::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using json = nlohmann::json;

std::vector<std::string> Kinds(const json& doc) {
  std::vector<std::string> out;
  for (const auto& f : ScanForSensitiveArtifacts(doc).findings) {
    out.push_back(f.kind);
  }
  return out;
}

TEST(SensitiveScanTest, CleanResultHasNoFindings) {
  const SensitiveScanResult r = ScanForSensitiveArtifacts(
      json{{"stdout", "hello"}, {"exit_status", 0}, {"items", {1, "x"}}});
  EXPECT_THAT(r.findings, IsEmpty());
  EXPECT_EQ(r.finding_count, 0u);
  EXPECT_THAT(RiskFlags(r), IsEmpty());
  EXPECT_FALSE(r.truncated);
}

TEST(SensitiveScanTest, EachPatternPositive) {
  EXPECT_THAT(Kinds(json{{"out", "Authorization: Bearer abc.DEF-123_~+/=="}}),
              ElementsAre("bearer_token"));
  EXPECT_THAT(Kinds(json{{"out", "key sk-ABCDEFGHIJ0123456789 end"}}),
              ElementsAre("openai_key"));
  EXPECT_THAT(Kinds(json{{"out", "ghp_abcdefghijABCDEFGHIJ0123"}}),
              ElementsAre("github_token"));
  EXPECT_THAT(Kinds(json{{"out", "github_pat_11ABCDEFG_0123456789abcdef"}}),
              ElementsAre("github_pat"));
  EXPECT_THAT(Kinds(json{{"out", "id=AKIAIOSFODNN7EXAMPLE;"}}),
              ElementsAre("aws_access_key"));
  EXPECT_THAT(Kinds(json{{"out", "xoxb-1234567890-abcdef"}}),
              ElementsAre("slack_token"));
}

TEST(SensitiveScanTest, BearerIsCaseInsensitive) {
  EXPECT_THAT(Kinds(json{{"out", "bearer abc123"}}),
              ElementsAre("bearer_token"));
  EXPECT_THAT(Kinds(json{{"out", "BEARER\tabc123"}}),
              ElementsAre("bearer_token"));
}

TEST(SensitiveScanTest, NearMissesAreNotFlagged) {
  EXPECT_THAT(Kinds(json{{"out", "Bearer"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "xBearer abc"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "sk-short"}}), IsEmpty());
  // 16 characters after "sk-" match, 15 do not.
  EXPECT_THAT(Kinds(json{{"out", "sk-ABCDEFGHIJ012345"}}),
              ElementsAre("openai_key"));
  EXPECT_THAT(Kinds(json{{"out", "sk-ABCDEFGHIJ01234"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "ghp_abcdefghij0123456"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "github_pat_short"}}), IsEmpty());
  // AKIA + 15 chars, and AKIA + 17 chars (no word boundary after 16).
  EXPECT_THAT(Kinds(json{{"out", "AKIAIOSFODNN7EXAMPL"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "AKIAIOSFODNN7EXAMPLEX"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "akiaIOSFODNN7EXAMPLE"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "xoxz-1234567890"}}), IsEmpty());
  EXPECT_THAT(Kinds(json{{"out", "xoxb-123"}}), IsEmpty());
}

TEST(SensitiveScanTest, FirstMatchingPatternDecides) {
  // Both bearer and openai would match; bearer comes first in the list.
  const SensitiveScanResult r = ScanForSensitiveArtifacts(
      json{{"out", "sk-ABCDEFGHIJ0123456789 and Bearer xyz"}});
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0], (SensitiveFinding{"bearer_token", "out"}));
}

TEST(SensitiveScanTest, KeyNormalization) {
  const SensitiveScanResult r =
      ScanForSensitiveArtifacts(json{{"API-Key", "v"},
                                     {"x_access_key_id", "v"},
                                     {"Authorization", "v"},
                                     {"my  Private--Key", "v"},
                                     {"passwordHash", "v"},
                                     {"apikey", 1},
                                     {"name", "v"},
                                     {"tok-en", "v"}});
  std::vector<std::string> paths;
  for (const auto& f : r.findings) {
    EXPECT_EQ(f.kind, "sensitive_key");
    paths.push_back(f.path);
  }
  // nlohmann::json orders object members by key.
  EXPECT_THAT(paths, ElementsAre("API-Key", "Authorization", "apikey",
                                 "my  Private--Key", "passwordHash",
                                 "x_access_key_id"));
}

TEST(SensitiveScanTest, BlankAndNullValuesAreNotFlagged) {
  EXPECT_THAT(
      Kinds(json{{"token", nullptr}, {"secret", ""}, {"password", " \t\n"}}),
      IsEmpty());
  EXPECT_THAT(Kinds(json{{"token", false}}), ElementsAre("sensitive_key"));
  EXPECT_THAT(Kinds(json{{"token", json::object()}}),
              ElementsAre("sensitive_key"));
}

TEST(SensitiveScanTest, NestedPathsAndListIndexes) {
  const json doc = {
      {"a", {{"b", {{"secret_value", "s"}}}}},
      {"items", {json::object(), 1, {{"token", "t"}}}},
      {"log", {"ok", "ok", "Bearer abcdef"}},
  };
  const SensitiveScanResult r = ScanForSensitiveArtifacts(doc);
  EXPECT_THAT(r.findings,
              ElementsAre(SensitiveFinding{"sensitive_key", "a.b.secret_value"},
                          SensitiveFinding{"sensitive_key", "items[2].token"},
                          SensitiveFinding{"bearer_token", "log[2]"}));
  EXPECT_THAT(RiskFlags(r), ElementsAre("sensitive_artifact_detected"));
  EXPECT_THAT(
      ScanForSensitiveArtifacts(json::array({{{"token", "t"}}})).findings,
      ElementsAre(SensitiveFinding{"sensitive_key", "[0].token"}));
  EXPECT_THAT(ScanForSensitiveArtifacts(json("Bearer x")).findings,
              ElementsAre(SensitiveFinding{"bearer_token", ""}));
}

TEST(SensitiveScanTest, SensitiveKeyValueIsAlsoScanned) {
  const SensitiveScanResult r = ScanForSensitiveArtifacts(
      json{{"auth", {{"token", "ghp_abcdefghijABCDEFGHIJ0123"}}}});
  EXPECT_THAT(r.findings,
              ElementsAre(SensitiveFinding{"sensitive_key", "auth.token"},
                          SensitiveFinding{"github_token", "auth.token"}));
  EXPECT_THAT(r.finding_kinds, ElementsAre("github_token", "sensitive_key"));
}

TEST(SensitiveScanTest, DeduplicatesByKindAndPath) {
  // Keys "a.b" (one member with a dot) and a nested a -> b give the same path.
  const json doc = {{"a.token", "x"}, {"a", {{"token", "y"}}}};
  const SensitiveScanResult r = ScanForSensitiveArtifacts(doc);
  EXPECT_THAT(r.findings,
              ElementsAre(SensitiveFinding{"sensitive_key", "a.token"}));
  EXPECT_EQ(r.finding_count, 1u);
}

TEST(SensitiveScanTest, CapsAt25AndReportsFirst10Paths) {
  json items = json::array();
  for (int i = 0; i < 40; ++i) items.push_back(json{{"token", "t"}});
  const SensitiveScanResult r =
      ScanForSensitiveArtifacts(json{{"items", items}});
  ASSERT_EQ(r.findings.size(), kMaxSensitiveFindings);
  EXPECT_EQ(r.finding_count, 25u);
  EXPECT_EQ(r.findings.front().path, "items[0].token");
  EXPECT_EQ(r.findings.back().path, "items[24].token");
  ASSERT_EQ(r.finding_paths.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(r.finding_paths[i], "items[" + std::to_string(i) + "].token");
  }
  EXPECT_THAT(r.finding_kinds, ElementsAre("sensitive_key"));

  const json fields = SensitiveScanEventFields(r);
  EXPECT_EQ(fields["finding_count"], 25);
  EXPECT_EQ(fields["finding_kinds"], json::array({"sensitive_key"}));
  EXPECT_EQ(fields["finding_paths"].size(), 10u);
  EXPECT_EQ(fields["finding_paths"][9], "items[9].token");
}

json Nest(int levels, json leaf) {
  json doc = std::move(leaf);
  for (int i = 0; i < levels; ++i) doc = json::array({std::move(doc)});
  return doc;
}

TEST(SensitiveScanTest, DepthBound) {
  // The leaf string sits at depth kMaxScanDepth: scanned.
  SensitiveScanResult r =
      ScanForSensitiveArtifacts(Nest(kMaxScanDepth, "Bearer x"));
  EXPECT_EQ(r.finding_count, 1u);
  EXPECT_FALSE(r.truncated);
  // One level deeper: not visited.
  r = ScanForSensitiveArtifacts(Nest(kMaxScanDepth + 1, "Bearer x"));
  EXPECT_EQ(r.finding_count, 0u);
  EXPECT_TRUE(r.truncated);
  // Very deep documents are fine (no unbounded recursion).
  r = ScanForSensitiveArtifacts(Nest(5000, "Bearer x"));
  EXPECT_EQ(r.finding_count, 0u);
  EXPECT_TRUE(r.truncated);
}

TEST(SensitiveScanTest, HugeStringIsBoundedInTime) {
  std::string big(5 << 20, 'a');
  big.replace(10, 8, " Bearer ");
  const auto start = std::chrono::steady_clock::now();
  const SensitiveScanResult r = ScanForSensitiveArtifacts(json{{"out", big}});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.finding_count, 1u);
  EXPECT_TRUE(r.truncated);
  EXPECT_LT(elapsed, std::chrono::seconds(5));

  // A token beyond the per-string cap is not seen.
  std::string tail(5 << 20, ' ');
  tail.append("Bearer abc");
  EXPECT_THAT(Kinds(json{{"out", tail}}), IsEmpty());
}

TEST(SensitiveScanTest, TotalByteBudget) {
  json list = json::array();
  const std::string filler(kMaxScannedBytesPerString, ' ');
  for (std::size_t i = 0; i < kMaxScannedBytesTotal / filler.size(); ++i) {
    list.push_back(filler);
  }
  list.push_back("Bearer abc");  // Budget exhausted: skipped.
  const SensitiveScanResult r = ScanForSensitiveArtifacts(list);
  EXPECT_EQ(r.finding_count, 0u);
  EXPECT_TRUE(r.truncated);
}

}  // namespace
}  // namespace jcs::runtime
