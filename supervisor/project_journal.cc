#include "supervisor/project_journal.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace jcs::supervisor {
namespace {

absl::Status Invalid(const char* field, const char* expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      "journaled project: field ", field, ": expected ", expected));
}

}  // namespace

nlohmann::json JournaledStartToJson(const JournaledStart& start) {
  nlohmann::json options = nlohmann::json::array();
  for (const auto& [key, value] : start.options) {
    options.push_back({key, runtime::ToJson(value)});
  }
  const runtime::StartProjectParams& p = start.params;
  nlohmann::json doc = {{"version", 1},
                        {"root", start.root},
                        {"options", options},
                        {"project_id", p.project_id.value_or("")},
                        {"boot", start.boot},
                        {"requester",
                         {{"uid", p.requester.uid},
                          {"gid", p.requester.gid},
                          {"groups", p.requester.groups},
                          {"privileged", p.requester.privileged}}}};
  if (p.data_dir.has_value()) doc["data_dir"] = *p.data_dir;
  if (p.run_as_uid.has_value()) doc["run_as_uid"] = *p.run_as_uid;
  if (p.run_as_gid.has_value()) doc["run_as_gid"] = *p.run_as_gid;
  return doc;
}

absl::StatusOr<JournaledStart> JournaledStartFromJson(const std::string& text) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return Invalid("(document)", "a JSON object");
  if (auto v = doc.find("version");
      v == doc.end() || !v->is_number_integer() || *v != 1) {
    return Invalid("version", "1");
  }
  JournaledStart start;
  const auto string_field = [&](const char* key,
                                std::string* out) -> absl::Status {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string() || it->get<std::string>().empty())
      return Invalid(key, "a non-empty string");
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  std::string id;
  if (absl::Status s = string_field("root", &start.root); !s.ok()) return s;
  if (absl::Status s = string_field("project_id", &id); !s.ok()) return s;
  start.params.project_id = id;
  if (auto boot = doc.find("boot"); boot != doc.end()) {
    if (!boot->is_boolean()) return Invalid("boot", "true or false");
    start.boot = boot->get<bool>();
  }
  auto options = doc.find("options");
  if (options == doc.end() || !options->is_array()) {
    return Invalid("options", "a list of [key, value] pairs");
  }
  for (const nlohmann::json& pair : *options) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
      return Invalid("options", "a list of [key, value] pairs");
    }
    start.options.emplace_back(pair[0].get<std::string>(),
                               runtime::FromJson(pair[1]));
  }
  if (auto it = doc.find("data_dir"); it != doc.end()) {
    if (!it->is_string()) return Invalid("data_dir", "a string");
    start.params.data_dir = it->get<std::string>();
  }
  for (const auto& [key, out] :
       {std::pair<const char*, std::optional<uint32_t>*>{
            "run_as_uid", &start.params.run_as_uid},
        {"run_as_gid", &start.params.run_as_gid}}) {
    if (auto it = doc.find(key); it != doc.end()) {
      if (!it->is_number_unsigned()) return Invalid(key, "a uid/gid");
      *out = it->get<uint32_t>();
    }
  }
  auto requester = doc.find("requester");
  if (requester == doc.end() || !requester->is_object()) {
    return Invalid("requester", "{uid, gid, groups, privileged}");
  }
  const nlohmann::json& r = *requester;
  const auto member = [&r](const char* key) {
    auto it = r.find(key);
    return it == r.end() ? nlohmann::json() : *it;
  };
  const nlohmann::json uid = member("uid"), gid = member("gid"),
                       groups = member("groups"),
                       privileged = member("privileged");
  if (!uid.is_number_unsigned() || !gid.is_number_unsigned() ||
      !groups.is_array() || !privileged.is_boolean()) {
    return Invalid("requester", "{uid, gid, groups, privileged}");
  }
  start.params.requester.uid = uid.get<uid_t>();
  start.params.requester.gid = gid.get<gid_t>();
  for (const nlohmann::json& g : groups) {
    if (!g.is_number_unsigned()) return Invalid("requester.groups", "gids");
    start.params.requester.groups.push_back(g.get<gid_t>());
  }
  start.params.requester.privileged = privileged.get<bool>();
  return start;
}

}  // namespace jcs::supervisor
