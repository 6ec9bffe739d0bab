#include "runtime/conversation/conversation.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/json_fields.h"

namespace jcs::runtime::conversation {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

nlohmann::json SignalJson(const Signal& s) {
  return {{"id", s.id},           {"type", s.type},
          {"event_type", s.type}, {"data", s.data},
          {"meta", s.meta},       {"correlation_id", s.correlation_id}};
}

size_t SignalBytes(const Signal& s) {
  return s.id.size() + s.type.size() + s.correlation_id.size() +
         s.data.dump(-1, ' ', false, kReplace).size() +
         s.meta.dump(-1, ' ', false, kReplace).size();
}

// "reason: detail" statuses (signal.h, the adapters) -> reason.
std::string ReasonOf(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    return "llm_timeout";
  }
  const std::string text(status.message());
  const size_t colon = text.find(": ");
  std::string reason = colon == std::string::npos ? "" : text.substr(0, colon);
  const bool word =
      !reason.empty() && reason.size() <= 64 &&
      reason.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.") ==
          std::string::npos;
  return word ? reason : "llm_exception";
}

LlmMessage Message(std::string role, std::string content) {
  LlmMessage message;
  message.role = std::move(role);
  message.content = std::move(content);
  return message;
}

size_t MessageBytes(const LlmMessage& m) {
  return m.content.size() + m.tool_call_id.size() +
         m.tool_calls.dump(-1, ' ', false, kReplace).size();
}

nlohmann::json ObjectOr(const nlohmann::json& data, const char* key) {
  if (data.is_object() && data.contains(key) && data[key].is_object()) {
    return data[key];
  }
  return nlohmann::json::object();
}

}  // namespace

Conversation::Conversation(ConversationConfig config)
    : config_(std::move(config)) {}

Conversation::~Conversation() {
  *alive_ = false;
  if (config_.adapter != nullptr) config_.adapter->CancelAll();
}

nlohmann::json Conversation::Emit(const std::string& type, nlohmann::json data,
                                  const std::string& correlation_id,
                                  const std::string& signal_id, bool timeline) {
  nlohmann::json payload = {
      {"project_id", config_.project_id},
      {"conversation_id", config_.conversation_id},
      {"correlation_id", correlation_id},
      {"event_type", type},
      {"source", "conversation"},
      {"signal_id", signal_id},
      {"at", telemetry::Rfc3339(absl::Now())},
      {"data", data.is_object() ? std::move(data) : nlohmann::json::object()},
      {"seq_in_conversation", ++seq_}};
  ++event_count_;
  if (timeline) AppendTimeline(payload);
  config_.bus->Emit(type, payload);
  return payload;
}

void Conversation::EmitTelemetry(const std::string& type, nlohmann::json data,
                                 const std::string& correlation_id,
                                 const std::string& signal_id) {
  Emit(type, std::move(data), correlation_id, signal_id, /*timeline=*/false);
}

void Conversation::AppendTimeline(const nlohmann::json& payload) {
  // Kept serialized: a parsed JSON tree costs several times its text on the
  // heap, so kMaxTimelineBytes bounds the memory only for the text.
  std::string text = payload.dump(-1, ' ', false, kReplace);
  text.shrink_to_fit();  // the dump grew it by doubling
  timeline_bytes_ += text.size();
  timeline_.push_back(std::move(text));
  while (timeline_.size() > kMaxTimelineEntries ||
         (timeline_bytes_ > kMaxTimelineBytes && timeline_.size() > 1)) {
    timeline_bytes_ -= timeline_.front().size();
    timeline_.pop_front();
    ++timeline_dropped_;
  }
}

void Conversation::AppendContext(LlmMessage message) {
  context_bytes_ += MessageBytes(message);
  context_.push_back(std::move(message));
  while (context_.size() > kMaxContextMessages ||
         (context_bytes_ > kMaxContextBytes && context_.size() > 1)) {
    context_bytes_ -= std::min(context_bytes_, MessageBytes(context_.front()));
    context_.pop_front();
  }
}

