// `jcs run`: parse, finalize, run the jail, report.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "jail/procfs.h"
#include "jail/report.h"
#include "jail/runner.h"
#include "jail/spec.h"
#include "tools/commands.h"
#include "tools/flags.h"

namespace jcs::tools {
namespace {

constexpr int kUsageError = 125;

bool WriteReport(const std::string& path, const std::string& report) {
  if (path == "-") {
    fputs(report.c_str(), stderr);
    return true;
  }
  std::ofstream out(path, std::ios::trunc);
  out << report;
  out.flush();
  if (!out) {
    fprintf(stderr, "jcs: --report: cannot write %s: %s\n", path.c_str(),
            strerror(errno));
    return false;
  }
  return true;
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<jail::RunInvocation> invocation = jail::ParseRunArgs(args);
  if (!invocation.ok()) {
    fprintf(stderr, "jcs run: %s\n",
            std::string(invocation.status().message()).c_str());
    return kUsageError;
  }
  if (invocation->help) {
    fputs(WrapUsageLines(jail::RunUsage()).c_str(), stdout);
    return 0;
  }
  // The jail is addressed through /proc: refuse a /proc of another pid
  // namespace (unshare --pid without --mount-proc) up front.
  if (absl::Status s = jail::CheckOwnProcfs(); !s.ok()) {
    fprintf(stderr, "jcs run: %s\n", std::string(s.message()).c_str());
    return kUsageError;
  }
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) {
    fprintf(stderr, "jcs run: cannot read the current directory: %s\n",
            strerror(errno));
    return kUsageError;
  }
  // `bazel run` starts the binary in its runfiles tree; the user's directory is
  // the natural root.
  std::string base = cwd;
  if (const char* dir = getenv("BUILD_WORKING_DIRECTORY");
      dir != nullptr && dir[0] == '/') {
    base = dir;
  }
  absl::StatusOr<jail::FinalSpec> final_spec =
      jail::Finalize(invocation->spec, base);
  if (!final_spec.ok()) {
    fprintf(stderr, "jcs run: %s\n",
            std::string(final_spec.status().message()).c_str());
    return kUsageError;
  }
  if (invocation->print_config) {
    fputs(jail::FormatSpec(final_spec->spec).c_str(), stdout);
    return 0;
  }
  const jail::RunResult result =
      jail::RunJail(final_spec->spec, final_spec->warnings);
  if (result.status == jail::RunStatus::kSetupError) {
    fprintf(stderr, "jcs run: jail setup failed: %s\n", result.error.c_str());
  } else if (result.exec_errno != 0) {
    const std::string& program = final_spec->spec.argv(0);
    if (result.exit_code == 127) {
      fprintf(stderr, "jcs run: %s: not found in the jail%s\n", program.c_str(),
              program.find('/') == std::string::npos ? " (searched PATH)" : "");
    } else {
      fprintf(stderr, "jcs run: %s: cannot execute: %s\n", program.c_str(),
              strerror(result.exec_errno));
    }
  } else if (result.status == jail::RunStatus::kTimeout) {
    fprintf(stderr,
            "jcs run: timed out after %.3f s; killed %llu descendant(s)\n",
            static_cast<double>(final_spec->spec.timeout_ms()) / 1000.0,
            static_cast<unsigned long long>(result.descendants_killed));
  }
  if (!invocation->report_path.empty()) {
    WriteReport(invocation->report_path,
                jail::FormatReport(final_spec->spec, result));
  }
  return result.exit_code;
}

}  // namespace jcs::tools
