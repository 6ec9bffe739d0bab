// How a project start is written to the journal and read back, so that the
// projects that were running come back after the daemon restarts (kill -9,
// an upgrade, a reboot): the root, the request's own options (the daemon's
// default_options are applied again from the current config), the data dir,
// run_as as requested and who asked. A restored start goes through every
// check again as that requester: one who has since lost access to the root
// gets an error, not a project.
#ifndef JCS_SUPERVISOR_PROJECT_JOURNAL_H_
#define JCS_SUPERVISOR_PROJECT_JOURNAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/project/project_registry.h"
#include "runtime/project/value.h"

namespace jcs::supervisor {

struct JournaledStart {
  std::string root;
  runtime::OptionList options;
  runtime::StartProjectParams params;  // project_id is always set
  bool boot = false;  // from the supervisor config (which starts it again)
};

nlohmann::json JournaledStartToJson(const JournaledStart& start);
// InvalidArgument naming the field when the document is not one.
absl::StatusOr<JournaledStart> JournaledStartFromJson(const std::string& text);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_PROJECT_JOURNAL_H_
