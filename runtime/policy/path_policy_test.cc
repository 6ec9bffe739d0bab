#include "runtime/policy/path_policy.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class PathPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/path_policy_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    fs::create_directories(root_ + "/a/b");
    fs::create_directories(outside_);
    std::ofstream(outside_ + "/secret.txt") << "s";
    std::ofstream(root_ + "/a/b/file.txt") << "f";
    fs::create_directory_symlink(outside_, root_ + "/escape");
    fs::create_symlink(outside_ + "/nowhere", root_ + "/dangling");
    fs::create_directory_symlink("a/b", root_ + "/inner");
  }
  void TearDown() override { fs::remove_all(base_); }

  PathDecision Check(const json& args) {
    return CheckToolPaths(root_, args, options_);
  }

  std::string base_, root_, outside_;
  ValidatedOptions options_;
};

TEST_F(PathPolicyTest, PinnedExtractionCasesDenied) {
  for (const char* args : {
           R"({"payload": {"path": "../x"}})",
           R"({"payload": "{\"path\":\"../x\"}"})",
           R"({"payload": "path=../x"})",
           R"({"path": "path=../x"})",
           R"({"path": "\"../x\""})",  // the [quirk], fixed
           R"({"paths": ["ok.txt", "../x"]})",
       }) {
    PathDecision d = Check(json::parse(args));
    EXPECT_FALSE(d.allowed) << args;
    EXPECT_EQ(d.reason, "outside_root") << args;
  }
}

TEST_F(PathPolicyTest, ExtractionOrderTrimDedupAndOpaque) {
  json args = json::parse(R"({
    "a_path": "  x.txt ",
    "b": "FilePath => 'y.txt', xpath: z.txt",
    "c": {"file_path": "x.txt"},
    "d": "   ",
    "e": "plain text",
    "f": 42
  })");
  EXPECT_EQ(ExtractPathCandidates(args),
            (std::vector<std::string>{"x.txt", "y.txt", "z.txt"}));
  // Path-key string that is not decodable is a candidate and opaque-scanned.
  EXPECT_EQ(ExtractPathCandidates(json::parse(R"({"path": "path=../x"})")),
            (std::vector<std::string>{"path=../x", "../x"}));
  // Decoded JSON is not opaque-scanned as raw text.
  EXPECT_EQ(ExtractPathCandidates(json::parse(R"({"p": "[\"path=q\"]"})")),
            (std::vector<std::string>{"q"}));
}

TEST_F(PathPolicyTest, SymlinkEscapeAndInsidePaths) {
  PathDecision d = Check({{"path", "escape/secret.txt"}});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "outside_root");
  EXPECT_EQ(d.candidate, "escape/secret.txt");
  EXPECT_EQ(d.resolved_path, fs::canonical(outside_).string() + "/secret.txt");
  EXPECT_EQ(Check({{"path", "dangling"}}).reason, "outside_root");
  EXPECT_EQ(Check({{"path", "escape/new/deeper.txt"}}).reason, "outside_root");

  for (const char* p : {"a/b/file.txt", "a/../a/./b", "new/file.txt", ".",
                        "inner/file.txt", "a/b/file.txt/x"}) {
    EXPECT_TRUE(Check({{"path", p}}).allowed) << p;
  }
  absl::StatusOr<std::string> r = ResolveInRoot(root_, "inner/file.txt");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, fs::canonical(root_).string() + "/a/b/file.txt");
}

TEST_F(PathPolicyTest, AbsolutePaths) {
  const std::string croot = fs::canonical(root_).string();
  EXPECT_TRUE(Check({{"path", croot + "/a/b/file.txt"}}).allowed);
  EXPECT_EQ(Check({{"path", "/etc/passwd"}}).reason, "outside_root");
  EXPECT_EQ(Check({{"path", croot + "/../outside/secret.txt"}}).reason,
            "outside_root");
  // Root given through a symlink is canonicalized.
  fs::create_directory_symlink(root_, base_ + "/rootlink");
  EXPECT_TRUE(
      CheckToolPaths(base_ + "/rootlink", {{"path", "a/b"}}, options_).allowed);
}

