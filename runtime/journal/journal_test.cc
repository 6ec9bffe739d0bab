#include "runtime/journal/journal.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jcs::runtime::journal {
namespace {

// The small file systems the tests mount live in this process's own mount
// namespace (set up before main, while the process has one thread), so they
// go away with it even when a test fails half-way.
const bool kPrivateMounts = [] {
  return unshare(CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}();

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/jXXXXXX");
  if (mkdtemp(dir.data()) == nullptr) abort();
  return dir;
}

telemetry::Event MakeEvent(int n, std::string conversation = "c1") {
  return {"tool.completed",
          "p1",
          {{"n", n},
           {"conversation_id", conversation},
           {"correlation_id", absl::StrCat("corr-", n % 3)}},
          absl::Now()};
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    dir_ = TempDir();
  }

  std::unique_ptr<Journal> Open(JournalOptions options) {
    if (options.path.empty()) options.path = dir_ + "/journal.db";
    Journal::Callbacks callbacks;
    callbacks.durable = [this](uint64_t seq) { durable_ = seq; };
    callbacks.health = [this](const absl::Status& s, size_t pending) {
      health_.push_back(s);
      pending_at_failure_ = pending;
    };
    callbacks.committed = [this](absl::Duration took, size_t entries) {
      EXPECT_GE(took, absl::ZeroDuration());
      ++commits_;
      committed_entries_ += entries;
    };
    auto journal = Journal::Open(loop_.get(), options, callbacks);
    EXPECT_TRUE(journal.ok()) << journal.status();
    return journal.ok() ? *std::move(journal) : nullptr;
  }

  // Runs the loop until `done` or 10 s.
  bool RunUntil(const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!done()) {
      if (absl::Now() > deadline) return false;
      if (!loop_->RunOnce(absl::Milliseconds(10)).ok()) return false;
    }
    return true;
  }

  std::unique_ptr<EventLoop> loop_;
  std::string dir_;
  uint64_t durable_ = 0;
  std::vector<absl::Status> health_;
  size_t pending_at_failure_ = 0;
  size_t commits_ = 0;
  size_t committed_entries_ = 0;
};

// The commit-latency metric's feed: every committed entry is reported once,
// in transactions of at most max_batch.
TEST_F(JournalTest, CommittedCallbackReportsEveryEntryOnce) {
  JournalOptions options;
  options.max_batch = 64;
  std::unique_ptr<Journal> journal = Open(options);
  ASSERT_NE(journal, nullptr);
  for (int i = 1; i <= 300; ++i) journal->Append(MakeEvent(i));
  journal->PutToolResult({"p1", "call-1", "", 0, "{}"});
  bool flushed = false;
  journal->Flush([&](const absl::Status& s) { flushed = s.ok(); });
  ASSERT_TRUE(RunUntil([&] { return flushed; }));
  EXPECT_EQ(committed_entries_, 301u);
  EXPECT_GE(commits_, 5u);  // 301 entries, at most 64 a transaction
}

TEST_F(JournalTest, EventsBecomeDurableInOrderAndSeqContinuesAfterReopen) {
  uint64_t last = 0;
  {
    std::unique_ptr<Journal> journal = Open({});
    ASSERT_NE(journal, nullptr);
    for (int i = 1; i <= 500; ++i) {
      const uint64_t seq = journal->Append(MakeEvent(i));
      EXPECT_EQ(seq, static_cast<uint64_t>(i));
      last = seq;
    }
    // Flush answers once all of it is committed.
    bool flushed = false;
    journal->Flush([&](const absl::Status& s) {
      EXPECT_TRUE(s.ok()) << s;
      EXPECT_EQ(durable_, last);
      flushed = true;
    });
    ASSERT_TRUE(RunUntil([&] { return flushed; }));
    ASSERT_TRUE(RunUntil([&] { return durable_ == last; })) << durable_;
    EXPECT_EQ(journal->durable_seq(), last);
    // Nothing queued: at once.
    bool again = false;
    journal->Flush([&](const absl::Status& s) { again = s.ok(); });
    EXPECT_TRUE(again);
    EXPECT_EQ(journal->Diagnostics()["pending"], 0);
  }
  durable_ = 0;
  std::unique_ptr<Journal> journal = Open({});
  EXPECT_EQ(journal->durable_seq(), last);  // what the file holds
  EXPECT_EQ(journal->Append(MakeEvent(501)), last + 1);

  std::vector<StoredEvent> seen;
  bool answered = false;
  EventQuery query;
  query.project_id = "p1";
  query.correlation_id = "corr-1";
  query.limit = 1000;
  journal->QueryEvents(query, [&](absl::StatusOr<std::vector<StoredEvent>> r) {
    ASSERT_TRUE(r.ok()) << r.status();
    seen = *std::move(r);
    answered = true;
  });
  ASSERT_TRUE(RunUntil([&] { return answered; }));
  ASSERT_EQ(seen.size(), 167u);  // n % 3 == 1 for n in 1..500
  EXPECT_EQ(seen[0].seq, 1u);
  EXPECT_EQ(nlohmann::json::parse(seen[0].payload_json)["n"], 1);
  EXPECT_EQ(seen[0].conversation_id, "c1");
}

