#include "protocol/a2a/gateway.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/json_fields.h"

namespace jcs::protocol::a2a {
namespace {

using nlohmann::json;

std::string NewTaskId(int random_bytes) {
  std::string id = "a2a-";
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < random_bytes; ++i) {
    unsigned char b;
    while (true) {
      const ssize_t n = getrandom(&b, 1, 0);
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      abort();  // no randomness: never hand out a guessable task id
    }
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

// The error document for a failed backend step.
json Failure(const json& id, const absl::Status& status,
             const std::string& task_id = "") {
  if (absl::IsPermissionDenied(status)) {
    return ErrorDocument(id, kProtocolDenied,
                         absl::StrCat("protocol denied: ", status.message()));
  }
  if (absl::IsNotFound(status) && !task_id.empty()) {
    return ErrorDocument(id, kTaskNotFound,
                         absl::StrCat("task not found: ", task_id));
  }
  return ErrorDocument(id, kInternalError,
                       absl::StrCat("internal error: ", status.message()));
}

struct TaskView {
  std::string status;
  json timeline;
};

absl::StatusOr<TaskView> View(Backend& backend, const std::string& task_id) {
  absl::StatusOr<std::string> status = backend.Status(task_id);
  if (!status.ok()) return status.status();
  absl::StatusOr<json> timeline = backend.Timeline(task_id);
  if (!timeline.ok()) return timeline.status();
  return TaskView{*std::move(status), *std::move(timeline)};
}

json UserSignal(const SendParams& send, const std::string& correlation) {
  json data = {{"content", send.text}, {"a2a_message_id", send.message_id}};
  if (!send.llm.is_null()) data["llm"] = send.llm;
  return {{"type", "conversation.user.message"},
          {"source", "a2a.message.send"},
          {"data", std::move(data)},
          {"meta", {{"protocol", "a2a"}, {"correlation_id", correlation}}}};
}

int64_t SeqOf(const json& payload) {
  const auto it = payload.find("seq_in_conversation");
  return it != payload.end() && it->is_number_integer() ? it->get<int64_t>()
                                                        : -1;
}

// Relays a stream's events once each. The daemon publishes an event when
// its journal made it durable, which can be after the turn settled: events
// of an earlier turn may still arrive (filtered out by `wanted`), and the
// turn's own last ones may not have arrived yet (CatchUp reads them from the
// timeline, which has them as soon as they happen).
class Relay {
 public:
  Relay(std::string task_id, std::function<bool(const json&)> wanted,
        std::function<bool(json)> send)
      : task_id_(std::move(task_id)),
        wanted_(std::move(wanted)),
        send_(std::move(send)) {}

  // False once the client is gone.
  bool Offer(const json& payload) {
    if (gone_ || !wanted_(payload)) return !gone_;
    const int64_t seq = SeqOf(payload);
    if (seq >= 0 && !sent_.insert(seq).second) return true;
    if (std::optional<json> item = StreamEvent(task_id_, payload)) {
      gone_ = !send_(*std::move(item));
    }
    return !gone_;
  }
  bool CatchUp(const json& timeline) {
    if (!timeline.is_array()) return !gone_;
    for (const json& entry : timeline) {
      if (!Offer(entry)) return false;
    }
    return !gone_;
  }
  bool gone() const { return gone_; }

 private:
  const std::string task_id_;
  const std::function<bool(const json&)> wanted_;
  const std::function<bool(json)> send_;
  std::set<int64_t> sent_;
  bool gone_ = false;
};

}  // namespace

json ErrorDocument(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"},
          {"id", id},
          {"error", {{"code", code}, {"message", message}}}};
}

bool Streams(Method method) {
  return method == Method::kMessageStream ||
         method == Method::kTasksResubscribe;
}

absl::StatusOr<json> Gateway::Card(Backend& backend, AgentInfo info) const {
  if (absl::Status s = backend.Authorize("agent.card"); !s.ok()) return s;
  absl::StatusOr<json> tools = backend.Tools();
  if (!tools.ok()) return tools.status();
  absl::StatusOr<json> counts = backend.AssetCounts();
  if (!counts.ok()) return counts.status();
  info.tools = *std::move(tools);
  info.asset_counts = *std::move(counts);
  return AgentCard(info);
}

void Gateway::Handle(const Request& request, Backend& backend,
                     const std::function<bool(const json&)>& emit) const {
  const json& id = request.id;
  const auto result = [&](json value) {
    return emit({{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(value)}});
  };
  const auto fail = [&](const absl::Status& status,
                        const std::string& task_id = "") {
    emit(Failure(id, status, task_id));
  };

  if (request.method == Method::kTasksGet ||
      request.method == Method::kTasksCancel ||
      request.method == Method::kTasksResubscribe) {
    const std::string& task_id = request.task_id;
    const char* operation = request.method == Method::kTasksGet ? "task.get"
                            : request.method == Method::kTasksCancel
                                ? "task.cancel"
                                : "task.subscribe";
    if (absl::Status s = backend.Authorize(operation); !s.ok()) {
      return fail(s);
    }
    absl::StatusOr<TaskView> view = View(backend, task_id);
    if (!view.ok()) return fail(view.status(), task_id);
    if (request.method == Method::kTasksGet) {
      result(
          Task(task_id, view->status, view->timeline, request.history_length));
      return;
    }
    if (request.method == Method::kTasksCancel) {
      const std::string state = TaskState(view->status, view->timeline);
      if (TerminalState(state)) {
        emit(ErrorDocument(
            id, kTaskNotCancelable,
            absl::StrCat("task not cancelable: ", task_id, " is ", state,
                         " (only a working task can be "
                         "canceled)")));
        return;
      }
      const json cancel = {{"type", "conversation.cancel"},
                           {"source", "a2a.task.cancel"},
                           {"data", {{"reason", "cancelled"}}},
                           {"meta", {{"protocol", "a2a"}}}};
      if (absl::Status s = backend.Call(task_id, cancel); !s.ok()) {
        return fail(s, task_id);
      }
      view = View(backend, task_id);
      if (!view.ok()) return fail(view.status(), task_id);
      result(Task(task_id, view->status, view->timeline, std::nullopt));
      return;
    }
    // tasks/resubscribe: the task, its events while it works, its end.
    std::unique_ptr<Subscription> events = backend.Subscribe(task_id);
    if (!result(Task(task_id, view->status, view->timeline, std::nullopt))) {
      return;
    }
    // What happens from now on: events past the timeline it started from.
    int64_t seen = -1;
    for (const json& entry : view->timeline) {
      seen = std::max(seen, SeqOf(entry));
    }
    Relay relay(
        task_id, [seen](const json& e) { return SeqOf(e) > seen; }, result);
    std::string status = view->status;
    while (status == "running") {
      while (std::optional<json> event = events->Next(options_.poll_every)) {
        if (!relay.Offer(*event)) return;
      }
      absl::StatusOr<std::string> now = backend.Status(task_id);
      if (!now.ok()) return fail(now.status(), task_id);
      status = *now;
    }
    absl::StatusOr<TaskView> end = View(backend, task_id);
    if (!end.ok()) return fail(end.status(), task_id);
    if (!relay.CatchUp(end->timeline)) return;
    result(FinalStatusEvent(task_id, TaskState(end->status, end->timeline)));
    return;
  }

  // message/send, message/stream.
  const SendParams& send = request.send;
  std::string task_id;
  if (send.task_id.has_value()) {
    task_id = *send.task_id;
  } else {
    if (absl::Status s = backend.Authorize("task.create"); !s.ok()) {
      return fail(s);
    }
    // A contextId names its task (one task per context): a new one under
    // that id, or the existing one.
    task_id = send.context_id.has_value() && ValidTaskId(*send.context_id)
                  ? *send.context_id
                  : NewTaskId(options_.task_id_random_bytes);
    absl::Status started = backend.StartConversation(task_id);
    if (!started.ok() && !absl::IsAlreadyExists(started)) {
      return fail(started);
    }
  }
  if (send.task_id.has_value() && send.context_id.has_value() &&
      *send.context_id != *send.task_id) {
    emit(ErrorDocument(id, kInvalidParams,
                       "invalid params: message.contextId must be the task's "
                       "(a task is a conversation: contextId = taskId)"));
    return;
  }
  if (absl::Status s = backend.Authorize("message.send"); !s.ok()) {
    return fail(s);
  }
  const bool stream = request.method == Method::kMessageStream;
  if (stream) {
    if (absl::Status s = backend.Authorize("task.subscribe"); !s.ok()) {
      return fail(s);
    }
  }
  absl::StatusOr<std::string> status = backend.Status(task_id);
  if (!status.ok()) return fail(status.status(), task_id);
  if (*status == "cancelled" || *status == "stopped") {
    emit(ErrorDocument(id, kInvalidParams,
                       absl::StrCat("invalid params: task ", task_id,
                                    " is canceled; start a new task")));
    return;
  }
  // The turn's events carry it: a stream relays this turn's only.
  const std::string correlation = NewTaskId(options_.task_id_random_bytes);
  const json signal = UserSignal(send, correlation);

  if (!stream) {
    const absl::Status sent = send.blocking ? backend.Call(task_id, signal)
                                            : backend.Cast(task_id, signal);
    if (!sent.ok()) return fail(sent, task_id);
    absl::StatusOr<TaskView> view = View(backend, task_id);
    if (!view.ok()) return fail(view.status(), task_id);
    // A non-blocking send returns before the turn ran: it is working.
    json task =
        Task(task_id, view->status, view->timeline, send.history_length);
    if (!send.blocking && view->status == "idle") {
      task["status"] = {{"state", "working"}};
    }
    result(std::move(task));
    return;
  }

  // message/stream: subscribed before the message goes in, so no event of
  // its turn is missed; the turn runs (and is awaited) on a helper thread
  // while this one relays the events.
  std::unique_ptr<Subscription> events = backend.Subscribe(task_id);
  json first = {{"kind", "task"},
                {"id", task_id},
                {"contextId", task_id},
                {"status", {{"state", "submitted"}}}};
  if (!result(std::move(first))) return;
  std::atomic<bool> settled{false};
  absl::Status call_status;
  std::thread turn([&] {
    call_status = backend.Call(task_id, signal);
    settled.store(true);
  });
  Relay relay(
      task_id,
      [&correlation](const json& e) {
        return json_fields::String(e, "correlation_id") == correlation;
      },
      result);
  while (true) {
    const bool was_settled = settled.load();
    // Drains what came; after the turn settled, what is still queued.
    while (std::optional<json> event = events->Next(
               was_settled ? absl::ZeroDuration() : options_.poll_every)) {
      relay.Offer(*event);
    }
    if (was_settled) break;
  }
  // The turn goes on to its end (the conversation keeps it) even when the
  // client left: the thread is joined, never abandoned.
  turn.join();
  if (relay.gone()) return;
  if (!call_status.ok()) return fail(call_status, task_id);
  absl::StatusOr<TaskView> end = View(backend, task_id);
  if (!end.ok()) return fail(end.status(), task_id);
  if (!relay.CatchUp(end->timeline)) return;
  result(FinalStatusEvent(task_id, TaskState(end->status, end->timeline)));
}

}  // namespace jcs::protocol::a2a