Conversation::Ingested Conversation::Ingest(Signal signal) {
  const std::string key =
      absl::StrCat(signal.id, std::string(1, '\0'), signal.correlation_id);
  if (dedup_.count(key) > 0) return Ingested::kDuplicate;
  const size_t bytes = SignalBytes(signal);
  // Cancel and resume are containment: messages waiting for the running turn
  // do not count against them (only the not yet processed inbox does), so a
  // flood of messages cannot lock out the cancel that stops it.
  const bool control = signal.type == "conversation.cancel" ||
                       signal.type == "conversation.resume";
  // Tool requests held while cancelled stay until the next cancel: they
  // count against everything but that cancel (and resume).
  const size_t counted = control ? inbox_.size() : queue_size() + held_count_;
  const size_t held_bytes = control ? 0 : held_bytes_;
  if (counted >= static_cast<size_t>(config_.max_queue_size) ||
      queued_bytes_ + held_bytes + bytes > kMaxQueuedBytes) {
    Emit("conversation.queue.overflow",
         {{"reason", "queue_overflow"},
          {"queue_size", queue_size()},
          {"max_queue_size", config_.max_queue_size},
          {"queued_bytes", queued_bytes_},
          {"held_tool_calls", held_count_},
          {"dropped_signal_id", signal.id},
          {"dropped_signal_type", signal.type}},
         signal.correlation_id, signal.id);
    Changed();
    return Ingested::kOverflow;
  }
  dedup_.insert(key);
  dedup_order_.push_back(key);
  if (dedup_order_.size() > kDedupWindow) {
    dedup_.erase(dedup_order_.front());
    dedup_order_.pop_front();
  }
  queued_bytes_ += bytes;
  inbox_.push_back(std::move(signal));
  ScheduleDrain();
  return Ingested::kQueued;
}

void Conversation::ScheduleDrain() {
  if (drain_scheduled_ || stopped_) return;
  drain_scheduled_ = true;
  std::weak_ptr<bool> alive = alive_;
  (void)config_.loop->Post([this, alive] {
    if (alive.expired()) return;
    Drain();
  });
}

void Conversation::Drain() {
  drain_scheduled_ = false;
  if (stopped_) return;
  ++drain_iteration_;
  int64_t steps = 0;
  while (!inbox_.empty() && steps < config_.max_drain_steps && !stopped_) {
    Signal signal = std::move(inbox_.front());
    inbox_.pop_front();
    queued_bytes_ -= std::min(queued_bytes_, SignalBytes(signal));
    Process(std::move(signal));
    ++steps;
  }
  // The rest in the next pass: other work on the loop runs in between.
  if (!inbox_.empty()) ScheduleDrain();
  Changed();
}

void Conversation::Process(Signal signal) {
  last_signal_type_ = signal.type;
  const std::string& type = signal.type;
  if (type == "conversation.user.message") {
    Emit(type, signal.data, signal.correlation_id, signal.id);
    if (status_ == Status::kCancelled) return;  // recorded, nothing runs
    const size_t bytes = SignalBytes(signal);
    queued_bytes_ += bytes;  // still queued: waiting for its run
    waiting_.push_back(std::move(signal));
    MaybeStartRun();
  } else if (type == "conversation.cancel") {
    Emit(type, signal.data, signal.correlation_id, signal.id);
    const std::string reason =
        signal.data.contains("reason") && signal.data["reason"].is_string() &&
                !signal.data["reason"].get<std::string>().empty()
            ? signal.data["reason"].get<std::string>()
            : "conversation_cancelled";
    CancelAll(reason, signal.correlation_id, signal.id);
    status_ = Status::kCancelled;
  } else if (type == "conversation.resume") {
    Emit(type, signal.data, signal.correlation_id, signal.id);
    if (status_ == Status::kCancelled) {
      status_ = Status::kIdle;
      UpdateIdle();
    } else {
      Emit("conversation.resume.rejected",
           {{"reason", "not_cancelled"}, {"status", status()}},
           signal.correlation_id, signal.id);
    }
  } else if (type == "conversation.tool.requested") {
    RequestTool(signal.data, signal.correlation_id, signal.id,
                /*from_run=*/false, SignalBytes(signal));
  }
}

