#include "tools/bench_options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<BenchOptions> Parse(const std::vector<std::string>& args) {
  bool help = false;
  return ParseBenchOptions(args, &help);
}

std::string Error(const std::vector<std::string>& args) {
  absl::StatusOr<BenchOptions> o = Parse(args);
  EXPECT_FALSE(o.ok()) << "accepted: " << testing::PrintToString(args);
  return o.ok() ? "" : std::string(o.status().message());
}

TEST(BenchOptionsTest, DefaultsAreTheOriginalHarness) {
  absl::StatusOr<BenchOptions> o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->projects, 3);
  EXPECT_EQ(o->conversations, 4);
  EXPECT_EQ(o->events, 3);
  EXPECT_EQ(o->concurrency, 12);
  EXPECT_EQ(o->timeout_ms, 15000);
  EXPECT_EQ(o->socket, "");
  EXPECT_FALSE(o->verbose);
  EXPECT_FALSE(o->check);
}

TEST(BenchOptionsTest, ParsesEveryFlag) {
  absl::StatusOr<BenchOptions> o =
      Parse({"--projects", "5", "--conversations=8", "--events", "4",
             "--concurrency", "24", "--timeout-ms", "2000", "--socket",
             "/run/x.sock", "--verbose", "--check"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->projects, 5);
  EXPECT_EQ(o->conversations, 8);
  EXPECT_EQ(o->events, 4);
  EXPECT_EQ(o->concurrency, 24);
  EXPECT_EQ(o->timeout_ms, 2000);
  EXPECT_EQ(o->socket, "/run/x.sock");
  EXPECT_TRUE(o->verbose);
  EXPECT_TRUE(o->check);
}

TEST(BenchOptionsTest, BadOptionsNameTheKey) {
  EXPECT_THAT(Error({"--projects", "0"}),
              StartsWith("invalid_benchmark_opt: --projects: expected a "
                         "positive integer, got 0"));
  EXPECT_THAT(Error({"--events=-3"}),
              StartsWith("invalid_benchmark_opt: --events: expected a "
                         "positive integer, got -3"));
  EXPECT_THAT(Error({"--concurrency", "many"}),
              StartsWith("invalid_benchmark_opt: --concurrency: expected a "
                         "positive integer, got 'many'"));
  EXPECT_THAT(Error({"--timeout-ms", "1.5"}),
              StartsWith("invalid_benchmark_opt: --timeout-ms:"));
  EXPECT_EQ(Error({"--conversations", "101"}),
            "invalid_benchmark_opt: --conversations: 101 is out of range "
            "1..100");
  EXPECT_EQ(Error({"--timeout-ms", "600001"}),
            "invalid_benchmark_opt: --timeout-ms: 600001 is out of range "
            "1..600000");
  EXPECT_THAT(Error({"--bogus", "1"}),
              StartsWith("invalid_benchmark_opt: --bogus: unknown option "
                         "(expected one of --projects,"));
  EXPECT_THAT(Error({"--projects=2", "--frobs=1"}),
              StartsWith("invalid_benchmark_opt: --frobs: unknown option"));
  EXPECT_THAT(Error({"--projects"}),
              StartsWith("invalid_benchmark_opt: --projects: --projects: "
                         "missing value"));
  EXPECT_THAT(Error({"--check=yes"}),
              StartsWith("invalid_benchmark_opt: --check:"));
  EXPECT_THAT(Error({"extra"}),
              StartsWith("invalid_benchmark_opt: extra: unexpected"));
  EXPECT_THAT(Error({"--quiet", "--verbose"}),
              HasSubstr("--quiet and --verbose exclude each other"));
  EXPECT_THAT(Error({"--socket="}),
              StartsWith("invalid_benchmark_opt: --socket:"));
}

TEST(BenchOptionsTest, HelpIsNotAnError) {
  bool help = false;
  absl::StatusOr<BenchOptions> o = ParseBenchOptions({"--help"}, &help);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(help);
  const std::string usage = FormatUsage(BenchSpec());
  for (const char* flag :
       {"--projects", "--conversations", "--events", "--concurrency",
        "--timeout-ms", "--socket", "--check", "--quiet", "--verbose"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
}

TEST(BenchOptionsTest, NearestRankPercentiles) {
  EXPECT_EQ(NearestRank({}, 50), 0);
  const std::vector<double> one = {7};
  EXPECT_EQ(NearestRank(one, 50), 7);
  EXPECT_EQ(NearestRank(one, 99), 7);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_EQ(NearestRank(hundred, 50), 50);
  EXPECT_EQ(NearestRank(hundred, 95), 95);
  EXPECT_EQ(NearestRank(hundred, 99), 99);
  EXPECT_EQ(NearestRank(hundred, 100), 100);
  // ceil(0.95 * 8) - 1 = 7: the largest of eight.
  const std::vector<double> eight = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(NearestRank(eight, 95), 8);
  EXPECT_EQ(NearestRank(eight, 50), 4);
}

}  // namespace
}  // namespace jcs::tools
