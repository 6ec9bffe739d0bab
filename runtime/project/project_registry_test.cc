#include "runtime/project/project_registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/project/runtime_options_error.h"
#include "runtime/project/value.h"

namespace jcs::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr uid_t kUserUid = 1000;
constexpr gid_t kUserGid = 1000;

bool IsDir(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string RealPath(const std::string& path) {
  char* r = realpath(path.c_str(), nullptr);
  std::string out = r == nullptr ? "" : r;
  free(r);
  return out;
}

struct Event {
  std::string name;
  nlohmann::json payload;
};

class ProjectRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern =
        std::string(base != nullptr ? base : "/tmp") + "/registry_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    root_ = tmp_ + "/root";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    // Owned by a user: a root-owned root needs run_as (tested below).
    ASSERT_EQ(chown(root_.c_str(), kUserUid, kUserGid), 0);
    ProjectRegistry::Config config;
    config.on_event = [this](absl::string_view name,
                             const nlohmann::json& payload) {
      events_.push_back({std::string(name), payload});
      // Hooks may read the registry.
      listed_in_hook_.push_back(registry_->ListProjects().size());
    };
    config.clock = [] { return absl::FromUnixSeconds(1700000000); };
    registry_ = std::make_unique<ProjectRegistry>(std::move(config));
  }

  void WriteFile(const std::string& path) {
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
  }

  // Starts and expects an error whose machine reason is `reason`.
  void ExpectStartError(const std::string& root, const OptionList& options,
                        const StartProjectParams& params,
                        const std::string& reason) {
    const size_t events = events_.size();
    const size_t projects = registry_->ListProjects().size();
    absl::StatusOr<std::string> id =
        registry_->StartProject(root, options, params);
    ASSERT_FALSE(id.ok()) << "started " << *id << ", wanted " << reason;
    EXPECT_EQ(ProjectErrorReason(id.status()), reason) << id.status();
    EXPECT_THAT(std::string(id.status().message()), StartsWith(reason));
    // Nothing started, nothing emitted.
    EXPECT_EQ(events_.size(), events);
    EXPECT_EQ(registry_->ListProjects().size(), projects);
  }

  // Starts and expects a refusal whose machine reason starts with `prefix`
  // (these carry the path and the fix), and that nothing was created.
  void ExpectRefused(const std::string& root, const StartProjectParams& params,
                     const std::string& prefix) {
    const size_t events = events_.size();
    absl::StatusOr<std::string> id = registry_->StartProject(root, {}, params);
    ASSERT_FALSE(id.ok()) << "started " << *id << ", wanted " << prefix;
    EXPECT_THAT(ProjectErrorReason(id.status()), StartsWith(prefix))
        << id.status();
    EXPECT_EQ(events_.size(), events);
    EXPECT_FALSE(Exists(root + "/.jido")) << root;
  }

  // A fresh directory under tmp_ owned by the user.
  std::string NewRoot(const std::string& name, uid_t uid = kUserUid,
                      gid_t gid = kUserGid, mode_t mode = 0755) {
    const std::string path = tmp_ + "/" + name;
    EXPECT_EQ(mkdir(path.c_str(), 0700), 0) << path;
    EXPECT_EQ(chown(path.c_str(), uid, gid), 0) << path;
    EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
    return path;
  }

  std::string tmp_;
  std::string root_;
  std::vector<Event> events_;
  std::vector<size_t> listed_in_hook_;
  std::unique_ptr<ProjectRegistry> registry_;
};