void Conversation::MaybeStartRun() {
  if (run_.has_value() || stopped_ || status_ == Status::kCancelled ||
      waiting_.empty()) {
    return;
  }
  Signal signal = std::move(waiting_.front());
  waiting_.pop_front();
  queued_bytes_ -= std::min(queued_bytes_, SignalBytes(signal));
  status_ = Status::kRunning;
  run_.emplace();
  run_->id = next_run_++;
  run_->correlation_id = signal.correlation_id;
  run_->signal_id = signal.id;
  ++run_history_;
  AppendContext(Message("user", json_fields::String(signal.data, "content")));
  StartTurn(SignalJson(signal));
}

void Conversation::StartTurn(nlohmann::json source_event) {
  Run& run = *run_;
  if (++run.turns > kMaxTurns) {
    Emit("conversation.llm.failed",
         {{"reason", "max_turns_reached"},
          {"error", absl::StrCat("the run reached ", kMaxTurns,
                                 " model turns without an answer")},
          {"max_turns", kMaxTurns}},
         run.correlation_id, run.signal_id);
    EndRun();
    return;
  }
  Emit("conversation.llm.requested",
       {{"adapter", config_.adapter_name},
        {"model", config_.model.empty() ? "default" : config_.model},
        {"turn", run.turns},
        {"message_count", context_.size()}},
       run.correlation_id, run.signal_id);
  if (config_.adapter == nullptr) {
    Emit("conversation.llm.failed",
         {{"reason", ReasonOf(config_.adapter_status)},
          {"error", std::string(config_.adapter_status.message())}},
         run.correlation_id, run.signal_id);
    EndRun();
    return;
  }
  LlmRequest request;
  request.project_id = config_.project_id;
  request.conversation_id = config_.conversation_id;
  request.correlation_id = run.correlation_id;
  request.messages.assign(context_.begin(), context_.end());
  if (config_.tools.list_tools) {
    for (const nlohmann::json& tool : config_.tools.list_tools()) {
      request.tools.push_back({json_fields::String(tool, "name"),
                               json_fields::String(tool, "description"),
                               ObjectOr(tool, "input_schema")});
    }
  }
  request.source_event = std::move(source_event);
  request.model = config_.model;
  request.system_prompt = config_.system_prompt;
  request.temperature = config_.temperature;
  request.max_tokens = config_.max_tokens;
  request.timeout_ms = config_.llm_timeout_ms;
  run.llm_in_flight = true;
  const uint64_t run_id = run.id;
  std::weak_ptr<bool> alive = alive_;
  config_.adapter->Complete(
      std::move(request),
      [this, alive, run_id](std::string delta) {
        if (alive.expired() || !run_.has_value() || run_->id != run_id) return;
        Emit("conversation.assistant.delta", {{"delta", std::move(delta)}},
             run_->correlation_id, run_->signal_id);
      },
      [this, alive, run_id](absl::StatusOr<LlmResponse> response) {
        if (alive.expired()) return;
        OnLlmDone(run_id, std::move(response));
      });
}

void Conversation::OnLlmDone(uint64_t run_id,
                             absl::StatusOr<LlmResponse> response) {
  if (!run_.has_value() || run_->id != run_id || stopped_) return;
  run_->llm_in_flight = false;
  const std::string correlation = run_->correlation_id;
  const std::string signal_id = run_->signal_id;
  if (!response.ok()) {
    Emit("conversation.llm.failed",
         {{"reason", ReasonOf(response.status())},
          {"error", std::string(response.status().message())}},
         correlation, signal_id);
    EndRun();
    Changed();
    return;
  }
  const nlohmann::json completed = {
      {"finish_reason", response->finish_reason},
      {"provider", response->provider},
      {"model", response->model.empty() ? "default" : response->model},
      {"tool_call_count", response->tool_calls.size()}};
  if (!response->tool_calls.empty()) {
    // At most one tool per turn: the model sees its result before the next.
    const LlmToolCall& call = response->tool_calls.front();
    LlmMessage message = Message("assistant", response->text);
    message.tool_calls =
        nlohmann::json::array({{{"id", call.id},
                                {"name", call.name},
                                {"arguments", call.arguments}}});
    AppendContext(std::move(message));
    RequestTool({{"name", call.name},
                 {"args", call.arguments},
                 {"meta", nlohmann::json::object()},
                 {"call_id", call.id}},
                correlation, signal_id, /*from_run=*/true);
    Emit("conversation.llm.completed", completed, correlation, signal_id);
    if (run_.has_value() && run_->awaiting_tool == 0) EndRun();
    Changed();
    return;
  }
  const bool blank = absl::StripAsciiWhitespace(response->text).empty();
  if (!blank) {
    Emit("conversation.assistant.message", {{"content", response->text}},
         correlation, signal_id);
    AppendContext(Message("assistant", response->text));
  }
  Emit("conversation.llm.completed", completed, correlation, signal_id);
  EndRun();
  Changed();
}

