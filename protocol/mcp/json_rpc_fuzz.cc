// Fuzzes the MCP server's stdio framing and JSON-RPC parser (json_rpc.h)
// with what a hostile or broken client could write to `jcs mcp`. Besides "no
// crash", it checks the documented invariants: the lines do not depend on how
// the stream was split into reads, no line exceeds the bound, every parse
// gives exactly one of a message or an error with a JSON-RPC code, and every
// answer serializes to exactly one line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/mcp/json_rpc.h"
#include "sanitizers/fuzz_check.h"

namespace {

using jcs::protocol::mcp::LineReader;

constexpr size_t kBound = 256;

std::vector<LineReader::Item> Lines(std::string_view data, size_t split) {
  LineReader reader(kBound);
  reader.Feed(data.substr(0, split));
  reader.Feed(data.substr(split));
  std::vector<LineReader::Item> items;
  while (std::optional<LineReader::Item> item = reader.Next()) {
    items.push_back(*item);
  }
  FUZZ_CHECK(reader.buffered() <= kBound + 1);
  return items;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace mcp = jcs::protocol::mcp;
  if (size == 0) return 0;
  const size_t split = data[0] % size;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  const std::vector<LineReader::Item> whole = Lines(input, input.size());
  const std::vector<LineReader::Item> halves = Lines(input, split);
  FUZZ_CHECK(whole.size() == halves.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    FUZZ_CHECK(whole[i].oversized == halves[i].oversized);
    FUZZ_CHECK(whole[i].line == halves[i].line);
    FUZZ_CHECK(whole[i].line.size() <= kBound);
    FUZZ_CHECK(whole[i].line.find('\n') == std::string::npos);
  }
  // The parser on the raw input too (the reader may have cut it up).
  std::vector<std::string_view> lines = {input};
  for (const LineReader::Item& item : whole) lines.push_back(item.line);
  for (std::string_view line : lines) {
    const mcp::ParseResult r = mcp::ParseMessage(line);
    FUZZ_CHECK(r.message.has_value() != r.error.has_value());
    std::string out;
    if (r.error.has_value()) {
      FUZZ_CHECK(r.error->code == mcp::kParseError ||
                 r.error->code == mcp::kInvalidRequest ||
                 r.error->code == mcp::kInvalidParams);
      FUZZ_CHECK(r.error_id.is_null() || r.error_id.is_string() ||
                 r.error_id.is_number_integer());
      out = mcp::SerializeLine(mcp::ErrorResponse(r.error_id, *r.error));
    } else {
      const mcp::Message& m = *r.message;
      FUZZ_CHECK(m.params.is_null() || m.params.is_object());
      FUZZ_CHECK(m.kind == mcp::Message::Kind::kNotification ||
                 m.id.is_string() || m.id.is_number_integer());
      out = mcp::SerializeLine(mcp::ResultResponse(
          m.id, {{"method", m.method}, {"params", m.params}}));
    }
    FUZZ_CHECK(!out.empty() && out.find('\n') == out.size() - 1);
  }
  return 0;
}