TEST_F(ProjectRegistryTest, StartWithDefaultsCreatesLayoutAndEmits) {
  // Through a symlink: the registry stores the canonical root.
  const std::string link = tmp_ + "/link";
  ASSERT_EQ(symlink(root_.c_str(), link.c_str()), 0);
  absl::StatusOr<std::string> id = registry_->StartProject(link, {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "project_1");
  const std::string canonical = RealPath(root_);
  for (const char* dir : kLayoutDirs) {
    EXPECT_TRUE(IsDir(canonical + "/.jido/" + dir)) << dir;
  }
  std::vector<ProjectSummary> list = registry_->ListProjects();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].project_id, "project_1");
  EXPECT_EQ(list[0].root_path, canonical);
  EXPECT_EQ(list[0].data_dir, ".jido");
  EXPECT_EQ(list[0].conversation_count, 0);
  EXPECT_EQ(list[0].started_at, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(list[0].options.tool_timeout_ms, 30000);

  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].name, "project.started");
  EXPECT_EQ(events_[0].payload, (nlohmann::json{{"project_id", "project_1"},
                                                {"root_path", canonical},
                                                {"data_dir", ".jido"}}));
  EXPECT_THAT(listed_in_hook_, ElementsAre(1u));

  EXPECT_EQ(
      SummaryToJson(list[0]),
      (nlohmann::json{
          {"project_id", "project_1"},
          {"root_path", canonical},
          {"data_dir", ".jido"},
          {"conversation_count", 0},
          {"started_at", "2023-11-14T22:13:20+00:00"},
          {"owner_uid", 0},
          {"run_as",
           {{"uid", kUserUid}, {"gid", kUserGid}, {"source", "root_owner"}}},
          {"runtime_opts", nlohmann::json::object()}}));
}

TEST_F(ProjectRegistryTest, OptionsAreValidatedAndStored) {
  absl::StatusOr<OptionList> options =
      ParseKeyValues({"tool_timeout_ms=500", "network_egress_policy=allow",
                      "jail_memory=64M"});
  ASSERT_TRUE(options.ok());
  absl::StatusOr<std::string> id = registry_->StartProject(root_, *options);
  ASSERT_TRUE(id.ok()) << id.status();
  std::optional<ProjectSummary> summary = registry_->GetProject(*id);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->options.tool_timeout_ms, 500);
  EXPECT_EQ(summary->options.network_egress_policy, EgressPolicy::kAllow);
  EXPECT_EQ(*summary->options.jail_memory_bytes, 64u << 20);
  EXPECT_EQ(SummaryToJson(*summary)["runtime_opts"],
            nlohmann::json::parse(R"({"tool_timeout_ms": 500,
                "network_egress_policy": "allow", "jail_memory": 67108864})"));
}

TEST_F(ProjectRegistryTest, SuppliedIdIsTrimmedAndDuplicateIsAlreadyStarted) {
  StartProjectParams params;
  params.project_id = "  my-proj.v2_x \n";
  absl::StatusOr<std::string> id = registry_->StartProject(root_, {}, params);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "my-proj.v2_x");

  params.project_id = "my-proj.v2_x";
  absl::StatusOr<std::string> again =
      registry_->StartProject(root_, {}, params);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  ExpectStartError(root_, {}, params, "already_started: my-proj.v2_x");
}

TEST_F(ProjectRegistryTest, IdAndDataDirFromTheOptionList) {
  absl::StatusOr<std::string> id = registry_->StartProject(
      root_, {{"project_id", Value::String("from-opts")},
              {"data_dir", Value::String("state/jcs")}});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "from-opts");
  EXPECT_TRUE(IsDir(root_ + "/state/jcs/skills"));
  // Explicit parameters win over options.
  const std::string second = NewRoot("second");
  StartProjectParams params;
  params.project_id = "explicit";
  params.data_dir = "other";
  id = registry_->StartProject(second,
                               {{"project_id", Value::String("ignored")},
                                {"data_dir", Value::String("/abs")}},
                               params);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "explicit");
  EXPECT_TRUE(IsDir(second + "/other/workflows"));
  // A null project_id option means "generate one".
  id = registry_->StartProject(NewRoot("third"),
                               {{"project_id", Value::Null()}});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "project_1");
}

TEST_F(ProjectRegistryTest, GeneratedIdsSkipRunningIds) {
  StartProjectParams params;
  params.project_id = "project_2";
  ASSERT_TRUE(registry_->StartProject(root_, {}, params).ok());
  EXPECT_EQ(*registry_->StartProject(NewRoot("r1"), {}), "project_1");
  EXPECT_EQ(*registry_->StartProject(NewRoot("r3"), {}), "project_3");
}