TEST_F(PathPolicyTest, SensitiveDefaultsAndAllowlist) {
  for (const char* p : {".env", ".env.local", "a/b/c.pem", "id_rsa",
                        "deep/x.key", "id_ed25519"}) {
    PathDecision d = Check({{"path", p}});
    EXPECT_FALSE(d.allowed) << p;
    EXPECT_EQ(d.reason, "sensitive_path_denied") << p;
    EXPECT_EQ(d.candidate, p);
  }
  EXPECT_TRUE(Check({{"path", "env.txt"}}).allowed);
  EXPECT_TRUE(Check({{"path", "id_rsa.pub"}}).allowed);
  options_.sensitive_path_allowlist = {" .env.local ", "a/b/*.pem"};
  EXPECT_TRUE(Check({{"path", ".env.local"}}).allowed);
  EXPECT_TRUE(Check({{"path", "a/b/c.pem"}}).allowed);
  EXPECT_FALSE(Check({{"path", "a/c.pem"}}).allowed);
  EXPECT_FALSE(Check({{"path", ".env"}}).allowed);
}

// A pattern with `/` matches any trailing run of whole segments, so a
// credential file is caught wherever it sits in the tree; a leading `/`
// anchors it at the root.
TEST_F(PathPolicyTest, PatternWithSlashMatchesTrailingSegments) {
  options_.sensitive_path_denylist = {"secrets/*", "/top/*"};
  EXPECT_FALSE(Check({{"path", "secrets/a/b.txt"}}).allowed);
  EXPECT_FALSE(Check({{"path", "x/secrets/b.txt"}}).allowed);
  EXPECT_TRUE(Check({{"path", "xsecrets/b.txt"}}).allowed);
  EXPECT_FALSE(Check({{"path", "top/a"}}).allowed);
  EXPECT_TRUE(Check({{"path", "x/top/a"}}).allowed);
  EXPECT_TRUE(Check({{"path", ".env"}}).allowed);  // defaults overridden
}

// The argument policy decides as the fs tools and the jail's masks do: a
// file inside a sensitive directory is sensitive.
TEST_F(PathPolicyTest, SensitiveAncestorDeniesTheCandidate) {
  PathDecision d = Check({{"path", "certs.pem/readme.txt"}});
  EXPECT_EQ(d.reason, "sensitive_path_denied");
  EXPECT_EQ(d.candidate, "certs.pem/readme.txt");
  EXPECT_FALSE(Check({{"path", "home/.AWS/credentials/x"}}).allowed);
  EXPECT_TRUE(Check({{"path", "certs/readme.txt"}}).allowed);
}

// Outside the root the absolute resolved path is matched by the same rules.
TEST_F(PathPolicyTest, OutsideRootPathsMatchSlashPatternsBySuffix) {
  fs::create_directories(outside_ + "/.aws");
  options_.outside_root_allowlist = {{"../outside/*", false, "shared"}};
  PathDecision d = Check({{"path", "escape/.aws/credentials"}});
  EXPECT_EQ(d.reason, "sensitive_path_denied");
  EXPECT_TRUE(Check({{"path", "escape/.aws/config"}}).allowed);
  EXPECT_EQ(Check({{"path", "escape/SERVER.KEY"}}).reason,
            "sensitive_path_denied");
}

TEST_F(PathPolicyTest, OutsideRootAllowlist) {
  const std::string cout = fs::canonical(outside_).string();
  options_.outside_root_allowlist = {
      {"../outside/*", false, "shared_data"},
      {fs::canonical(base_).string() + "\\elsewhere\\*", true, "other"},
  };
  PathDecision d = Check({{"path", "escape/secret.txt"}});
  EXPECT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(d.exception_reason_codes, std::vector<std::string>{"shared_data"});

  d = Check({{"path", fs::canonical(base_).string() + "/elsewhere/x"},
             {"q", "path=escape/y"}});
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.exception_reason_codes,
            (std::vector<std::string>{"other", "shared_data"}));

  d = Check({{"path", cout + "/.env"}});  // still sensitive-checked
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "sensitive_path_denied");
  EXPECT_EQ(d.exception_reason_codes, std::vector<std::string>{"shared_data"});

  EXPECT_EQ(Check({{"path", "/etc/hosts"}}).reason, "outside_root");
}

TEST_F(PathPolicyTest, FirstFailingCandidateHalts) {
  PathDecision d = Check(json::parse(R"({"paths": ["ok", "../x", ".env"]})"));
  EXPECT_EQ(d.reason, "outside_root");
  EXPECT_EQ(d.candidate, "../x");
}

TEST_F(PathPolicyTest, InvalidRoot) {
  for (const std::string& root :
       {std::string(), base_ + "/missing", root_ + "/a/b/file.txt"}) {
    PathDecision d = CheckToolPaths(root, {{"path", "x"}}, options_);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.reason, "invalid_root_path");
    EXPECT_FALSE(ResolveInRoot(root, "x").ok());
  }
}