TEST_F(JournalTest, DestroyingTheJournalCommitsWhatIsQueued) {
  {
    std::unique_ptr<Journal> journal = Open({});
    for (int i = 1; i <= 2000; ++i) journal->Append(MakeEvent(i));
    StoredToolResult result;
    result.project_id = "p1";
    result.call_id = "call-7";
    result.result_json = "{\"status\":\"ok\"}";
    journal->PutToolResult(result);
    journal->ProjectStarted("p1", {{"root", "/srv/p1"}}, absl::Now());
  }  // no loop turn: the destructor waits for the writer
  auto store = JournalStore::Open(dir_ + "/journal.db", true);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->MaxSeq().value(), 2000u);
  EXPECT_TRUE((*store)->ToolResult("p1", "call-7")->has_value());
  auto running = (*store)->RunningProjects();
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse((*running)[0].spec_json)["root"], "/srv/p1");
}

// The process is killed (SIGKILL) right after it saw events durable: every
// one of them is in the file.
TEST_F(JournalTest, EverythingDurableSurvivesKill9) {
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(report[0]);
    auto loop = EventLoop::Create();
    if (!loop.ok()) _exit(1);
    uint64_t durable = 0;
    Journal::Callbacks callbacks;
    callbacks.durable = [&](uint64_t seq) { durable = seq; };
    JournalOptions options;
    options.path = dir_ + "/journal.db";
    auto journal = Journal::Open(loop->get(), options, callbacks);
    if (!journal.ok()) _exit(2);
    uint64_t reported = 0;
    for (int i = 1;; ++i) {
      (*journal)->Append(MakeEvent(i));
      (void)(*loop)->RunOnce(absl::ZeroDuration());
      if (durable >= reported + 100) {
        reported = durable;
        // Tell the parent, which kills us at some point.
        if (write(report[1], &reported, sizeof(reported)) < 0) _exit(3);
      }
    }
  }
  close(report[1]);
  uint64_t acked = 0, value;
  while (acked < 3000 &&
         read(report[0], &value, sizeof(value)) == sizeof(value)) {
    acked = value;
  }
  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  // Reports still in the pipe were durable too.
  while (read(report[0], &value, sizeof(value)) == sizeof(value)) acked = value;
  close(report[0]);
  ASSERT_GE(acked, 3000u);
  auto store = JournalStore::Open(dir_ + "/journal.db", true);
  ASSERT_TRUE(store.ok()) << store.status();
  const uint64_t max = (*store)->MaxSeq().value();
  EXPECT_GE(max, acked);
  EventQuery query;
  query.project_id = "p1";
  query.limit = acked;
  auto events = (*store)->Events(query);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), acked);  // none missing below the ack
  for (uint64_t i = 0; i < acked; ++i) EXPECT_EQ((*events)[i].seq, i + 1);
}

