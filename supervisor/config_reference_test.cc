#include "supervisor/config_reference.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/supervisor_config.pb.h"

namespace jcs::supervisor {
namespace {

using ::testing::HasSubstr;

constexpr char kDescriptorSet[] = "proto/supervisor_config_descriptor_set.pb";

google::protobuf::FileDescriptorSet LoadSet() {
  absl::StatusOr<google::protobuf::FileDescriptorSet> set =
      ReadDescriptorSet(kDescriptorSet);
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *set : google::protobuf::FileDescriptorSet();
}

TEST(ConfigReferenceTest, CheckedInDocumentIsCurrent) {
  std::ifstream in("docs/config-reference.md");
  ASSERT_TRUE(in) << "docs/config-reference.md missing from runfiles";
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::string> doc = ConfigReferenceMarkdown(LoadSet());
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(text.str(), *doc)
      << "docs/config-reference.md is stale: bazel run "
         "//supervisor:config_reference_doc > docs/config-reference.md";
}

// A field added without a comment, or a scalar whose default is not written
// down, fails here rather than reaching operators undocumented.
TEST(ConfigReferenceTest, EveryFieldSaysWhatItIsAndScalarsTheirDefault) {
  absl::StatusOr<std::vector<ConfigFieldDoc>> docs = ConfigFieldDocs(LoadSet());
  ASSERT_TRUE(docs.ok()) << docs.status();
  for (const ConfigFieldDoc& doc : *docs) {
    EXPECT_FALSE(doc.comment.empty())
        << doc.message << "." << doc.name << " has no comment in the proto";
    if (doc.singular_scalar) {
      EXPECT_TRUE(absl::StrContains(doc.comment, "Default") ||
                  absl::StrContains(doc.comment, "Required"))
          << doc.message << "." << doc.name
          << ": a scalar's comment gives its default (or says Required)";
    }
  }
}

TEST(ConfigReferenceTest, CoversEveryFieldOfTheCompiledConfig) {
  absl::StatusOr<std::vector<ConfigFieldDoc>> docs = ConfigFieldDocs(LoadSet());
  ASSERT_TRUE(docs.ok()) << docs.status();
  const google::protobuf::Descriptor* config =
      proto::SupervisorConfig::descriptor();
  for (int i = 0; i < config->field_count(); ++i) {
    bool found = false;
    for (const ConfigFieldDoc& doc : *docs) {
      found = found || (doc.message == "SupervisorConfig" &&
                        doc.name == config->field(i)->name());
    }
    EXPECT_TRUE(found) << config->field(i)->name();
  }
  absl::StatusOr<std::string> markdown = ConfigReferenceMarkdown(LoadSet());
  ASSERT_TRUE(markdown.ok());
  EXPECT_THAT(*markdown, HasSubstr("## `BootProject`"));
  EXPECT_THAT(*markdown, HasSubstr("## `AlertSink`"));
  EXPECT_THAT(*markdown,
              HasSubstr("| `drain_grace_ms` | uint32 | SIGTERM/SIGINT drain"));
}

TEST(ConfigReferenceTest, ASetWithoutTheFileOrSourceInfoIsAnError) {
  google::protobuf::FileDescriptorSet empty;
  absl::StatusOr<std::string> none = ConfigReferenceMarkdown(empty);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(),
              HasSubstr("proto/supervisor_config.proto"));
  google::protobuf::FileDescriptorSet bare = LoadSet();
  for (auto& file : *bare.mutable_file()) file.clear_source_code_info();
  absl::StatusOr<std::string> no_info = ConfigReferenceMarkdown(bare);
  ASSERT_FALSE(no_info.ok());
  EXPECT_THAT(no_info.status().message(), HasSubstr("--include_source_info"));
  EXPECT_FALSE(ReadDescriptorSet("/nonexistent/set.pb").ok());
}

}  // namespace
}  // namespace jcs::supervisor
