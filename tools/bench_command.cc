// `jcs bench`: the load harness (README "Load harness"). It drives the real
// daemon: a private `jcs serve` on a temporary socket and state directory,
// or the one on --socket. Steps, each counted in the report:
//   1. projects on fresh temporary roots (owned by uid 1000 when run as
//      root, as a deployment's are), N conversations in each;
//   2. the p50 of a single jailed exec of /bin/true (RunTool, sequential,
//      20 ms apart, after warm-up calls): the yardstick of --check;
//   3. the load: every conversation gets --events user messages whose
//      data.llm directive makes the deterministic adapter request one exec
//      of /bin/true, so each event is a model turn, a jailed tool call
//      and a closing model turn; each is a ConversationCall (it answers
//      once the conversation settled), timed from send to answer. A
//      conversation's events go one after another (a later message would
//      wait behind the earlier run anyway and blur the figure); at most
//      --concurrency conversations have one in flight;
//   4. projection checks: each conversation's timeline holds every message
//      sent to it and one successful exec result per message, no failure;
//   5. the daemon's VmHWM, each project's health, then the projects are
//      stopped and the roots removed.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/json_fields.h"
#include "nlohmann/json.hpp"
#include "tools/bench_options.h"
#include "tools/client_common.h"
#include "tools/commands.h"
#include "tools/control_client.h"
#include "tools/private_daemon.h"

namespace jcs::tools {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kTrueWarmups = 3;
constexpr int kTrueCalls = 20;
// Between two /bin/true calls: the think time an agent has, in which the
// daemon rebuilds its warm jails off the call's path (tools/tool_bench's
// steady state); back to back, each call would also pay a cold jail.
constexpr absl::Duration kTrueGap = absl::Milliseconds(20);
constexpr size_t kMaxFailuresKept = 50;
constexpr uint64_t kRssTargetKib = 64 * 1024;
constexpr double kLatencyTargetFactor = 3.0;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

// The daemon's pid from the peer credentials of a connection to its socket
// (--socket: it is not our child); -1 when unknown.
pid_t PeerPid(const std::string& socket_path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    close(fd);
    return -1;
  }
  memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  pid_t pid = -1;
  ucred cred = {};
  socklen_t len = sizeof(cred);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    pid = cred.pid;
  }
  close(fd);
  return pid;
}

// VmHWM (the peak resident set) of `pid` in KiB; 0 when unreadable.
uint64_t PeakRssKib(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
  }
  return 0;
}

std::string Ms(double ms) { return absl::StrFormat("%.2f", ms); }

struct Counts {
  int64_t requested = 0, started = 0, failed = 0;
};

struct ConversationSlot {
  std::string project;
  std::string id;
  int64_t next = 0;  // events sent (or tried)
  int64_t ok = 0;    // events that settled
};

class BenchRun {
 public:
  BenchRun(const BenchOptions& options, std::string socket, pid_t daemon_pid)
      : options_(options),
        socket_(std::move(socket)),
        daemon_pid_(daemon_pid),
        run_tag_(absl::StrCat(getpid())) {}

  ~BenchRun() {
    if (!roots_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(roots_dir_, ignored);
    }
  }

  int Run() {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::unique_ptr<ControlClient>> admin =
        ControlClient::Connect(socket_, CallLimit());
    if (!admin.ok()) {
      Failure(
          absl::StrCat("connect ", socket_, ": ", admin.status().message()));
    } else {
      Setup(**admin);
      MeasureTrue(**admin);
      Load();
      CheckProjections(**admin);
      peak_rss_kib_ = PeakRssKib(daemon_pid_);
      Teardown(**admin);
    }
    elapsed_ms_ = MsSince(start);
    return Report();
  }

 private:
  absl::Duration CallLimit() const {
    return absl::Milliseconds(options_.timeout_ms) + absl::Seconds(60);
  }

  void Failure(std::string text) {
    std::lock_guard<std::mutex> lock(mu_);
    ++failure_count_;
    if (failures_.size() < kMaxFailuresKept) {
      failures_.push_back(std::move(text));
    }
  }

