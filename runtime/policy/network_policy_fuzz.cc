// Fuzzes the network target scanner and egress decision of network-capable
// tool calls. The input is the call's JSON arguments; the policy allows egress
// to example.test (and its subdomains) over http/https only. Invariants beyond
// "no crash": targets are trimmed, non-empty and unique; an allowed call has
// no truncated scan, and each of its targets has an allowed scheme (when it
// names one) and a host that is example.test or ends in ".example.test".
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "runtime/policy/network_policy.h"
#include "runtime/project/runtime_options.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::runtime::ValidatedOptions;

const ValidatedOptions& Options() {
  static const ValidatedOptions* options = [] {
    auto* o = new ValidatedOptions;
    o->network_egress_policy = jcs::runtime::EgressPolicy::kAllow;
    o->network_allowlist = {"Example.TEST", " "};
    o->network_allowed_schemes = {"http", " HTTPS "};
    return o;
  }();
  return *options;
}

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json args = nlohmann::json::parse(data, data + size, nullptr,
                                                    /*allow_exceptions=*/false);
  if (args.is_discarded()) return 0;

  const jcs::runtime::NetworkTargets scan =
      jcs::runtime::ScanNetworkTargets(args);
  const std::set<std::string> unique(scan.targets.begin(), scan.targets.end());
  FUZZ_CHECK(unique.size() == scan.targets.size());
  for (const std::string& t : scan.targets) {
    FUZZ_CHECK(!t.empty() && !IsBlank(t.front()) && !IsBlank(t.back()));
  }

  const jcs::runtime::NetworkDecision d =
      jcs::runtime::CheckNetwork(args, Options());
  if (!d.allowed) {
    FUZZ_CHECK(d.reason == jcs::runtime::kNetworkProtocolDenied ||
               d.reason == jcs::runtime::kNetworkEndpointDenied);
    return 0;
  }
  FUZZ_CHECK(!scan.truncated);
  for (const std::string& t : scan.targets) {
    if (const size_t sep = t.find("://"); sep != std::string::npos) {
      const std::string scheme = absl::AsciiStrToLower(t.substr(0, sep));
      FUZZ_CHECK(scheme == "http" || scheme == "https");
    }
    const std::string host = jcs::runtime::NormalizeHost(t);
    FUZZ_CHECK(host == "example.test" || absl::EndsWith(host, ".example.test"));
  }
  return 0;
}
