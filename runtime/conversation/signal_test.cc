#include "runtime/conversation/signal.h"

#include <string>

#include "gtest/gtest.h"

namespace jcs::runtime::conversation {
namespace {

std::string ErrorOf(const nlohmann::json& raw) {
  absl::StatusOr<Signal> s = NormalizeSignal(raw);
  return s.ok() ? "ok" : std::string(s.status().message());
}

TEST(SignalTest, UserMessageIsNormalizedWithAGeneratedCorrelationId) {
  absl::StatusOr<Signal> s = NormalizeSignal(
      {{"type", "conversation.user.message"}, {"data", {{"content", "hi"}}}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, "conversation.user.message");
  EXPECT_EQ(s->data["content"], "hi");
  EXPECT_EQ(s->correlation_id.rfind("corr-", 0), 0u);
  EXPECT_EQ(s->correlation_id.size(), 25u);
  EXPECT_EQ(s->meta["correlation_id"], s->correlation_id);
  EXPECT_EQ(s->id.rfind("sig-", 0), 0u);
}

TEST(SignalTest, CorrelationIdComesFromMetaThenExtensionsThenMetadata) {
  nlohmann::json base = {{"type", "conversation.cancel"}};
  nlohmann::json a = base;
  a["meta"] = {{"correlation_id", " corr-meta "}};
  a["extensions"] = {{"correlation_id", "corr-ext"}};
  EXPECT_EQ(NormalizeSignal(a)->correlation_id, "corr-meta");
  nlohmann::json b = base;
  b["extensions"] = {{"correlation_id", "corr-ext"}};
  EXPECT_EQ(NormalizeSignal(b)->correlation_id, "corr-ext");
  nlohmann::json c = base;
  c["data"] = {{"metadata", {{"correlation_id", "corr-data"}}}};
  EXPECT_EQ(NormalizeSignal(c)->correlation_id, "corr-data");
}

TEST(SignalTest, RefusesWhatAClientMayNotSend) {
  EXPECT_EQ(ErrorOf(nlohmann::json::array()),
            "invalid_signal: expected a JSON object");
  EXPECT_EQ(ErrorOf({{"data", nlohmann::json::object()}}),
            "missing_type: type");
  EXPECT_EQ(ErrorOf({{"type", 3}}), "invalid_type: type: expected a string");
  EXPECT_EQ(ErrorOf({{"type", "conversation.bogus"}}),
            "invalid_type: conversation.bogus");
  EXPECT_EQ(ErrorOf({{"type", "conversation.cmd.ingest"}}),
            "reserved_type: conversation.cmd.ingest");
  // A forged result or answer is refused: only the runtime makes those.
  for (const char* type :
       {"conversation.tool.completed", "conversation.assistant.message",
        "conversation.llm.completed", "conversation.tool.cancelled"}) {
    EXPECT_EQ(ErrorOf({{"type", type}}),
              std::string("external_type_not_allowed: ") + type);
  }
}

TEST(SignalTest, FlatFieldsMustSitInTheDataEnvelope) {
  EXPECT_EQ(ErrorOf({{"type", "conversation.user.message"}, {"content", "hi"}}),
            "missing_data_envelope: field 'content' must sit in data");
  EXPECT_EQ(ErrorOf({{"type", "conversation.user.message"}, {"data", "hi"}}),
            "missing_data_envelope: data must be a JSON object");
}

TEST(SignalTest, TypeSpecificDataIsChecked) {
  EXPECT_EQ(ErrorOf({{"type", "conversation.user.message"},
                     {"data", {{"content", 1}}}}),
            "invalid_signal_data: data.content: expected a string");
  EXPECT_EQ(ErrorOf({{"type", "conversation.tool.requested"},
                     {"data", {{"args", nlohmann::json::object()}}}}),
            "invalid_signal_data: data.name: expected a non-empty string");
  EXPECT_EQ(ErrorOf({{"type", "conversation.tool.requested"},
                     {"data", {{"name", "asset.list"}, {"args", "x"}}}}),
            "invalid_signal_data: data.args: expected an object");
  EXPECT_EQ(
      ErrorOf({{"type", "conversation.cancel"}, {"data", {{"reason", 5}}}}),
      "invalid_signal_data: data.reason: expected a string");
  EXPECT_EQ(ErrorOf({{"type", "conversation.cancel"},
                     {"meta", {{"correlation_id", 5}}}}),
            "invalid_correlation_id: expected a string");
  EXPECT_EQ(ErrorOf({{"type", "conversation.cancel"},
                     {"meta", {{"correlation_id", std::string(129, 'a')}}}}),
            "invalid_correlation_id: longer than 128 bytes");
  EXPECT_EQ(
      ErrorOf({{"type", "conversation.cancel"}, {"id", std::string(129, 'a')}}),
      "invalid_signal_id: id: expected a string of 1..128 bytes");
}

TEST(SignalTest, DeepNestingIsRefusedBeforeAnythingRecursesOverIt) {
  const auto nested = [](int depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  // The text check: brackets inside strings do not count.
  EXPECT_TRUE(CheckSignalTextDepth(
                  R"({"data":{"content":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[)"
                  R"([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"[["}})")
                  .ok());
  EXPECT_TRUE(CheckSignalTextDepth("{\"a\":" + nested(63) + "}").ok());
  EXPECT_EQ(CheckSignalTextDepth("{\"a\":" + nested(64) + "}").message(),
            "invalid_signal: nested deeper than 64 levels");
  EXPECT_EQ(CheckSignalTextDepth(nested(100000)).message(),
            "invalid_signal: nested deeper than 64 levels");
  // The document check.
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 70; ++i) deep = nlohmann::json::array({deep});
  EXPECT_EQ(ErrorOf({{"type", "conversation.user.message"},
                     {"data", {{"content", "x"}, {"llm", {{"x", deep}}}}}}),
            "invalid_signal: nested deeper than 64 levels");
}

}  // namespace
}  // namespace jcs::runtime::conversation
