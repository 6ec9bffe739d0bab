#include "runtime/journal/journal_store.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jcs::runtime::journal {
namespace {

// The small file system a test mounts lives in this process's own mount
// namespace (set up before main, while the process has one thread), so it
// goes away with it even when the test fails half-way.
const bool kPrivateMounts = [] {
  return unshare(CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}();

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/jsXXXXXX");
  if (mkdtemp(dir.data()) == nullptr) abort();
  return dir;
}

StoredEvent Event(uint64_t seq, std::string project, std::string conversation,
                  std::string correlation, int64_t at_ms) {
  return {seq,
          std::move(project),
          "tool.completed",
          at_ms,
          std::move(conversation),
          std::move(correlation),
          absl::StrCat("{\"n\":", seq, "}")};
}

EventQuery Query(std::string project, std::string conversation = "",
                 std::string correlation = "", uint64_t after_seq = 0,
                 size_t limit = 100) {
  EventQuery q;
  q.project_id = std::move(project);
  q.conversation_id = std::move(conversation);
  q.correlation_id = std::move(correlation);
  q.after_seq = after_seq;
  q.limit = limit;
  return q;
}

RetentionPolicy Retention(int64_t max_age_ms, int64_t max_bytes) {
  RetentionPolicy policy;
  policy.max_age_ms = max_age_ms;
  policy.max_bytes = max_bytes;
  return policy;
}

TEST(JournalStoreTest, WhatIsCommittedIsReadBackAfterReopening) {
  const std::string path = TempDir() + "/journal.db";
  {
    auto store = JournalStore::Open(path, false);
    ASSERT_TRUE(store.ok()) << store.status();
    Batch batch;
    batch.events = {Event(1, "p1", "c1", "corr-a", 1000),
                    Event(2, "p1", "c2", "corr-b", 1001),
                    Event(3, "p2", "c1", "corr-a", 1002)};
    batch.results = {{"p1", "call-1", "c1", 1003, "{\"status\":\"ok\"}"}};
    batch.projects = {{"p1", "{\"root\":\"/srv/a\"}", 900},
                      {"p2", "{\"root\":\"/srv/b\"}", 901}};
    ASSERT_TRUE((*store)->Append(batch).ok());
    Batch stop;
    stop.projects = {{"p2", "", 0}};
    ASSERT_TRUE((*store)->Append(stop).ok());
  }
  auto store = JournalStore::Open(path, true);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->MaxSeq().value(), 3u);
  auto p1 = (*store)->Events(Query("p1"));
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->size(), 2u);
  EXPECT_EQ((*p1)[0].seq, 1u);
  EXPECT_EQ((*p1)[0].payload_json, "{\"n\":1}");
  EXPECT_EQ((*p1)[1].conversation_id, "c2");
  auto c1 = (*store)->Events(Query("p1", "c1"));
  ASSERT_EQ(c1->size(), 1u);
  auto corr = (*store)->Events(Query("p2", "", "corr-a"));
  ASSERT_EQ(corr->size(), 1u);
  EXPECT_EQ((*corr)[0].seq, 3u);
  auto after = (*store)->Events(Query("p1", "", "", 1));
  ASSERT_EQ(after->size(), 1u);
  auto limited = (*store)->Events(Query("p1", "", "", 0, 1));
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].seq, 1u);  // the oldest first

  auto result = (*store)->ToolResult("p1", "call-1");
  ASSERT_TRUE(result.ok() && result->has_value());
  EXPECT_EQ((*result)->result_json, "{\"status\":\"ok\"}");
  EXPECT_FALSE((*store)->ToolResult("p2", "call-1")->has_value());

  auto running = (*store)->RunningProjects();
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u);  // p2 was stopped
  EXPECT_EQ((*running)[0].project_id, "p1");
  EXPECT_EQ((*running)[0].spec_json, "{\"root\":\"/srv/a\"}");
}

