#include "runtime/tools/fs_tools.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace jcs::runtime {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uid_t kUid = 65534;
constexpr gid_t kGid = 65534;

uid_t CurrentFsUid() {
  return static_cast<uid_t>(syscall(SYS_setfsuid, static_cast<uid_t>(-1)));
}
gid_t CurrentFsGid() {
  return static_cast<gid_t>(syscall(SYS_setfsgid, static_cast<gid_t>(-1)));
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ChownTree(const std::string& path) {
  ASSERT_EQ(lchown(path.c_str(), kUid, kGid), 0) << path;
  if (fs::is_directory(fs::symlink_status(path))) {
    for (const auto& entry : fs::recursive_directory_iterator(path)) {
      ASSERT_EQ(lchown(entry.path().c_str(), kUid, kGid), 0) << entry.path();
    }
  }
}

class FsToolsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The daemon drops its supplementary groups at start; so do the tests.
    if (getuid() == 0) setgroups(0, nullptr);
  }

  void SetUp() override {
    if (getuid() != 0) GTEST_SKIP() << "needs root (setfsuid, chown)";
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/fs_tools_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = fs::canonical(pattern).string();
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    fs::create_directories(root_ + "/sub/deeper");
    fs::create_directories(root_ + "/keys");
    fs::create_directories(root_ + "/secrets.key");
    fs::create_directories(outside_);
    WriteFile(root_ + "/hello.txt", "hello");
    WriteFile(root_ + "/empty.txt", "");
    WriteFile(root_ + "/sub/inner.txt", "inner");
    WriteFile(root_ + "/.env", "SECRET=1");
    WriteFile(root_ + "/keys/server.pem", "PEM");
    WriteFile(root_ + "/secrets.key/notes.txt", "notes");
    WriteFile(root_ + "/bin.dat", std::string("\xff\xfe\x00\x01", 4));
    WriteFile(outside_ + "/secret.txt", "TOP SECRET");
    WriteFile(outside_ + "/target.txt", "outside target");
    fs::create_symlink(".env", root_ + "/link_env");
    fs::create_symlink("/etc/passwd", root_ + "/link_passwd");
    fs::create_directory_symlink("../outside", root_ + "/escape");
    fs::create_directory_symlink("sub", root_ + "/inner_link");
    fs::create_symlink(root_ + "/hello.txt", root_ + "/abs_inside");
    fs::create_symlink("/proc/self/root/etc/passwd", root_ + "/proc_link");
    fs::create_symlink("../outside/target.txt", root_ + "/wlink");
    fs::create_symlink("hello.txt", root_ + "/hello_link");
    ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0666), 0);
    ChownTree(root_);
    // Root-only things: outside the root (hard-linked in) and inside it.
    ASSERT_EQ(chmod((outside_ + "/secret.txt").c_str(), 0600), 0);
    ASSERT_EQ(
        link((outside_ + "/secret.txt").c_str(), (root_ + "/hardlink").c_str()),
        0);
    fs::create_directories(root_ + "/rootonly");
    ASSERT_EQ(chmod((root_ + "/rootonly").c_str(), 0700), 0);
    WriteFile(root_ + "/rootonly/x.txt", "x");
    fs::create_directories(root_ + "/rootdir");
    ASSERT_EQ(chmod((root_ + "/rootdir").c_str(), 0755), 0);
    WriteFile(root_ + "/root600.txt", "r");
    ASSERT_EQ(chmod((root_ + "/root600.txt").c_str(), 0600), 0);

    ctx_.root = root_;
    ctx_.uid = kUid;
    ctx_.gid = kGid;
    ctx_.max_read_bytes = 1 << 20;
    ctx_.max_write_bytes = 1 << 20;
    ctx_.sensitive_denylist = {".env",  ".env.*", "*.pem",
                               "*.key", "id_rsa", "id_ed25519"};
  }

  void TearDown() override {
    if (!base_.empty()) fs::remove_all(base_);
    // Every path must leave the thread's fs identity as it found it.
    EXPECT_EQ(CurrentFsUid(), 0u);
    EXPECT_EQ(CurrentFsGid(), 0u);
  }

  ToolOutcome Read(const json& args) { return FsRead(ctx_, args); }
  ToolOutcome Write(const json& args) { return FsWrite(ctx_, args); }
  ToolOutcome List(const json& args) { return FsList(ctx_, args); }

  std::string base_, root_, outside_;
  FsToolContext ctx_;
};