// Failed starts (each check after the id used to be drawn) leave the
// generated sequence alone: ids do not skip numbers.
TEST_F(ProjectRegistryTest, FailedStartsDoNotConsumeGeneratedIds) {
  EXPECT_FALSE(registry_->StartProject(root_, {{"bogus", Value::Int(1)}}).ok());
  EXPECT_FALSE(
      registry_->StartProject(root_, {{"data_dir", Value::String("/abs")}})
          .ok());
  EXPECT_FALSE(registry_->StartProject(tmp_ + "/missing", {}).ok());
  EXPECT_EQ(*registry_->StartProject(root_, {}), "project_1");
  // An overlapping root fails after every option check.
  EXPECT_FALSE(registry_->StartProject(root_ + "/.jido", {}).ok());
  EXPECT_EQ(*registry_->StartProject(NewRoot("r2"), {}), "project_2");
}

TEST_F(ProjectRegistryTest, StopListAndNotFound) {
  for (const char* name : {"b", "a", "c"}) {
    StartProjectParams params;
    params.project_id = name;
    ASSERT_TRUE(registry_->StartProject(NewRoot(name), {}, params).ok())
        << name;
  }
  std::vector<std::string> ids;
  for (const ProjectSummary& s : registry_->ListProjects()) {
    ids.push_back(s.project_id);
  }
  EXPECT_THAT(ids, ElementsAre("a", "b", "c"));

  ASSERT_TRUE(registry_->StopProject("b").ok());
  ASSERT_EQ(events_.back().name, "project.stopped");
  EXPECT_EQ(events_.back().payload, (nlohmann::json{{"project_id", "b"}}));
  EXPECT_EQ(listed_in_hook_.back(), 2u);
  ids.clear();
  for (const ProjectSummary& s : registry_->ListProjects()) {
    ids.push_back(s.project_id);
  }
  EXPECT_THAT(ids, ElementsAre("a", "c"));
  EXPECT_FALSE(registry_->GetProject("b").has_value());

  const size_t events = events_.size();
  absl::Status again = registry_->StopProject("b");
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ProjectErrorReason(again), "project_not_found: b");
  EXPECT_EQ(events_.size(), events);

  // Restart after stop reuses the existing layout.
  StartProjectParams params;
  params.project_id = "b";
  EXPECT_TRUE(registry_->StartProject(tmp_ + "/b", {}, params).ok());
}

TEST_F(ProjectRegistryTest, RootPathErrors) {
  const std::string file = tmp_ + "/file";
  WriteFile(file);
  ExpectStartError("", {}, {}, "invalid_root_path: expected_string");
  ExpectStartError(std::string("/tmp\0x", 6), {}, {},
                   "invalid_root_path: expected_string");
  ExpectStartError(tmp_ + "/missing", {}, {}, "invalid_root_path: enoent");
  ExpectStartError(file, {}, {}, "invalid_root_path: not_directory");
  ExpectStartError(file + "/below", {}, {}, "invalid_root_path: enotdir");
  const std::string dangling = tmp_ + "/dangling";
  ASSERT_EQ(symlink((tmp_ + "/nowhere").c_str(), dangling.c_str()), 0);
  ExpectStartError(dangling, {}, {}, "invalid_root_path: enoent");
  absl::StatusOr<std::string> id = registry_->StartProject(file, {});
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProjectRegistryTest, DataDirErrors) {
  struct Row {
    Value data_dir;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {Value::String(""), "invalid_data_dir: expected_non_empty_string"},
      {Value::String(" \t"), "invalid_data_dir: expected_non_empty_string"},
      {Value::Int(5), "invalid_data_dir: expected_non_empty_string"},
      {Value::Null(), "invalid_data_dir: expected_non_empty_string"},
      {Value::String(std::string("a\0b", 3)),
       "invalid_data_dir: invalid_chars"},
      {Value::String("/abs"), "invalid_data_dir: must_be_relative"},
      {Value::String("/"), "invalid_data_dir: must_be_relative"},
      {Value::String(".."), "invalid_data_dir: must_not_traverse"},
      {Value::String("../outside"), "invalid_data_dir: must_not_traverse"},
      {Value::String("a/../../b"), "invalid_data_dir: must_not_traverse"},
      {Value::String("a/.."), "invalid_data_dir: must_not_traverse"},
      {Value::String("./a//../x"), "invalid_data_dir: must_not_traverse"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.data_dir.ToJsonText());
    ExpectStartError(root_, {{"data_dir", row.data_dir}}, {}, row.reason);
    if (row.data_dir.is_string()) {
      StartProjectParams params;
      params.data_dir = row.data_dir.string_value();
      ExpectStartError(root_, {}, params, row.reason);
    }
  }
  EXPECT_FALSE(Exists(tmp_ + "/outside"));
  EXPECT_FALSE(Exists(tmp_ + "/b"));
  EXPECT_FALSE(Exists(root_ + "/.jido"));
  // ".." inside a segment name is not traversal.
  StartProjectParams params;
  params.data_dir = "a..b/./c";
  ASSERT_TRUE(registry_->StartProject(root_, {}, params).ok());
  EXPECT_TRUE(IsDir(root_ + "/a..b/c/state"));
}

