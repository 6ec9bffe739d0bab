// A strict reader of the Prometheus text format (0.0.4), for tests: the
// daemon's scrape must parse the way Prometheus parses it. It checks the
// grammar (HELP/TYPE lines, metric and label names, label escaping, sample
// values), that a family's TYPE comes before its samples and its samples are
// contiguous, that no series repeats, that counters end in _total (as
// `promtool check metrics` asks), and for histograms that each series has
// increasing `le` buckets with non-decreasing cumulative counts, a +Inf
// bucket equal to its _count, and a _sum.
#ifndef JCS_TELEMETRY_METRICS_EXPOSITION_CHECK_H_
#define JCS_TELEMETRY_METRICS_EXPOSITION_CHECK_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace jcs::telemetry::metrics {

// Every sample of a valid scrape, keyed by its series exactly as written
// after label parsing: `name{a="x",b="y"}` with labels in their written
// order and values unescaped (`name` alone without labels). Errors name the
// line and what was expected.
absl::StatusOr<std::map<std::string, double>> CheckExposition(
    std::string_view text);

}  // namespace jcs::telemetry::metrics

#endif  // JCS_TELEMETRY_METRICS_EXPOSITION_CHECK_H_
