// Fuzzes `jcs serve --config`: text format, defaults and validation
// (including every boot project's runtime options). Invariants beyond "no
// crash": errors are InvalidArgument naming the file, and a finalized config
// is a fixed point (finalizing it again accepts it unchanged).
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "google/protobuf/util/message_differencer.h"
#include "sanitizers/fuzz_check.h"
#include "supervisor/serve_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<jcs::proto::SupervisorConfig> config =
      jcs::supervisor::ParseServeConfig(text, "fuzz.conf");
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!config.status().message().empty());
    return 0;
  }
  const absl::StatusOr<jcs::proto::SupervisorConfig> again =
      jcs::supervisor::FinalizeServeConfig(*config);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(
      google::protobuf::util::MessageDifferencer::Equals(*config, *again));
  return 0;
}