void Conversation::EndRun() {
  run_.reset();
  UpdateIdle();
  MaybeStartRun();
}

void Conversation::UpdateIdle() {
  if (status_ == Status::kCancelled) return;
  bool running = run_.has_value();
  for (const Pending& p : pending_) running = running || p.dispatched;
  status_ = running ? Status::kRunning : Status::kIdle;
}

void Conversation::RequestTool(const nlohmann::json& data,
                               const std::string& correlation_id,
                               const std::string& signal_id, bool from_run,
                               size_t signal_bytes) {
  Pending pending;
  pending.key = next_pending_++;
  pending.name = json_fields::String(data, "name");
  pending.args = ObjectOr(data, "args");
  pending.meta = ObjectOr(data, "meta");
  pending.call_id = data.contains("call_id") && data["call_id"].is_string()
                        ? data["call_id"].get<std::string>()
                        : absl::StrCat("toolcall-", pending.key);
  pending.correlation_id = correlation_id;
  pending.signal_id = signal_id;
  // §7: one pending entry per (name, correlation id).
  for (const Pending& p : pending_) {
    if (p.name == pending.name && p.correlation_id == correlation_id) return;
  }
  const nlohmann::json& meta = pending.meta;
  pending.async = (meta.contains("run_mode") && meta["run_mode"] == "async") ||
                  (meta.contains("async") && meta["async"] == true);
  Emit("conversation.tool.requested",
       {{"name", pending.name},
        {"args", pending.args},
        {"meta", pending.meta},
        {"call_id", pending.call_id}},
       correlation_id, signal_id);
  if (from_run && run_.has_value()) run_->awaiting_tool = pending.key;
  if (status_ == Status::kCancelled || stopped_) {
    // Stays pending, undispatched, until the next cancel (§7).
    ++held_count_;
    held_bytes_ += signal_bytes;
    pending_.push_back(std::move(pending));
    return;
  }
  pending_.push_back(std::move(pending));
  status_ = Status::kRunning;
  Dispatch(pending_.back());
}

void Conversation::Dispatch(Pending& pending) {
  pending.dispatched = true;
  ToolCallRequest request;
  request.name = pending.name;
  request.args = pending.args;
  request.meta = pending.meta;
  request.meta["conversation_id"] = config_.conversation_id;
  request.meta["correlation_id"] = pending.correlation_id;
  const uint64_t key = pending.key;
  std::weak_ptr<bool> alive = alive_;
  EventLoop* loop = config_.loop;
  // Answers are handled from the loop, never inside Run() or a cancel: the
  // conversation's state is consistent whenever one arrives.
  auto handle = [this, alive, loop, key](nlohmann::json response) {
    (void)loop->Post([this, alive, key, response = std::move(response)]() {
      if (alive.expired()) return;
      OnToolResponse(key, response);
    });
  };
  config_.tools.run(std::move(request), handle);
}