TEST(JournalStoreTest, ABatchThatFailsLeavesNothingBehind) {
  const std::string path = TempDir() + "/journal.db";
  auto store = JournalStore::Open(path, false);
  ASSERT_TRUE(store.ok());
  Batch first;
  first.events = {Event(1, "p", "", "", 1)};
  ASSERT_TRUE((*store)->Append(first).ok());
  // seq 1 again: the primary key refuses the second event, and the first
  // event of the batch (seq 2) must not stay either.
  Batch bad;
  bad.events = {Event(2, "p", "", "", 2), Event(1, "p", "", "", 3)};
  EXPECT_FALSE((*store)->Append(bad).ok());
  auto events = (*store)->Events(Query("p"));
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].seq, 1u);
  // And the store still works.
  Batch next;
  next.events = {Event(2, "p", "", "", 4)};
  EXPECT_TRUE((*store)->Append(next).ok());
}

TEST(JournalStoreTest, PruneByAgeAndBySize) {
  const std::string path = TempDir() + "/journal.db";
  auto store = JournalStore::Open(path, false);
  ASSERT_TRUE(store.ok());
  Batch batch;
  const std::string big(2000, 'x');
  for (uint64_t i = 1; i <= 2000; ++i) {
    StoredEvent e = Event(i, "p", "", "", static_cast<int64_t>(i));
    e.payload_json = absl::StrCat("{\"pad\":\"", big, "\"}");
    batch.events.push_back(std::move(e));
  }
  batch.results = {{"p", "old", "", 5, "{}"}, {"p", "new", "", 1900, "{}"}};
  ASSERT_TRUE((*store)->Append(batch).ok());
  // Age: everything before t=1000 goes (events 1..999 and the old result).
  auto by_age = (*store)->Prune(Retention(1000, 0), 2000);
  ASSERT_TRUE(by_age.ok()) << by_age.status();
  EXPECT_EQ(by_age->events_deleted, 999u);
  EXPECT_EQ(by_age->results_deleted, 1u);
  EXPECT_EQ((*store)->Events(Query("p", "", "", 0, 1))->at(0).seq, 1000u);
  // Size: at most 512 KiB; the oldest go first, the newest stay.
  auto by_size = (*store)->Prune(Retention(0, 512 << 10), 2000);
  ASSERT_TRUE(by_size.ok()) << by_size.status();
  EXPECT_GT(by_size->events_deleted, 0u);
  EXPECT_LE(by_size->bytes_after, 512 << 10);
  EXPECT_EQ((*store)->MaxSeq().value(), 2000u);
  // The freed pages went back to the file system.
  struct stat db, wal;
  ASSERT_EQ(stat(path.c_str(), &db), 0);
  ASSERT_EQ(stat((path + "-wal").c_str(), &wal), 0);
  EXPECT_LT(db.st_size + wal.st_size, 1 << 20);
}

TEST(JournalStoreTest, ANewerSchemaIsRefusedNamingTheFix) {
  const std::string path = TempDir() + "/journal.db";
  {
    auto store = JournalStore::Open(path, false);
    ASSERT_TRUE(store.ok());
  }
  ASSERT_EQ(system(absl::StrCat("sqlite3 ", path,
                                " \"UPDATE meta SET value = 99 WHERE key = "
                                "'schema_version'\"")
                       .c_str()),
            0);
  auto store = JournalStore::Open(path, false);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 99"),
            std::string::npos)
      << store.status();
  EXPECT_NE(store.status().message().find("move the file away"),
            std::string::npos);
}

TEST(JournalStoreTest, AFullDiskFailsTheBatchAndKeepsWhatWasWritten) {
  const std::string dir = TempDir();
  if (!kPrivateMounts ||
      mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
  }
  const std::string path = dir + "/journal.db";
  {
    auto store = JournalStore::Open(path, false);
    ASSERT_TRUE(store.ok()) << store.status();
    Batch small;
    small.events = {Event(1, "p", "", "", 1)};
    ASSERT_TRUE((*store)->Append(small).ok());
    Batch huge;
    for (uint64_t i = 2; i < 200; ++i) {
      StoredEvent e = Event(i, "p", "", "", 2);
      e.payload_json = std::string(4000, 'y');
      huge.events.push_back(std::move(e));
    }
    const absl::Status status = (*store)->Append(huge);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  }
  auto store = JournalStore::Open(path, true);
  ASSERT_TRUE(store.ok()) << store.status();
  auto events = (*store)->Events(Query("p"));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].payload_json, "{\"n\":1}");
  store->reset();
  umount2(dir.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace jcs::runtime::journal
