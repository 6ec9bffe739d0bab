// The telemetry bus: every event jcs emits goes through Emit(). Per project
// (the payload's project_id; "" is the global key) it keeps a counter per event
// name, a bounded newest-first ring of recent events and one of recent errors
// (spec §5.1), and hands each event to the sinks (control-API subscribers
// today; the journal and the alert router plug in the same way).
//
// Ring entries keep what an operator triages from: event, conversation_id,
// correlation_id, at, `tool` (also for events that name it tool_name),
// `reason`, `error`, and, when the event has them (at the top level or in
// its `detail`), call_id, path, resolved_path, target, host, port, scheme,
// errno, syscall, timeout_ms, limit, kind and message.
//
// Not thread-safe by design: it belongs to the supervisor's event loop thread.
#ifndef JCS_TELEMETRY_BUS_H_
#define JCS_TELEMETRY_BUS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace jcs::telemetry {

struct Event {
  std::string name;
  std::string project_id;  // "" for global events
  nlohmann::json payload;  // always an object
  absl::Time at;
};

class Bus {
 public:
  static constexpr size_t kRecentEventsCap = 200;
  static constexpr size_t kRecentErrorsCap = 25;

  using Sink = std::function<void(const Event&)>;

  struct Options {
    size_t recent_events_cap = kRecentEventsCap;
    size_t recent_errors_cap = kRecentErrorsCap;
    std::function<absl::Time()> clock = [] { return absl::Now(); };
  };

  Bus() : Bus(Options()) {}
  explicit Bus(Options options) : options_(std::move(options)) {}
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // A non-object payload is wrapped as {"value": payload}. The payload is
  // redacted first (telemetry/redact.h): the counters, the rings and every
  // sink only ever see the redacted event. Sinks are called in the order
  // they were added, after the bookkeeping.
  void Emit(std::string_view name, nlohmann::json payload);

  void AddSink(Sink sink) { sinks_.push_back(std::move(sink)); }

  // While a Held lives, Emit() only queues the event, with the time it was
  // emitted; when the last Held of a nest ends, the queued events are
  // processed (bookkeeping and sinks) in the order they were emitted. The
  // tool runtime holds what it emits while it starts a call and while it
  // answers one: the jail's command, and then the answer, go out before the
  // journal, log, metrics and alert sinks spend their time on the events,
  // which are still recorded in the same order and before the loop takes
  // the next request.
  class [[nodiscard]] Held {
   public:
    explicit Held(Bus* bus) : bus_(bus) { ++bus_->hold_depth_; }
    ~Held() {
      if (--bus_->hold_depth_ == 0) bus_->ReleaseHeld();
    }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

   private:
    Bus* const bus_;
  };
  Held Hold() { return Held(this); }

  // How many `name` events the project has seen.
  uint64_t Count(std::string_view project_id, std::string_view name) const;

  // {project_id (null for global), total_events, event_counts,
  //  recent_errors, recent_events}; newest first.
  nlohmann::json Snapshot(std::string_view project_id) const;

  // Drops a project's counters and rings (a project id reused after a stop
  // starts from zero).
  void Forget(std::string_view project_id);

 private:
  struct ProjectState {
    uint64_t total = 0;
    std::map<std::string, uint64_t, std::less<>> counts;
    // Serialized (parsed for Snapshot): a parsed entry costs several times
    // its text, and 20 projects' rings are 5 MiB parsed.
    std::deque<std::string> recent_events;
    std::deque<std::string> recent_errors;
  };

  void Process(std::string name, nlohmann::json payload, absl::Time at);
  void ReleaseHeld();

  Options options_;
  int hold_depth_ = 0;
  // Emitted while held: bounded by what one call emits before its release.
  std::deque<Event> held_;
  std::map<std::string, ProjectState, std::less<>> projects_;
  std::vector<Sink> sinks_;
};

// RFC 3339 UTC with milliseconds ("2026-11-27T23:14:11.123Z").
std::string Rfc3339(absl::Time t);

}  // namespace jcs::telemetry

#endif  // JCS_TELEMETRY_BUS_H_
