// What `jcs run` tells its user on stderr after a run: one line for each
// thing that explains the outcome and is easy to miss in the JSON report (an
// OOM kill, the file-size limit, seccomp denials, refused forks, refused
// egress). The caller prefixes "jcs: " and drops them under --quiet.
#ifndef JCS_JAIL_RUN_NOTES_H_
#define JCS_JAIL_RUN_NOTES_H_

#include <string>
#include <vector>

#include "jail/runner.h"
#include "proto/jail.pb.h"

namespace jcs::jail {

// At most one line per fact, in a fixed order; none for a clean run.
std::vector<std::string> RunNotes(const proto::JailSpec& spec,
                                  const RunResult& result);

// The one line (without the "jcs run: " prefix) that says why the program did
// not run or did not finish: a setup error, a program that could not be
// executed, the deadline. "" when there is none. Never dropped by --quiet.
// One function for the cold run and the daemon's run (`jcs run --daemon`
// prints what the daemon computed), so both say the same.
std::string RunEndMessage(const proto::JailSpec& spec, const RunResult& result);

}  // namespace jcs::jail

#endif  // JCS_JAIL_RUN_NOTES_H_
