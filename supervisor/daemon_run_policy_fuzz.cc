// Fuzzes the daemon's check of a `jcs run --daemon` spec (the client's
// input): the bytes are read as a JailSpec (wire format, as the control
// socket carries it, and text format, for readable seeds) and checked for an
// unprivileged peer and for root. Invariants beyond "no crash": a refusal
// says why; what an unprivileged peer is given runs as that peer, without
// host root, in a network mode a cold run has, and is a fixed point of
// Finalize.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "jail/spec.h"
#include "sanitizers/fuzz_check.h"
#include "supervisor/daemon_run_policy.h"

namespace {

void Check(const jcs::proto::JailSpec& spec) {
  jcs::supervisor::PeerCredentials peer{1, 1000, 1000, {}};
  jcs::supervisor::DaemonRunPolicy policy;
  policy.daemon_paths = {"/run/jcs/jcs.sock", "/var/lib/jcs"};
  absl::StatusOr<jcs::jail::FinalSpec> given =
      jcs::supervisor::CheckDaemonRunSpec(spec, peer, policy);
  if (!given.ok()) {
    FUZZ_CHECK(!given.status().message().empty());
  } else {
    FUZZ_CHECK(given->spec.uid() == 1000 && given->spec.gid() == 1000);
    FUZZ_CHECK(!given->spec.allow_host_root());
    FUZZ_CHECK(given->spec.net() == jcs::proto::NET_NONE ||
               given->spec.net() == jcs::proto::NET_LOOPBACK ||
               given->spec.net() == jcs::proto::NET_EGRESS);
    FUZZ_CHECK(
        google::protobuf::util::MessageDifferencer::Equals(given->spec, spec));
  }
  policy.privileged = true;
  peer.uid = 0;
  absl::StatusOr<jcs::jail::FinalSpec> root =
      jcs::supervisor::CheckDaemonRunSpec(spec, peer, policy);
  if (!root.ok()) FUZZ_CHECK(!root.status().message().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  jcs::proto::JailSpec wire;
  if (wire.ParseFromString(bytes)) Check(wire);
  const absl::StatusOr<jcs::proto::JailSpec> text =
      jcs::jail::ParseSpecText(bytes, "fuzz.textproto");
  if (text.ok()) Check(*text);
  return 0;
}
