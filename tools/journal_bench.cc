// Issue 12's figures: journal ingest throughput and commit latency, and the
// daemon's memory with many projects, conversations and events.
//
//   bazel build -c opt //tools:jcs //tools:journal_bench
//   ./bazel-bin/tools/journal_bench --mode ingest            # part 1
//   ./bazel-bin/tools/journal_bench --mode daemon --jcs bazel-bin/tools/jcs
//   ./bazel-bin/tools/journal_bench --mode all --jcs ... --json   # both
//
// Ingest (--mode ingest): the daemon's path without the daemon. Events go
// through a telemetry::Bus (redaction, counters, rings) whose sink appends
// them to a runtime/journal Journal (writer thread, SQLite WAL,
// synchronous=FULL) in a temporary state directory, on an EventLoop, exactly
// as ControlService's sink does; an event counts as acknowledged when the
// journal's durable callback (posted back to the loop) reaches its seq. The
// payloads are conversation and tool events of 300-800 bytes of JSON. For
// each offered rate (--rates, events/s; 0 = unthrottled: as fast as the loop
// can emit while at most --window events wait for durability, the daemon's
// held-event bound) it prints events/s sustained (first append to last
// durable), the commit latency p50/p99/max (append to durable callback) and
// the batch sizes (events per commit). Flags: --events N (unthrottled run,
// default 200000), --seconds S (each fixed-rate run, default 10), --rates
// LIST (default 0,2000), --window N (default 10000), --dir DIR (where the
// temporary state directory goes, default $TMPDIR or /tmp: the filesystem
// under it decides the fsync cost).
//
// Daemon (--mode daemon): starts `jcs serve` (--jcs PATH) on a temporary
// socket and state directory, starts --projects projects (temporary roots,
// owned by uid 1000 like the tests' roots), --conversations conversations in
// each (StartConversation), then sends --messages (default 200: about 1,000
// events per conversation) conversation.user.message
// signals to every conversation with the deterministic adapter's data.llm.text
// directive (no tool runs; each message makes several events), in --phases
// phases: per phase and project one client casts the phase's messages round
// robin over the project's conversations, then sends each conversation one
// ConversationCall, which answers once that conversation has settled. After
// each phase it reads VmRSS and VmHWM from /proc/PID/status and the journal's
// last/durable seq. At the end it checks a few conversations' timeline, model
// context and diagnostics (their sizes against the runtime's bounds), the
// project's telemetry rings and the journal queue, then stops the projects
// and reads VmRSS once more. It prints the RSS per phase, the peak, events/s
// end to end and the bounds it saw.
//
// --json prints one JSON document instead of the report. Nothing here is a
// pass/fail target: the figures are for the README and the issue.
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/json_fields.h"
#include "loop/event_loop.h"
#include "nlohmann/json.hpp"
#include "runtime/journal/journal.h"
#include "telemetry/bus.h"
#include "tools/control_client.h"

extern char** environ;

namespace {

namespace json_fields = jcs::json_fields;

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string mode = "ingest";
  bool json_output = false;
  std::string dir;
  // Ingest.
  uint64_t events = 200000;
  double seconds = 10;
  std::vector<uint64_t> rates = {0, 2000};
  uint64_t window = 10000;
  // Daemon.
  std::string jcs;
  int projects = 10;
  int conversations = 20;
  // ~5 events per message: 200 make the 1,000 per conversation.
  int messages = 200;
  int phases = 10;
  int rounds = 1;
};

