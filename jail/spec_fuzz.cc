// Fuzzes `jcs run` invocation parsing: the input is read as the argument
// vector (NUL-separated) and as a --config file (text format), and whatever
// parses is finalized (defaults, validation) against a fixed cwd. Inputs that
// name --config are skipped: that flag reads a host file, and a fuzzer
// reading arbitrary files (/dev/zero) would test the host, not the parser.
// Invariants beyond "no crash": errors are InvalidArgument, and the effective
// spec --print-config prints reads back as a --config file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "jail/spec.h"
#include "sanitizers/fuzz_check.h"

namespace {

void FinalizeAndPrint(const jcs::proto::JailSpec& spec) {
  const absl::StatusOr<jcs::jail::FinalSpec> final_spec =
      jcs::jail::Finalize(spec, "/");
  if (!final_spec.ok()) {
    FUZZ_CHECK(!final_spec.status().message().empty());
    return;
  }
  const std::string printed = jcs::jail::FormatSpec(final_spec->spec);
  FUZZ_CHECK(jcs::jail::ParseSpecText(printed, "printed").ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const std::vector<std::string> args =
      absl::StrSplit(text, absl::ByChar('\0'));
  bool reads_file = false;
  for (const std::string& arg : args) {
    if (absl::StartsWith(arg, "--config")) reads_file = true;
  }
  if (!reads_file) {
    const absl::StatusOr<jcs::jail::RunInvocation> inv =
        jcs::jail::ParseRunArgs(args);
    if (!inv.ok()) {
      FUZZ_CHECK(inv.status().code() == absl::StatusCode::kInvalidArgument);
    } else if (!inv->help) {
      FinalizeAndPrint(inv->spec);
    }
  }

  const absl::StatusOr<jcs::proto::JailSpec> spec =
      jcs::jail::ParseSpecText(text, "fuzz.textproto");
  if (spec.ok()) FinalizeAndPrint(*spec);
  return 0;
}
