#include "telemetry/logging/line_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace jcs::telemetry::logging {
namespace {

// Runs `fn` on a thread and says whether it returned within `seconds`. A
// call that blocks forever fails the test instead of hanging it (the thread
// is left behind, unblocked when the pipe is closed).
bool ReturnsWithin(double seconds, std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> future = done->get_future();
  std::thread([fn = std::move(fn), done] {
    fn();
    done->set_value();
  }).detach();
  return future.wait_for(std::chrono::duration<double>(seconds)) ==
         std::future_status::ready;
}

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(LineWriterTest, AStalledPipeNeverBlocksTheCallerAndDropsWhatDoesNotFit) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);  // nobody reads fds[0] while the lines are written
  LineWriter::Limits limits;
  limits.max_queued_bytes = 256 << 10;
  limits.drain_on_exit = absl::Milliseconds(100);
  auto writer = std::make_unique<LineWriter>(fds[1], false, limits);
  const std::string line = std::string(1023, 'x') + "\n";
  // 2 MiB: a blocking write(2) would stop after the pipe's 64 KiB.
  ASSERT_TRUE(ReturnsWithin(10, [&] {
    for (int i = 0; i < 2048; ++i) writer->Write(line);
  }));
  EXPECT_GT(writer->dropped(), 0u);
  EXPECT_FALSE(writer->Flush(absl::Milliseconds(50)));  // still stalled
  // The reader wakes up: whatever was written is whole lines.
  std::string got;
  ASSERT_TRUE(ReturnsWithin(10, [&] {
    while (!writer->Flush(absl::Milliseconds(1))) got += ReadAvailable(fds[0]);
    got += ReadAvailable(fds[0]);
  }));
  ASSERT_EQ(got.size() % line.size(), 0u);
  EXPECT_EQ(got.size() / line.size(), writer->written());
  EXPECT_EQ(writer->written() + writer->dropped(), 2048u);
  for (absl::string_view l : absl::StrSplit(got, '\n', absl::SkipEmpty())) {
    ASSERT_EQ(l, std::string(1023, 'x'));
  }
  writer.reset();
  close(fds[0]);
  close(fds[1]);
}

TEST(LineWriterTest, DestroyingItWhileTheReaderIsStalledDoesNotHang) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LineWriter::Limits limits;
  limits.drain_on_exit = absl::Milliseconds(100);
  auto writer = std::make_unique<LineWriter>(fds[1], false, limits);
  for (int i = 0; i < 200; ++i) writer->Write(std::string(4095, 'y') + "\n");
  LineWriter* raw = writer.release();
  EXPECT_TRUE(ReturnsWithin(10, [raw] { delete raw; }));
  close(fds[0]);
  close(fds[1]);
}

TEST(LineWriterTest, LinesArriveInOrderAndFlushWaitsForThem) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string got;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) got.append(buf, n);
  });
  {
    LineWriter writer(fds[1], /*owned=*/true);
    for (int i = 0; i < 5000; ++i) writer.Write(absl::StrCat(i, "\n"));
    EXPECT_TRUE(writer.Flush(absl::Seconds(30)));
    EXPECT_EQ(writer.written(), 5000u);
    EXPECT_EQ(writer.dropped(), 0u);
  }  // closes fds[1]: the reader sees EOF
  reader.join();
  close(fds[0]);
  std::vector<std::string> lines = absl::StrSplit(got, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(lines[i], absl::StrCat(i));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

TEST(LineWriterTest, ReplaceSendsEarlierLinesToTheOldDescriptor) {
  char dir[] = "/tmp/jcs-lw-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string a = std::string(dir) + "/a", b = std::string(dir) + "/b";
  const int fa = open(a.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  const int fb = open(b.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  ASSERT_GE(fa, 0);
  ASSERT_GE(fb, 0);
  LineWriter writer(fa, /*owned=*/true);
  for (int i = 0; i < 100; ++i) writer.Write("old\n");
  writer.Replace(fb, /*owned=*/true);
  writer.Write("new\n");
  ASSERT_TRUE(writer.Flush(absl::Seconds(10)));
  std::string expected_old;
  for (int i = 0; i < 100; ++i) expected_old += "old\n";
  EXPECT_EQ(ReadFile(a), expected_old);
  EXPECT_EQ(ReadFile(b), "new\n");
  // The old descriptor was closed by the writer (it owned it).
  EXPECT_EQ(fcntl(fa, F_GETFD), -1);
}

TEST(LineWriterTest, AFailedWriteDropsTheLineAndCountsIt) {
  signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);  // EPIPE
  LineWriter writer(fds[1], /*owned=*/true);
  writer.Write("lost\n");
  ASSERT_TRUE(writer.Flush(absl::Seconds(10)));
  EXPECT_EQ(writer.dropped(), 1u);
  EXPECT_EQ(writer.written(), 0u);
}

TEST(LineWriterTest, AForkedChildWritesDirectly) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LineWriter writer(fds[1], /*owned=*/false);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // No writer thread exists here: a queued line would never be written.
    writer.Write("from the child\n");
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  char buf[64] = {};
  ASSERT_GT(read(fds[0], buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "from the child\n");
  close(fds[0]);
  close(fds[1]);
}

TEST(LineWriterTest, ItsThreadTakesNoSignals) {
  // A daemon that blocks SIGTERM for its signalfd after this writer exists
  // must not have the signal delivered (default action: death) here.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  LineWriter writer(fds[1], /*owned=*/true);
  bool checked = false;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name != "jcs-log-writer") continue;
    std::ifstream status(entry.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      const uint64_t blocked = std::stoull(
          line.substr(line.find_first_not_of(" \t", 7)), nullptr, 16);
      EXPECT_NE(blocked & (1ull << (SIGTERM - 1)), 0u) << line;
      EXPECT_NE(blocked & (1ull << (SIGINT - 1)), 0u) << line;
      checked = true;
    }
  }
  EXPECT_TRUE(checked) << "no writer thread found";
  close(fds[0]);
}

}  // namespace
}  // namespace jcs::telemetry::logging
