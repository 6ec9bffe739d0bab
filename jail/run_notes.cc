#include "jail/run_notes.h"

#include <signal.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "jail/spec.h"

namespace jcs::jail {
namespace {

std::string Plural(uint64_t n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// Lines this long stay readable: the report has the full list.
constexpr size_t kMaxListed = 5;

}  // namespace

std::vector<std::string> RunNotes(const proto::JailSpec& spec,
                                  const RunResult& result) {
  std::vector<std::string> notes;
  if (result.status == RunStatus::kSetupError) return notes;
  if (result.oom_kills > 0) {
    const std::string limit = FormatSize(spec.memory_bytes());
    if (result.status == RunStatus::kOom && result.signal == SIGKILL) {
      notes.push_back(absl::StrCat("killed by the memory limit ", limit));
    } else {
      notes.push_back(absl::StrCat(
          "the memory limit ", limit, " killed ",
          Plural(result.oom_kills, "process", "processes"), " in the jail"));
    }
  }
  if (result.signal == SIGXFSZ) {
    notes.push_back(absl::StrCat("killed by SIGXFSZ: a file reached the ",
                                 "file-size limit ",
                                 FormatSize(spec.fsize_bytes()), " (--fsize)"));
  }
  if (!result.violations.empty()) {
    uint64_t total = 0;
    std::vector<std::string> names;
    for (const Violation& v : result.violations) {
      total += v.count;
      if (names.size() < kMaxListed) {
        names.push_back(absl::StrCat(
            v.name.empty() ? absl::StrCat("syscall ", v.nr) : v.name, " (",
            v.count, ")"));
      }
    }
    if (result.violations.size() > kMaxListed) names.push_back("...");
    notes.push_back(absl::StrCat("seccomp denied ",
                                 Plural(total, "call", "calls"), ": ",
                                 absl::StrJoin(names, ", ")));
  }
  if (result.pids_limit_hits > 0) {
    notes.push_back(absl::StrCat(
        "the pids limit ", spec.pids(), " refused ",
        Plural(result.pids_limit_hits, "fork", "forks"), " (--pids)"));
  }
  // With no --allow-host at all, Finalize's warning already said that every
  // destination is refused: one line per fact.
  if (result.egress.enabled && result.egress.denied > 0 &&
      (spec.allow_host_size() > 0 || spec.allow_private_host_size() > 0)) {
    std::vector<std::string> denied;
    for (const EgressDenialRecord& d : result.egress.denials) {
      if (denied.size() == kMaxListed) {
        denied.push_back("...");
        break;
      }
      const std::string entry =
          absl::StrCat(d.host, ":", d.port, " (", d.reason, ")");
      if (std::find(denied.begin(), denied.end(), entry) == denied.end()) {
        denied.push_back(entry);
      }
    }
    notes.push_back(
        absl::StrCat("the egress proxy refused ",
                     Plural(result.egress.denied, "connection", "connections"),
                     denied.empty() ? "" : ": ", absl::StrJoin(denied, ", ")));
  }
  return notes;
}

std::string RunEndMessage(const proto::JailSpec& spec,
                          const RunResult& result) {
  if (result.status == RunStatus::kSetupError) {
    return absl::StrCat("jail setup failed: ", result.error);
  }
  if (result.exec_errno != 0) {
    const std::string program = spec.argv().empty() ? "" : spec.argv(0);
    if (result.exit_code == 127) {
      return absl::StrCat(
          program, ": not found in the jail",
          program.find('/') == std::string::npos ? " (searched PATH)" : "");
    }
    return absl::StrCat(program,
                        ": cannot execute: ", strerror(result.exec_errno));
  }
  if (result.status == RunStatus::kTimeout) {
    return absl::StrFormat(
        "timed out after %.3f s; killed %llu descendant(s)",
        static_cast<double>(spec.timeout_ms()) / 1000.0,
        static_cast<unsigned long long>(result.descendants_killed));
  }
  return "";
}

}  // namespace jcs::jail
