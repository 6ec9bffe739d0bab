// The Prometheus text exposition format (version 0.0.4), written by hand.
//
// Why not Debian's prometheus-cpp (prometheus-cpp-dev 1.0.1): it ships only
// shared libraries (no libprometheus-cpp-core.a), and jcs is one fully
// static executable (tools/BUILD); its -dev package also pulls in civetweb
// and libcurl headers for the pull/push parts jcs does not use. What jcs
// needs is the text format of counters, gauges and histograms, which fits in
// this file.
//
// Not thread-safe: a scrape is built and rendered on one thread.
#ifndef JCS_TELEMETRY_METRICS_EXPOSITION_H_
#define JCS_TELEMETRY_METRICS_EXPOSITION_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jcs::telemetry::metrics {

// Label pairs in the order they are printed.
using Labels = std::vector<std::pair<std::string, std::string>>;

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool ValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved).
bool ValidLabelName(std::string_view name);
// A label value with \, " and newline escaped (any other byte, UTF-8
// included, is kept as is).
std::string EscapeLabelValue(std::string_view value);
// HELP text with \ and newline escaped.
std::string EscapeHelp(std::string_view help);
// A sample value: integers exactly (up to 2^53), others shortest round-trip,
// +Inf, -Inf, NaN.
std::string FormatValue(double value);

// Cumulative-bucket histogram with fixed upper bounds.
class Histogram {
 public:
  // `bounds`: finite, strictly increasing (anything else is dropped: the
  // bounds are constants in jcs's code). +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket, not cumulative; the last entry is (last bound, +Inf).
  const std::vector<uint64_t>& bucket_counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

// One scrape: metric families, each with its HELP and TYPE once, then its
// samples, families in the order first added. A sample whose family was
// added with another type, or whose name or label names are invalid, is
// left out and counted (rejected()): names come from jcs's code, so a
// rejection is a bug a test catches, never a malformed scrape.
class Exposition {
 public:
  void Counter(std::string_view name, std::string_view help,
               const Labels& labels, double value);
  void Gauge(std::string_view name, std::string_view help, const Labels& labels,
             double value);
  void AddHistogram(std::string_view name, std::string_view help,
                    const Labels& labels, const Histogram& histogram);
  // Declares a family with no samples yet (its HELP and TYPE are printed:
  // a scraper sees the metric exists before it first moves).
  void Declare(std::string_view name, std::string_view type,
               std::string_view help);

  std::string Render() const;
  size_t rejected() const { return rejected_; }

 private:
  struct Family {
    std::string type;
    std::string help;
    std::vector<std::string> lines;
  };
  Family* FamilyFor(std::string_view name, std::string_view type,
                    std::string_view help);
  // `name{labels}` with `extra` appended to the labels; false when a label
  // name is invalid.
  bool Series(std::string_view name, const Labels& labels,
              const std::pair<std::string, std::string>* extra,
              std::string* out);

  std::vector<std::string> order_;
  std::map<std::string, Family, std::less<>> families_;
  size_t rejected_ = 0;
};

// The Content-Type of this format.
inline constexpr char kContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace jcs::telemetry::metrics

#endif  // JCS_TELEMETRY_METRICS_EXPOSITION_H_