void ExpectFail(const ToolOutcome& outcome, const std::string& reason) {
  EXPECT_FALSE(outcome.ok) << outcome.result.dump();
  EXPECT_EQ(outcome.reason, reason) << outcome.detail.dump();
}

// ---------------------------------------------------------------- fs.read

TEST_F(FsToolsTest, ReadsUtf8File) {
  ToolOutcome out = Read({{"path", "hello.txt"}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(out.result, json({{"path", "hello.txt"},
                              {"content", "hello"},
                              {"bytes", 5},
                              {"encoding", "utf-8"}}));
}

TEST_F(FsToolsTest, ReadsNestedAbsoluteAndDotPaths) {
  ToolOutcome out = Read({{"path", root_ + "/sub/inner.txt"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], "sub/inner.txt");
  EXPECT_EQ(out.result["content"], "inner");
  out = Read({{"path", "./sub/deeper/../inner.txt"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], "sub/inner.txt");
  out = Read({{"path", "sub//inner.txt"}});
  ASSERT_TRUE(out.ok) << out.reason;
}

TEST_F(FsToolsTest, ReadsThroughSymlinkInsideRootAndReportsRealPath) {
  ToolOutcome out = Read({{"path", "hello_link"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], "hello.txt");
  out = Read({{"path", "inner_link/inner.txt"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], "sub/inner.txt");
}

TEST_F(FsToolsTest, ReadsEmptyFile) {
  ToolOutcome out = Read({{"path", "empty.txt"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["bytes"], 0);
  EXPECT_EQ(out.result["content"], "");
  EXPECT_EQ(out.result["encoding"], "utf-8");
}

TEST_F(FsToolsTest, ReadsBinaryAsBase64) {
  ToolOutcome out = Read({{"path", "bin.dat"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["encoding"], "base64");
  EXPECT_EQ(out.result["content"], "//4AAQ==");
  EXPECT_EQ(out.result["bytes"], 4);
  // The result must always serialize.
  EXPECT_NO_THROW(out.result.dump());
}

TEST_F(FsToolsTest, DotDotEscapesAreOutsideRoot) {
  for (const char* path :
       {"..", "../outside/secret.txt", "sub/../../outside/secret.txt",
        "sub/deeper/../../../outside/target.txt"}) {
    ExpectFail(Read({{"path", path}}), "outside_root");
  }
}

TEST_F(FsToolsTest, AbsolutePathsOutsideRootAreOutsideRoot) {
  ExpectFail(Read({{"path", "/etc/passwd"}}), "outside_root");
  ExpectFail(Read({{"path", outside_ + "/secret.txt"}}), "outside_root");
  // A sibling sharing the root's name as a prefix is not inside.
  fs::create_directories(root_ + "x");
  WriteFile(root_ + "x/f.txt", "f");
  ExpectFail(Read({{"path", root_ + "x/f.txt"}}), "outside_root");
}

TEST_F(FsToolsTest, SymlinkToEtcPasswdIsOutsideRoot) {
  ExpectFail(Read({{"path", "link_passwd"}}), "outside_root");
}

TEST_F(FsToolsTest, SymlinkDirectoryEscapeIsOutsideRoot) {
  ExpectFail(Read({{"path", "escape/secret.txt"}}), "outside_root");
  ExpectFail(Read({{"path", "escape/target.txt"}}), "outside_root");
}

TEST_F(FsToolsTest, AbsoluteAndMagicSymlinksAreRefused) {
  // Absolute symlinks fail even when they point inside (RESOLVE_BENEATH).
  ExpectFail(Read({{"path", "abs_inside"}}), "outside_root");
  ExpectFail(Read({{"path", "proc_link"}}), "outside_root");
}

TEST_F(FsToolsTest, SensitivePathsAreDenied) {
  ExpectFail(Read({{"path", ".env"}}), "sensitive_path_denied");
  ExpectFail(Read({{"path", "keys/server.pem"}}), "sensitive_path_denied");
  // A file inside a sensitive directory.
  ExpectFail(Read({{"path", "secrets.key/notes.txt"}}),
             "sensitive_path_denied");
}

TEST_F(FsToolsTest, SymlinkToEnvInsideRootDoesNotLeak) {
  ToolOutcome out = Read({{"path", "link_env"}});
  ExpectFail(out, "sensitive_path_denied");
  EXPECT_EQ(out.result.dump().find("SECRET"), std::string::npos);
}

TEST_F(FsToolsTest, AllowlistExceptionPermitsSensitiveFile) {
  ctx_.sensitive_allowlist = {".env"};
  ToolOutcome out = Read({{"path", "link_env"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], ".env");
  EXPECT_EQ(out.result["content"], "SECRET=1");
}

TEST_F(FsToolsTest, HardLinkToRootOnlyFileIsPermissionDenied) {
  ToolOutcome out = Read({{"path", "hardlink"}});
  ExpectFail(out, "permission_denied");
  EXPECT_EQ(out.detail["errno"], "EACCES");
  // Sanity: the same call as root would read it, so the identity is what
  // protects the file.
  ctx_.uid = 0;
  ctx_.gid = 0;
  out = Read({{"path", "hardlink"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["content"], "TOP SECRET");
}

TEST_F(FsToolsTest, RootOnlyFilesInsideTreeArePermissionDenied) {
  ExpectFail(Read({{"path", "root600.txt"}}), "permission_denied");
  ExpectFail(Read({{"path", "rootonly/x.txt"}}), "permission_denied");
}

TEST_F(FsToolsTest, FifoIsNotAFileAndDoesNotBlock) {
  const auto start = std::chrono::steady_clock::now();
  ToolOutcome out = Read({{"path", "fifo"}});
  ExpectFail(out, "not_a_file");
  EXPECT_EQ(out.detail["type"], "other");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(FsToolsTest, DirectoryIsNotAFile) {
  ToolOutcome out = Read({{"path", "sub"}});
  ExpectFail(out, "not_a_file");
  EXPECT_EQ(out.detail["type"], "dir");
  ExpectFail(Read({{"path", "."}}), "not_a_file");
}

TEST_F(FsToolsTest, MissingAndNotADirectory) {
  ToolOutcome out = Read({{"path", "nope.txt"}});
  ExpectFail(out, "not_found");
  EXPECT_EQ(out.detail["path"], "nope.txt");
  EXPECT_EQ(out.detail["errno"], "ENOENT");
  ExpectFail(Read({{"path", "hello.txt/x"}}), "not_a_directory");
}

TEST_F(FsToolsTest, OversizedReadFails) {
  ctx_.max_read_bytes = 4;
  ToolOutcome out = Read({{"path", "hello.txt"}});
  ExpectFail(out, "output_too_large");
  EXPECT_EQ(out.detail["size"], 5);
  EXPECT_EQ(out.detail["max"], 4);
  ctx_.max_read_bytes = 5;
  out = Read({{"path", "hello.txt"}});
  ASSERT_TRUE(out.ok) << out.reason;
  ctx_.max_read_bytes = 0;
  ExpectFail(Read({{"path", "hello.txt"}}), "output_too_large");
  EXPECT_TRUE(Read({{"path", "empty.txt"}}).ok);
}

TEST_F(FsToolsTest, BadReadArgs) {
  struct Case {
    json args;
    std::string field, problem;
  };
  const std::vector<Case> cases = {
      {json::array(), "$", "expected_object"},
      {"path", "$", "expected_object"},
      {json::object(), "path", "missing"},
      {{{"path", 5}}, "path", "expected_string"},
      {{{"path", nullptr}}, "path", "expected_string"},
      {{{"path", json::array({"a"})}}, "path", "expected_string"},
      {{{"path", ""}}, "path", "empty"},
      {{{"path", std::string("a\0b", 3)}}, "path", "contains_nul"},
      {{{"path", std::string(4097, 'a')}}, "path", "too_long"},
  };
  for (const Case& c : cases) {
    ToolOutcome out = Read(c.args);
    ExpectFail(out, "invalid_tool_args");
    EXPECT_EQ(out.detail["field"], c.field) << c.args.dump();
    EXPECT_EQ(out.detail["problem"], c.problem) << c.args.dump();
  }
  // 4096 bytes is fine as an argument (the kernel then refuses it).
  ToolOutcome out = Read({{"path", std::string(4096, 'a')}});
  EXPECT_NE(out.reason, "invalid_tool_args");
}

TEST_F(FsToolsTest, InvalidRoot) {
  ctx_.root = "relative/root";
  ExpectFail(Read({{"path", "x"}}), "invalid_root_path");
  ctx_.root = base_ + "/does-not-exist";
  ExpectFail(Read({{"path", "x"}}), "invalid_root_path");
}

TEST_F(FsToolsTest, SupplementaryGroupsFailClosed) {
  const gid_t groups[] = {0};
  ASSERT_EQ(setgroups(1, groups), 0);
  ToolOutcome out = Read({{"path", "hello.txt"}});
  ASSERT_EQ(setgroups(0, nullptr), 0);
  ExpectFail(out, "internal_error");
  EXPECT_EQ(out.detail["problem"], "supplementary_groups_present");
}

TEST_F(FsToolsTest, ScopedFsIdentitySwitchesAndRestores) {
  {
    ScopedFsIdentity identity(kUid, kGid);
    ASSERT_TRUE(identity.ok()) << identity.problem();
    EXPECT_EQ(CurrentFsUid(), kUid);
    EXPECT_EQ(CurrentFsGid(), kGid);
    // The kernel dropped CAP_DAC_OVERRIDE for fs access.
    const int fd = open((outside_ + "/secret.txt").c_str(), O_RDONLY);
    EXPECT_LT(fd, 0);
    EXPECT_EQ(errno, EACCES);
    if (fd >= 0) close(fd);
  }
  EXPECT_EQ(CurrentFsUid(), 0u);
  EXPECT_EQ(CurrentFsGid(), 0u);
}

// ---------------------------------------------------------------- fs.write

TEST_F(FsToolsTest, WritesNewFileAsProjectUser) {
  ToolOutcome out = Write({{"path", "new.txt"}, {"content", "data"}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(out.result, json({{"path", "new.txt"}, {"bytes", 4}}));
  EXPECT_EQ(ReadFile(root_ + "/new.txt"), "data");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/new.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_gid, kGid);
}

TEST_F(FsToolsTest, OverwriteIsAtomicAndLeavesNoTempFiles) {
  struct stat before;
  ASSERT_EQ(stat((root_ + "/hello.txt").c_str(), &before), 0);
  ToolOutcome out =
      Write({{"path", root_ + "/hello.txt"}, {"content", "bonjour"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(ReadFile(root_ + "/hello.txt"), "bonjour");
  struct stat after;
  ASSERT_EQ(stat((root_ + "/hello.txt").c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);  // replaced by rename
  for (const auto& entry : fs::directory_iterator(root_)) {
    EXPECT_EQ(entry.path().filename().string().find(".jcs-tmp-"),
              std::string::npos)
        << entry.path();
  }
}

TEST_F(FsToolsTest, WritesEmptyAndUnicodeContent) {
  ASSERT_TRUE(Write({{"path", "e.txt"}, {"content", ""}}).ok);
  EXPECT_EQ(ReadFile(root_ + "/e.txt"), "");
  ASSERT_TRUE(Write({{"path", "u.txt"}, {"content", "h\xc3\xa9llo"}}).ok);
  EXPECT_EQ(ReadFile(root_ + "/u.txt"), "h\xc3\xa9llo");
}

TEST_F(FsToolsTest, CreateDirs) {
  ToolOutcome out = Write({{"path", "a/b/c.txt"}, {"content", "x"}});
  ExpectFail(out, "not_found");
  EXPECT_FALSE(fs::exists(root_ + "/a"));
  out = Write({{"path", "a/b/c.txt"}, {"content", "x"}, {"create_dirs", true}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(out.result["path"], "a/b/c.txt");
  EXPECT_EQ(ReadFile(root_ + "/a/b/c.txt"), "x");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  // Existing directories and symlinked directories inside the root are fine.
  out = Write({{"path", "inner_link/new/d.txt"},
               {"content", "y"},
               {"create_dirs", true}});
  ASSERT_TRUE(out.ok) << out.reason << out.detail.dump();
  EXPECT_EQ(out.result["path"], "sub/new/d.txt");
  EXPECT_EQ(ReadFile(root_ + "/sub/new/d.txt"), "y");
}

TEST_F(FsToolsTest, WriteNeverFollowsFinalSymlink) {
  ToolOutcome out = Write({{"path", "wlink"}, {"content", "pwned"}});
  ExpectFail(out, "not_a_file");
  EXPECT_EQ(out.detail["type"], "symlink");
  EXPECT_EQ(ReadFile(outside_ + "/target.txt"), "outside target");
  // Also a symlink pointing inside the root, and one to /etc/passwd.
  ExpectFail(Write({{"path", "hello_link"}, {"content", "x"}}), "not_a_file");
  EXPECT_EQ(ReadFile(root_ + "/hello.txt"), "hello");
  const std::string passwd = ReadFile("/etc/passwd");
  ExpectFail(Write({{"path", "link_passwd"}, {"content", "x"}}), "not_a_file");
  EXPECT_EQ(ReadFile("/etc/passwd"), passwd);
  EXPECT_TRUE(fs::is_symlink(root_ + "/wlink"));
}

TEST_F(FsToolsTest, WriteThroughParentSymlinkLeavingRootIsOutsideRoot) {
  ExpectFail(Write({{"path", "escape/new.txt"}, {"content", "x"}}),
             "outside_root");
  ExpectFail(Write({{"path", "escape/target.txt"}, {"content", "x"}}),
             "outside_root");
  ExpectFail(Write({{"path", "escape/d/new.txt"},
                    {"content", "x"},
                    {"create_dirs", true}}),
             "outside_root");
  EXPECT_FALSE(fs::exists(outside_ + "/new.txt"));
  EXPECT_FALSE(fs::exists(outside_ + "/d"));
  EXPECT_EQ(ReadFile(outside_ + "/target.txt"), "outside target");
}

TEST_F(FsToolsTest, WriteOutsideRootPaths) {
  ExpectFail(Write({{"path", "../outside/x.txt"}, {"content", "x"}}),
             "outside_root");
  ExpectFail(Write({{"path", outside_ + "/x.txt"}, {"content", "x"}}),
             "outside_root");
  ExpectFail(Write({{"path", "/etc/jcs_fs_tools_test"}, {"content", "x"}}),
             "outside_root");
  EXPECT_FALSE(fs::exists(outside_ + "/x.txt"));
  EXPECT_FALSE(fs::exists("/etc/jcs_fs_tools_test"));
}

TEST_F(FsToolsTest, WriteOverHardLinkReplacesEntryOnly) {
  ToolOutcome out = Write({{"path", "hardlink"}, {"content", "mine"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(ReadFile(root_ + "/hardlink"), "mine");
  EXPECT_EQ(ReadFile(outside_ + "/secret.txt"), "TOP SECRET");
}

TEST_F(FsToolsTest, OversizedWriteWritesNothing) {
  ctx_.max_write_bytes = 3;
  ToolOutcome out = Write({{"path", "big.txt"}, {"content", "abcd"}});
  ExpectFail(out, "artifact_too_large");
  EXPECT_EQ(out.detail, json({{"index", 0}, {"size", 4}, {"max", 3}}));
  EXPECT_FALSE(fs::exists(root_ + "/big.txt"));
  EXPECT_TRUE(Write({{"path", "big.txt"}, {"content", "abc"}}).ok);
}

TEST_F(FsToolsTest, WriteSensitiveDenied) {
  ExpectFail(Write({{"path", ".env"}, {"content", "x"}}),
             "sensitive_path_denied");
  ExpectFail(Write({{"path", ".env.local"}, {"content", "x"}}),
             "sensitive_path_denied");
  ExpectFail(Write({{"path", "secrets.key/n.txt"}, {"content", "x"}}),
             "sensitive_path_denied");
  ExpectFail(
      Write({{"path", "x/id_rsa"}, {"content", "x"}, {"create_dirs", true}}),
      "sensitive_path_denied");
  EXPECT_FALSE(fs::exists(root_ + "/x"));  // checked before any mkdir
  EXPECT_EQ(ReadFile(root_ + "/.env"), "SECRET=1");
}

TEST_F(FsToolsTest, WriteOverNonFiles) {
  ExpectFail(Write({{"path", "sub"}, {"content", "x"}}), "is_directory");
  ExpectFail(Write({{"path", "."}, {"content", "x"}}), "is_directory");
  ToolOutcome out = Write({{"path", "fifo"}, {"content", "x"}});
  ExpectFail(out, "not_a_file");
  EXPECT_EQ(out.detail["type"], "other");
  ExpectFail(Write({{"path", "hello.txt/x"}, {"content", "x"}}),
             "not_a_directory");
}

TEST_F(FsToolsTest, WriteIntoRootOwnedDirectoryIsPermissionDenied) {
  ExpectFail(Write({{"path", "rootdir/x.txt"}, {"content", "x"}}),
             "permission_denied");
  EXPECT_FALSE(fs::exists(root_ + "/rootdir/x.txt"));
  ExpectFail(Write({{"path", "rootonly/y/z.txt"},
                    {"content", "x"},
                    {"create_dirs", true}}),
             "permission_denied");
}

TEST_F(FsToolsTest, BadWriteArgs) {
  struct Case {
    json args;
    std::string field, problem;
  };
  const std::vector<Case> cases = {
      {json::array(), "$", "expected_object"},
      {{{"content", "x"}}, "path", "missing"},
      {{{"path", 1}, {"content", "x"}}, "path", "expected_string"},
      {{{"path", std::string("a\0", 2)}, {"content", "x"}},
       "path",
       "contains_nul"},
      {{{"path", std::string(5000, 'p')}, {"content", "x"}},
       "path",
       "too_long"},
      {{{"path", "a.txt"}}, "content", "missing"},
      {{{"path", "a.txt"}, {"content", 3}}, "content", "expected_string"},
      {{{"path", "a.txt"}, {"content", nullptr}}, "content", "expected_string"},
      {{{"path", "a.txt"}, {"content", "x"}, {"create_dirs", "yes"}},
       "create_dirs",
       "expected_boolean"},
  };
  for (const Case& c : cases) {
    ToolOutcome out = Write(c.args);
    ExpectFail(out, "invalid_tool_args");
    EXPECT_EQ(out.detail["field"], c.field) << c.args.dump();
    EXPECT_EQ(out.detail["problem"], c.problem) << c.args.dump();
  }
  EXPECT_FALSE(fs::exists(root_ + "/a.txt"));
}

// ---------------------------------------------------------------- fs.list

TEST_F(FsToolsTest, ListsSortedWithTypes) {
  ToolOutcome out = List({{"path", "sub"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result,
            json({{"path", "sub"},
                  {"entries",
                   {{{"name", "deeper"}, {"type", "dir"}, {"size", 0}},
                    {{"name", "inner.txt"}, {"type", "file"}, {"size", 5}}}},
                  {"truncated", false}}));
}

TEST_F(FsToolsTest, ListsRootByDefault) {
  ToolOutcome out = List(json::object());
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], ".");
  std::vector<std::string> names;
  for (const json& e : out.result["entries"]) {
    names.push_back(e["name"]);
    if (e["name"] == "wlink") {
      EXPECT_EQ(e["type"], "symlink");
      EXPECT_EQ(e["size"], std::string("../outside/target.txt").size());
    }
    if (e["name"] == "fifo") {
      EXPECT_EQ(e["type"], "other");
    }
    if (e["name"] == "escape") {
      EXPECT_EQ(e["type"], "symlink");
    }
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), ".env"), names.end());
  EXPECT_FALSE(out.result["truncated"]);
}

TEST_F(FsToolsTest, ListTruncatesToSmallestNames) {
  fs::create_directories(root_ + "/many");
  for (const char* n : {"e", "b", "d", "a", "c"}) {
    WriteFile(root_ + "/many/" + n, "");
  }
  ChownTree(root_ + "/many");
  ctx_.max_entries = 2;
  ToolOutcome out = List({{"path", "many"}});
  ASSERT_TRUE(out.ok) << out.reason;
  ASSERT_EQ(out.result["entries"].size(), 2u);
  EXPECT_EQ(out.result["entries"][0]["name"], "a");
  EXPECT_EQ(out.result["entries"][1]["name"], "b");
  EXPECT_TRUE(out.result["truncated"]);
  ctx_.max_entries = 5;
  out = List({{"path", "many"}});
  EXPECT_FALSE(out.result["truncated"]);
  ctx_.max_entries = 0;
  out = List({{"path", "many"}});
  EXPECT_TRUE(out.result["entries"].empty());
  EXPECT_TRUE(out.result["truncated"]);
}

TEST_F(FsToolsTest, ListFollowsInsideSymlinkAndRefusesEscapes) {
  ToolOutcome out = List({{"path", "inner_link"}});
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.result["path"], "sub");
  ExpectFail(List({{"path", "escape"}}), "outside_root");
  ExpectFail(List({{"path", ".."}}), "outside_root");
  ExpectFail(List({{"path", "/etc"}}), "outside_root");
}

TEST_F(FsToolsTest, ListErrors) {
  ExpectFail(List({{"path", "hello.txt"}}), "not_a_directory");
  ExpectFail(List({{"path", "fifo"}}), "not_a_directory");
  ExpectFail(List({{"path", "missing"}}), "not_found");
  ExpectFail(List({{"path", "rootonly"}}), "permission_denied");
  ExpectFail(List({{"path", "secrets.key"}}), "sensitive_path_denied");
  ToolOutcome out = List({{"path", 7}});
  ExpectFail(out, "invalid_tool_args");
  EXPECT_EQ(out.detail["field"], "path");
  ExpectFail(List({{"path", ""}}), "invalid_tool_args");
  ExpectFail(List(json(42)), "invalid_tool_args");
}

// ---------------------------------------------------------------- helpers

TEST(FsToolsHelpers, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc3\x28"));          // bad continuation
}

TEST(FsToolsHelpers, ErrnoReasons) {
  EXPECT_EQ(FsErrnoReason(EACCES), "permission_denied");
  EXPECT_EQ(FsErrnoReason(EPERM), "permission_denied");
  EXPECT_EQ(FsErrnoReason(ENOENT), "not_found");
  EXPECT_EQ(FsErrnoReason(EISDIR), "is_directory");
  EXPECT_EQ(FsErrnoReason(ENOSPC), "no_space");
  EXPECT_EQ(FsErrnoReason(EDQUOT), "no_space");
  EXPECT_EQ(FsErrnoReason(EXDEV), "outside_root");
  EXPECT_EQ(FsErrnoReason(EIO), "io_error");
}

TEST(FsToolsHelpers, SensitiveRelPathChecksAncestors) {
  const std::vector<std::string> deny = {".env", "*.key", "config/secret*"};
  EXPECT_TRUE(IsSensitiveRelPath(".env", deny, {}));
  EXPECT_TRUE(IsSensitiveRelPath("a/.env", deny, {}));
  EXPECT_TRUE(IsSensitiveRelPath("x.key/y/z.txt", deny, {}));
  EXPECT_TRUE(IsSensitiveRelPath("config/secrets/a", deny, {}));
  EXPECT_FALSE(IsSensitiveRelPath("a/b.txt", deny, {}));
  EXPECT_FALSE(IsSensitiveRelPath("", deny, {}));
  EXPECT_FALSE(IsSensitiveRelPath(".", deny, {}));
  EXPECT_FALSE(IsSensitiveRelPath(".env", deny, {".env"}));
}

// The data dir is read-only for the file tools and its state/ private, checked
// on the real path, so a symlink elsewhere in the root does not get around it.
TEST_F(FsToolsTest, DataDirIsReadOnlyAndItsStatePrivate) {
  fs::create_directories(root_ + "/.jido/state");
  fs::create_directories(root_ + "/.jido/skills");
  WriteFile(root_ + "/.jido/state/journal", "STATE-SECRET");
  WriteFile(root_ + "/.jido/skills/a.md", "# A");
  for (const char* dir : {"/.jido", "/.jido/state", "/.jido/skills"}) {
    ASSERT_EQ(chown((root_ + dir).c_str(), kUid, kGid), 0);
  }
  ASSERT_EQ(symlink(".jido/state", (root_ + "/via_link").c_str()), 0);
  ASSERT_EQ(symlink(".jido/skills", (root_ + "/skills_link").c_str()), 0);
  ctx_.read_only_dir = ".jido/";  // normalized like any path
  ctx_.private_dir = ".jido//state";

  ExpectFail(Read({{"path", ".jido/state/journal"}}), "permission_denied");
  ExpectFail(Read({{"path", "via_link/journal"}}), "permission_denied");
  ExpectFail(List({{"path", ".jido/state"}}), "permission_denied");
  ExpectFail(List({{"path", "via_link"}}), "permission_denied");
  ExpectFail(Write({{"path", ".jido/skills/evil.md"}, {"content", "x"}}),
             "read_only");
  ExpectFail(Write({{"path", "skills_link/evil.md"}, {"content", "x"}}),
             "read_only");
  ExpectFail(Write({{"path", ".jido/state/x"}, {"content", "x"}}),
             "permission_denied");
  EXPECT_FALSE(fs::exists(root_ + "/.jido/skills/evil.md"));
  // Reading the rest of the data dir is fine.
  ToolOutcome skill = Read({{"path", ".jido/skills/a.md"}});
  EXPECT_TRUE(skill.ok) << skill.detail.dump();
  ToolOutcome list = List({{"path", ".jido"}});
  EXPECT_TRUE(list.ok) << list.detail.dump();
}

}  // namespace
}  // namespace jcs::runtime

namespace jcs::runtime {
namespace {

bool ThreadHasEffective(int cap) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap)) != 0;
}

// Quotas and the reserved blocks let CAP_SYS_RESOURCE through: a write made
// for a project must not carry it.
TEST(ScopedFsIdentityCapsTest, LowersSysResourceWhileActingForTheProject) {
  if (geteuid() != 0 || !ThreadHasEffective(CAP_SYS_RESOURCE)) {
    GTEST_SKIP() << "needs root with CAP_SYS_RESOURCE";
  }
  ASSERT_EQ(setgroups(0, nullptr), 0);  // ScopedFsIdentity refuses groups
  {
    ScopedFsIdentity identity(1000, 1000);
    ASSERT_TRUE(identity.ok()) << identity.problem();
    EXPECT_FALSE(ThreadHasEffective(CAP_SYS_RESOURCE));
  }
  EXPECT_TRUE(ThreadHasEffective(CAP_SYS_RESOURCE));
}

}  // namespace
}  // namespace jcs::runtime
