// Cost of the tool-call policy pipeline on a realistic argument document
// (~50 keys, nested maps and lists, JSON-encoded strings, an opaque
// "path=..." blob, URLs): each step on its own, then the whole sequence.
//
//   ./bazelw run -c opt //runtime/tools:policy_bench
//   ./bazelw run -c opt //runtime/tools:policy_bench --
//   --benchmark_filter=Pipeline
//
// Steps: ValidateToolArgs (tool_schema.h), CheckEnvPayload (env_policy.h),
// CheckToolPaths (path_policy.h, against a temporary root with a few files),
// CheckNetwork (network_policy.h, allow policy with an allowlist),
// ScanForSensitiveArtifacts (sensitive_scan.h) on a tool result.
#include <stdio.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "benchmark/benchmark.h"
#include "nlohmann/json.hpp"
#include "runtime/policy/env_policy.h"
#include "runtime/policy/network_policy.h"
#include "runtime/policy/path_policy.h"
#include "runtime/policy/sensitive_scan.h"
#include "runtime/project/runtime_options.h"
#include "runtime/tools/tool_schema.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct Fixture {
  std::string root;
  json schema;
  json args;
  std::string args_text;
  json result;
  ValidatedOptions options;
};

Fixture* g_fixture = nullptr;

json MakeSchema() {
  return json::parse(R"({
    "type": "object",
    "required": ["path", "paths", "options", "env"],
    "properties": {
      "path": {"type": "string"},
      "paths": {"type": "array", "items": {"type": "string"}},
      "options": {
        "type": "object",
        "required": ["recursive", "max_depth"],
        "properties": {
          "recursive": {"type": "boolean"},
          "max_depth": {"type": "integer"},
          "include": {"type": "array", "items": {"type": "string"}},
          "exclude": {"type": "array", "items": {"type": "string"}},
          "follow": {"type": "boolean"},
          "ratio": {"type": "number"}
        }
      },
      "env": {"type": "object"},
      "url": {"type": "string"},
      "endpoint": {"type": "string"},
      "payload": {"type": "string"},
      "blob": {"type": "string"},
      "query": {"type": "string"},
      "limit": {"type": "integer"},
      "dry_run": {"type": "boolean"},
      "meta": {"type": "object"},
      "steps": {"type": "array", "items": {"type": "object"}},
      "labels": {"type": "array", "items": {"type": "string"}},
      "note": {"type": "null"}
    },
    "additionalProperties": true
  })");
}

json MakeArgs() {
  return json::parse(R"({
    "path": "src/main.cc",
    "paths": ["src/main.cc", "src/util/strings.cc", "include/util.h",
              "docs/README.md"],
    "options": {"recursive": true, "max_depth": 4,
                "include": ["*.cc", "*.h", "*.md"],
                "exclude": ["build/*", "third_party/*"],
                "follow": false, "ratio": 0.75},
    "env": {"LANG": "C.UTF-8", "TZ": "UTC", "RUST_LOG": "info"},
    "url": "https://api.example.com/v1/projects/42/files?page=2&per_page=50",
    "endpoint": "https://hooks.example.com/notify",
    "payload": "{\"target_path\":\"src/util/strings.cc\",\"base_url\":\"https://cdn.example.com/assets/app.js\",\"retries\":3,\"tags\":[\"a\",\"b\"]}",
    "blob": "path=src/generated/out.txt mode=rw owner=build note=regenerated-by-tool",
    "query": "find usages of StrCat in src/ and include/",
    "limit": 25,
    "dry_run": false,
    "meta": {
      "conversation_id": "conv-1f2e3d",
      "correlation_id": "corr-8c7b6a5f",
      "requested_by": "assistant",
      "attempt": 1,
      "trace": {"span": "abc123", "parent": "def456", "sampled": true},
      "context": "{\"cwd\":\"src\",\"file\":\"src/main.cc\",\"line\":120}"
    },
    "steps": [
      {"name": "read", "file_path": "src/main.cc", "offset": 0, "length": 4096},
      {"name": "grep", "pattern": "StrCat\\(", "dir": "src/util"},
      {"name": "fetch", "source_url": "https://docs.example.com/guide#strings",
       "timeout_ms": 2000},
      {"name": "write", "output_file": "docs/notes.md", "append": true}
    ],
    "labels": ["refactor", "strings", "low-risk"],
    "description": "Refactor string helpers; see https://wiki.example.com/StrCat for the migration guide.",
    "note": null
  })");
}

json MakeResult() {
  std::string stdout_text;
  for (int i = 0; i < 40; ++i) {
    stdout_text += "src/util/strings.cc:" + std::to_string(100 + i) +
                   ": absl::StrCat(prefix, name, suffix);\n";
  }
  return json{
      {"exit_code", 0},
      {"stdout", stdout_text},
      {"stderr", "warning: 3 matches in generated files skipped\n"},
      {"files",
       {{{"path", "src/util/strings.cc"}, {"matches", 40}, {"bytes", 18231}},
        {{"path", "include/util.h"}, {"matches", 2}, {"bytes", 2048}}}},
      {"meta",
       {{"duration_ms", 42},
        {"cache", {{"hit", false}, {"key", "grep:src:StrCat"}}},
        {"api_token", ""},
        {"note", "Authorization header omitted"}}},
      {"summary", "42 matches in 2 files"},
  };
}

