#include "telemetry/logging/structured_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "telemetry/bus.h"
#include "telemetry/redact.h"

namespace jcs::telemetry::logging {

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text,
                                       absl::string_view field) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warn") return LogLevel::kWarn;
  if (text == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": expected one of debug, info, warn, error; got '", text, "'"));
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

absl::StatusOr<int> OpenLogFile(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("log_file: expected an absolute path, got '", path, "'"));
  }
  const int fd =
      open(path.c_str(),
           O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
           0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("log_file: cannot open ", path, ": ", strerror(errno),
                     errno == ELOOP ? " (a symlink is refused)" : ""));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("log_file: ", path, " is not a regular file"));
  }
  // O_NONBLOCK was only for the open (a FIFO planted there must not block
  // it); a regular file's writes do not use it.
  fcntl(fd, F_SETFL, O_APPEND);
  return fd;
}

absl::StatusOr<std::unique_ptr<StructuredLog>> StructuredLog::Open(
    Options options) {
  if (options.path.empty()) {
    return std::unique_ptr<StructuredLog>(
        new StructuredLog(nullptr, &LineWriter::Stderr(), std::move(options)));
  }
  absl::StatusOr<int> fd = OpenLogFile(options.path);
  if (!fd.ok()) return fd.status();
  auto writer = std::make_unique<LineWriter>(*fd, /*owned=*/true);
  LineWriter* raw = writer.get();
  return std::unique_ptr<StructuredLog>(
      new StructuredLog(std::move(writer), raw, std::move(options)));
}

std::unique_ptr<StructuredLog> StructuredLog::ForFd(int fd, Options options) {
  auto writer = std::make_unique<LineWriter>(fd, /*owned=*/false);
  LineWriter* raw = writer.get();
  return std::unique_ptr<StructuredLog>(
      new StructuredLog(std::move(writer), raw, std::move(options)));
}

// A file's writer drains (for up to a second) as it is destroyed; stderr's
// is flushed at exit.
StructuredLog::~StructuredLog() = default;

bool StructuredLog::Flush(absl::Duration timeout) {
  return writer_->Flush(timeout);
}

void StructuredLog::Log(LogLevel level, absl::string_view msg,
                        nlohmann::json fields) {
  if (!Enabled(level)) return;
  if (fields.is_null()) {
    fields = nlohmann::json::object();
  } else if (!fields.is_object()) {
    fields = nlohmann::json{{"value", std::move(fields)}};
  }
  Redact(fields);
  // ts, level and msg first, for a reader skimming the file.
  nlohmann::ordered_json line;
  line["ts"] = Rfc3339(options_.clock());
  line["level"] = LogLevelName(level);
  line["msg"] = RedactString(std::string_view(msg.data(), msg.size()));
  for (auto& [key, value] : fields.items()) {
    if (key == "ts" || key == "level" || key == "msg") continue;
    line[key] = std::move(value);
  }
  std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  if (holding_) {
    if (held_.size() < kMaxHeldLines) {
      held_.push_back(std::move(text));
    } else {
      dropped_.fetch_add(1);
    }
    return;
  }
  writer_->Write(std::move(text));
}

void StructuredLog::Hold() {
  std::lock_guard<std::mutex> lock(mu_);
  holding_ = true;
}

void StructuredLog::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  holding_ = false;
  for (std::string& text : held_) writer_->Write(std::move(text));
  held_.clear();
}

absl::Status StructuredLog::Reopen() {
  if (options_.path.empty() || own_writer_ == nullptr) return absl::OkStatus();
  absl::StatusOr<int> fd = OpenLogFile(options_.path);
  if (!fd.ok()) return fd.status();
  own_writer_->Replace(*fd, /*owned=*/true);
  return absl::OkStatus();
}

}  // namespace jcs::telemetry::logging
