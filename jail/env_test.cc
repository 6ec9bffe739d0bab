#include "jail/env.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jcs::jail {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ValidateEnvVarTest, AcceptsPortableNames) {
  EXPECT_TRUE(ValidateEnvVar("FOO", "bar").ok());
  EXPECT_TRUE(ValidateEnvVar("_x9", "").ok());
  EXPECT_TRUE(ValidateEnvVar("a", "with=equals and spaces").ok());
}

TEST(ValidateEnvVarTest, RejectsMalformedNames) {
  for (const std::string& key :
       {std::string(""), std::string("="), std::string("9LIVES"),
        std::string("A-B"), std::string("A B"), std::string("A\0B", 3),
        std::string("ÄPFEL")}) {
    absl::Status status = ValidateEnvVar(key, "v");
    EXPECT_FALSE(status.ok()) << key;
    EXPECT_THAT(std::string(status.message()), HasSubstr("--env")) << key;
  }
}

TEST(ValidateEnvVarTest, RejectsNulInValue) {
  absl::Status status = ValidateEnvVar("KEY", std::string("a\0b", 3));
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("NUL"));
}

TEST(BuildJailEnvTest, BaselineOnlyWhenNothingGiven) {
  proto::JailSpec spec;
  EXPECT_THAT(BuildJailEnv(spec),
              ElementsAre("HOME=/tmp", "LANG=C.UTF-8",
                          std::string("PATH=") + kBaselinePath));
}

TEST(BuildJailEnvTest, GivenVariablesAddAndOverride) {
  proto::JailSpec spec;
  proto::EnvVar* var = spec.add_env();
  var->set_key("PATH");
  var->set_value("/opt/bin");
  var = spec.add_env();
  var->set_key("TOKEN");
  var->set_value("x=y");
  EXPECT_THAT(BuildJailEnv(spec), ElementsAre("HOME=/tmp", "LANG=C.UTF-8",
                                              "PATH=/opt/bin", "TOKEN=x=y"));
}

}  // namespace
}  // namespace jcs::jail