void Conversation::OnToolResponse(uint64_t key, nlohmann::json response) {
  auto it = pending_.begin();
  while (it != pending_.end() && it->key != key) ++it;
  if (it == pending_.end() || stopped_) return;  // cancelled: dropped
  if (json_fields::String(response, "status") == "accepted") {
    // An async call: its end comes from the runtime's result waiters.
    it->runtime_call_id = json_fields::String(response, "call_id");
    std::weak_ptr<bool> alive = alive_;
    EventLoop* loop = config_.loop;
    auto handle = [this, alive, loop, key](nlohmann::json doc) {
      (void)loop->Post([this, alive, key, doc = std::move(doc)]() {
        if (alive.expired()) return;
        OnToolResponse(key, doc);
      });
    };
    if (!config_.tools.await_result(it->runtime_call_id, handle)) {
      // Already over (it ended before this answer was handled).
      std::optional<nlohmann::json> done =
          config_.tools.recent_result(it->runtime_call_id);
      handle(done.has_value()
                 ? *done
                 : nlohmann::json{{"status", "error"},
                                  {"reason", "result_unavailable"}});
    }
    return;
  }
  Pending pending = std::move(*it);
  pending_.erase(it);
  const bool ok = json_fields::String(response, "status") == "ok";
  nlohmann::json data = {
      {"name", pending.name},
      {"args", pending.args},
      {"meta", pending.meta},
      {"call_id", pending.call_id},
      {"tool_call_id", json_fields::String(response, "call_id")}};
  if (ok) {
    data["result"] = response;
  } else {
    data["reason"] = json_fields::String(response, "reason", "tool_failed");
    data["detail"] =
        response.contains("detail") ? response["detail"] : nlohmann::json();
    data["result"] = response;
  }
  const nlohmann::json event =
      Emit(ok ? "conversation.tool.completed" : "conversation.tool.failed",
           std::move(data), pending.correlation_id, pending.signal_id);
  std::string content = response.dump(-1, ' ', false, kReplace);
  if (content.size() > kMaxToolResultChars) {
    content.resize(kMaxToolResultChars);
    content += "...[truncated]";
  }
  LlmMessage message = Message("tool", std::move(content));
  message.tool_call_id = pending.call_id;
  const bool continues = run_.has_value() && run_->awaiting_tool == key;
  if (continues) {
    AppendContext(std::move(message));
    run_->awaiting_tool = 0;
    StartTurn(event);
  } else {
    UpdateIdle();
  }
  Changed();
}

void Conversation::CancelAll(const std::string& reason,
                             const std::string& correlation_id,
                             const std::string& signal_id) {
  std::vector<Pending> pending = std::move(pending_);
  pending_.clear();
  held_count_ = 0;
  held_bytes_ = 0;
  for (const Signal& s : waiting_) {
    queued_bytes_ -= std::min(queued_bytes_, SignalBytes(s));
  }
  waiting_.clear();
  if (run_.has_value()) {
    if (config_.adapter != nullptr) config_.adapter->CancelAll();
    run_.reset();
  }
  // Kills every running call of the conversation (whole process trees); the
  // answers that follow find no pending entry and are dropped.
  if (config_.tools.cancel_conversation) {
    config_.tools.cancel_conversation(
        config_.conversation_id,
        {{"correlation_id", correlation_id}, {"reason", reason}});
  }
  for (const Pending& p : pending) {
    Emit("conversation.tool.cancelled",
         {{"name", p.name},
          {"args", p.args},
          {"meta", p.meta},
          {"call_id", p.call_id},
          {"reason", reason}},
         correlation_id, signal_id);
  }
}

void Conversation::Stop(const std::string& reason) {
  if (stopped_) return;
  const std::string correlation = NewCorrelationId();
  CancelAll(reason, correlation, "");
  inbox_.clear();
  queued_bytes_ = 0;
  stopped_ = true;
  Emit("conversation.stopped", {{"reason", reason}}, correlation, "",
       /*timeline=*/false);
  Changed();
}

bool Conversation::Settled() const {
  if (!inbox_.empty() || !waiting_.empty() || run_.has_value()) return false;
  bool sync_running = false;
  for (const Pending& p : pending_) {
    if (!p.dispatched) continue;
    if (p.async) return true;  // §1.2: an async call does not hold the answer
    sync_running = true;
  }
  return !sync_running && status_ != Status::kRunning;
}

void Conversation::Changed() {
  if (on_change_) on_change_();
}

std::string Conversation::status() const {
  if (stopped_) return "stopped";
  switch (status_) {
    case Status::kIdle:
      return "idle";
    case Status::kRunning:
      return "running";
    case Status::kCancelled:
      return "cancelled";
  }
  return "idle";
}