int Usage(const std::string& error) {
  fprintf(stderr,
          "journal_bench: %s\nusage: journal_bench [--mode ingest|daemon|all] "
          "[--json] [--dir DIR]\n  ingest: [--events N] [--seconds S] "
          "[--rates 0,2000] [--window N]\n  daemon: --jcs PATH [--projects N] "
          "[--conversations N] [--messages N] [--phases N] [--rounds N]\n",
          error.c_str());
  return 2;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index =
      std::min(sorted.size() - 1,
               static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[index];
}

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// A fresh directory under --dir; removed by the caller.
std::string MakeTempDir(const Flags& flags, const char* tag) {
  std::string base = flags.dir;
  if (base.empty()) {
    const char* tmp = getenv("TMPDIR");
    base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string pattern = absl::StrCat(base, "/journal-bench-", tag, ".XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return "";
  chmod(pattern.c_str(), 0755);
  return pattern;
}

// ---- part 1: journal ingest ----

std::string Words(size_t bytes, uint64_t salt) {
  static const char* const kWords[] = {
      "the",    "build", "fails", "in",       "module", "parser", "when",
      "input",  "has",   "a",     "trailing", "comma",  "please", "check",
      "tests/", "src/",  "lexer", "token",    "span",   "error"};
  std::string out;
  uint64_t x = salt * 6364136223846793005ULL + 1442695040888963407ULL;
  while (out.size() < bytes) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    if (!out.empty()) out += ' ';
    out += kWords[(x >> 33) % (sizeof(kWords) / sizeof(kWords[0]))];
  }
  return out;
}

// Events shaped like the daemon's (runtime/conversation/conversation.cc Emit,
// the tool runtime's tool.completed), 300-800 bytes serialized.
std::vector<std::pair<std::string, json>> EventTemplates() {
  std::vector<std::pair<std::string, json>> out;
  for (uint64_t i = 0; i < 64; ++i) {
    const std::string conversation = absl::StrCat("conversation_", i % 20);
    const std::string correlation = absl::StrCat("corr-", 1000 + i);
    json envelope = {{"project_id", "bench"},
                     {"conversation_id", conversation},
                     {"correlation_id", correlation},
                     {"source", "conversation"},
                     {"signal_id", absl::StrCat("sig-", 5000 + i)},
                     {"at", "2026-12-03T09:00:00.000Z"},
                     {"seq_in_conversation", i}};
    switch (i % 4) {
      case 0:
        envelope["event_type"] = "conversation.user.message";
        envelope["data"] = {{"content", Words(120 + (i * 37) % 380, i)}};
        break;
      case 1:
        envelope["event_type"] = "conversation.llm.requested";
        envelope["data"] = {{"model", "deterministic"},
                            {"turn", i % 16},
                            {"messages", i % 200},
                            {"tools", {"fs.read", "fs.write", "exec"}}};
        break;
      case 2:
        envelope["event_type"] = "conversation.assistant.message";
        envelope["data"] = {{"content", Words(150 + (i * 53) % 350, i + 7)}};
        break;
      default:
        envelope = {{"project_id", "bench"},
                    {"conversation_id", conversation},
                    {"correlation_id", correlation},
                    {"tool", "fs.read"},
                    {"call_id", absl::StrCat("call-", i)},
                    {"args", {{"path", absl::StrCat("src/module_", i, ".rs")}}},
                    {"status", "ok"},
                    {"duration_ms", 3 + i % 40},
                    {"exit_code", 0},
                    {"output_bytes", 2000 + i * 17},
                    {"summary", Words(80 + (i * 29) % 200, i + 3)}};
        out.emplace_back("tool.completed", std::move(envelope));
        continue;
    }
    out.emplace_back(envelope["event_type"].get<std::string>(),
                     std::move(envelope));
  }
  return out;
}

struct IngestRow {
  uint64_t offered_rate = 0;  // 0: unthrottled
  uint64_t events = 0;
  double seconds = 0;
  double events_per_s = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  uint64_t commits = 0;
  double batch_mean = 0;
  uint64_t batch_p50 = 0, batch_max = 0;
  double payload_bytes_mean = 0;
  uint64_t dropped = 0;
  std::string error;
};

IngestRow RunIngest(const Flags& flags, uint64_t rate) {
  IngestRow row;
  row.offered_rate = rate;
  const uint64_t total =
      rate == 0 ? flags.events
                : std::max<uint64_t>(
                      1, static_cast<uint64_t>(flags.seconds *
                                               static_cast<double>(rate)));
  const std::string dir = MakeTempDir(flags, "ingest");
  if (dir.empty()) {
    row.error = "cannot create a temporary directory";
    return row;
  }
  absl::StatusOr<std::unique_ptr<jcs::runtime::EventLoop>> loop =
      jcs::runtime::EventLoop::Create();
  if (!loop.ok()) {
    row.error = std::string(loop.status().message());
    std::filesystem::remove_all(dir);
    return row;
  }
  std::vector<Clock::time_point> appended(total + 1);
  std::vector<double> latencies_ms;
  latencies_ms.reserve(total);
  std::vector<uint64_t> batches;
  uint64_t durable = 0;
  Clock::time_point last_durable_at;
  jcs::runtime::journal::Journal::Callbacks callbacks;
  callbacks.durable = [&](uint64_t seq) {
    const Clock::time_point now = Clock::now();
    batches.push_back(seq - durable);
    for (uint64_t s = durable + 1; s <= seq && s <= total; ++s) {
      latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(now - appended[s]).count());
    }
    durable = seq;
    last_durable_at = now;
  };
  jcs::runtime::journal::JournalOptions options;
  options.path = dir + "/journal.db";
  absl::StatusOr<std::unique_ptr<jcs::runtime::journal::Journal>> journal =
      jcs::runtime::journal::Journal::Open(loop->get(), options, callbacks);
  if (!journal.ok()) {
    row.error = std::string(journal.status().message());
    std::filesystem::remove_all(dir);
    return row;
  }
  // The daemon's sink: the bus hands each (redacted) event to the journal.
  jcs::telemetry::Bus bus;
  uint64_t payload_bytes = 0;
  bus.AddSink([&](const jcs::telemetry::Event& e) {
    const uint64_t seq = (*journal)->Append(e);
    if (seq <= total) appended[seq] = Clock::now();
  });
  const std::vector<std::pair<std::string, json>> templates = EventTemplates();
  for (const auto& t : templates) payload_bytes += t.second.dump().size();
  uint64_t emitted = 0;
  auto emit_one = [&] {
    const auto& t = templates[emitted % templates.size()];
    bus.Emit(t.first, t.second);
    ++emitted;
  };
  const Clock::time_point start = Clock::now();
  while (emitted < total) {
    if (rate == 0) {
      // As fast as the loop goes, with at most `window` not yet durable.
      for (int i = 0;
           i < 256 && emitted < total && emitted - durable < flags.window;
           ++i) {
        emit_one();
      }
      const bool full = emitted - durable >= flags.window;
      (void)(*loop)->RunOnce(full ? absl::Milliseconds(10)
                                  : absl::ZeroDuration());
    } else {
      const double elapsed = Seconds(start, Clock::now());
      const uint64_t due = std::min<uint64_t>(
          total, static_cast<uint64_t>(elapsed * static_cast<double>(rate)));
      while (emitted < due) emit_one();
      (void)(*loop)->RunOnce(absl::Microseconds(200));
    }
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (durable < emitted && absl::Now() < deadline) {
    (void)(*loop)->RunOnce(absl::Milliseconds(50));
  }
  row.dropped = static_cast<uint64_t>(
      json_fields::Int((*journal)->Diagnostics(), "dropped", 0));
  if (durable < emitted) {
    row.error = absl::StrCat("only ", durable, " of ", emitted,
                             " events durable after 120 s");
  }
  journal->reset();
  loop->reset();
  std::filesystem::remove_all(dir);

  row.events = emitted;
  row.seconds = Seconds(start, last_durable_at);
  row.events_per_s =
      row.seconds > 0 ? static_cast<double>(durable) / row.seconds : 0;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  row.p50_ms = Percentile(latencies_ms, 0.50);
  row.p99_ms = Percentile(latencies_ms, 0.99);
  row.max_ms = latencies_ms.empty() ? 0 : latencies_ms.back();
  row.commits = batches.size();
  if (!batches.empty()) {
    uint64_t sum = 0;
    for (uint64_t b : batches) sum += b;
    row.batch_mean = static_cast<double>(sum) / batches.size();
    std::sort(batches.begin(), batches.end());
    row.batch_p50 = batches[batches.size() / 2];
    row.batch_max = batches.back();
  }
  row.payload_bytes_mean =
      static_cast<double>(payload_bytes) / templates.size();
  return row;
}

json IngestJson(const IngestRow& r) {
  json doc = {
      {"offered_rate", r.offered_rate},
      {"events", r.events},
      {"seconds", r.seconds},
      {"events_per_s", r.events_per_s},
      {"commit_latency_ms",
       {{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}}},
      {"commits", r.commits},
      {"batch",
       {{"mean", r.batch_mean}, {"p50", r.batch_p50}, {"max", r.batch_max}}},
      {"payload_bytes_mean", r.payload_bytes_mean},
      {"dropped", r.dropped}};
  if (!r.error.empty()) doc["error"] = r.error;
  return doc;
}

void PrintIngest(const IngestRow& r) {
  printf(
      "ingest %-12s %8llu events  %9.0f events/s  commit p50 %7.2f ms  p99 "
      "%7.2f ms  max %7.2f ms  %6llu commits, batch mean %.1f p50 %llu max "
      "%llu  (payload ~%.0f B, dropped %llu)%s%s\n",
      r.offered_rate == 0 ? "unthrottled"
                          : absl::StrCat(r.offered_rate, "/s").c_str(),
      static_cast<unsigned long long>(r.events), r.events_per_s, r.p50_ms,
      r.p99_ms, r.max_ms, static_cast<unsigned long long>(r.commits),
      r.batch_mean, static_cast<unsigned long long>(r.batch_p50),
      static_cast<unsigned long long>(r.batch_max), r.payload_bytes_mean,
      static_cast<unsigned long long>(r.dropped), r.error.empty() ? "" : "  ",
      r.error.c_str());
}

// ---- part 2: the daemon ----

// {VmRSS, VmHWM} in KiB from /proc/PID/status (0 when unreadable).
std::pair<uint64_t, uint64_t> Memory(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  uint64_t rss = 0, hwm = 0;
  while (std::getline(in, line)) {
    for (auto [key, out] : {std::pair<const char*, uint64_t*>{"VmRSS:", &rss},
                            {"VmHWM:", &hwm}}) {
      if (line.rfind(key, 0) == 0) {
        std::vector<std::string> parts =
            absl::StrSplit(line, ' ', absl::SkipEmpty());
        if (parts.size() >= 2) (void)absl::SimpleAtoi(parts[1], out);
      }
    }
  }
  return {rss, hwm};
}

struct Phase {
  int messages_per_conversation = 0;  // cumulative
  double seconds = 0;                 // cumulative since the first message
  uint64_t events = 0;                // journal seqs since the first message
  uint64_t durable = 0;
  uint64_t rss_kib = 0, hwm_kib = 0;
};

struct DaemonResult {
  std::string error;
  uint64_t rss_idle_kib = 0, rss_setup_kib = 0, rss_stopped_kib = 0;
  std::vector<Phase> phases;
  uint64_t hwm_kib = 0;
  double seconds = 0;
  uint64_t events = 0;
  uint64_t messages = 0;
  json bounds = json::array();
  json journal;
  json telemetry_rings;
  json rounds = json::array();
};

class DaemonRun {
 public:
  explicit DaemonRun(const Flags& flags) : flags_(flags) {}
  ~DaemonRun() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  DaemonResult Run() {
    DaemonResult result;
    if (absl::Status s = Start(); !s.ok()) {
      result.error = std::string(s.message());
      return result;
    }
    result.rss_idle_kib = Memory(pid_).first;
    absl::StatusOr<std::unique_ptr<jcs::tools::ControlClient>> admin =
        jcs::tools::ControlClient::Connect(socket_, absl::Seconds(600));
    if (!admin.ok()) return Fail(result, admin.status());
    for (int round = 0; round < flags_.rounds; ++round) {
      if (!Round(**admin, round, &result)) return result;
    }
    kill(pid_, SIGTERM);
    const absl::Time stop_deadline = absl::Now() + absl::Seconds(30);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (absl::Now() > stop_deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    pid_ = -1;
    return result;
  }

 private:
  DaemonResult& Fail(DaemonResult& result, const absl::Status& status) {
    result.error =
        absl::StrCat(status.ToString(), "\n--- jcs serve log:\n", Log());
    return result;
  }

  std::string Log() const {
    std::ifstream in(dir_ + "/serve.log");
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  absl::Status Start() {
    if (flags_.jcs.empty()) {
      return absl::InvalidArgumentError("--jcs: the jcs binary is required");
    }
    dir_ = MakeTempDir(flags_, "daemon");
    if (dir_.empty()) {
      return absl::InternalError("cannot create a temporary directory");
    }
    socket_ = dir_ + "/jcs.sock";
    const std::string config = dir_ + "/config.txtpb";
    std::ofstream(config) << "socket_path: \"" << socket_ << "\"\nstate_dir: \""
                          << dir_ << "/state\"\n";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/serve.log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> args = {flags_.jcs, "serve", "--config", config};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, flags_.jcs.c_str(), &actions, nullptr,
                               argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("cannot start ", flags_.jcs, ": ", strerror(rc)));
    }
    // Poll until it answers a Ping (or exits).
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::InternalError(
            absl::StrCat("jcs serve exited at start:\n", Log()));
      }
      absl::StatusOr<std::unique_ptr<jcs::tools::ControlClient>> client =
          jcs::tools::ControlClient::Connect(socket_, absl::Seconds(2));
      if (client.ok()) {
        jcs::proto::Request ping;
        ping.mutable_ping();
        if ((*client)->Call(ping).ok()) return absl::OkStatus();
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("jcs serve did not answer within 30 s:\n", Log()));
  }

  // One round: starts the projects and conversations, sends the messages,
  // checks the bounds (round 0), stops the projects. Round 0's figures fill
  // `out`; every round adds a row to out->rounds.
  bool Round(jcs::tools::ControlClient& admin, int round, DaemonResult* out) {
    DaemonResult result;
    result.rss_idle_kib = out->rss_idle_kib;
    for (int p = 0; p < flags_.projects; ++p) {
      const std::string root = absl::StrCat(dir_, "/root", p);
      std::filesystem::create_directories(root);
      chmod(root.c_str(), 0755);
      if (geteuid() == 0 && chown(root.c_str(), 1000, 1000) != 0) {
        Fail(*out, absl::InternalError(
                       absl::StrCat("chown ", root, ": ", strerror(errno))));
        return false;
      }
      absl::StatusOr<std::string> id = admin.StartProject(
          root, {},
          round == 0 ? absl::StrCat("bench-", p)
                     : absl::StrCat("bench-r", round, "-", p),
          std::nullopt);
      if (!id.ok()) {
        Fail(*out, id.status());
        return false;
      }
      projects_.push_back(*id);
      for (int c = 0; c < flags_.conversations; ++c) {
        absl::StatusOr<std::string> conv =
            admin.StartConversation(*id, absl::StrCat("c", c));
        if (!conv.ok()) {
          Fail(*out, conv.status());
          return false;
        }
      }
    }
    result.rss_setup_kib = Memory(pid_).first;
    const uint64_t seq0 = JournalSeqs(admin).first;

    const Clock::time_point start = Clock::now();
    int sent = 0;
    for (int phase = 0; phase < flags_.phases; ++phase) {
      const int until = static_cast<int>(static_cast<int64_t>(flags_.messages) *
                                         (phase + 1) / flags_.phases);
      if (until <= sent) continue;
      std::vector<std::string> errors(projects_.size());
      std::vector<std::thread> threads;
      for (size_t p = 0; p < projects_.size(); ++p) {
        threads.emplace_back(
            [&, p] { errors[p] = SendPhase(projects_[p], sent, until); });
      }
      for (std::thread& t : threads) t.join();
      for (const std::string& e : errors) {
        if (!e.empty()) {
          out->error = e;
          return false;
        }
      }
      sent = until;
      Phase row;
      row.messages_per_conversation = sent;
      const auto [last, durable] = JournalSeqs(admin);
      row.seconds = Seconds(start, Clock::now());
      row.events = last - seq0;
      row.durable = durable - seq0;
      std::tie(row.rss_kib, row.hwm_kib) = Memory(pid_);
      result.phases.push_back(row);
    }
    // Every event durable: the end-to-end rate counts only what is kept.
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    std::pair<uint64_t, uint64_t> seqs = JournalSeqs(admin);
    while (seqs.second < seqs.first && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      seqs = JournalSeqs(admin);
    }
    result.seconds = Seconds(start, Clock::now());
    result.events = seqs.second - seq0;
    result.messages = static_cast<uint64_t>(sent) * projects_.size() *
                      static_cast<uint64_t>(flags_.conversations);
    result.hwm_kib = Memory(pid_).second;

    if (round == 0) CheckBounds(admin, &result);
    for (const std::string& p : projects_) (void)admin.StopProject(p);
    result.rss_stopped_kib = Memory(pid_).first;
    out->rounds.push_back(
        {{"round", round},
         {"seconds", result.seconds},
         {"events", result.events},
         {"vm_rss_end_kib",
          result.phases.empty() ? 0 : result.phases.back().rss_kib},
         {"vm_hwm_kib", result.hwm_kib},
         {"vm_rss_after_stop_kib", result.rss_stopped_kib}});
    projects_.clear();
    if (round == 0) {
      json rounds = std::move(out->rounds);
      *out = std::move(result);
      out->rounds = std::move(rounds);
    }
    return true;
  }

  // Casts messages [from, until) of every conversation of `project` round
  // robin, the last one as a call that waits for the conversation to settle.
  std::string SendPhase(const std::string& project, int from, int until) {
    absl::StatusOr<std::unique_ptr<jcs::tools::ControlClient>> client =
        jcs::tools::ControlClient::Connect(socket_, absl::Seconds(600));
    if (!client.ok()) return client.status().ToString();
    for (int m = from; m < until; ++m) {
      for (int c = 0; c < flags_.conversations; ++c) {
        const std::string conversation = absl::StrCat("c", c);
        const std::string signal = Message(project, c, m);
        if (m + 1 < until) {
          absl::StatusOr<std::string> cast =
              (*client)->ConversationCast(project, conversation, signal);
          if (!cast.ok()) return cast.status().ToString();
          if (cast->find("\"queued\"") == std::string::npos) {
            return absl::StrCat("cast not queued: ", *cast);
          }
        }
      }
    }
    for (int c = 0; c < flags_.conversations; ++c) {
      absl::StatusOr<std::string> call =
          (*client)->ConversationCall(project, absl::StrCat("c", c),
                                      Message(project, c, until - 1), 600000);
      if (!call.ok()) return call.status().ToString();
      if (call->find("\"settled\":true") == std::string::npos) {
        return absl::StrCat("conversation did not settle: ", *call);
      }
    }
    return "";
  }

  // ~250 bytes of content and ~250 of answer: the events built from it land
  // in the 300-800 byte range of the ingest part.
  static std::string Message(const std::string& project, int c, int m) {
    const uint64_t salt = static_cast<uint64_t>(m) * 131 + c;
    return json{{"type", "conversation.user.message"},
                {"data",
                 {{"content", absl::StrCat(project, " c", c, " m", m, ": ",
                                           Words(200 + salt % 100, salt))},
                  {"llm", {{"text", Words(200 + salt % 100, salt + 1)}}}}}}
        .dump();
  }

  // {last_seq, durable_seq} of the daemon's journal.
  std::pair<uint64_t, uint64_t> JournalSeqs(jcs::tools::ControlClient& client) {
    absl::StatusOr<std::string> diag = client.Diagnostics(projects_.front());
    if (!diag.ok()) return {0, 0};
    const json doc = json::parse(*diag, nullptr, false);
    if (!doc.is_object() || !doc.contains("journal")) return {0, 0};
    return {static_cast<uint64_t>(json_fields::Int(
                json_fields::Object(doc, "journal"), "last_seq", 0)),
            static_cast<uint64_t>(json_fields::Int(
                json_fields::Object(doc, "journal"), "durable_seq", 0))};
  }

  void CheckBounds(jcs::tools::ControlClient& client, DaemonResult* result) {
    const std::vector<std::string> sample = {projects_.front(),
                                             projects_.back()};
    for (const std::string& project : sample) {
      for (int c : {0, flags_.conversations - 1}) {
        const std::string conversation = absl::StrCat("c", c);
        json entry = {{"project_id", project},
                      {"conversation_id", conversation}};
        for (const char* key : {"timeline", "llm_context"}) {
          absl::StatusOr<std::string> text =
              client.ConversationProjection(project, conversation, key);
          const json doc =
              text.ok() ? json::parse(*text, nullptr, false) : json();
          // The timeline is an array, the context {messages: [...]}.
          const json& list =
              doc.is_object() ? json_fields::Member(doc, "messages") : doc;
          entry[absl::StrCat(key, "_entries")] =
              list.is_array() ? json(list.size()) : json(nullptr);
          entry[absl::StrCat(key, "_bytes")] = text.ok() ? text->size() : 0;
        }
        absl::StatusOr<std::string> diag =
            client.ConversationProjection(project, conversation, "diagnostics");
        const json d = diag.ok() ? json::parse(*diag, nullptr, false) : json();
        if (d.is_object()) {
          for (const char* key : {"event_count", "timeline_size",
                                  "timeline_dropped", "queue_size", "status"}) {
            if (d.contains(key)) entry[key] = d[key];
          }
        }
        result->bounds.push_back(entry);
      }
    }
    absl::StatusOr<std::string> diag = client.Diagnostics(projects_.front());
    const json doc = diag.ok() ? json::parse(*diag, nullptr, false) : json();
    if (doc.is_object()) {
      result->journal = json_fields::Object(doc, "journal");
      const json telemetry = json_fields::Object(doc, "telemetry");
      result->telemetry_rings = {
          {"recent_events",
           json_fields::Array(telemetry, "recent_events").size()},
          {"recent_errors",
           json_fields::Array(telemetry, "recent_errors").size()},
          {"total_events", json_fields::Int(telemetry, "total_events", 0)}};
    }
  }

  const Flags& flags_;
  std::string dir_, socket_;
  pid_t pid_ = -1;
  std::vector<std::string> projects_;
};

json DaemonJson(const Flags& flags, const DaemonResult& r) {
  json phases = json::array();
  for (const Phase& p : r.phases) {
    phases.push_back(
        {{"messages_per_conversation", p.messages_per_conversation},
         {"seconds", p.seconds},
         {"events", p.events},
         {"durable", p.durable},
         {"vm_rss_kib", p.rss_kib},
         {"vm_hwm_kib", p.hwm_kib}});
  }
  const double conversations =
      static_cast<double>(flags.projects) * flags.conversations;
  json doc = {
      {"projects", flags.projects},
      {"conversations_per_project", flags.conversations},
      {"messages_per_conversation", flags.messages},
      {"messages", r.messages},
      {"events", r.events},
      {"events_per_conversation",
       conversations > 0 ? static_cast<double>(r.events) / conversations : 0},
      {"seconds", r.seconds},
      {"events_per_s",
       r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0},
      {"vm_rss_kib",
       {{"idle", r.rss_idle_kib},
        {"setup", r.rss_setup_kib},
        {"end", r.phases.empty() ? 0 : r.phases.back().rss_kib},
        {"after_stop", r.rss_stopped_kib}}},
      {"vm_hwm_kib", r.hwm_kib},
      {"phases", phases},
      {"bounds", r.bounds},
      {"journal", r.journal},
      {"telemetry_rings", r.telemetry_rings},
      {"rounds", r.rounds}};
  if (!r.error.empty()) doc["error"] = r.error;
  return doc;
}

void PrintDaemon(const json& d) {
  if (d.contains("error")) {
    printf("daemon: error: %s\n", d["error"].get<std::string>().c_str());
    return;
  }
  const auto mib = [](const json& kib) {
    return static_cast<double>(kib.get<uint64_t>()) / 1024.0;
  };
  printf(
      "daemon %d projects x %d conversations x %d messages: %llu events "
      "(%.0f per conversation) in %.1f s = %.0f events/s end to end "
      "(durable)\n",
      d["projects"].get<int>(), d["conversations_per_project"].get<int>(),
      d["messages_per_conversation"].get<int>(),
      static_cast<unsigned long long>(d["events"].get<uint64_t>()),
      d["events_per_conversation"].get<double>(), d["seconds"].get<double>(),
      d["events_per_s"].get<double>());
  printf(
      "  VmRSS idle %.1f MiB, after setup %.1f MiB, end %.1f MiB, after "
      "stopping the projects %.1f MiB; VmHWM (peak) %.1f MiB\n",
      mib(d["vm_rss_kib"]["idle"]), mib(d["vm_rss_kib"]["setup"]),
      mib(d["vm_rss_kib"]["end"]), mib(d["vm_rss_kib"]["after_stop"]),
      mib(d["vm_hwm_kib"]));
  printf("  %-10s %10s %10s %10s %10s\n", "messages", "seconds", "events",
         "VmRSS MiB", "VmHWM MiB");
  for (const json& p : d["phases"]) {
    printf("  %-10d %10.1f %10llu %10.1f %10.1f\n",
           p["messages_per_conversation"].get<int>(),
           p["seconds"].get<double>(),
           static_cast<unsigned long long>(p["events"].get<uint64_t>()),
           mib(p["vm_rss_kib"]), mib(p["vm_hwm_kib"]));
  }
  for (const json& b : d["bounds"]) printf("  bounds %s\n", b.dump().c_str());
  printf("  journal %s\n  telemetry rings %s\n", d["journal"].dump().c_str(),
         d["telemetry_rings"].dump().c_str());
  for (const json& r : d["rounds"]) {
    printf(
        "  round %d: %.1f s, VmRSS at the end %.1f MiB, VmHWM %.1f MiB, VmRSS "
        "after stopping the projects %.1f MiB\n",
        r["round"].get<int>(), r["seconds"].get<double>(),
        mib(r["vm_rss_end_kib"]), mib(r["vm_hwm_kib"]),
        mib(r["vm_rss_after_stop_kib"]));
  }
}

// The machine the figures come from: shared CPUs make them move.
json Host() {
  std::ifstream in("/proc/loadavg");
  double load = 0;
  in >> load;
  return {{"cpus", std::thread::hardware_concurrency()},
          {"loadavg_1m_at_start", load}};
}

bool ParseList(const std::string& text, std::vector<uint64_t>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    uint64_t v;
    if (!absl::SimpleAtoi(part, &v)) return false;
    out->push_back(v);
  }
  return !out->empty();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string v;
    auto value = [&]() {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    auto positive = [&](auto* out) {
      int64_t n;
      if (!value() || !absl::SimpleAtoi(v, &n) || n <= 0) return false;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(n);
      return true;
    };
    if (arg == "--json") {
      flags.json_output = true;
    } else if (arg == "--mode") {
      if (!value() || (v != "ingest" && v != "daemon" && v != "all")) {
        return Usage("--mode: expected ingest, daemon or all");
      }
      flags.mode = v;
    } else if (arg == "--dir") {
      if (!value()) return Usage("--dir: missing value");
      flags.dir = v;
    } else if (arg == "--jcs") {
      if (!value()) return Usage("--jcs: missing value");
      flags.jcs = v;
    } else if (arg == "--events") {
      if (!positive(&flags.events)) return Usage("--events: expected N > 0");
    } else if (arg == "--window") {
      if (!positive(&flags.window)) return Usage("--window: expected N > 0");
    } else if (arg == "--seconds") {
      if (!value() || !absl::SimpleAtod(v, &flags.seconds) ||
          !(flags.seconds > 0)) {
        return Usage("--seconds: expected a number > 0");
      }
    } else if (arg == "--rates") {
      if (!value() || !ParseList(v, &flags.rates)) {
        return Usage("--rates: expected a list like 0,2000 (0: unthrottled)");
      }
    } else if (arg == "--projects") {
      if (!positive(&flags.projects)) return Usage("--projects: expected N>0");
    } else if (arg == "--conversations") {
      if (!positive(&flags.conversations)) {
        return Usage("--conversations: expected N > 0");
      }
    } else if (arg == "--messages") {
      if (!positive(&flags.messages)) return Usage("--messages: expected N>0");
    } else if (arg == "--rounds") {
      if (!positive(&flags.rounds)) return Usage("--rounds: expected N > 0");
    } else if (arg == "--phases") {
      if (!positive(&flags.phases)) return Usage("--phases: expected N > 0");
    } else {
      return Usage(absl::StrCat("unknown flag ", arg));
    }
  }
  if (flags.mode != "ingest" && flags.jcs.empty()) {
    return Usage("--jcs: required for --mode daemon and all");
  }
  json doc = {{"host", Host()}};
  if (!flags.json_output) {
    printf("host: %u cpus, load average %.2f at start\n",
           doc["host"]["cpus"].get<unsigned>(),
           doc["host"]["loadavg_1m_at_start"].get<double>());
  }
  bool failed = false;
  if (flags.mode != "daemon") {
    doc["ingest"] = json::array();
    for (uint64_t rate : flags.rates) {
      const IngestRow row = RunIngest(flags, rate);
      failed |= !row.error.empty();
      if (!flags.json_output) PrintIngest(row);
      fflush(stdout);
      doc["ingest"].push_back(IngestJson(row));
    }
  }
  if (flags.mode != "ingest") {
    DaemonRun run(flags);
    doc["daemon"] = DaemonJson(flags, run.Run());
    failed |= doc["daemon"].contains("error");
    if (!flags.json_output) PrintDaemon(doc["daemon"]);
  }
  if (flags.json_output) printf("%s\n", doc.dump(2).c_str());
  return failed ? 1 : 0;
}
