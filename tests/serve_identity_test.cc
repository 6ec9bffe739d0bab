// Who a project's tools run as, who may use a project, and the daemon's own
// files out of every jail's reach, attacked through the real daemon and the
// real CLI run as other users (setpriv): an allowed client must not become
// another user, a root-owned root must not silently run tools as nobody, a
// refused client must see why, and no project root may hold the daemon's
// socket, state or config or overlap another project. A refused start
// leaves nothing behind.
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/serve_harness.h"
#include "tools/control_client.h"

namespace jcs::serve_test {
namespace {

constexpr uid_t kBob = 1000;       // the attacker, an allowed client
constexpr uid_t kAlice = 1001;     // the victim, an allowed client
constexpr uid_t kAdmin = 1002;     // allowed and admin
constexpr uid_t kStranger = 1003;  // not allowed at all

// The CLI as another user. The runfiles live under root's private home, so
// the binary is copied into a directory every user can reach.
RunResult RunJcsAs(uid_t uid, const std::vector<std::string>& args) {
  static TempDir* bin = new TempDir();
  const std::string copy = bin->Sub("jcs");
  if (!PathExists(copy)) {
    std::filesystem::copy_file(JcsBinary(), copy);
    chmod(copy.c_str(), 0755);
  }
  std::vector<std::string> argv = {"/usr/bin/setpriv",
                                   "--reuid",
                                   std::to_string(uid),
                                   "--regid",
                                   std::to_string(uid),
                                   "--clear-groups",
                                   "--",
                                   copy};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, TimeoutAfter(60));
}

std::string OwnerOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return "missing";
  return absl::StrCat(st.st_uid, ":", st.st_gid);
}

class ServeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
    alice_home_ = Home("alice", kAlice);
    ASSERT_TRUE(WriteOwned(alice_home_ + "/notes.txt", "alice's secret\n",
                           kAlice, 0600));
    bob_home_ = Home("bob", kBob);
  }
  void TearDown() override { EXPECT_EQ(daemon_.StopCleanly(), ""); }

  std::string Home(const std::string& name, uid_t uid, mode_t mode = 0700) {
    const std::string path = homes_.MakeDir(name);
    EXPECT_EQ(chown(path.c_str(), uid, uid), 0);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  static bool WriteOwned(const std::string& path, const std::string& text,
                         uid_t uid, mode_t mode) {
    const int fd =
        open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return false;
    const bool ok = write(fd, text.data(), text.size()) ==
                        static_cast<ssize_t>(text.size()) &&
                    fchown(fd, uid, uid) == 0 && fchmod(fd, mode) == 0;
    close(fd);
    return ok;
  }

  std::vector<std::string> WithSocket(std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(daemon_.socket_path());
    return args;
  }
  RunResult As(uid_t uid, std::vector<std::string> args) {
    return RunJcsAs(uid, WithSocket(std::move(args)));
  }
  RunResult AsRoot(std::vector<std::string> args) {
    return RunJcs(WithSocket(std::move(args)), TimeoutAfter(60));
  }

  // `jcs project start ROOT --json ...` as `uid` (root: -1); the parsed
  // output, or a test failure.
  nlohmann::json StartOk(int uid, const std::string& root,
                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"project", "start", root, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = uid < 0 ? AsRoot(args) : As(uid, args);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  // A failed command: non-zero exit and every string in stderr.
  static void ExpectFailure(const RunResult& r,
                            const std::vector<std::string>& expected) {
    EXPECT_TRUE(r.exited && r.exit_code != 0) << r.Describe();
    for (const std::string& e : expected) {
      EXPECT_NE(r.err.find(e), std::string::npos)
          << "expected '" << e << "' in stderr:\n"
          << r.Describe();
    }
  }

  // `jcs tool run` as `uid`; the response document.
  nlohmann::json Tool(uid_t uid, const std::string& project,
                      const std::string& name, const nlohmann::json& args) {
    const RunResult r = As(
        uid, {"tool", "run", project, name, "--args", args.dump(), "--json"});
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  Daemon daemon_{absl::StrCat(
      "socket_mode: 0666\nallowed_uids: ", kBob, "\nallowed_uids: ", kAlice,
      "\nallowed_uids: ", kAdmin, "\nadmin_uids: ", kAdmin, "\n")};
  TempDir homes_;
  std::string alice_home_;
  std::string bob_home_;
};

// Finding 1: an allowed client started a project on another user's private
// directory and read her files / ran programs as her.
TEST_F(ServeIdentityTest, AClientCannotStartAProjectOnAnotherUsersDirectory) {
  const RunResult r = As(kBob, {"project", "start", alice_home_});
  ExpectFailure(r, {"unauthorized", "uid 1000"});
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(PathExists(alice_home_ + "/.jido"));
  // Nor through a symlink planted in his own directory.
  const std::string link = bob_home_ + "/alice";
  ASSERT_EQ(symlink(alice_home_.c_str(), link.c_str()), 0);
  ExpectFailure(As(kBob, {"project", "start", link}),
                {"unauthorized", "uid 1000"});
  EXPECT_FALSE(PathExists(alice_home_ + "/.jido"));
  // Nor with run_as.
  ExpectFailure(As(kBob, {"project", "start", bob_home_, "--run-as", "1001"}),
                {"unauthorized", "uid 1000", "run_as"});
  // Nothing was started.
  const RunResult list = AsRoot({"project", "list", "--json"});
  EXPECT_EQ(nlohmann::json::parse(list.out, nullptr, false),
            nlohmann::json::array())
      << list.Describe();
}

TEST_F(ServeIdentityTest, AClientsToolsRunAsTheClient) {
  // A file of Alice's inside Bob's root: the tools act only as Bob.
  ASSERT_TRUE(
      WriteOwned(bob_home_ + "/alices.txt", "alice's secret\n", kAlice, 0600));
  const nlohmann::json started = StartOk(kBob, bob_home_);
  const std::string project = started.value("project_id", "");
  ASSERT_FALSE(project.empty()) << started;
  EXPECT_EQ(
      started["run_as"],
      nlohmann::json::parse(R"({"uid": 1000, "gid": 1000, "source": "peer"})"));
  // Finding 6: the layout belongs to the tools' identity.
  EXPECT_EQ(OwnerOf(bob_home_ + "/.jido"), "1000:1000");
  EXPECT_EQ(OwnerOf(bob_home_ + "/.jido/state"), "1000:1000");

  const nlohmann::json id = Tool(kBob, project, "exec",
                                 {{"argv", {"/bin/sh", "-c", "id -u; id -g"}}});
  ASSERT_EQ(id.value("status", ""), "ok") << id;
  EXPECT_EQ(id["result"].value("stdout", ""), "1000\n1000\n") << id;
  const nlohmann::json wrote =
      Tool(kBob, project, "fs.write", {{"path", "w.txt"}, {"content", "x"}});
  ASSERT_EQ(wrote.value("status", ""), "ok") << wrote;
  EXPECT_EQ(OwnerOf(bob_home_ + "/w.txt"), "1000:1000");
  // The file tools do not read what Bob cannot read.
  const nlohmann::json read =
      Tool(kBob, project, "fs.read", {{"path", "alices.txt"}});
  EXPECT_EQ(read.value("status", ""), "error") << read;
  EXPECT_EQ(read.dump().find("alice's secret"), std::string::npos) << read;
}

TEST_F(ServeIdentityTest, OnlyTheOwnerAndAdminsUseAProject) {
  const std::string project = StartOk(kBob, bob_home_).value("project_id", "");
  ASSERT_FALSE(project.empty());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"diagnostics", project},
           {"tool", "list", project},
           {"tool", "run", project, "fs.list", "--args", "{}"},
           {"tool", "cancel", project, "call-1"},
           {"project", "stop", project}}) {
    SCOPED_TRACE(args[0] + " " + args[1]);
    ExpectFailure(As(kAlice, args), {"unauthorized", "uid 1001"});
  }
  // Alice's list does not show Bob's project; Bob's, root's and the admin's
  // do.
  const auto listed = [&](int uid) {
    const RunResult r = uid < 0 ? AsRoot({"project", "list", "--json"})
                                : As(uid, {"project", "list", "--json"});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
    std::vector<std::string> ids;
    for (const nlohmann::json& p : nlohmann::json::parse(r.out, nullptr, false))
      ids.push_back(p.value("project_id", ""));
    return ids;
  };
  EXPECT_EQ(listed(kAlice), std::vector<std::string>());
  EXPECT_EQ(listed(kBob), std::vector<std::string>{project});
  EXPECT_EQ(listed(-1), std::vector<std::string>{project});
  EXPECT_EQ(listed(kAdmin), std::vector<std::string>{project});
  const RunResult diag = As(kAdmin, {"diagnostics", project, "--json"});
  ASSERT_TRUE(diag.exited && diag.exit_code == 0) << diag.Describe();
  const nlohmann::json doc = nlohmann::json::parse(diag.out, nullptr, false);
  EXPECT_EQ(doc["owner_uid"], kBob);
  EXPECT_EQ(doc["run_as"]["source"], "peer");
  // The project still runs (Alice's stop was refused); Bob stops it.
  const RunResult stop = As(kBob, {"project", "stop", project});
  EXPECT_TRUE(stop.exited && stop.exit_code == 0) << stop.Describe();
}

