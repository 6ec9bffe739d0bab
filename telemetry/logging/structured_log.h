// The daemon's structured log: one JSON object per line,
//   {"ts": RFC 3339 UTC, "level": "info", "msg": "tool.call", ...fields}
// to stderr or an append-only file (supervisor config log_file, log_level).
// Every line's fields are redacted (telemetry/redact.h) before they are
// written, like every payload jcs keeps or shows.
//
// Lines are written by a LineWriter (line_writer.h) on a thread of its own:
// Log() formats and queues, and never waits for the reader, so a stalled
// stderr pipe cannot stop the event loop. To stderr the log shares the
// process's stderr writer (its lines keep their order with the daemon's
// plain stderr lines); to a file it has a writer of its own, and each line is
// one write(2) with O_APPEND, so lines never interleave. A line that cannot be
// queued (the queue is full) or written (a full disk, a closed stderr) is
// dropped and counted (dropped()); nothing is retried. Thread-safe.
#ifndef JCS_TELEMETRY_LOGGING_STRUCTURED_LOG_H_
#define JCS_TELEMETRY_LOGGING_STRUCTURED_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "telemetry/logging/line_writer.h"

namespace jcs::telemetry::logging {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn", "error"; anything else is an error naming
// `field` and the accepted values.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text,
                                       absl::string_view field = "log_level");
const char* LogLevelName(LogLevel level);

class StructuredLog {
 public:
  struct Options {
    // Empty: stderr. Else an absolute path, opened O_APPEND (created 0600);
    // a symlink or anything but a regular file there is refused.
    std::string path;
    LogLevel level = LogLevel::kInfo;
    std::function<absl::Time()> clock = [] { return absl::Now(); };
  };

  static absl::StatusOr<std::unique_ptr<StructuredLog>> Open(Options options);
  // Writes to `fd`, which it does not own (tests).
  static std::unique_ptr<StructuredLog> ForFd(int fd, Options options);
  ~StructuredLog();
  StructuredLog(const StructuredLog&) = delete;
  StructuredLog& operator=(const StructuredLog&) = delete;

  bool Enabled(LogLevel level) const { return level >= options_.level; }
  LogLevel level() const { return options_.level; }
  const std::string& path() const { return options_.path; }

  // Writes one line when `level` is enabled. `fields` (an object; null is
  // none; anything else is put under "value") is redacted; its ts, level and
  // msg keys are replaced by the line's own.
  void Log(LogLevel level, absl::string_view msg,
           nlohmann::json fields = nlohmann::json::object());

  // Holds lines in memory (at most kMaxHeldLines; more are dropped and
  // counted) until Release() writes them. The daemon holds what happens
  // while it boots: a config error then stays the one line it prints, and
  // the boot's lines are written once it serves.
  static constexpr size_t kMaxHeldLines = 10000;
  void Hold();
  void Release();

  // Opens the file again (after logrotate moved it: SIGHUP). Lines logged
  // before go to the old file. Stderr: no-op.
  absl::Status Reopen();

  // Waits until every line logged so far is written (or dropped), at most
  // `timeout`; true when they all were.
  bool Flush(absl::Duration timeout = absl::Seconds(5));

  // Lines written to the destination and lines dropped (held past
  // kMaxHeldLines, refused by a full queue, or failed to write). For stderr
  // the writer's counts include the daemon's plain stderr lines.
  uint64_t lines() const { return writer_->written(); }
  uint64_t dropped() const { return dropped_.load() + writer_->dropped(); }

 private:
  StructuredLog(std::unique_ptr<LineWriter> own_writer, LineWriter* writer,
                Options options)
      : own_writer_(std::move(own_writer)),
        writer_(writer),
        options_(std::move(options)) {}

  std::mutex mu_;
  bool holding_ = false;
  std::vector<std::string> held_;
  std::unique_ptr<LineWriter> own_writer_;  // a file's or a test's fd
  LineWriter* writer_;                      // own_writer_ or stderr's
  const Options options_;
  std::atomic<uint64_t> dropped_{0};
};

// Opens `path` for appending log lines: O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|
// O_NOFOLLOW, mode 0600, and refuses a non-regular file.
absl::StatusOr<int> OpenLogFile(const std::string& path);

}  // namespace jcs::telemetry::logging

#endif  // JCS_TELEMETRY_LOGGING_STRUCTURED_LOG_H_