TEST_F(ProjectRegistryTest, ProjectIdErrors) {
  struct Row {
    Value id;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {Value::String(""), "invalid_project_id: empty"},
      {Value::String(" \n\t "), "invalid_project_id: empty"},
      {Value::Int(1), "invalid_project_id: expected_string"},
      {Value::Strings({"a"}), "invalid_project_id: expected_string"},
      {Value::String(std::string(129, 'a')), "invalid_project_id: too_long"},
      {Value::String("a/b"), "invalid_project_id: invalid_chars"},
      {Value::String("."), "invalid_project_id: invalid_chars"},
      {Value::String(".."), "invalid_project_id: invalid_chars"},
      {Value::String(".hidden"), "invalid_project_id: invalid_chars"},
      {Value::String("-rf"), "invalid_project_id: invalid_chars"},
      {Value::String("a b"), "invalid_project_id: invalid_chars"},
      {Value::String("a\nb"), "invalid_project_id: invalid_chars"},
      {Value::String("caf\xc3\xa9"), "invalid_project_id: invalid_chars"},
      {Value::String("a:b"), "invalid_project_id: invalid_chars"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.id.ToJsonText());
    ExpectStartError(root_, {{"project_id", row.id}}, {}, row.reason);
    if (row.id.is_string()) {
      StartProjectParams params;
      params.project_id = row.id.string_value();
      ExpectStartError(root_, {}, params, row.reason);
    }
  }
  StartProjectParams params;
  params.project_id = std::string(128, 'z');
  EXPECT_TRUE(registry_->StartProject(root_, {}, params).ok());
}

TEST_F(ProjectRegistryTest, RuntimeOptionErrorIsInvalidRuntimeOpt) {
  const std::string expected =
      "invalid_runtime_opt{key: \"outside_root_allowlist\", reason: "
      "\"invalid_entry[1]: missing_reason_code\"}";
  OptionList options = {
      {"tool_timeout_ms", Value::Int(5)},
      {"outside_root_allowlist",
       Value::ListOf({Value::MapOf({{"path", Value::String("/a")},
                                    {"reason_code", Value::String("r")}}),
                      Value::MapOf({{"path", Value::String("/b")}})})},
      {"bogus", Value::Int(1)},
  };
  ExpectStartError(root_, options, {}, expected);
  absl::StatusOr<std::string> id = registry_->StartProject(root_, options);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(id.status().message(), expected);
  EXPECT_EQ(GetInvalidRuntimeOpt(id.status()),
            InvalidRuntimeOpt::Entry("outside_root_allowlist", 1,
                                     "missing_reason_code"));
  // The layout was not created.
  EXPECT_FALSE(Exists(root_ + "/.jido"));

  // The same from KEY=VALUE strings and from protobuf.
  absl::StatusOr<OptionList> cli = ParseKeyValues({"jail_cpus=0"});
  ASSERT_TRUE(cli.ok());
  proto::RuntimeOptions message;
  proto::RuntimeOption* option = message.add_options();
  option->set_key("jail_cpus");
  option->mutable_value()->set_int_value(0);
  const std::string cpus =
      "invalid_runtime_opt{key: \"jail_cpus\", reason: "
      "\"expected_positive_number\"}";
  ExpectStartError(root_, *cli, {}, cpus);
  ExpectStartError(root_, OptionsFromProto(message), {}, cpus);
}

