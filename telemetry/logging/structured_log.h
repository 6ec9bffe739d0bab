// The daemon's structured log: one JSON object per line,
//   {"ts": RFC 3339 UTC, "level": "info", "msg": "tool.call", ...fields}
// to stderr or an append-only file (supervisor config log_file, log_level).
// Every line's fields are redacted (telemetry/redact.h) before they are
// written, like every payload jcs keeps or shows.
//
// A line is one write(2): with O_APPEND lines from one daemon never
// interleave in a regular file. A write that fails (a full disk, a closed
// stderr) drops the line and counts it (dropped()); nothing is retried, so
// the log never holds up the event loop beyond one write. Thread-safe.
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

  // Opens the file again (after logrotate moved it: SIGHUP). Stderr: no-op.
  absl::Status Reopen();

  uint64_t lines() const { return lines_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  StructuredLog(int fd, bool owned, Options options)
      : fd_(fd), owned_(owned), options_(std::move(options)) {}

  // Writes one line (mu_ held).
  void WriteLocked(const std::string& text);

  std::mutex mu_;
  bool holding_ = false;
  std::vector<std::string> held_;
  int fd_;
  bool owned_;
  const Options options_;
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> dropped_{0};
};

// Opens `path` for appending log lines: O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|
// O_NOFOLLOW, mode 0600, and refuses a non-regular file.
absl::StatusOr<int> OpenLogFile(const std::string& path);

}  // namespace jcs::telemetry::logging

#endif  // JCS_TELEMETRY_LOGGING_STRUCTURED_LOG_H_
