#include "tests/tool_harness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace jcs::serve_test {
namespace {

void SleepMs(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

const nlohmann::json& EmptyObject() {
  static const nlohmann::json* const empty =
      new nlohmann::json(nlohmann::json::object());
  return *empty;
}

}  // namespace

std::string ToolResponse::status() const {
  return doc.is_object() ? doc.value("status", "") : "";
}

std::string ToolResponse::reason() const {
  return doc.is_object() && doc.contains("reason") && doc["reason"].is_string()
             ? doc["reason"].get<std::string>()
             : "";
}

const nlohmann::json& ToolResponse::detail() const {
  if (doc.is_object() && doc.contains("detail")) return doc["detail"];
  return EmptyObject();
}

const nlohmann::json& ToolResponse::result() const {
  if (doc.is_object() && doc.contains("result")) return doc["result"];
  return EmptyObject();
}

std::string ToolResponse::Describe() const { return run.Describe(); }

nlohmann::json ExecArgs(const std::vector<std::string>& argv) {
  return {{"argv", argv}};
}

std::string UniqueSleepMarker() {
  static int counter = 0;
  std::random_device rd;
  return absl::StrCat("100.", getpid(), counter++ % 10, 100000 + rd() % 900000);
}

int CountProcessesWithArg(const std::string& needle) {
  int count = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return -1;
  while (struct dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string cmdline =
        ReadFileOrEmpty(absl::StrCat("/proc/", e->d_name, "/cmdline"));
    size_t start = 0;
    while (start < cmdline.size()) {
      size_t end = cmdline.find('\0', start);
      if (end == std::string::npos) end = cmdline.size();
      if (cmdline.compare(start, end - start, needle) == 0) {
        ++count;
        break;
      }
      start = end + 1;
    }
  }
  closedir(proc);
  return count;
}

bool WaitFor(const std::function<bool()>& done, double timeout_s) {
  const double deadline = NowSeconds() + timeout_s;
  while (true) {
    if (done()) return true;
    if (NowSeconds() >= deadline) return false;
    SleepMs(20);
  }
}

void ToolFixture::SetUp() {
  root_ = dir_.MakeDir("project");
  outside_ = dir_.MakeDir("outside");
  ASSERT_EQ(chown(root_.c_str(), kProjectUid, kProjectGid), 0);
  MakeRootDir(".jido");
  MakeRootDir(".jido/skills");
  WriteRootFile(".jido/skills/alpha.md", "# Alpha\nThe alpha skill.\n");
  WriteRootFile(".jido/skills/beta.md", "# Beta\nThe beta skill.\n");
  WriteRootFile(".jido/skills/gamma.md", "# Gamma\nThe gamma skill.\n");
  ASSERT_TRUE(daemon_.Start()) << daemon_.Log();
}

void ToolFixture::TearDown() { EXPECT_EQ(daemon_.StopCleanly(), ""); }

RunResult ToolFixture::Cli(std::vector<std::string> args) {
  args.push_back("--socket");
  args.push_back(daemon_.socket_path());
  return RunJcs(args, TimeoutAfter(60));
}

RunResult ToolFixture::StartProjectRaw(const nlohmann::json& options,
                                       std::vector<std::string> extra) {
  std::vector<std::string> args = {"project", "start", root_};
  if (options.is_object() && !options.empty()) {
    const std::string file = dir_.WriteFile(
        absl::StrCat("options", options_files_++, ".json"), options.dump());
    args.push_back("--options");
    args.push_back(file);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return Cli(args);
}

std::string ToolFixture::StartProject(const nlohmann::json& options,
                                      std::vector<std::string> extra) {
  const RunResult r = StartProjectRaw(options, std::move(extra));
  if (!(r.exited && r.exit_code == 0) || r.out.empty()) {
    ADD_FAILURE() << "project start failed: " << r.Describe();
    return "";
  }
  std::string id = r.out;
  if (id.back() == '\n') id.pop_back();
  return id;
}

ToolResponse ToolFixture::Tool(const std::string& project,
                               const std::string& name,
                               const nlohmann::json& args,
                               std::vector<std::string> flags) {
  std::vector<std::string> cli = {"tool",   "run",       project, name,
                                  "--args", args.dump(), "--json"};
  cli.insert(cli.end(), flags.begin(), flags.end());
  ToolResponse response;
  response.run = Cli(cli);
  std::string out = response.run.out;
  response.doc = nlohmann::json::parse(out, nullptr, false);
  EXPECT_TRUE(response.doc.is_object()) << response.Describe();
  const std::string status = response.status();
  if (status == "ok" || status == "accepted") {
    EXPECT_TRUE(response.run.exited && response.run.exit_code == 0)
        << response.Describe();
  } else if (status == "error") {
    EXPECT_TRUE(response.run.exited && response.run.exit_code == 1)
        << response.Describe();
    EXPECT_EQ(response.run.err.rfind("jcs tool: " + response.reason(), 0), 0u)
        << response.Describe();
  } else {
    ADD_FAILURE() << "unexpected status '" << status << "'\n"
                  << response.Describe();
  }
  return response;
}

std::vector<std::string> ToolFixture::ToolNames(const std::string& project) {
  const RunResult r = Cli({"tool", "list", project, "--json"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  std::vector<std::string> names;
  const nlohmann::json tools = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(tools.is_array()) << r.Describe();
  if (!tools.is_array()) return names;
  for (const nlohmann::json& tool : tools)
    names.push_back(tool.value("name", ""));
  return names;
}

nlohmann::json ToolFixture::Diagnostics(const std::string& project) {
  const RunResult r = Cli({"diagnostics", project, "--json"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.Describe();
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(doc.is_object()) << r.Describe();
  return doc.is_object() ? doc : nlohmann::json::object();
}

int64_t ToolFixture::Count(const nlohmann::json& diagnostics,
                           const std::string& event) {
  if (!diagnostics.contains("telemetry")) return 0;
  const nlohmann::json& telemetry = diagnostics["telemetry"];
  if (!telemetry.contains("event_counts")) return 0;
  const nlohmann::json& counts = telemetry["event_counts"];
  if (!counts.contains(event) || !counts[event].is_number_integer()) return 0;
  return counts[event].get<int64_t>();
}

int64_t ToolFixture::Count(const std::string& project,
                           const std::string& event) {
  return Count(Diagnostics(project), event);
}

std::string ToolFixture::MakeRootDir(const std::string& rel) {
  const std::string path = root_ + "/" + rel;
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  EXPECT_EQ(chown(path.c_str(), kProjectUid, kProjectGid), 0) << path;
  return path;
}

std::string ToolFixture::WriteRootFile(const std::string& rel,
                                       const std::string& content,
                                       mode_t mode) {
  const std::string path = dir_.WriteFile("project/" + rel, content);
  EXPECT_EQ(chown(path.c_str(), kProjectUid, kProjectGid), 0) << path;
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
  return path;
}

std::string ToolFixture::PlantSymlink(const std::string& target,
                                      const std::string& rel) {
  const std::string path = root_ + "/" + rel;
  EXPECT_EQ(symlink(target.c_str(), path.c_str()), 0) << path;
  EXPECT_EQ(lchown(path.c_str(), kProjectUid, kProjectGid), 0) << path;
  return path;
}

std::string ToolFixture::WriteOutsideFile(const std::string& rel,
                                          const std::string& content,
                                          mode_t mode) {
  const std::string path = dir_.WriteFile("outside/" + rel, content);
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
  return path;
}

bool ToolFixture::ExpectOk(const ToolResponse& r) {
  EXPECT_EQ(r.status(), "ok") << r.Describe();
  return r.status() == "ok";
}

bool ToolFixture::ExpectError(const ToolResponse& r,
                              const std::string& reason) {
  EXPECT_EQ(r.status(), "error") << r.Describe();
  EXPECT_EQ(r.reason(), reason) << r.Describe();
  return r.status() == "error" && r.reason() == reason;
}

}  // namespace jcs::serve_test
