#include "telemetry/metrics/exposition.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "telemetry/metrics/exposition_check.h"

namespace jcs::telemetry::metrics {
namespace {

using ::testing::HasSubstr;

TEST(ExpositionTest, CounterGaugeAndHistogramRenderAsPrometheusParsesThem) {
  Exposition exp;
  exp.Counter("jcs_events_total", "Events.",
              {{"project", "p1"}, {"event", "tool.completed"}}, 3);
  exp.Counter("jcs_events_total", "Events.",
              {{"project", "p2"}, {"event", "tool.failed"}}, 1);
  exp.Gauge("jcs_active_tool_calls", "Running calls.", {}, 2);
  Histogram h({0.01, 0.1, 1});
  h.Observe(0.005);
  h.Observe(0.1);  // le is inclusive
  h.Observe(5);
  exp.AddHistogram("jcs_tool_call_duration_seconds", "Latency.",
                   {{"tool", "exec"}}, h);
  const std::string text = exp.Render();
  EXPECT_EQ(exp.rejected(), 0u);
  EXPECT_THAT(
      text,
      HasSubstr("# TYPE jcs_events_total counter\n"
                "jcs_events_total{project=\"p1\",event=\"tool.completed\"} 3\n"
                "jcs_events_total{project=\"p2\",event=\"tool.failed\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "jcs_tool_call_duration_seconds_bucket{tool=\"exec\",le=\"0.01\"} 1\n"
          "jcs_tool_call_duration_seconds_bucket{tool=\"exec\",le=\"0.1\"} 2\n"
          "jcs_tool_call_duration_seconds_bucket{tool=\"exec\",le=\"1\"} 2\n"
          "jcs_tool_call_duration_seconds_bucket{tool=\"exec\",le=\"+Inf\"} 3\n"
          "jcs_tool_call_duration_seconds_sum{tool=\"exec\"} 5.105\n"
          "jcs_tool_call_duration_seconds_count{tool=\"exec\"} 3\n"));
  absl::StatusOr<std::map<std::string, double>> parsed = CheckExposition(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  EXPECT_EQ(parsed->at("jcs_active_tool_calls"), 2);
  EXPECT_EQ(parsed->at("jcs_tool_call_duration_seconds_count{tool=\"exec\"}"),
            3);
}

TEST(ExpositionTest, HostileLabelValuesAreEscapedAndStillParse) {
  Exposition exp;
  // A tool or project name is data: quotes, backslashes, newlines and a fake
  // sample must stay inside the label value.
  const std::string hostile = "a\"} 99\nevil_total 1\\";
  exp.Counter("jcs_events_total", "Events.", {{"project", hostile}}, 1);
  const std::string text = exp.Render();
  absl::StatusOr<std::map<std::string, double>> parsed = CheckExposition(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ(parsed->begin()->first,
            "jcs_events_total{project=\"" + hostile + "\"}");
  EXPECT_EQ(text.find("\nevil_total"), std::string::npos);
}

TEST(ExpositionTest, InvalidNamesAndTypeClashesAreLeftOutAndCounted) {
  Exposition exp;
  exp.Counter("bad name_total", "x", {}, 1);
  exp.Counter("ok_total", "x", {{"bad-label", "v"}}, 1);
  exp.Counter("ok_total", "x", {{"__reserved", "v"}}, 1);
  exp.Gauge("ok_total", "x", {}, 1);  // declared a counter above
  Histogram h({1});
  exp.AddHistogram("lat_seconds", "x", {{"le", "1"}}, h);
  EXPECT_EQ(exp.rejected(), 5u);
  absl::StatusOr<std::map<std::string, double>> parsed =
      CheckExposition(exp.Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->empty());
}

TEST(ExpositionTest, DeclaredFamilyWithoutSamplesRendersHelpAndType) {
  Exposition exp;
  exp.Declare("jcs_alerts_dropped_total", "counter", "Dropped.\nsecond line");
  EXPECT_EQ(exp.Render(),
            "# HELP jcs_alerts_dropped_total Dropped.\\nsecond line\n"
            "# TYPE jcs_alerts_dropped_total counter\n");
}

TEST(ExpositionTest, FormatValue) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(12345678901), "12345678901");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
}

TEST(ExpositionTest, HistogramBoundsMustIncrease) {
  Histogram h({1, 0.5, NAN, 2, 2, INFINITY});
  EXPECT_EQ(h.bounds(), (std::vector<double>{1, 2}));
  EXPECT_EQ(h.bucket_counts().size(), 3u);
}

// The checker itself: each rule rejects what it is for.
TEST(ExpositionCheckTest, RejectsMalformedScrapes) {
  const std::pair<const char*, const char*> cases[] = {
      {"x_total 1\n", "before its TYPE"},
      {"# TYPE x counter\n", "should end in _total"},
      {"# TYPE x_total counter\nx_total 1", "no newline"},
      {"# TYPE x_total counter\nx_total -1\n", "negative"},
      {"# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"1\"} 2\n",
       "repeated"},
      {"# TYPE x_total counter\nx_total{a=\"1} 1\n", "unterminated"},
      {"# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n", "invalid escape"},
      {"# TYPE x_total counter\nx_total{a=\"1\",a=\"2\"} 1\n", "repeated"},
      {"# TYPE x_total counter\nx_total one\n", "invalid value"},
      {"# TYPE x_total counter\n# TYPE y gauge\ny 1\nx_total 1\ny 2\n",
       "not contiguous"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} "
       "1\nh_sum 1\nh_count 1\n",
       "decreases"},
      {"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_sum "
       "1\nh_count 1\n",
       "increasing le"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
       "no +Inf"},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
       "_count 1 != +Inf"},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
       "missing _sum"},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<std::map<std::string, double>> parsed =
        CheckExposition(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_THAT(parsed.status().message(), HasSubstr(expected)) << text;
  }
}

}  // namespace
}  // namespace jcs::telemetry::metrics
