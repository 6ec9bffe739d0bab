#include "jail/report.h"

#include <nlohmann/json.hpp>

namespace jcs::jail {

std::string FormatReport(const proto::JailSpec& spec, const RunResult& result) {
  nlohmann::ordered_json report;
  report["status"] = RunStatusName(result.status);
  report["exit_code"] = result.exit_code;
  report["signal"] = result.signal == 0 ? nlohmann::ordered_json()
                                        : nlohmann::ordered_json(result.signal);
  report["wall_time_ms"] = static_cast<double>(result.wall_time_us) / 1000.0;
  report["warm_jail"] = result.warm_jail;
  nlohmann::ordered_json setup = nlohmann::ordered_json::object();
  for (const auto& [step, us] : result.setup_us) setup[step] = us;
  report["setup_us"] = setup;
  nlohmann::ordered_json teardown = nlohmann::ordered_json::object();
  for (const auto& [step, us] : result.teardown_us) teardown[step] = us;
  report["teardown_us"] = teardown;
  nlohmann::ordered_json violations = nlohmann::ordered_json::array();
  for (const Violation& v : result.violations) {
    violations.push_back(
        {{"syscall", v.name}, {"nr", v.nr}, {"count", v.count}});
  }
  report["violations"] = violations;
  report["descendants_killed"] = result.descendants_killed;
  report["memory_peak_bytes"] = result.memory_peak_bytes;
  report["oom_kills"] = result.oom_kills;
  report["pids_limit_hits"] = result.pids_limit_hits;
  report["cgroup_backend"] = result.cgroup_backend;
  if (result.egress.enabled) {
    nlohmann::ordered_json denials = nlohmann::ordered_json::array();
    for (const EgressDenialRecord& d : result.egress.denials) {
      denials.push_back({{"host", d.host},
                         {"port", d.port},
                         {"reason", d.reason},
                         {"detail", d.detail}});
    }
    report["egress"] = {{"connections", result.egress.connections},
                        {"allowed", result.egress.allowed},
                        {"denied", result.egress.denied},
                        {"bytes_in", result.egress.bytes_in},
                        {"bytes_out", result.egress.bytes_out},
                        {"denials", denials}};
  }
  nlohmann::ordered_json layers = nlohmann::ordered_json::object();
  for (const auto& [layer, state] : result.layers) layers[layer] = state;
  report["layers"] = layers;
  report["warnings"] = result.warnings;
  report["error"] = result.error.empty() ? nlohmann::ordered_json()
                                         : nlohmann::ordered_json(result.error);
  if (result.exec_errno != 0) report["exec_errno"] = result.exec_errno;
  report["program"] =
      std::vector<std::string>(spec.argv().begin(), spec.argv().end());
  report["root"] = spec.root();
  report["uid"] = result.uid;
  report["gid"] = result.gid;
  // Invalid UTF-8 from argv is replaced rather than throwing.
  return report.dump(2, ' ', false,
                     nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

}  // namespace jcs::jail