TEST_F(ProjectRegistryTest, ChecksRunInSpecOrder) {
  const std::string missing = tmp_ + "/missing";
  const OptionList bad_option = {{"tool_timeout_ms", Value::Int(0)}};
  StartProjectParams bad_all;
  bad_all.data_dir = "../x";
  bad_all.project_id = "bad/id";
  StartProjectParams bad_id;
  bad_id.project_id = "bad/id";
  // 1 root before 2 data_dir before 3 id before 4 options.
  ExpectStartError(missing, bad_option, bad_all, "invalid_root_path: enoent");
  ExpectStartError(root_, bad_option, bad_all,
                   "invalid_data_dir: must_not_traverse");
  ExpectStartError(root_, bad_option, bad_id,
                   "invalid_project_id: invalid_chars");
  // 4 options before 5 duplicate.
  StartProjectParams dup;
  dup.project_id = "dup";
  ASSERT_TRUE(registry_->StartProject(root_, {}, dup).ok());
  ExpectStartError(root_, bad_option, dup,
                   "invalid_runtime_opt{key: \"tool_timeout_ms\", reason: "
                   "\"expected_positive_integer\"}");
  // 5 duplicate before 7 overlap before 8 layout.
  dup.data_dir = "blocked";
  WriteFile(root_ + "/blocked");
  ExpectStartError(root_, {}, dup, "already_started: dup");
  dup.project_id = "fresh";
  absl::StatusOr<std::string> fresh = registry_->StartProject(root_, {}, dup);
  EXPECT_THAT(ProjectErrorReason(fresh.status()),
              StartsWith("overlapping_project_root: "));
  ASSERT_TRUE(registry_->StopProject("dup").ok());
  ExpectStartError(root_, {}, dup, "layout_create_failed: enotdir");
}

TEST_F(ProjectRegistryTest, ToolsRunAsTheRootsOwnerAndOwnTheLayout) {
  absl::StatusOr<std::string> id = registry_->StartProject(root_, {});
  ASSERT_TRUE(id.ok()) << id.status();
  const ProjectSummary summary = *registry_->GetProject(*id);
  EXPECT_EQ(summary.owner_uid, 0u);  // the default requester: in-process
  EXPECT_EQ(SummaryToJson(summary)["run_as"],
            nlohmann::json::parse(
                R"({"uid": 1000, "gid": 1000, "source": "root_owner"})"));
  // Everything created is the tools' (today's root:root would be unusable).
  for (const std::string rel : {"/.jido", "/.jido/state", "/.jido/skills"}) {
    struct stat st;
    ASSERT_EQ(lstat((root_ + rel).c_str(), &st), 0) << rel;
    EXPECT_EQ(st.st_uid, kUserUid) << rel;
    EXPECT_EQ(st.st_gid, kUserGid) << rel;
  }
}