nlohmann::json Conversation::PendingJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const Pending& p : pending_) {
    out.push_back({{"name", p.name},
                   {"args", p.args},
                   {"meta", p.meta},
                   {"call_id", p.call_id},
                   {"tool_call_id", p.runtime_call_id},
                   {"correlation_id", p.correlation_id},
                   {"run_mode", p.async ? "async" : "sync"},
                   {"running", p.dispatched}});
  }
  return out;
}

nlohmann::json Conversation::ActiveRunJson() const {
  if (!run_.has_value()) return nullptr;
  return {{"correlation_id", run_->correlation_id},
          {"signal_id", run_->signal_id},
          {"turns", run_->turns},
          {"max_turns", kMaxTurns},
          {"llm_in_flight", run_->llm_in_flight}};
}

nlohmann::json Conversation::Snapshot() const {
  return {{"project_id", config_.project_id},
          {"conversation_id", config_.conversation_id},
          {"status", status()},
          {"mode", "coding"},
          {"active_run", ActiveRunJson()},
          {"queue_size", queue_size()},
          {"pending_tool_calls", PendingJson()},
          {"pending_subagents", nlohmann::json::array()}};
}

nlohmann::json Conversation::State() const {
  nlohmann::json project_ctx = {
      {"llm_adapter", config_.adapter_name},
      {"llm_model", config_.model.empty() ? nlohmann::json()
                                          : nlohmann::json(config_.model)},
      {"llm_timeout_ms", config_.llm_timeout_ms},
      {"conversation_max_queue_size", config_.max_queue_size},
      {"conversation_max_drain_steps", config_.max_drain_steps}};
  return {{"project_id", config_.project_id},
          {"conversation_id", config_.conversation_id},
          {"domain", Snapshot()},
          {"project_ctx", project_ctx}};
}

nlohmann::json Conversation::Diagnostics() const {
  return {{"project_id", config_.project_id},
          {"conversation_id", config_.conversation_id},
          {"status", status()},
          {"mode", "coding"},
          {"mode_state", nlohmann::json::object()},
          {"active_run", ActiveRunJson()},
          {"run_history_count", run_history_},
          {"pending_step_count", waiting_.size()},
          {"event_count", event_count_},
          {"queue_size", queue_size()},
          {"pending_tool_call_count", pending_.size()},
          {"pending_subagent_count", 0},
          {"last_signal_type", last_signal_type_.empty()
                                   ? nlohmann::json()
                                   : nlohmann::json(last_signal_type_)},
          {"drain_iteration", drain_iteration_},
          {"max_queue_size", config_.max_queue_size},
          {"max_drain_steps", config_.max_drain_steps},
          {"timeline_size", timeline_.size()},
          {"timeline_dropped", timeline_dropped_},
          {"llm_adapter", config_.adapter_name},
          {"max_turns", kMaxTurns}};
}

std::optional<nlohmann::json> Conversation::Projection(
    const std::string& key) const {
  if (key == "timeline") {
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& entry : timeline_) {
      // Our own dump (invalid UTF-8 already replaced): it parses.
      out.push_back(nlohmann::json::parse(entry, nullptr, false));
    }
    return out;
  }
  if (key == "llm_context") {
    nlohmann::json messages = nlohmann::json::array();
    if (!config_.system_prompt.empty()) {
      messages.push_back(
          {{"role", "system"}, {"content", config_.system_prompt}});
    }
    for (const LlmMessage& m : context_) {
      nlohmann::json msg = {{"role", m.role}, {"content", m.content}};
      if (!m.tool_call_id.empty()) msg["tool_call_id"] = m.tool_call_id;
      if (!m.tool_calls.empty()) msg["tool_calls"] = m.tool_calls;
      messages.push_back(std::move(msg));
    }
    return nlohmann::json{{"messages", messages}};
  }
  if (key == "pending_tool_calls") return PendingJson();
  if (key == "diagnostics") return Diagnostics();
  return std::nullopt;
}

}  // namespace jcs::runtime::conversation
