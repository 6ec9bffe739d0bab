// Fuzzes the path scanner and decision of tool calls (ExtractPathCandidates,
// CheckToolPaths) on a fixed temporary project root holding files, a
// sensitive file, symlinks inside, out of the root, dangling and in a loop.
// The input is the tool call's JSON arguments. Invariants beyond "no crash":
// candidates are trimmed, non-empty, unique and bounded; an allowed call has
// no truncated extraction, and each of its candidates resolves inside the
// root or under the one outside_root_allowlist entry, and is not sensitive.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/policy/path_policy.h"
#include "runtime/project/runtime_options.h"
#include "sanitizers/fuzz_check.h"

namespace {

namespace fs = std::filesystem;
using jcs::runtime::ValidatedOptions;

struct Fixture {
  std::string root;
  std::string canonical_root;
  std::string outside;
  ValidatedOptions options;
};

// The root lives under TEST_TMPDIR (the replay test) or /tmp (the fuzzer)
// and is removed at exit.
const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/path_policy_fuzz.XXXXXX";
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
    auto* f = new Fixture;
    f->root = tmpl + "/root";
    f->outside = tmpl + "/outside";
    fs::create_directories(f->root + "/a/b");
    fs::create_directories(f->outside + "/allowed");
    std::ofstream(f->root + "/a/b/file.txt") << "f";
    std::ofstream(f->root + "/.env") << "SECRET=1";
    std::ofstream(f->outside + "/allowed/doc.txt") << "d";
    fs::create_directory_symlink(f->outside, f->root + "/escape");
    fs::create_directory_symlink("a/b", f->root + "/inner");
    fs::create_symlink(f->outside + "/nowhere", f->root + "/dangling");
    fs::create_symlink("loop2", f->root + "/loop1");
    fs::create_symlink("loop1", f->root + "/loop2");
    fs::create_symlink(".env", f->root + "/env_link");
    f->canonical_root = fs::canonical(f->root).string();
    f->options.outside_root_allowlist.push_back(
        {f->outside + "/allowed/*", /*from_path=*/false, "docs"});
    atexit([] { fs::remove_all(fs::path(GetFixture().root).parent_path()); });
    return f;
  }();
  return *fixture;
}

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = GetFixture();
  const nlohmann::json args = nlohmann::json::parse(data, data + size, nullptr,
                                                    /*allow_exceptions=*/false);
  if (args.is_discarded()) return 0;

  bool truncated = false;
  const std::vector<std::string> candidates =
      jcs::runtime::ExtractPathCandidates(args, &truncated);
  FUZZ_CHECK(candidates.size() <= jcs::runtime::kMaxPathCandidates);
  const std::set<std::string> unique(candidates.begin(), candidates.end());
  FUZZ_CHECK(unique.size() == candidates.size());
  for (const std::string& c : candidates) {
    FUZZ_CHECK(!c.empty() && !IsBlank(c.front()) && !IsBlank(c.back()));
  }

  const jcs::runtime::PathDecision d =
      jcs::runtime::CheckToolPaths(f.root, args, f.options);
  if (!d.allowed) {
    FUZZ_CHECK(d.reason == "outside_root" ||
               d.reason == "sensitive_path_denied");
    return 0;
  }
  FUZZ_CHECK(!truncated);
  for (const std::string& c : candidates) {
    const absl::StatusOr<std::string> resolved =
        jcs::runtime::ResolveInRoot(f.root, c);
    FUZZ_CHECK(resolved.ok());
    if (jcs::runtime::IsInsideRoot(f.canonical_root, *resolved)) {
      const std::string relative =
          resolved->size() == f.canonical_root.size()
              ? ""
              : resolved->substr(f.canonical_root.size() + 1);
      FUZZ_CHECK(!jcs::runtime::IsSensitivePathOrAncestor(
          relative, f.options.sensitive_path_denylist,
          f.options.sensitive_path_allowlist));
    } else {
      FUZZ_CHECK(resolved->rfind(f.outside + "/allowed/", 0) == 0);
      FUZZ_CHECK(!d.exception_reason_codes.empty());
    }
  }
  return 0;
}
