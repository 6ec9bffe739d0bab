#include "tools/bench_options.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jcs::tools {
namespace {

struct IntOption {
  const char* flag;
  int64_t BenchOptions::*field;
  int64_t max;
  const char* help;
};

// The upper bounds keep one run on one machine: a thread and a connection
// per slot in flight, the daemon's 10-minute limit on one call.
const IntOption kIntOptions[] = {
    {"--projects", &BenchOptions::projects, 100,
     "projects to start, each on a fresh temporary root"},
    {"--conversations", &BenchOptions::conversations, 100,
     "conversations per project"},
    {"--events", &BenchOptions::events, 1000,
     "user messages per conversation, each making one jailed exec of "
     "/bin/true through the conversation runtime"},
    {"--concurrency", &BenchOptions::concurrency, 256,
     "events in flight at most (one conversation's events go one after "
     "another)"},
    {"--timeout-ms", &BenchOptions::timeout_ms, 600000,
     "limit of one event (message sent to conversation settled), ms"},
};

absl::Status Invalid(const std::string& key, const std::string& reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid_benchmark_opt: ", key, ": ", reason));
}

}  // namespace

const CommandSpec& BenchSpec() {
  static const auto* spec = [] {
    auto* s = new CommandSpec{
        "bench",
        "",
        "The load harness: drives the daemon (a private one on a temporary "
        "socket and state directory unless --socket is given) with projects "
        "x conversations x events user messages, each of which makes the "
        "deterministic model adapter request one jailed exec of /bin/true, "
        "checks every conversation's timeline, and prints the event latency "
        "(avg, p50, p95, p99), the throughput, the daemon's peak RSS and "
        "the p50 of one jailed /bin/true tool call. Exits 1 on any "
        "failure.",
        {}};
    const BenchOptions defaults;
    for (const IntOption& o : kIntOptions) {
      s->flags.push_back({o.flag, "N", absl::StrCat(defaults.*(o.field)),
                          absl::StrCat(o.help, " (1..", o.max, ")")});
    }
    s->flags.push_back(
        {"--socket", "PATH", "a private daemon",
         "drive the daemon listening on PATH instead (its peak RSS is "
         "that of its whole life)"});
    s->flags.push_back({"--check", "", "off",
                        "also fail when p95 > 3x the /bin/true p50 or the "
                        "daemon's peak RSS >= 64 MiB"});
    s->flags.push_back({"--quiet", "", "on",
                        "the report only; a private daemon logs warnings "
                        "and errors only"});
    s->flags.push_back({"--verbose", "", "off",
                        "a line per event and phase; a private daemon logs "
                        "at info"});
    return s;
  }();
  return *spec;
}

absl::StatusOr<BenchOptions> ParseBenchOptions(
    const std::vector<std::string>& args, bool* help) {
  *help = false;
  absl::StatusOr<ParsedFlags> parsed = ParseCommandFlags(BenchSpec(), args);
  if (!parsed.ok()) {
    // The parser's message names the flag ("unknown flag '--x'",
    // "--projects: missing value"); the key goes first, as for a bad value.
    const std::string message(parsed.status().message());
    for (const std::string& arg : args) {
      if (arg.rfind("--", 0) != 0 || arg == "--") continue;
      const std::string key = arg.substr(0, arg.find('='));
      if (message.find(absl::StrCat("'", key, "'")) != std::string::npos ||
          message.rfind(absl::StrCat(key, ":"), 0) == 0 ||
          message.rfind(absl::StrCat(key, " "), 0) == 0) {
        std::vector<std::string> known;
        for (const FlagSpec& f : BenchSpec().flags) known.push_back(f.name);
        return Invalid(key,
                       message.find("unknown flag") != std::string::npos
                           ? absl::StrCat("unknown option (expected one of ",
                                          absl::StrJoin(known, ", "), ")")
                           : message);
      }
    }
    return Invalid("(command line)", message);
  }
  BenchOptions options;
  if (parsed->help) {
    *help = true;
    return options;
  }
  if (!parsed->positional.empty()) {
    return Invalid(parsed->positional.front(),
                   "unexpected argument (the options are flags)");
  }
  for (const IntOption& o : kIntOptions) {
    if (!parsed->Has(o.flag)) continue;
    const std::string text = parsed->Get(o.flag);
    int64_t value = 0;
    if (!absl::SimpleAtoi(text, &value)) {
      return Invalid(o.flag, absl::StrCat("expected a positive integer, got '",
                                          text, "'"));
    }
    if (value <= 0) {
      return Invalid(o.flag,
                     absl::StrCat("expected a positive integer, got ", value));
    }
    if (value > o.max) {
      return Invalid(o.flag,
                     absl::StrCat(value, " is out of range 1..", o.max));
    }
    options.*(o.field) = value;
  }
  if (parsed->Has("--quiet") && parsed->Has("--verbose")) {
    return Invalid("--verbose", "--quiet and --verbose exclude each other");
  }
  options.verbose = parsed->Has("--verbose");
  options.check = parsed->Has("--check");
  if (parsed->Has("--socket")) {
    options.socket = parsed->Get("--socket");
    if (options.socket.empty()) {
      return Invalid("--socket", "expected a socket path, got ''");
    }
  }
  return options;
}

double NearestRank(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace jcs::tools
