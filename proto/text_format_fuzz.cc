// Fuzzes the protobuf text-format front end of jail specs and supervisor
// configs (ParseTextProto into both messages). Invariants beyond "no crash":
// an error names the file and a 1-based line:column, and a message that
// parses prints back to text that parses to an equal message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/jail.pb.h"
#include "proto/supervisor_config.pb.h"
#include "proto/text_format.h"
#include "sanitizers/fuzz_check.h"

namespace {

void Check(absl::string_view text, google::protobuf::Message* message,
           google::protobuf::Message* again) {
  const absl::Status status =
      jcs::proto::ParseTextProto(text, "fuzz.textproto", message);
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    constexpr absl::string_view kPrefix = "fuzz.textproto:";
    FUZZ_CHECK(absl::StartsWith(status.message(), kPrefix));
    FUZZ_CHECK(status.message().size() > kPrefix.size());
    const char after = status.message()[kPrefix.size()];
    FUZZ_CHECK(after >= '1' && after <= '9');
    return;
  }
  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*message, &printed));
  FUZZ_CHECK(jcs::proto::ParseTextProto(printed, "printed", again).ok());
  FUZZ_CHECK(
      google::protobuf::util::MessageDifferencer::Equals(*message, *again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  jcs::proto::JailSpec spec, spec_again;
  Check(text, &spec, &spec_again);
  jcs::proto::SupervisorConfig config, config_again;
  Check(text, &config, &config_again);
  return 0;
}
