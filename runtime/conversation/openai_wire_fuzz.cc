// Fuzzes the model adapter's response parsers (openai_wire.h,
// http_chunked.h) with what a hostile or broken server could send. The first
// byte picks the parser. Besides "no crash" and the documented bounds, the
// incremental parsers must not depend on how TCP split their input: the
// result of one Feed equals the result of feeding the same bytes in two
// pieces split at a point taken from the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "runtime/conversation/http_chunked.h"
#include "runtime/conversation/openai_tool_names.h"
#include "runtime/conversation/openai_wire.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::runtime::conversation::ChunkedDecoder;
using jcs::runtime::conversation::kMaxToolCalls;
using jcs::runtime::conversation::LlmResponse;
using jcs::runtime::conversation::ParseChatCompletion;
using jcs::runtime::conversation::ProviderErrorMessage;
using jcs::runtime::conversation::SseDecoder;
using jcs::runtime::conversation::StreamAssembler;
using jcs::runtime::conversation::ToolNameMap;

const ToolNameMap& Names() {
  static const ToolNameMap* names =
      new ToolNameMap({"fs.read", "fs_read", "git.status", "shell"});
  return *names;
}

struct StreamResult {
  bool ok = true;
  std::string error;
  std::vector<std::string> deltas;
  std::string text;
  size_t tool_calls = 0;
  bool done = false;
};

StreamResult Stream(absl::string_view bytes, size_t split) {
  StreamResult out;
  StreamAssembler assembler(
      Names(), [&out](std::string delta) { out.deltas.push_back(delta); });
  SseDecoder decoder(
      [&assembler](std::string data) { return assembler.OnEvent(data); });
  absl::Status status = decoder.Feed(bytes.substr(0, split));
  if (status.ok()) status = decoder.Feed(bytes.substr(split));
  out.done = assembler.done();
  if (status.ok()) {
    auto response = assembler.Finish();
    if (response.ok()) {
      out.text = response->text;
      out.tool_calls = response->tool_calls.size();
      FUZZ_CHECK(response->tool_calls.size() <= kMaxToolCalls);
      for (const auto& call : response->tool_calls) {
        FUZZ_CHECK(call.arguments.is_object());
      }
    } else {
      status = response.status();
    }
  }
  out.ok = status.ok();
  out.error = std::string(status.message());
  return out;
}

struct ChunkResult {
  bool ok = true;
  std::string body;
  bool done = false;
};

ChunkResult Chunked(absl::string_view bytes, size_t split) {
  ChunkResult out;
  ChunkedDecoder decoder;
  absl::Status status = decoder.Feed(bytes.substr(0, split), &out.body);
  if (status.ok()) status = decoder.Feed(bytes.substr(split), &out.body);
  out.ok = status.ok();
  out.done = decoder.done();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0] % 4;
  const size_t split_seed = data[1];
  absl::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t split = input.empty() ? 0 : split_seed % (input.size() + 1);
  switch (mode) {
    case 0: {
      StreamResult whole = Stream(input, input.size());
      StreamResult parts = Stream(input, split);
      FUZZ_CHECK(whole.ok == parts.ok);
      FUZZ_CHECK(whole.error == parts.error);
      FUZZ_CHECK(whole.deltas == parts.deltas);
      FUZZ_CHECK(whole.text == parts.text);
      FUZZ_CHECK(whole.tool_calls == parts.tool_calls);
      FUZZ_CHECK(whole.done == parts.done);
      if (whole.ok) {
        std::string joined;
        for (const std::string& d : whole.deltas) joined += d;
        FUZZ_CHECK(joined == whole.text);
      }
      break;
    }
    case 1: {
      auto response = ParseChatCompletion(input, Names());
      if (response.ok()) {
        FUZZ_CHECK(response->tool_calls.size() <= kMaxToolCalls);
        for (const auto& call : response->tool_calls) {
          FUZZ_CHECK(call.arguments.is_object());
        }
      }
      break;
    }
    case 2: {
      ChunkResult whole = Chunked(input, input.size());
      ChunkResult parts = Chunked(input, split);
      FUZZ_CHECK(whole.ok == parts.ok);
      if (whole.ok) {
        FUZZ_CHECK(whole.body == parts.body);
        FUZZ_CHECK(whole.done == parts.done);
        FUZZ_CHECK(whole.body.size() <= input.size());
      }
      break;
    }
    case 3: {
      std::string message = ProviderErrorMessage(input);
      FUZZ_CHECK(message.size() <= 512);
      for (char c : message) FUZZ_CHECK(c >= ' ' && c <= '~');
      break;
    }
  }
  return 0;
}