void Check(bool ok, const char* what, const std::string& why) {
  if (!ok) {
    fprintf(stderr, "policy_bench: %s did not pass: %s\n", what, why.c_str());
    exit(1);
  }
}

bool RunPipeline(const Fixture& f, const json& args) {
  if (!ValidateToolArgs(f.schema, args).ok()) return false;
  if (!CheckEnvPayload(args, f.options).ok) return false;
  if (!CheckToolPaths(f.root, args, f.options).allowed) return false;
  if (!CheckNetwork(args, f.options).allowed) return false;
  SensitiveScanResult scan = ScanForSensitiveArtifacts(f.result);
  benchmark::DoNotOptimize(scan);
  return true;
}

void BM_ParseArgs(benchmark::State& state) {
  for (auto _ : state) {
    json args = json::parse(g_fixture->args_text);
    benchmark::DoNotOptimize(args);
  }
}
BENCHMARK(BM_ParseArgs);

void BM_ValidateToolArgs(benchmark::State& state) {
  for (auto _ : state) {
    absl::Status status = ValidateToolArgs(g_fixture->schema, g_fixture->args);
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_ValidateToolArgs);

void BM_CheckEnvPayload(benchmark::State& state) {
  for (auto _ : state) {
    EnvDecision decision = CheckEnvPayload(g_fixture->args, g_fixture->options);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_CheckEnvPayload);

void BM_CheckToolPaths(benchmark::State& state) {
  for (auto _ : state) {
    PathDecision decision =
        CheckToolPaths(g_fixture->root, g_fixture->args, g_fixture->options);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_CheckToolPaths);

void BM_ExtractPathCandidates(benchmark::State& state) {
  for (auto _ : state) {
    auto candidates = ExtractPathCandidates(g_fixture->args);
    benchmark::DoNotOptimize(candidates);
  }
}
BENCHMARK(BM_ExtractPathCandidates);

void BM_CheckNetwork(benchmark::State& state) {
  for (auto _ : state) {
    NetworkDecision decision =
        CheckNetwork(g_fixture->args, g_fixture->options);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_CheckNetwork);

void BM_ScanForSensitiveArtifacts(benchmark::State& state) {
  for (auto _ : state) {
    SensitiveScanResult scan = ScanForSensitiveArtifacts(g_fixture->result);
    benchmark::DoNotOptimize(scan);
  }
}
BENCHMARK(BM_ScanForSensitiveArtifacts);

void BM_Pipeline(benchmark::State& state) {
  for (auto _ : state) {
    bool ok = RunPipeline(*g_fixture, g_fixture->args);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Pipeline);

void BM_PipelineWithParse(benchmark::State& state) {
  for (auto _ : state) {
    json args = json::parse(g_fixture->args_text);
    bool ok = RunPipeline(*g_fixture, args);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_PipelineWithParse);

size_t CountKeys(const json& value) {
  size_t n = 0;
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) n += 1 + CountKeys(child);
  } else if (value.is_array()) {
    for (const json& child : value) n += CountKeys(child);
  }
  return n;
}

}  // namespace
}  // namespace jcs::runtime

int main(int argc, char** argv) {
  using namespace jcs::runtime;
  char tmpl[] = "/tmp/policy_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    perror("mkdtemp");
    return 1;
  }
  Fixture fixture;
  fixture.root = std::filesystem::canonical(tmpl).string();
  for (const char* rel :
       {"src/main.cc", "src/util/strings.cc", "include/util.h",
        "docs/README.md", "docs/notes.md", "src/generated/out.txt"}) {
    const std::filesystem::path p = fixture.root + "/" + rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << "// " << rel << "\n";
  }
  fixture.schema = MakeSchema();
  fixture.args = MakeArgs();
  fixture.args_text = fixture.args.dump();
  fixture.result = MakeResult();
  fixture.options.network_egress_policy = EgressPolicy::kAllow;
  fixture.options.network_allowlist = {"example.com"};
  fixture.options.tool_env_allowlist = {"LANG", "TZ", "RUST_LOG"};

  // Every step must pass, so the figures measure the full (allowed) path.
  const absl::Status schema = ValidateToolArgs(fixture.schema, fixture.args);
  Check(schema.ok(), "ValidateToolArgs", std::string(schema.message()));
  const EnvDecision env = CheckEnvPayload(fixture.args, fixture.options);
  Check(env.ok, "CheckEnvPayload", env.reason);
  const PathDecision paths =
      CheckToolPaths(fixture.root, fixture.args, fixture.options);
  Check(paths.allowed, "CheckToolPaths", paths.reason + " " + paths.candidate);
  const NetworkDecision net = CheckNetwork(fixture.args, fixture.options);
  Check(net.allowed, "CheckNetwork", net.reason + " " + net.target);
  const SensitiveScanResult scan = ScanForSensitiveArtifacts(fixture.result);
  printf(
      "args: %zu keys, %zu bytes; %zu path candidates, %zu network targets; "
      "result scan: %zu findings\n",
      CountKeys(fixture.args), fixture.args_text.size(),
      ExtractPathCandidates(fixture.args).size(),
      ExtractNetworkTargets(fixture.args).size(), scan.finding_count);
  g_fixture = &fixture;

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(fixture.root);
  return 0;
}