TEST_F(PathPolicyTest, NoCandidatesAllowed) {
  EXPECT_TRUE(Check(json::object()).allowed);
  EXPECT_TRUE(Check({{"query", "hello"}, {"n", 3}}).allowed);
}

TEST_F(PathPolicyTest, SymlinkLoopDenied) {
  fs::create_symlink("loop2", root_ + "/loop1");
  fs::create_symlink("loop1", root_ + "/loop2");
  EXPECT_EQ(Check({{"path", "loop1/x"}}).reason, "outside_root");
}

TEST_F(PathPolicyTest, DepthBound) {
  json deep = {{"path", "../x"}};
  for (int i = 0; i < kMaxPathScanDepth + 5; ++i) deep = json::array({deep});
  bool truncated = false;
  EXPECT_TRUE(ExtractPathCandidates(deep, &truncated).empty());
  EXPECT_TRUE(truncated);
  EXPECT_EQ(Check(deep).reason, "outside_root");

  // Deep JSON inside a string: cut, marked truncated, no deep DOM built.
  std::string s(100000, '[');
  s += std::string(100000, ']');
  EXPECT_TRUE(ExtractPathCandidates({{"p", s}}, &truncated).empty());
  EXPECT_TRUE(truncated);

  json shallow = {{"path", "ok"}};
  for (int i = 0; i < 10; ++i) shallow = json::array({shallow});
  EXPECT_EQ(ExtractPathCandidates(shallow, &truncated),
            std::vector<std::string>{"ok"});
  EXPECT_FALSE(truncated);
}

TEST_F(PathPolicyTest, SizeBounds) {
  // Only the first kMaxPathScanStringBytes of a string are opaque-scanned.
  std::string big(kMaxPathScanStringBytes, 'x');
  bool truncated = true;
  EXPECT_TRUE(
      ExtractPathCandidates({{"content", big + " path=../x"}}, &truncated)
          .empty());
  EXPECT_FALSE(truncated);
  EXPECT_EQ(ExtractPathCandidates({{"content", "path=../x " + big}}),
            std::vector<std::string>{"../x"});
  // Over-long candidates do not resolve and are denied.
  EXPECT_EQ(Check({{"path", std::string(kMaxCandidateBytes + 1, 'a')}}).reason,
            "outside_root");
  // Too many candidates: fail closed.
  json many = json::array();
  for (std::size_t i = 0; i <= kMaxPathCandidates; ++i) {
    many.push_back("f" + std::to_string(i));
  }
  ExtractPathCandidates({{"paths", many}}, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(Check({{"paths", many}}).reason, "outside_root");
}

TEST(WildcardMatchTest, EdgeCases) {
  EXPECT_TRUE(WildcardMatch("", ""));
  EXPECT_FALSE(WildcardMatch("", "a"));
  EXPECT_TRUE(WildcardMatch("*", ""));
  EXPECT_TRUE(WildcardMatch("*", "a/b/c"));
  EXPECT_FALSE(WildcardMatch("?", ""));
  EXPECT_TRUE(WildcardMatch("?", "/"));
  EXPECT_FALSE(WildcardMatch("?", "ab"));
  EXPECT_TRUE(WildcardMatch(".env.*", ".env.local"));
  EXPECT_FALSE(WildcardMatch(".env.*", ".env"));
  EXPECT_TRUE(WildcardMatch("*.pem", "x.pem"));
  EXPECT_FALSE(WildcardMatch("*.pem", "x.PEM"));
  EXPECT_FALSE(WildcardMatch("*.pem", "x.pem.bak"));
  EXPECT_TRUE(WildcardMatch("a*b?d", "a/x/bcd"));
  EXPECT_TRUE(WildcardMatch("**", "x"));
  EXPECT_FALSE(WildcardMatch("a", "ab"));
  EXPECT_TRUE(WildcardMatch("[a]", "[a]"));  // everything else literal
  // A `*` in the text is not a literal match for the pattern's `*`, which
  // would leave nothing for the rest of the text.
  EXPECT_TRUE(WildcardMatch("*", "*a"));
  EXPECT_TRUE(WildcardMatch("a*", "a*b"));
}

TEST(WildcardMatchTest, PathologicalPatternIsFast) {
  const std::string text(200000, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(WildcardMatch("a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(WildcardMatch("a*a*a*a*a*a*a*a*", text));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(1));
}

}  // namespace
}  // namespace jcs::runtime
