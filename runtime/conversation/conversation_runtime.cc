#include "runtime/conversation/conversation_runtime.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace jcs::runtime::conversation {
namespace {

absl::Status Error(absl::StatusCode code, const std::string& reason,
                   const std::string& detail) {
  return absl::Status(code, absl::StrCat(reason, ": ", detail));
}

absl::Status NotFound(const std::string& id) {
  return Error(absl::StatusCode::kNotFound, "conversation_not_found",
               id.substr(0, kMaxConversationIdBytes));
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > kMaxConversationIdBytes) return false;
  for (const char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-' && c != ':') {
      return false;
    }
  }
  return true;
}

const char* IngestedName(Conversation::Ingested ingested) {
  switch (ingested) {
    case Conversation::Ingested::kQueued:
      return "queued";
    case Conversation::Ingested::kDuplicate:
      return "duplicate";
    case Conversation::Ingested::kOverflow:
      return "overflow";
  }
  return "queued";
}

}  // namespace

ConversationRuntime::ConversationRuntime(ConversationRuntimeConfig config)
    : config_(std::move(config)) {}

ConversationRuntime::~ConversationRuntime() { StopAll("project_stopped"); }

absl::StatusOr<std::string> ConversationRuntime::Start(
    const std::string& requested_id) {
  std::string id(absl::StripAsciiWhitespace(requested_id));
  if (id.empty()) {
    do {
      id = absl::StrCat("conversation_", next_generated_++);
    } while (conversations_.count(id) > 0);
  } else if (!ValidId(id)) {
    return Error(absl::StatusCode::kInvalidArgument, "invalid_conversation_id",
                 absl::StrCat("expected [A-Za-z0-9._:-]{1,",
                              kMaxConversationIdBytes, "}"));
  }
  if (conversations_.count(id) > 0) {
    return Error(absl::StatusCode::kAlreadyExists,
                 "conversation_already_started", id);
  }
  if (conversations_.size() >= kMaxConversations) {
    return Error(absl::StatusCode::kResourceExhausted,
                 "conversation_limit_reached",
                 absl::StrCat(kMaxConversations,
                              " conversations run in this project; stop one "
                              "first"));
  }
  const ValidatedOptions& o = config_.options;
  ConversationConfig c;
  c.project_id = config_.project_id;
  c.conversation_id = id;
  c.loop = config_.loop;
  c.bus = config_.bus;
  c.tools = config_.tools;
  absl::StatusOr<std::unique_ptr<LlmAdapter>> adapter =
      config_.adapter_factory(config_.loop, o);
  if (adapter.ok()) {
    c.adapter = *std::move(adapter);
  } else {
    c.adapter_status = adapter.status();
  }
  c.adapter_name = AdapterName(o);
  c.max_queue_size = o.conversation_max_queue_size;
  c.max_drain_steps = o.conversation_max_drain_steps;
  c.model = o.llm_model.value_or("");
  c.system_prompt = o.llm_system_prompt.value_or("");
  c.temperature = o.llm_temperature;
  c.max_tokens = o.llm_max_tokens;
  c.llm_timeout_ms = o.llm_timeout_ms;
  auto conversation = std::make_unique<Conversation>(std::move(c));
  conversation->set_on_change([this, id] { CheckWaiters(id, false); });
  Conversation* raw = conversation.get();
  conversations_[id] = std::move(conversation);
  raw->EmitTelemetry("conversation.started", nlohmann::json::object(),
                     NewCorrelationId(), "");
  return id;
}

absl::Status ConversationRuntime::Stop(const std::string& conversation_id) {
  auto it = conversations_.find(conversation_id);
  if (it == conversations_.end()) return NotFound(conversation_id);
  std::unique_ptr<Conversation> conversation = std::move(it->second);
  conversations_.erase(it);
  conversation->Stop("conversation_stopped");
  CheckWaiters(conversation_id, /*force=*/true);
  return absl::OkStatus();
}

void ConversationRuntime::StopAll(const std::string& reason) {
  std::map<std::string, std::unique_ptr<Conversation>> all =
      std::move(conversations_);
  conversations_.clear();
  for (auto& [id, conversation] : all) {
    conversation->Stop(reason);
    CheckWaiters(id, /*force=*/true);
  }
}

absl::StatusOr<Conversation*> ConversationRuntime::Find(
    const std::string& conversation_id) {
  auto it = conversations_.find(conversation_id);
  if (it == conversations_.end()) return NotFound(conversation_id);
  return it->second.get();
}

absl::StatusOr<std::pair<Signal, Conversation::Ingested>>
ConversationRuntime::Ingest(Conversation* conversation,
                            const nlohmann::json& raw) {
  absl::StatusOr<Signal> signal = NormalizeSignal(raw);
  if (!signal.ok()) return signal.status();
  Signal copy_for_answer;
  copy_for_answer.id = signal->id;
  copy_for_answer.type = signal->type;
  copy_for_answer.correlation_id = signal->correlation_id;
  const Conversation::Ingested ingested = conversation->Ingest(*signal);
  if (ingested == Conversation::Ingested::kQueued) {
    conversation->EmitTelemetry(
        "conversation.event_ingested", {{"event_type", copy_for_answer.type}},
        copy_for_answer.correlation_id, copy_for_answer.id);
  }
  return std::make_pair(std::move(copy_for_answer), ingested);
}