TEST_F(JournalTest, AFullDiskIsReportedOnceAndNothingIsLostWhenSpaceReturns) {
  const std::string fs = dir_ + "/small";
  ASSERT_EQ(mkdir(fs.c_str(), 0700), 0);
  if (!kPrivateMounts ||
      mount("tmpfs", fs.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
  }
  JournalOptions options;
  options.path = fs + "/journal.db";
  options.retry_min = absl::Milliseconds(5);
  options.retry_max = absl::Milliseconds(20);
  {
    std::unique_ptr<Journal> journal = Open(options);
    ASSERT_NE(journal, nullptr);
    const uint64_t first = journal->Append(MakeEvent(1));
    ASSERT_TRUE(RunUntil([&] { return durable_ == first; }));
    // Fill the file system, then append.
    {
      std::ofstream filler(fs + "/filler");
      const std::string block(64 << 10, 'f');
      while (filler.write(block.data(), block.size())) {
      }
    }
    uint64_t last = 0;
    for (int i = 2; i <= 200; ++i) {
      telemetry::Event e = MakeEvent(i);
      e.payload["pad"] = std::string(2000, 'p');
      last = journal->Append(e);
    }
    ASSERT_TRUE(RunUntil([&] { return !health_.empty(); }));
    EXPECT_EQ(health_[0].code(), absl::StatusCode::kResourceExhausted)
        << health_[0];
    // The writer may have committed part of them before the disk filled.
    EXPECT_GT(pending_at_failure_, 0u);
    EXPECT_LE(pending_at_failure_, 199u);
    EXPECT_EQ(durable_, first);
    // Retries keep failing, but the failure is reported once.
    ASSERT_TRUE(RunUntil(
        [&] { return journal->Diagnostics()["write_failures"] >= 3; }));
    EXPECT_EQ(health_.size(), 1u);
    EXPECT_TRUE(journal->Diagnostics()["failing"].get<bool>());
    // A flush while writes fail answers at once, with the error.
    absl::Status flush_status;
    bool flush_called = false;
    journal->Flush([&](const absl::Status& s) {
      flush_status = s;
      flush_called = true;
    });
    EXPECT_TRUE(flush_called);
    EXPECT_FALSE(flush_status.ok());
    // Space comes back: everything queued is written, and recovery is said.
    ASSERT_EQ(unlink((fs + "/filler").c_str()), 0);
    ASSERT_TRUE(RunUntil([&] { return durable_ == last; }));
    ASSERT_TRUE(RunUntil([&] { return health_.size() == 2; }));
    EXPECT_TRUE(health_[1].ok());
  }
  auto store = JournalStore::Open(options.path, true);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->MaxSeq().value(), 200u);
  store->reset();
  umount2(fs.c_str(), MNT_DETACH);
}

TEST_F(JournalTest, TheQueueIsBoundedAndDropsAreCounted) {
  const std::string fs = dir_ + "/tiny";
  ASSERT_EQ(mkdir(fs.c_str(), 0700), 0);
  if (!kPrivateMounts ||
      mount("tmpfs", fs.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
  }
  JournalOptions options;
  options.path = fs + "/journal.db";
  options.max_pending = 50;
  // No retry may start while the 80 entries are appended: a retry takes
  // every queued entry in flight, and entries appended while a whole queue
  // is in flight are the ones dropped (nothing older can go). With 5 ms, a
  // slow run (ASan) retried mid-loop and lost 79 and 80 instead of 1 to 30.
  options.retry_min = absl::Milliseconds(300);
  options.retry_max = absl::Milliseconds(300);
  {
    std::unique_ptr<Journal> journal = Open(options);
    ASSERT_NE(journal, nullptr);
    {
      std::ofstream filler(fs + "/filler");
      const std::string block(16 << 10, 'f');
      while (filler.write(block.data(), block.size())) {
      }
    }
    for (int i = 1; i <= 80; ++i) {
      telemetry::Event e = MakeEvent(i);
      e.payload["pad"] = std::string(4000, 'p');
      journal->Append(e);
    }
    const nlohmann::json d = journal->Diagnostics();
    EXPECT_EQ(d["pending"], 50);
    EXPECT_EQ(d["dropped"], 30);
    ASSERT_EQ(unlink((fs + "/filler").c_str()), 0);
    ASSERT_TRUE(
        RunUntil([&] { return journal->Diagnostics()["pending"] == 0; }));
  }
  // The newest 50 were kept (the oldest not yet being written went first).
  auto store = JournalStore::Open(options.path, true);
  ASSERT_TRUE(store.ok());
  EventQuery query;
  query.project_id = "p1";
  auto events = (*store)->Events(query);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 50u);
  EXPECT_EQ(events->back().seq, 80u);
  store->reset();
  umount2(fs.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace jcs::runtime::journal