TEST_F(ProjectRegistryTest, RootOwnedRootNeedsRunAs) {
  const std::string owned = NewRoot("rootowned", 0, 0);
  ExpectRefused(owned, {}, "root_owned_by_root: ");
  absl::StatusOr<std::string> id = registry_->StartProject(owned, {});
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("--run-as"));

  StartProjectParams params;
  params.run_as_uid = 0;
  ExpectRefused(owned, params, "invalid_run_as: ");
  params.run_as_uid = 1234;
  params.run_as_gid = 0;
  ExpectRefused(owned, params, "invalid_run_as: ");
  StartProjectParams gid_only;
  gid_only.run_as_gid = 1234;
  ExpectRefused(owned, gid_only, "invalid_run_as: ");

  params.run_as_gid.reset();  // defaults to the uid
  id = registry_->StartProject(owned, {}, params);
  ASSERT_TRUE(id.ok()) << id.status();
  const RunAs run_as = registry_->GetProject(*id)->run_as;
  EXPECT_EQ(run_as.uid, 1234u);
  EXPECT_EQ(run_as.gid, 1234u);
  EXPECT_EQ(run_as.source, "run_as");
  struct stat st;
  ASSERT_EQ(lstat((owned + "/.jido/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
}

TEST_F(ProjectRegistryTest, AClientStartsProjectsOnlyAsItself) {
  constexpr uid_t kAlice = 1001;
  // Under /tmp: Bob must be able to search the ancestors of his own root
  // (TEST_TMPDIR may be below root's private home).
  std::string pattern = "/tmp/jcs_registry_XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  ASSERT_EQ(chmod(pattern.c_str(), 0755), 0);
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } cleanup{pattern};
  tmp_ = RealPath(pattern);
  StartProjectParams bob;
  bob.requester = {kUserUid, kUserGid, {}, /*privileged=*/false};
  // Alice's private directory: refused, and nothing created in it.
  const std::string alice = NewRoot("alice", kAlice, kAlice, 0700);
  ExpectRefused(alice, bob, "unauthorized: uid 1000 ");
  // A root-owned directory Bob cannot write: refused.
  ExpectRefused(NewRoot("system", 0, 0, 0755), bob, "unauthorized: uid 1000 ");
  // Bob may not pick another identity.
  const std::string own = NewRoot("bob", kUserUid, kUserGid, 0700);
  StartProjectParams bob_as_alice = bob;
  bob_as_alice.run_as_uid = kAlice;
  ExpectRefused(own, bob_as_alice, "unauthorized: uid 1000 may not set run_as");
  // Through a symlink to Alice's directory: the real path is checked.
  ASSERT_EQ(symlink(alice.c_str(), (own + "/to-alice").c_str()), 0);
  ExpectRefused(own + "/to-alice", bob, "unauthorized: uid 1000 ");
  EXPECT_FALSE(Exists(alice + "/.jido"));

  // No oracle: a missing path, a file and an existing directory inside
  // Alice's private directory get the same answer (the daemon resolves as
  // root).
  ASSERT_EQ(mkdir((alice + "/exists").c_str(), 0700), 0);
  ASSERT_EQ(close(open((alice + "/file").c_str(), O_CREAT | O_WRONLY, 0600)),
            0);
  std::vector<std::string> answers;
  for (const char* rel : {"/exists", "/missing", "/file"}) {
    absl::StatusOr<std::string> refused =
        registry_->StartProject(alice + rel, {}, bob);
    ASSERT_FALSE(refused.ok());
    std::string message(refused.status().message());
    const size_t at = message.find(alice + rel);
    ASSERT_NE(at, std::string::npos) << message;
    message.erase(at, alice.size() + strlen(rel));
    answers.push_back(message);
  }
  EXPECT_EQ(answers[0], answers[1]);
  EXPECT_EQ(answers[0], answers[2]);

  absl::StatusOr<std::string> id = registry_->StartProject(own, {}, bob);
  ASSERT_TRUE(id.ok()) << id.status();
  const ProjectSummary summary = *registry_->GetProject(*id);
  EXPECT_EQ(summary.owner_uid, kUserUid);
  EXPECT_EQ(summary.run_as.uid, kUserUid);
  EXPECT_EQ(summary.run_as.gid, kUserGid);
  EXPECT_EQ(summary.run_as.source, "peer");
}

TEST_F(ProjectRegistryTest, OverlappingRootsAreRefusedBothWays) {
  StartProjectParams params;
  params.project_id = "outer";
  const std::string outer = NewRoot("outer");
  ASSERT_TRUE(registry_->StartProject(outer, {}, params).ok());
  // Inside a running project, equal to it, and containing it.
  const std::string inner = outer + "/inner";
  ASSERT_EQ(mkdir(inner.c_str(), 0755), 0);
  ASSERT_EQ(chown(inner.c_str(), kUserUid, kUserGid), 0);
  params.project_id = "second";
  ExpectRefused(inner, params, "overlapping_project_root: ");
  absl::StatusOr<std::string> id = registry_->StartProject(inner, {}, params);
  EXPECT_THAT(std::string(ProjectErrorReason(id.status())),
              HasSubstr("project outer"));
  ASSERT_FALSE(Exists(outer + "/.jido/state/x"));
  params.project_id = "same";
  absl::StatusOr<std::string> same = registry_->StartProject(outer, {}, params);
  EXPECT_THAT(std::string(ProjectErrorReason(same.status())),
              StartsWith("overlapping_project_root: "));
  ASSERT_EQ(chown(tmp_.c_str(), kUserUid, kUserGid), 0);
  params.project_id = "parent";
  ExpectRefused(tmp_, params, "overlapping_project_root: ");
  // A sibling is fine; once `outer` stops, its inside is too.
  EXPECT_TRUE(registry_->StartProject(NewRoot("sibling"), {}).ok());
  ASSERT_TRUE(registry_->StopProject("outer").ok());
  EXPECT_TRUE(registry_->StartProject(inner, {}).ok());
}

TEST_F(ProjectRegistryTest, RootsHoldingTheDaemonsFilesAreRefused) {
  const std::string daemon = NewRoot("daemon", 0, 0);
  const std::string etc = NewRoot("etc", 0, 0);
  ProjectRegistry::Config config;
  config.daemon_paths = {daemon + "/run/jcs.sock", daemon + "/state",
                         etc + "/jcs.conf"};
  ASSERT_EQ(mkdir((daemon + "/state").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((daemon + "/run").c_str(), 0755), 0);
  WriteFile(etc + "/jcs.conf");
  ProjectRegistry registry(config);
  StartProjectParams params;
  params.run_as_uid = 1234;
  const auto refused = [&](const std::string& root, const std::string& which) {
    absl::StatusOr<std::string> id = registry.StartProject(root, {}, params);
    ASSERT_FALSE(id.ok()) << root;
    EXPECT_THAT(ProjectErrorReason(id.status()),
                StartsWith("root_contains_daemon_files: "));
    EXPECT_THAT(ProjectErrorReason(id.status()), HasSubstr(which));
    EXPECT_FALSE(Exists(root + "/.jido")) << root;
  };
  refused(daemon + "/run", "jcs.sock");  // the socket (not yet created)
  refused(daemon, "state");              // a parent of the state dir
  refused(daemon + "/state", "state");   // inside the state dir
  refused(etc, "jcs.conf");              // the config file
  EXPECT_TRUE(registry.StartProject(root_, {}, params).ok());
}

TEST_F(ProjectRegistryTest, AFailedLayoutLeavesNothingBehind) {
  StartProjectParams params;
  // "made" is created, then the next component cannot be: "made" goes again.
  params.data_dir = "made/" + std::string(300, 'x');
  ExpectStartError(root_, {}, params, "layout_create_failed: enametoolong");
  EXPECT_FALSE(Exists(root_ + "/made"));
}

TEST_F(ProjectRegistryTest, LayoutDoesNotFollowSymlinks) {
  const std::string outside = tmp_ + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/.jido").c_str()), 0);
  ExpectStartError(root_, {}, {}, "layout_create_failed: eloop");
  // A symlinked layout subdirectory is refused as well.
  ASSERT_EQ(unlink((root_ + "/.jido").c_str()), 0);
  ASSERT_EQ(mkdir((root_ + "/.jido").c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/.jido/skills").c_str()), 0);
  ExpectStartError(root_, {}, {}, "layout_create_failed: eloop");
  // Nothing was created outside the root.
  DIR* dir = opendir(outside.c_str());
  ASSERT_NE(dir, nullptr);
  int entries = 0;
  while (readdir(dir) != nullptr) ++entries;
  closedir(dir);
  EXPECT_EQ(entries, 2);  // "." and ".."
}

TEST_F(ProjectRegistryTest, ErrorHelpers) {
  EXPECT_EQ(ErrnoName(ENOENT), "enoent");
  EXPECT_EQ(ErrnoName(EACCES), "eacces");
  EXPECT_EQ(ErrnoName(99999), "errno_99999");
  EXPECT_EQ(ProjectErrorReason(absl::OkStatus()), "");
  EXPECT_EQ(ProjectErrorReason(absl::InternalError("x")), "");
  EXPECT_THAT(registry_->ListProjects(), IsEmpty());
}

}  // namespace
}  // namespace jcs::runtime
