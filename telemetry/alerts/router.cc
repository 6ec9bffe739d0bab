#include "telemetry/alerts/router.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/background_thread_priority.h"
#include "base/json_fields.h"
#include "telemetry/logging/line_writer.h"
#include "telemetry/redact.h"

namespace jcs::telemetry::alerts {
namespace {

struct Alert {
  std::string event;
  nlohmann::json payload;
  nlohmann::json metadata;
};

constexpr std::string_view kRulePrefix = "alert.";
constexpr int kShutdownWaitSeconds = 2;
constexpr absl::Duration kExecGraceAtShutdown = absl::Milliseconds(1500);

std::string Dump(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Writes all of `data` to `fd` (non-blocking) before `deadline`.
absl::Status WriteAll(int fd, const std::string& data, absl::Time deadline) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = send(fd, data.data() + done, data.size() - done,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    }
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return absl::DeadlineExceededError("send: timed out");
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60000))) < 0 &&
        errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("poll: ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// One connection per alert: a restarted listener is picked up without state,
// and a dead one costs at most `timeout`.
absl::Status DeliverSocket(const SinkConfig& sink, const std::string& line) {
  const absl::Time deadline = absl::Now() + sink.timeout;
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (sink.path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("socket path too long");
  }
  memcpy(addr.sun_path, sink.path.data(), sink.path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  }
  absl::Status status = absl::OkStatus();
  // A Unix socket connects at once or fails with EAGAIN while the listener's
  // backlog is full (there is no asynchronous connect to poll for): retry
  // until the sink's deadline.
  while (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) !=
         0) {
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      status = absl::UnavailableError(
          absl::StrCat("connect ", sink.path, ": ", strerror(errno)));
      break;
    }
    if (absl::Now() + absl::Milliseconds(10) > deadline) {
      status = absl::DeadlineExceededError(
          absl::StrCat("connect ", sink.path,
                       ": the listener is not accepting (backlog "
                       "full) within ",
                       absl::FormatDuration(sink.timeout)));
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (status.ok()) status = WriteAll(fd, line, deadline);
  close(fd);
  return status;
}

// O_APPEND with one write per line: concurrent writers never interleave
// within a line. Opened per alert so that log rotation needs no signal.
// O_NONBLOCK|O_NOFOLLOW and the S_ISREG check: a FIFO or a planted symlink
// at the path can neither hang the router nor redirect the alerts.
absl::Status DeliverFile(const SinkConfig& sink, const std::string& line) {
  const int fd =
      open(sink.path.c_str(),
           O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
           0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("open ", sink.path, ": ", strerror(errno)));
  }
  struct stat st;
  absl::Status status = absl::OkStatus();
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(
        absl::StrCat(sink.path, " is not a regular file"));
  } else {
    const ssize_t n = write(fd, line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size())) {
      status = absl::UnavailableError(absl::StrCat(
          "write ", sink.path, ": ", n < 0 ? strerror(errno) : "short write"));
    }
  }
  close(fd);
  return status;
}