// A subscription to every project only streams the subscriber's own
// projects' events; one to another user's project is refused.
TEST_F(ServeIdentityTest, SubscriptionsOnlyCarryTheSubscribersProjects) {
  const std::string bobs = StartOk(kBob, bob_home_).value("project_id", "");
  ASSERT_FALSE(bobs.empty());
  int ready[2];
  int result[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(result), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // As Alice: subscribe, report, then read until her own project starts.
    close(ready[0]);
    close(result[0]);
    if (setgroups(0, nullptr) != 0 || setresgid(kAlice, kAlice, kAlice) != 0 ||
        setresuid(kAlice, kAlice, kAlice) != 0) {
      _exit(11);
    }
    absl::StatusOr<std::unique_ptr<tools::ControlClient>> client =
        tools::ControlClient::Connect(daemon_.socket_path());
    if (!client.ok()) _exit(12);
    absl::Status refused = (*client)->Subscribe(bobs);
    std::optional<proto::Error> error = tools::ErrorOf(refused);
    if (!error.has_value() || error->reason() != "unauthorized") _exit(13);
    if (!(*client)->Subscribe("").ok()) _exit(14);
    if (write(ready[1], "r", 1) != 1) _exit(15);
    std::string seen;
    while (true) {
      absl::StatusOr<proto::Event> event =
          (*client)->NextEvent(absl::Seconds(30));
      if (!event.ok()) _exit(16);
      seen += event->project_id() + " " + event->name() + "\n";
      if (event->name() == "project.started" &&
          event->project_id() == "alices") {
        break;
      }
    }
    if (write(result[1], seen.data(), seen.size()) !=
        static_cast<ssize_t>(seen.size())) {
      _exit(17);
    }
    _exit(0);
  }
  close(ready[1]);
  close(result[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the subscriber did not get ready";
  // Bob's events first, then Alice's own project: once that arrives, every
  // earlier event has been delivered (one connection, in order).
  const nlohmann::json ran =
      Tool(kBob, bobs, "fs.write", {{"path", "x"}, {"content", "y"}});
  EXPECT_EQ(ran.value("status", ""), "ok") << ran;
  StartOk(kAlice, alice_home_, {"--project-id", "alices"});
  std::string seen;
  char buf[4096];
  ssize_t n;
  while ((n = read(result[0], buf, sizeof(buf))) > 0) seen.append(buf, n);
  int status = 0;
  waitpid(pid, &status, 0);
  close(ready[0]);
  close(result[0]);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "subscriber exit " << WEXITSTATUS(status);
  EXPECT_EQ(seen.find(bobs), std::string::npos) << seen;
  EXPECT_NE(seen.find("alices project.started"), std::string::npos) << seen;
}

// Finding 2: root's project on a root-owned clone silently ran its tools as
// nobody.
TEST_F(ServeIdentityTest, RootOwnedRootNeedsAnExplicitIdentity) {
  const std::string repo = homes_.MakeDir("repo");  // root:root 0755
  ASSERT_EQ(OwnerOf(repo), "0:0");
  ExpectFailure(AsRoot({"project", "start", repo}),
                {"root_owned_by_root", "--run-as"});
  EXPECT_FALSE(PathExists(repo + "/.jido"));
  ExpectFailure(AsRoot({"project", "start", repo, "--run-as", "0"}),
                {"invalid_run_as"});
  ExpectFailure(AsRoot({"project", "start", repo, "--run-as", "1000:0"}),
                {"invalid_run_as"});
  const RunResult bad = AsRoot({"project", "start", repo, "--run-as", "x"});
  EXPECT_TRUE(bad.exited && bad.exit_code == 2) << bad.Describe();
  EXPECT_FALSE(PathExists(repo + "/.jido"));

  const nlohmann::json started = StartOk(-1, repo, {"--run-as", "1000:1001"});
  const std::string project = started.value("project_id", "");
  ASSERT_FALSE(project.empty());
  const nlohmann::json run_as = nlohmann::json::parse(
      R"({"uid": 1000, "gid": 1001, "source": "run_as"})");
  EXPECT_EQ(started["run_as"], run_as);
  EXPECT_EQ(OwnerOf(repo + "/.jido"), "1000:1001");
  EXPECT_EQ(OwnerOf(repo + "/.jido/state"), "1000:1001");
  const RunResult diag = AsRoot({"diagnostics", project, "--json"});
  EXPECT_EQ(nlohmann::json::parse(diag.out, nullptr, false)["run_as"], run_as)
      << diag.Describe();
  const RunResult list = AsRoot({"project", "list", "--json"});
  EXPECT_EQ(nlohmann::json::parse(list.out, nullptr, false)[0]["run_as"],
            run_as)
      << list.Describe();
  // exec and the file tools use the same identity.
  ASSERT_EQ(chmod(repo.c_str(), 0777), 0);
  const nlohmann::json id = Tool(kAdmin, project, "exec",
                                 {{"argv", {"/bin/sh", "-c", "id -u; id -g"}}});
  EXPECT_EQ(id["result"].value("stdout", ""), "1000\n1001\n") << id;
  const nlohmann::json wrote =
      Tool(kAdmin, project, "fs.write", {{"path", "w.txt"}, {"content", "x"}});
  ASSERT_EQ(wrote.value("status", ""), "ok") << wrote;
  EXPECT_EQ(OwnerOf(repo + "/w.txt"), "1000:1001");
  // A user-owned root started by root: the owner, said so.
  const std::string users = Home("users", kAlice, 0755);
  EXPECT_EQ(StartOk(-1, users)["run_as"],
            nlohmann::json::parse(
                R"({"uid": 1001, "gid": 1001, "source": "root_owner"})"));
}

// Finding 3: a refused client saw "Broken pipe" instead of the reason.
TEST_F(ServeIdentityTest, ARefusedClientSeesUnauthorizedAndItsUid) {
  for (int i = 0; i < 5; ++i) {  // the race between send and close varies
    const RunResult r = RunJcsAs(kStranger, WithSocket({"project", "list"}));
    ExpectFailure(r, {"unauthorized", "uid 1003"});
    EXPECT_EQ(r.err.find("Broken pipe"), std::string::npos) << r.Describe();
  }
}

// Finding 4: a project root holding the control socket let a jailed program
// drive the daemon.
TEST_F(ServeIdentityTest, RootsHoldingTheDaemonsFilesAreRefused) {
  // The daemon's directory holds its socket, state dir and config.
  const std::string dir = daemon_.dir().path();
  ExpectFailure(AsRoot({"project", "start", dir, "--run-as", "1000"}),
                {"root_contains_daemon_files"});
  // A root that is a parent of the state dir (and of everything else).
  const bool had_jido = PathExists("/tmp/.jido");  // not ours to judge
  ExpectFailure(AsRoot({"project", "start", "/tmp", "--run-as", "1000"}),
                {"root_contains_daemon_files"});
  EXPECT_FALSE(PathExists(dir + "/.jido"));
  EXPECT_EQ(PathExists("/tmp/.jido"), had_jido);
}

TEST(ServeIdentityDaemonTest, SocketInsideTheRootIsRefused) {
  TempDir roots;
  const std::string root = roots.MakeDir("project");
  ASSERT_EQ(chown(root.c_str(), kBob, kBob), 0);
  DaemonOptions options;
  options.set_paths = false;
  Daemon daemon(options);
  daemon.WriteConfig(absl::StrCat("socket_path: \"", root,
                                  "/jcs.sock\"\nstate_dir: \"",
                                  daemon.state_dir(), "\"\n"));
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const RunResult r =
      RunJcs({"project", "start", root, "--socket", root + "/jcs.sock"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.Describe();
  EXPECT_NE(r.err.find("root_contains_daemon_files"), std::string::npos)
      << r.Describe();
  EXPECT_NE(r.err.find("jcs.sock"), std::string::npos) << r.Describe();
  EXPECT_FALSE(PathExists(root + "/.jido"));
  daemon.Signal(SIGTERM);
  EXPECT_TRUE(daemon.Wait().exited);
}

TEST(ServeIdentityDaemonTest, BootProjectHoldingTheStateDirStopsTheBoot) {
  TempDir roots;
  const std::string root = roots.MakeDir("project");
  ASSERT_EQ(chown(root.c_str(), kBob, kBob), 0);
  DaemonOptions options;
  options.set_paths = false;
  Daemon daemon(options);
  daemon.WriteConfig(
      absl::StrCat("socket_path: \"", daemon.socket_path(), "\"\nstate_dir: \"",
                   root, "/state\"\nprojects { root: \"", root, "\" }\n"));
  EXPECT_FALSE(daemon.Start()) << daemon.Log();
  const ExitInfo exit = daemon.Wait();
  EXPECT_TRUE(exit.exited && exit.exit_code == 2) << exit.Describe();
  EXPECT_NE(daemon.Log().find("root_contains_daemon_files"), std::string::npos)
      << daemon.Log();
  EXPECT_FALSE(PathExists(root + "/.jido"));
}

// Finding 5: a project whose root contains another's got that project's data
// dir and state inside its jail.
TEST_F(ServeIdentityTest, OverlappingRootsAreRefusedBothWays) {
  const std::string outer = Home("outer", kBob, 0755);
  const std::string inner = outer + "/inner";
  ASSERT_EQ(mkdir(inner.c_str(), 0755), 0);
  ASSERT_EQ(chown(inner.c_str(), kBob, kBob), 0);
  const std::string first =
      StartOk(kBob, inner, {"--project-id", "first"}).value("project_id", "");
  ASSERT_EQ(first, "first");
  ASSERT_TRUE(PathExists(inner + "/.jido"));
  // Containing it (as Bob and as root).
  ExpectFailure(As(kBob, {"project", "start", outer}),
                {"overlapping_project_root", "first"});
  ExpectFailure(AsRoot({"project", "start", outer}),
                {"overlapping_project_root", "first"});
  EXPECT_FALSE(PathExists(outer + "/.jido"));
  // Inside it, and equal to it.
  const std::string deeper = inner + "/deeper";
  ASSERT_EQ(mkdir(deeper.c_str(), 0755), 0);
  ASSERT_EQ(chown(deeper.c_str(), kBob, kBob), 0);
  ExpectFailure(As(kBob, {"project", "start", deeper}),
                {"overlapping_project_root", "first"});
  EXPECT_FALSE(PathExists(deeper + "/.jido"));
  ExpectFailure(As(kBob, {"project", "start", inner}),
                {"overlapping_project_root", "first"});
}

}  // namespace
}  // namespace jcs::serve_test
