// Fuzzes the chunked request-body framing of the egress proxy's plain-HTTP
// tunnels. The decoder is driven as the proxy drives it (consume exactly the
// bytes each step names), once with the whole input and once with the input
// revealed a few bytes at a time, as TCP may deliver it: both must see the
// same steps, and every step must consume bytes it was shown (framing) or
// announce chunk data, so the proxy's position in the stream can never drift
// from the decoder's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "egress/chunked_body.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::egress::ChunkedBody;
using Kind = ChunkedBody::Step::Kind;

struct Seen {
  Kind kind;
  uint64_t bytes;
  bool operator==(const Seen& o) const {
    return kind == o.kind && bytes == o.bytes;
  }
};

// The steps of one run; `step` bytes are revealed at a time.
std::vector<Seen> Run(std::string_view in, size_t step) {
  ChunkedBody body;
  std::vector<Seen> seen;
  uint64_t pos = 0;
  size_t avail = std::min(step, in.size());
  for (int guard = 0; guard < 1000000; ++guard) {
    if (pos > avail) {  // inside chunk data the decoder has not seen yet
      if (avail == in.size()) return seen;
      avail = std::min(in.size(), avail + step);
      continue;
    }
    const ChunkedBody::Step s =
        body.Next(in.substr(static_cast<size_t>(pos), avail - pos));
    if (s.kind == Kind::kNeedMore) {
      if (avail == in.size()) return seen;
      avail = std::min(in.size(), avail + step);
      continue;
    }
    seen.push_back({s.kind, s.bytes});
    if (s.kind == Kind::kError) {
      FUZZ_CHECK(!s.error.empty());
      return seen;
    }
    FUZZ_CHECK(s.bytes > 0);
    if (s.kind != Kind::kData) FUZZ_CHECK(s.bytes <= avail - pos);
    if (s.kind == Kind::kDone) return seen;
    pos += s.bytes;
  }
  FUZZ_CHECK(false && "the decoder made no progress");
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::vector<Seen> whole = Run(in, in.size());
  FUZZ_CHECK(Run(in, 1) == whole);
  FUZZ_CHECK(Run(in, 2 + size % 7) == whole);
  return 0;
}