std::string Trimmed(std::string_view s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::set<std::string> NormalizeSignalEvents(
    const std::vector<std::string>& names) {
  std::set<std::string> out;
  for (const std::string& name : names) {
    std::string n = Trimmed(name);
    if (!n.empty()) out.insert(std::move(n));
  }
  return out;
}

std::string SeverityOf(std::string_view event_name,
                       const nlohmann::json& payload) {
  if (event_name == "security.sandbox_violation" ||
      event_name == "security.repeated_timeout_failures") {
    return "critical";
  }
  if (event_name.substr(0, kRulePrefix.size()) == kRulePrefix &&
      json_fields::String(payload, "severity") == "critical") {
    return "critical";
  }
  return "warning";
}

struct Router::State {
  mutable std::mutex mu;
  std::condition_variable wake;
  mutable std::condition_variable idle;
  std::shared_ptr<const RouterConfig> config;
  std::deque<Alert> queue;
  bool delivering = false;
  bool stop = false;
  absl::Time stop_at = absl::InfiniteFuture();
  bool exited = false;
  uint64_t routed = 0;
  uint64_t delivered = 0;
  uint64_t dropped = 0;
  uint64_t sink_failures = 0;
  std::string last_error;

  void Deliver(const RouterConfig& config, const Alert& alert) {
    nlohmann::json doc = {{"event", alert.event},
                          {"payload", alert.payload},
                          {"metadata", alert.metadata}};
    for (const SinkConfig& sink : config.sinks) {
      absl::Status status = absl::OkStatus();
      if (sink.kind == SinkConfig::Kind::kCallback) {
        // Spec §5.6: a failing router never breaks the emitter.
        try {
          if (sink.callback) {
            sink.callback(alert.event, alert.payload, alert.metadata,
                          sink.extra_args);
          }
        } catch (const std::exception& e) {
          status =
              absl::InternalError(absl::StrCat("callback threw: ", e.what()));
        } catch (...) {
          status = absl::InternalError("callback threw");
        }
      } else {
        doc["extra_args"] = sink.extra_args;
        const std::string line = Dump(doc) + "\n";
        switch (sink.kind) {
          case SinkConfig::Kind::kFile:
            status = DeliverFile(sink, line);
            break;
          case SinkConfig::Kind::kUnixSocket:
            status = DeliverSocket(sink, line);
            break;
          default:
            status = DeliverExec(config, sink, line);
            break;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (status.ok()) {
        ++delivered;
      } else {
        ++sink_failures;
        last_error = std::string(status.message());
        telemetry::logging::StderrLine(
            absl::StrFormat("jcs: alert %s: sink failed: %s",
                            alert.event.c_str(), last_error.c_str()));
      }
    }
  }

  absl::Status DeliverExec(const RouterConfig& config, const SinkConfig& sink,
                           const std::string& line) {
    // Fail closed: a program is never started outside the runner (the
    // daemon's is a jail).
    if (!config.exec_runner) {
      return absl::FailedPreconditionError(
          "exec sink: no jailed runner is configured; the program was not "
          "started");
    }
    if (sink.argv.empty()) {
      return absl::InvalidArgumentError("exec sink: empty argv");
    }
    std::vector<std::string> argv = sink.argv;
    argv.insert(argv.end(), sink.extra_args.begin(), sink.extra_args.end());
    // At shutdown the queued alerts still go out, but a run still going
    // kExecGraceAtShutdown after the stop is killed, inside the destructor's
    // wait: no sink outlives the router.
    return config.exec_runner(argv, line, sink.timeout, [this] {
      std::lock_guard<std::mutex> lock(mu);
      return absl::Now() > stop_at + kExecGraceAtShutdown;
    });
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      wake.wait(lock, [this] { return stop || !queue.empty(); });
      // At shutdown what is queued still goes out (a violation just before
      // SIGTERM is paged), within the destructor's bound.
      if (queue.empty()) break;
      Alert alert = std::move(queue.front());
      queue.pop_front();
      delivering = true;
      std::shared_ptr<const RouterConfig> current = config;
      lock.unlock();
      Deliver(*current, alert);
      lock.lock();
      delivering = false;
      if (queue.empty()) idle.notify_all();
    }
    exited = true;
    idle.notify_all();
  }
};

Router::Router(RouterConfig config) : state_(std::make_shared<State>()) {
  state_->config = std::make_shared<const RouterConfig>(std::move(config));
  // The thread holds the state: if a sink hangs past shutdown, it is left
  // with everything it touches.
  std::thread([state = state_] {
    RunThisThreadBehindTheLoop();  // delivery never preempts the loop
    state->Run();
  }).detach();
}

Router::~Router() {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->stop = true;
  state_->stop_at = absl::Now();
  state_->wake.notify_all();
  state_->idle.wait_for(lock, std::chrono::seconds(kShutdownWaitSeconds),
                        [this] { return state_->exited; });
}

void Router::Reconfigure(RouterConfig config) {
  auto next = std::make_shared<const RouterConfig>(std::move(config));
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->config = std::move(next);
}

void Router::Route(const Event& event) {
  const bool rule = event.name.substr(0, kRulePrefix.size()) == kRulePrefix;
  if (!rule) {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->config->signal_events.count(event.name) == 0) return;
  }
  Enqueue(event.name, event.payload, event.at);
}

bool Router::Enqueue(const std::string& event_name, nlohmann::json payload,
                     absl::Time at) {
  // Outside the lock: redaction is the costly part.
  Redact(payload);
  Alert alert;
  alert.metadata = {{"alert_event", event_name},
                    {"alert_severity", SeverityOf(event_name, payload)},
                    {"event_name", event_name},
                    {"emitted_at", Rfc3339(at)}};
  alert.event = event_name;
  alert.payload = std::move(payload);
  std::lock_guard<std::mutex> lock(state_->mu);
  ++state_->routed;
  if (state_->queue.size() >= state_->config->queue_capacity) {
    ++state_->dropped;
    // Logged, but not once per drop: a flood must not flood stderr too.
    const uint64_t d = state_->dropped;
    if ((d & (d - 1)) == 0) {
      telemetry::logging::StderrLine(absl::StrFormat(
          "jcs: alert %s dropped: queue full (%zu); %llu dropped so far",
          event_name.c_str(), state_->config->queue_capacity,
          static_cast<unsigned long long>(d)));
    }
    return false;
  }
  state_->queue.push_back(std::move(alert));
  state_->wake.notify_one();
  return true;
}

nlohmann::json Router::Diagnostics() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  const RouterConfig& config = *state_->config;
  nlohmann::json sinks = nlohmann::json::array();
  for (const SinkConfig& sink : config.sinks) {
    switch (sink.kind) {
      case SinkConfig::Kind::kFile:
        sinks.push_back({{"kind", "file"}, {"path", sink.path}});
        break;
      case SinkConfig::Kind::kUnixSocket:
        sinks.push_back({{"kind", "unix_socket"}, {"path", sink.path}});
        break;
      case SinkConfig::Kind::kCallback:
        sinks.push_back({{"kind", "callback"}});
        break;
      case SinkConfig::Kind::kExec:
        sinks.push_back(
            {{"kind", "exec"},
             {"argv", sink.argv},
             {"timeout_ms", absl::ToInt64Milliseconds(sink.timeout)}});
        break;
    }
  }
  return {{"signal_events", config.signal_events},
          {"sinks", sinks},
          {"queue_capacity", config.queue_capacity},
          {"queued", state_->queue.size()},
          {"routed", state_->routed},
          {"delivered", state_->delivered},
          {"dropped", state_->dropped},
          {"sink_failures", state_->sink_failures},
          {"last_error", state_->last_error}};
}

bool Router::WaitIdle(absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->idle.wait_for(
      lock, absl::ToChronoMilliseconds(timeout),
      [this] { return state_->queue.empty() && !state_->delivering; });
}

}  // namespace jcs::telemetry::alerts
