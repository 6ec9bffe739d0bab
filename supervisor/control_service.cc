#include "supervisor/control_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runtime/runtime_options.h"
#include "runtime/runtime_options_error.h"

namespace jcs::supervisor {
namespace {

constexpr char kVersion[] = "jcs 0.1";

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

proto::Error ErrorFromStatus(const absl::Status& status) {
  proto::Error error;
  error.set_message(std::string(status.message()));
  if (std::optional<runtime::InvalidRuntimeOpt> opt =
          runtime::GetInvalidRuntimeOpt(status)) {
    error.set_reason("invalid_runtime_opt");
    error.set_key(opt->key);
    error.set_detail(opt->ReasonString());
    return error;
  }
  const std::string reason = runtime::ProjectErrorReason(status);
  const std::string text =
      reason.empty() ? std::string(status.message()) : reason;
  const size_t colon = text.find(": ");
  if (colon == std::string::npos) {
    error.set_reason(reason.empty() ? "internal" : reason);
  } else {
    error.set_reason(text.substr(0, colon));
    error.set_detail(text.substr(colon + 2));
  }
  return error;
}

ControlService::ControlService(runtime::OptionList default_options)
    : default_options_(std::move(default_options)),
      registry_(runtime::ProjectRegistry::Config{
          [this](absl::string_view name, const nlohmann::json& payload) {
            OnEvent(name, payload);
          }}) {}

void ControlService::OnEvent(absl::string_view name,
                             const nlohmann::json& payload) {
  const std::string project =
      payload.contains("project_id") && payload["project_id"].is_string()
          ? payload["project_id"].get<std::string>()
          : std::string();
  if (name == "project.started") {
    event_counts_[project].clear();
    recent_errors_[project].clear();
  }
  ++event_counts_[project][std::string(name)];
  if (name == "project.stopped") {
    event_counts_.erase(project);
    recent_errors_.erase(project);
  }
  if (!publish_) return;
  proto::Event event;
  event.set_name(std::string(name));
  event.set_project_id(project);
  event.set_payload_json(
      payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  event.set_at(Rfc3339(absl::Now()));
  publish_(event);
}

absl::StatusOr<std::string> ControlService::StartProject(
    const std::string& root, const runtime::OptionList& options,
    const runtime::StartProjectParams& params) {
  runtime::OptionList merged = default_options_;
  merged.insert(merged.end(), options.begin(), options.end());
  return registry_.StartProject(root, merged, params);
}

std::optional<nlohmann::json> ControlService::Diagnostics(
    const std::string& project_id) const {
  std::optional<runtime::ProjectSummary> summary =
      registry_.GetProject(project_id);
  if (!summary.has_value()) return std::nullopt;
  nlohmann::json doc = runtime::SummaryToJson(*summary);
  nlohmann::json counts = nlohmann::json::object();
  if (auto it = event_counts_.find(project_id); it != event_counts_.end()) {
    for (const auto& [name, count] : it->second) counts[name] = count;
  }
  nlohmann::json errors = nlohmann::json::array();
  if (auto it = recent_errors_.find(project_id); it != recent_errors_.end()) {
    for (const nlohmann::json& e : it->second) errors.push_back(e);
  }
  doc["telemetry"] = {{"event_counts", counts}, {"recent_errors", errors}};
  return doc;
}

void ControlService::Handle(const proto::Request& request,
                            const PeerCredentials& peer, Respond respond) {
  proto::Response response;
  response.set_id(request.id());
  auto fail = [&](const absl::Status& status) {
    *response.mutable_error() = ErrorFromStatus(status);
  };
  switch (request.body_case()) {
    case proto::Request::kStartProject: {
      const proto::StartProjectRequest& start = request.start_project();
      runtime::StartProjectParams params;
      if (start.has_project_id()) params.project_id = start.project_id();
      if (start.has_data_dir()) params.data_dir = start.data_dir();
      absl::StatusOr<std::string> id = StartProject(
          start.root(), runtime::OptionsFromProto(start.options()), params);
      if (id.ok()) {
        response.mutable_start_project()->set_project_id(*id);
      } else {
        fail(id.status());
      }
      break;
    }
    case proto::Request::kStopProject: {
      absl::Status status =
          registry_.StopProject(request.stop_project().project_id());
      if (status.ok()) {
        response.mutable_stop_project();
      } else {
        fail(status);
      }
      break;
    }
    case proto::Request::kListProjects: {
      proto::ListProjectsResponse* list = response.mutable_list_projects();
      for (const runtime::ProjectSummary& s : registry_.ListProjects()) {
        proto::ProjectSummary* out = list->add_projects();
        out->set_project_id(s.project_id);
        out->set_root_path(s.root_path);
        out->set_data_dir(s.data_dir);
        out->set_conversation_count(
            static_cast<uint32_t>(s.conversation_count));
        // The same rendering as diagnostics (runtime::SummaryToJson).
        out->set_started_at(
            runtime::SummaryToJson(s)["started_at"].get<std::string>());
      }
      break;
    }
    case proto::Request::kDiagnostics: {
      const std::string& id = request.diagnostics().project_id();
      std::optional<nlohmann::json> doc = Diagnostics(id);
      if (doc.has_value()) {
        response.mutable_diagnostics()->set_json(doc->dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        proto::Error* error = response.mutable_error();
        error->set_reason("project_not_found");
        error->set_detail(id);
        error->set_message(absl::StrCat("project_not_found: ", id));
      }
      break;
    }
    case proto::Request::kPing:
      response.mutable_ping()->set_version(kVersion);
      break;
    default: {
      proto::Error* error = response.mutable_error();
      error->set_reason("unknown_request");
      error->set_message("this daemon does not handle that request type");
    }
  }
  respond(std::move(response));
}

}  // namespace jcs::supervisor
