// `jcs bench`'s command line: the flag table, the validated options and the
// figures' arithmetic (nearest-rank percentiles), apart from the run so that
// they are unit-tested without a daemon.
//
// Every bad option is one error, "invalid_benchmark_opt: KEY: REASON", KEY
// being the flag as typed ("--projects", or the unknown "--bogus"): an
// unknown key, a missing or non-integer value, a number that is not positive,
// or one past the allowed range (the range is in the message).
#ifndef JCS_TOOLS_BENCH_OPTIONS_H_
#define JCS_TOOLS_BENCH_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/flags.h"

namespace jcs::tools {

struct BenchOptions {
  // The original harness's defaults.
  int64_t projects = 3;
  int64_t conversations = 4;   // per project
  int64_t events = 3;          // per conversation
  int64_t concurrency = 12;    // events in flight at most
  int64_t timeout_ms = 15000;  // one event's limit
  std::string socket;          // empty: a private daemon of the run's own
  bool verbose = false;
  // Compare the figures with the targets (p95 <= 3x the /bin/true p50, the
  // daemon's peak RSS < 64 MiB); off: figures only.
  bool check = false;
};

const CommandSpec& BenchSpec();

// A status whose message starts "invalid_benchmark_opt: " on bad options.
// `help` is set (and the options left at their defaults) for -h/--help.
absl::StatusOr<BenchOptions> ParseBenchOptions(
    const std::vector<std::string>& args, bool* help);

// Nearest rank: the value at index ceil(p/100 * n) - 1 of `sorted`
// (ascending); 0 for an empty list.
double NearestRank(const std::vector<double>& sorted, double p);

}  // namespace jcs::tools

#endif  // JCS_TOOLS_BENCH_OPTIONS_H_