void ConversationRuntime::Call(const std::string& conversation_id,
                               const nlohmann::json& signal,
                               absl::Duration timeout, Answer answer) {
  absl::StatusOr<Conversation*> conversation = Find(conversation_id);
  if (!conversation.ok()) {
    answer(conversation.status());
    return;
  }
  auto ingested = Ingest(*conversation, signal);
  if (!ingested.ok()) {
    answer(ingested.status());
    return;
  }
  const auto& [sig, outcome] = *ingested;
  if (outcome == Conversation::Ingested::kDuplicate) {
    answer(Error(absl::StatusCode::kAlreadyExists, "duplicate_signal",
                 absl::StrCat(sig.id, " with correlation id ",
                              sig.correlation_id, " was already ingested")));
    return;
  }
  if (outcome == Conversation::Ingested::kOverflow) {
    answer(Error(absl::StatusCode::kResourceExhausted, "queue_overflow",
                 absl::StrCat("the conversation's queue is full (",
                              config_.options.conversation_max_queue_size,
                              " signals); ", sig.id, " was dropped")));
    return;
  }
  const uint64_t waiter_id = next_waiter_++;
  Waiter& waiter = waiters_[waiter_id];
  waiter.conversation_id = conversation_id;
  waiter.answer = std::move(answer);
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<OpId> op =
      config_.loop->Timeout(timeout, [this, alive, waiter_id](int res) {
        if (res < 0 || alive.expired()) return;
        auto it = waiters_.find(waiter_id);
        if (it == waiters_.end()) return;
        it->second.has_deadline = false;
        absl::StatusOr<Conversation*> c = Find(it->second.conversation_id);
        if (!c.ok()) {
          Finish(waiter_id, c.status());
          return;
        }
        nlohmann::json snapshot = (*c)->Snapshot();
        snapshot["settled"] = false;
        Finish(waiter_id, std::move(snapshot));
      });
  if (op.ok()) {
    waiter.deadline = *op;
    waiter.has_deadline = true;
  }
  // The signal is processed on a later loop round; the waiter is checked
  // after each change of the conversation.
}

void ConversationRuntime::CheckWaiters(const std::string& conversation_id,
                                       bool force) {
  std::vector<uint64_t> ready;
  for (const auto& [id, waiter] : waiters_) {
    if (waiter.conversation_id == conversation_id) ready.push_back(id);
  }
  if (ready.empty()) return;
  auto it = conversations_.find(conversation_id);
  if (it == conversations_.end()) {
    if (!force) return;
    for (uint64_t id : ready) {
      Finish(id, Error(absl::StatusCode::kAborted, "conversation_stopped",
                       conversation_id));
    }
    return;
  }
  if (!it->second->Settled()) return;
  for (uint64_t id : ready) {
    nlohmann::json snapshot = it->second->Snapshot();
    snapshot["settled"] = true;
    Finish(id, std::move(snapshot));
  }
}

void ConversationRuntime::Finish(uint64_t waiter_id,
                                 absl::StatusOr<nlohmann::json> result) {
  auto it = waiters_.find(waiter_id);
  if (it == waiters_.end()) return;
  Waiter waiter = std::move(it->second);
  waiters_.erase(it);
  if (waiter.has_deadline) (void)config_.loop->Cancel(waiter.deadline);
  waiter.answer(std::move(result));
}

absl::StatusOr<nlohmann::json> ConversationRuntime::Cast(
    const std::string& conversation_id, const nlohmann::json& signal) {
  absl::StatusOr<Conversation*> conversation = Find(conversation_id);
  if (!conversation.ok()) return conversation.status();
  auto ingested = Ingest(*conversation, signal);
  if (!ingested.ok()) return ingested.status();
  return nlohmann::json{{"signal_id", ingested->first.id},
                        {"correlation_id", ingested->first.correlation_id},
                        {"ingested", IngestedName(ingested->second)}};
}

absl::StatusOr<nlohmann::json> ConversationRuntime::State(
    const std::string& conversation_id) {
  absl::StatusOr<Conversation*> conversation = Find(conversation_id);
  if (!conversation.ok()) return conversation.status();
  return (*conversation)->State();
}

absl::StatusOr<nlohmann::json> ConversationRuntime::Projection(
    const std::string& conversation_id, const std::string& key) {
  absl::StatusOr<Conversation*> conversation = Find(conversation_id);
  if (!conversation.ok()) return conversation.status();
  std::optional<nlohmann::json> projection = (*conversation)->Projection(key);
  if (!projection.has_value()) {
    return Error(absl::StatusCode::kNotFound, "projection_not_found",
                 absl::StrCat(key.substr(0, 64),
                              " (known: timeline, llm_context, "
                              "pending_tool_calls, diagnostics)"));
  }
  return *std::move(projection);
}

nlohmann::json ConversationRuntime::Diagnostics() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, conversation] : conversations_) {  // sorted by id
    out.push_back(conversation->Diagnostics());
  }
  return out;
}

}  // namespace jcs::runtime::conversation
