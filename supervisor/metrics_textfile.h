// The textfile-collector file (supervisor config metrics_textfile): the
// scrape written to a fresh temporary file beside `path`, then renamed over
// it, so a collector reading `path` sees a whole scrape or the previous one,
// never half of one.
#ifndef JCS_SUPERVISOR_METRICS_TEXTFILE_H_
#define JCS_SUPERVISOR_METRICS_TEXTFILE_H_

#include <string>

#include "absl/status/status.h"

namespace jcs::supervisor {

// The temporary file is `path`.tmp, created O_EXCL|O_NOFOLLOW mode 0640
// (its group is the directory's when the directory is setgid: give the
// collector that group). The metrics name every project, so they are not
// world-readable. Errors name the step and the path.
absl::Status WriteTextfileAtomically(const std::string& path,
                                     const std::string& text);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_METRICS_TEXTFILE_H_
