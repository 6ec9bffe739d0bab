// Fuzzes the control API's input path as the server runs it: the frame
// decoder fed the stream in socket-sized pieces, then each frame parsed as a
// jcs.proto.Request, then the parts of a request the service reads first
// (runtime options of a StartProject, the JSON of a RunTool). Invariants
// beyond "no crash": the frames and the verdict do not depend on how the
// stream was split, no frame exceeds the cap, the decoder never holds more
// than one partial frame after draining, and EncodeFrame round-trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "proto/control.pb.h"
#include "runtime/project/runtime_options.h"
#include "runtime/project/value.h"
#include "sanitizers/fuzz_check.h"
#include "supervisor/framing.h"

namespace {

using jcs::supervisor::FrameDecoder;

// Small so the fuzzer reaches the size cap.
constexpr size_t kCap = 4096;

struct Outcome {
  std::vector<std::string> frames;
  bool ok = true;
};

// Feeds `in` in pieces of `piece` bytes, draining frames after each piece.
Outcome Decode(std::string_view in, size_t piece) {
  FrameDecoder decoder(kCap);
  Outcome out;
  for (size_t at = 0; at < in.size(); at += piece) {
    absl::Status status = decoder.Append(
        absl::string_view(in.data() + at, std::min(piece, in.size() - at)));
    while (std::optional<std::string> frame = decoder.Next()) {
      FUZZ_CHECK(frame->size() <= kCap);
      out.frames.push_back(*std::move(frame));
    }
    if (status.ok()) status = decoder.status();
    if (!status.ok()) {
      out.ok = false;
      return out;
    }
    FUZZ_CHECK(decoder.buffered() <= kCap + jcs::supervisor::kMaxVarintBytes);
  }
  return out;
}

void HandleRequest(const std::string& frame) {
  jcs::proto::Request request;
  if (!request.ParseFromString(frame)) return;
  if (request.has_start_project()) {
    const jcs::runtime::OptionList options =
        jcs::runtime::OptionsFromProto(request.start_project().options());
    (void)jcs::runtime::ValidateRuntimeOptions(options);
  }
  if (request.has_run_tool()) {
    // As the service reads them: each must be a JSON object (or empty).
    for (const std::string* text :
         {&request.run_tool().args_json(), &request.run_tool().meta_json()}) {
      const nlohmann::json parsed =
          nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      FUZZ_CHECK(parsed.is_discarded() || !text->empty());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Outcome whole = Decode(in, in.size() == 0 ? 1 : in.size());
  for (size_t piece : {size_t{1}, size_t{3} + size % 61}) {
    const Outcome split = Decode(in, piece);
    FUZZ_CHECK(split.ok == whole.ok);
    FUZZ_CHECK(split.frames == whole.frames);
  }
  for (const std::string& frame : whole.frames) {
    HandleRequest(frame);
    FrameDecoder again(kCap);
    FUZZ_CHECK(again.Append(jcs::supervisor::EncodeFrame(frame)).ok());
    const std::optional<std::string> back = again.Next();
    FUZZ_CHECK(back.has_value() && *back == frame);
  }
  return 0;
}