  void Progress(const std::string& line) {
    if (!options_.verbose) return;
    std::lock_guard<std::mutex> lock(mu_);
    fprintf(stderr, "jcs bench: %s\n", line.c_str());
  }

  bool MakeRoot(int64_t p, std::string* root) {
    *root = absl::StrCat(roots_dir_, "/p", p);
    std::error_code ec;
    std::filesystem::create_directories(*root, ec);
    if (ec || chmod(root->c_str(), 0755) != 0) {
      Failure(absl::StrCat("create ", *root, ": ", ec.message()));
      return false;
    }
    // The daemon refuses roots that its tools' identity could not use; a
    // deployment's roots belong to a project user, uid 1000 in the tests.
    if (geteuid() == 0 && chown(root->c_str(), 1000, 1000) != 0) {
      Failure(absl::StrCat("chown ", *root, ": ", strerror(errno)));
      return false;
    }
    return true;
  }

  void Setup(ControlClient& admin) {
    const char* tmp = getenv("TMPDIR");
    std::string templ = absl::StrCat(
        tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp", "/jcs-bench.XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      Failure(absl::StrCat("mkdtemp ", templ, ": ", strerror(errno)));
      projects_.requested = options_.projects;
      projects_.failed = options_.projects;
      return;
    }
    roots_dir_ = templ;
    chmod(roots_dir_.c_str(), 0755);
    for (int64_t p = 1; p <= options_.projects; ++p) {
      ++projects_.requested;
      conversations_.requested += options_.conversations;
      std::string root;
      if (!MakeRoot(p, &root)) {
        ++projects_.failed;
        conversations_.failed += options_.conversations;
        continue;
      }
      absl::StatusOr<std::string> id = admin.StartProject(
          root, {}, absl::StrCat("bench-p", p, "-", run_tag_));
      if (!id.ok()) {
        ++projects_.failed;
        conversations_.failed += options_.conversations;
        Failure(absl::StrCat("project ", p, ": ", id.status().message()));
        continue;
      }
      ++projects_.started;
      project_ids_.push_back(*id);
      for (int64_t c = 1; c <= options_.conversations; ++c) {
        const std::string cid = absl::StrCat(*id, "-c", c);
        absl::StatusOr<std::string> started = admin.StartConversation(*id, cid);
        if (!started.ok()) {
          ++conversations_.failed;
          Failure(absl::StrCat("conversation ", cid, ": ",
                               started.status().message()));
          continue;
        }
        ++conversations_.started;
        slots_.push_back({*id, cid});
      }
      Progress(absl::StrCat("started ", *id, " with ", options_.conversations,
                            " conversations"));
    }
    // Conversation-major across projects: the conversations in flight are
    // spread over every project, as independent clients' would be.
    std::stable_sort(slots_.begin(), slots_.end(),
                     [](const ConversationSlot& a, const ConversationSlot& b) {
                       return Index(a.id) < Index(b.id);
                     });
  }

  static int64_t Index(const std::string& conversation_id) {
    int64_t n = 0;
    const size_t at = conversation_id.rfind("-c");
    if (at != std::string::npos) {
      (void)absl::SimpleAtoi(conversation_id.substr(at + 2), &n);
    }
    return n;
  }

  void MeasureTrue(ControlClient& admin) {
    if (project_ids_.empty()) return;
    const std::string args = json{{"argv", {"/bin/true"}}}.dump();
    std::vector<double> ms;
    for (int i = 0; i < kTrueWarmups + kTrueCalls; ++i) {
      if (i > 0) absl::SleepFor(kTrueGap);
      const Clock::time_point t = Clock::now();
      absl::StatusOr<std::string> r =
          admin.RunTool(project_ids_.front(), "exec", args, "{}");
      const double took = MsSince(t);
      const json doc = r.ok() ? json::parse(*r, nullptr, false) : json();
      if (!r.ok() || !doc.is_object() ||
          json_fields::String(doc, "status") != "ok") {
        Failure(absl::StrCat("jailed /bin/true: ",
                             r.ok() ? *r : std::string(r.status().message())));
        return;
      }
      if (i >= kTrueWarmups) ms.push_back(took);
    }
    std::sort(ms.begin(), ms.end());
    true_p50_ms_ = NearestRank(ms, 50);
    Progress(absl::StrCat("jailed /bin/true p50 ", Ms(true_p50_ms_), " ms"));
  }

