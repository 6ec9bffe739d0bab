#include "supervisor/framing.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::supervisor {
namespace {

TEST(FramingTest, VarintHeaderMatchesProtobufDelimitedFormat) {
  EXPECT_EQ(EncodeFrame(""), std::string("\x00", 1));
  EXPECT_EQ(EncodeFrame("abc"), std::string("\x03"
                                            "abc"));
  const std::string big(300, 'x');
  const std::string frame = EncodeFrame(big);
  ASSERT_EQ(frame.size(), 302u);
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), 0xac);  // 300 = 0b10_0101100
  EXPECT_EQ(static_cast<uint8_t>(frame[1]), 0x02);
}

TEST(FramingTest, MidFrameCoversAConsumedHeaderAndAPartialPayload) {
  const std::string frame = EncodeFrame("abcdef");
  FrameDecoder decoder;
  EXPECT_FALSE(decoder.mid_frame());
  // The one-byte header alone: parsed (nothing buffered) but a frame has
  // begun.
  ASSERT_TRUE(decoder.Append(frame.substr(0, 1)).ok());
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_TRUE(decoder.mid_frame());
  ASSERT_TRUE(decoder.Append(frame.substr(1, 3)).ok());
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.mid_frame());
  ASSERT_TRUE(decoder.Append(frame.substr(4)).ok());
  ASSERT_EQ(decoder.Next(), std::optional<std::string>("abcdef"));
  EXPECT_FALSE(decoder.mid_frame());
  // A zero-length frame is whole with its header.
  ASSERT_TRUE(decoder.Append(EncodeFrame("")).ok());
  ASSERT_EQ(decoder.Next(), std::optional<std::string>(""));
  EXPECT_FALSE(decoder.mid_frame());
}

TEST(FramingTest, DecodesFramesSplitAtEveryByte) {
  const std::vector<std::string> payloads = {"", "a", std::string(200, 'b'),
                                             std::string(70000, 'c')};
  std::string stream;
  for (const std::string& p : payloads) stream += EncodeFrame(p);
  FrameDecoder decoder;
  std::vector<std::string> out;
  std::mt19937 rng(7);
  for (size_t i = 0; i < stream.size();) {
    const size_t n = std::min<size_t>(1 + rng() % 97, stream.size() - i);
    ASSERT_TRUE(decoder.Append(stream.substr(i, n)).ok());
    i += n;
    while (std::optional<std::string> frame = decoder.Next()) {
      out.push_back(*frame);
    }
  }
  EXPECT_EQ(out, payloads);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FramingTest, OversizedFrameIsRefusedBeforeItsPayloadArrives) {
  FrameDecoder decoder(/*max_frame_bytes=*/1024);
  const std::string header = EncodeFrame(std::string(1025, 'x')).substr(0, 2);
  absl::Status status = decoder.Append(header);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("exceeds the limit of 1024"),
            absl::string_view::npos);
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_FALSE(decoder.Append("more").ok());  // latched
}

TEST(FramingTest, MalformedVarintIsRefused) {
  FrameDecoder decoder;
  absl::Status status = decoder.Append(std::string(6, '\xff'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(FramingTest, PipelinedFramesBelowTheCapAllDecode) {
  FrameDecoder decoder(/*max_frame_bytes=*/100);
  std::string burst;
  for (int i = 0; i < 1000; ++i) burst += EncodeFrame(std::string(100, 'z'));
  ASSERT_TRUE(decoder.Append(burst).ok());
  int frames = 0;
  while (decoder.Next().has_value()) ++frames;
  EXPECT_EQ(frames, 1000);
  EXPECT_TRUE(decoder.status().ok());
}

TEST(FramingTest, OversizedFrameBehindGoodOnesIsRefusedWhenReached) {
  FrameDecoder decoder(/*max_frame_bytes=*/100);
  ASSERT_TRUE(
      decoder.Append(EncodeFrame("ok") + EncodeFrame(std::string(101, 'x')))
          .ok());
  EXPECT_EQ(decoder.Next(), "ok");
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_EQ(decoder.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(FramingTest, TruncatedFrameWaitsForMore) {
  FrameDecoder decoder;
  const std::string frame = EncodeFrame("hello");
  ASSERT_TRUE(decoder.Append(frame.substr(0, 3)).ok());
  EXPECT_FALSE(decoder.Next().has_value());
  ASSERT_TRUE(decoder.Append(frame.substr(3)).ok());
  EXPECT_EQ(decoder.Next(), "hello");
}

}  // namespace
}  // namespace jcs::supervisor