  static std::string Content(const ConversationSlot& slot, int64_t k) {
    return absl::StrCat("bench:", slot.project, ":", slot.id, ":", k);
  }

  static std::string Signal(const ConversationSlot& slot, int64_t k) {
    return json{
        {"type", "conversation.user.message"},
        {"data",
         {{"content", Content(slot, k)},
          {"llm",
           {{"tool_calls",
             {{{"name", "exec"}, {"args", {{"argv", {"/bin/true"}}}}}}}}}}}}
        .dump();
  }

  // The scheduler: a conversation is handed to one worker at a time, so
  // its events go in order; `ready_` holds those with events left.
  std::optional<size_t> Take() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || busy_ == 0; });
    if (ready_.empty()) return std::nullopt;
    const size_t slot = ready_.front();
    ready_.pop_front();
    ++busy_;
    return slot;
  }

  void Done(size_t slot) {
    std::lock_guard<std::mutex> lock(mu_);
    --busy_;
    if (slots_[slot].next < options_.events) ready_.push_back(slot);
    cv_.notify_all();
  }

  void Worker() {
    absl::StatusOr<std::unique_ptr<ControlClient>> client =
        ControlClient::Connect(socket_, CallLimit());
    if (!client.ok()) {
      Failure(absl::StrCat("worker connect: ", client.status().message()));
    }
    while (std::optional<size_t> index = Take()) {
      ConversationSlot& slot = slots_[*index];
      const int64_t k = slot.next++;
      if (!client.ok()) {
        ++events_failed_;
        Done(*index);
        continue;
      }
      ++events_sent_;
      const Clock::time_point t = Clock::now();
      absl::StatusOr<std::string> r = (*client)->ConversationCall(
          slot.project, slot.id, Signal(slot, k),
          static_cast<uint32_t>(options_.timeout_ms));
      const double took = MsSince(t);
      const json doc = r.ok() ? json::parse(*r, nullptr, false) : json();
      std::string error;
      if (!r.ok()) {
        error = std::string(r.status().message());
      } else if (!doc.is_object() ||
                 json_fields::Bool(doc, "settled", false) != true) {
        error = absl::StrCat(
            "not settled within --timeout-ms ", options_.timeout_ms,
            " (status ",
            doc.is_object() ? json_fields::String(doc, "status", "?") : "?",
            ")");
      }
      if (error.empty()) {
        ++slot.ok;
        std::lock_guard<std::mutex> lock(mu_);
        latencies_ms_.push_back(took);
      } else {
        ++events_failed_;
        Failure(absl::StrCat("event ", Content(slot, k), ": ", error));
      }
      Progress(absl::StrCat("event ", Content(slot, k), " ", Ms(took), " ms",
                            error.empty() ? "" : " FAILED"));
      Done(*index);
    }
  }

  void Load() {
    events_requested_ =
        projects_.requested * options_.conversations * options_.events;
    // Events of conversations that never started count as failed.
    events_failed_ = (projects_.requested * options_.conversations -
                      static_cast<int64_t>(slots_.size())) *
                     options_.events;
    if (slots_.empty()) return;
    for (size_t i = 0; i < slots_.size(); ++i) ready_.push_back(i);
    const size_t workers =
        std::min(static_cast<size_t>(options_.concurrency), slots_.size());
    const Clock::time_point start = Clock::now();
    std::vector<std::thread> threads;
    threads.reserve(workers);
    for (size_t i = 0; i < workers; ++i) {
      threads.emplace_back([this] { Worker(); });
    }
    for (std::thread& t : threads) t.join();
    load_ms_ = MsSince(start);
  }

  void CheckProjections(ControlClient& admin) {
    for (const ConversationSlot& slot : slots_) {
      ++checks_;
      absl::StatusOr<std::string> text =
          admin.ConversationProjection(slot.project, slot.id, "timeline");
      const json timeline =
          text.ok() ? json::parse(*text, nullptr, false) : json();
      std::string problem;
      if (!timeline.is_array()) {
        problem = text.ok() ? "not a JSON array"
                            : std::string(text.status().message());
      } else {
        std::vector<std::string> contents;
        int64_t completed = 0, failed = 0;
        for (const json& e : timeline) {
          const std::string type = json_fields::String(e, "event_type");
          const json data = json_fields::Object(e, "data");
          if (type == "conversation.user.message") {
            contents.push_back(json_fields::String(data, "content"));
          } else if (type == "conversation.tool.completed" &&
                     json_fields::String(data, "name") == "exec" &&
                     json_fields::String(json_fields::Object(data, "result"),
                                         "status") == "ok") {
            ++completed;
          } else if (type == "conversation.tool.failed" ||
                     type == "conversation.tool.cancelled" ||
                     type == "conversation.llm.failed") {
            ++failed;
          }
        }
        for (int64_t k = 0; k < options_.events && problem.empty(); ++k) {
          if (std::find(contents.begin(), contents.end(), Content(slot, k)) ==
              contents.end()) {
            problem = absl::StrCat("message ", k, " missing from the timeline");
          }
        }
        if (problem.empty() && completed != options_.events) {
          problem = absl::StrCat(completed, " successful exec results, ",
                                 options_.events, " expected");
        }
        if (problem.empty() && failed != 0) {
          problem = absl::StrCat(failed, " failed or cancelled steps");
        }
      }
      if (!problem.empty()) {
        ++checks_failed_;
        Failure(absl::StrCat("projection ", slot.id, ": ", problem));
      }
    }
  }

  void Teardown(ControlClient& admin) {
    for (const std::string& id : project_ids_) {
      absl::StatusOr<std::string> text = admin.Diagnostics(id);
      const json d = text.ok() ? json::parse(*text, nullptr, false) : json();
      const json health =
          d.is_object() ? json_fields::Object(d, "health") : json::object();
      diags_.push_back(absl::StrCat(
          "Project diag: project_id=", id,
          " health=", json_fields::String(health, "status", "unknown"),
          " errors=", json_fields::Int(health, "error_count", 0)));
    }
    for (const std::string& id : project_ids_) {
      if (absl::Status s = admin.StopProject(id); !s.ok()) {
        Failure(absl::StrCat("stop ", id, ": ", s.message()));
      }
    }
  }

  int Report() {
    std::vector<double> sorted = latencies_ms_;
    std::sort(sorted.begin(), sorted.end());
    double sum = 0;
    for (double v : sorted) sum += v;
    const double avg = sorted.empty() ? 0 : sum / sorted.size();
    const double p95 = NearestRank(sorted, 95);
    const double throughput =
        load_ms_ > 0 ? static_cast<double>(sorted.size()) * 1000.0 / load_ms_
                     : 0;
    std::vector<std::string> check_lines;
    if (options_.check) {
      const double limit = kLatencyTargetFactor * true_p50_ms_;
      const bool latency_ok = true_p50_ms_ > 0 && p95 <= limit;
      const bool rss_ok = peak_rss_kib_ > 0 && peak_rss_kib_ < kRssTargetKib;
      check_lines.push_back(
          absl::StrCat("Check: p95 ", Ms(p95), " ms <= 3x /bin/true p50 (",
                       Ms(limit), " ms): ", latency_ok ? "met" : "MISSED"));
      check_lines.push_back(
          absl::StrFormat("Check: daemon peak RSS %.1f MiB < 64 MiB: %s",
                          static_cast<double>(peak_rss_kib_) / 1024.0,
                          rss_ok ? "met" : "MISSED"));
      if (!latency_ok) Failure("target missed: p95 event latency");
      if (!rss_ok) Failure("target missed: the daemon's peak RSS");
    }
    printf("Benchmark Report\n");
    printf("Elapsed (ms): %.0f\n", elapsed_ms_);
    printf("Projects: requested=%lld started=%lld failed=%lld\n",
           static_cast<long long>(projects_.requested),
           static_cast<long long>(projects_.started),
           static_cast<long long>(projects_.failed));
    printf("Conversations: requested=%lld started=%lld failed=%lld\n",
           static_cast<long long>(conversations_.requested),
           static_cast<long long>(conversations_.started),
           static_cast<long long>(conversations_.failed));
    printf("Events: requested=%lld sent=%lld failed=%lld\n",
           static_cast<long long>(events_requested_),
           static_cast<long long>(events_sent_.load()),
           static_cast<long long>(events_failed_.load()));
    printf("Latency (ms): avg=%s p50=%s p95=%s p99=%s min=%s max=%s\n",
           Ms(avg).c_str(), Ms(NearestRank(sorted, 50)).c_str(),
           Ms(p95).c_str(), Ms(NearestRank(sorted, 99)).c_str(),
           Ms(sorted.empty() ? 0 : sorted.front()).c_str(),
           Ms(sorted.empty() ? 0 : sorted.back()).c_str());
    printf("Throughput (events/s): %.1f over %.0f ms, concurrency=%lld\n",
           throughput, load_ms_, static_cast<long long>(options_.concurrency));
    printf("Jailed /bin/true p50 (ms): %s over %d calls\n",
           Ms(true_p50_ms_).c_str(), kTrueCalls);
    printf("Daemon peak RSS (MiB): %.1f (VmHWM of pid %d)\n",
           static_cast<double>(peak_rss_kib_) / 1024.0,
           static_cast<int>(daemon_pid_));
    printf("Projection checks: checked=%lld failed=%lld\n",
           static_cast<long long>(checks_),
           static_cast<long long>(checks_failed_));
    for (const std::string& line : diags_) printf("%s\n", line.c_str());
    for (const std::string& line : check_lines) printf("%s\n", line.c_str());
    printf("Failures:%s\n", failures_.empty() ? " none" : "");
    for (const std::string& f : failures_) printf("  - %s\n", f.c_str());
    if (failure_count_ > failures_.size()) {
      printf("  ... and %zu more\n", failure_count_ - failures_.size());
    }
    const bool passed = failure_count_ == 0;
    printf("%s\n", passed ? "Benchmark harness passed."
                          : "Benchmark harness reported failures.");
    fflush(stdout);
    return passed ? 0 : kExitFailed;
  }

  const BenchOptions options_;
  const std::string socket_;
  const pid_t daemon_pid_;
  const std::string run_tag_;
  std::string roots_dir_;

  Counts projects_, conversations_;
  std::vector<std::string> project_ids_;
  std::vector<ConversationSlot> slots_;
  int64_t events_requested_ = 0;
  std::atomic<int64_t> events_sent_{0}, events_failed_{0};
  int64_t checks_ = 0, checks_failed_ = 0;
  double true_p50_ms_ = 0, load_ms_ = 0, elapsed_ms_ = 0;
  uint64_t peak_rss_kib_ = 0;
  std::vector<std::string> diags_;

  std::mutex mu_;  // guards what workers share below and stderr lines
  std::condition_variable cv_;
  std::deque<size_t> ready_;
  size_t busy_ = 0;
  std::vector<double> latencies_ms_;
  std::vector<std::string> failures_;
  size_t failure_count_ = 0;
};

}  // namespace

int BenchCommand(const std::vector<std::string>& args) {
  const CommandSpec& spec = BenchSpec();
  bool help = false;
  absl::StatusOr<BenchOptions> options = ParseBenchOptions(args, &help);
  if (!options.ok()) {
    return UsageError(spec, std::string(options.status().message()));
  }
  if (help) {
    fputs(FormatUsage(spec).c_str(), stdout);
    return 0;
  }
  // A daemon that dies mid-run must fail the run, not kill it.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<PrivateDaemon> daemon;
  std::string socket = options->socket;
  pid_t pid = -1;
  if (socket.empty()) {
    absl::StatusOr<std::unique_ptr<PrivateDaemon>> started =
        PrivateDaemon::Start(
            absl::Seconds(30),
            absl::StrCat("log_level: \"", options->verbose ? "info" : "warn",
                         "\"\n"),
            "jcs-bench");
    if (!started.ok()) return Fail(spec.name, started.status());
    daemon = *std::move(started);
    socket = daemon->socket_path();
    pid = daemon->pid();
  } else {
    pid = PeerPid(socket);
  }
  return BenchRun(*options, socket, pid).Run();
}

}  // namespace jcs::tools
