// The jail's PID 1 is a clone of the supervisor, not an exec: without care it
// shows every jailed program the supervisor's command line (a `jcs serve
// --config PATH` names the daemon's config), its environment and its name,
// through /proc/1/cmdline, /proc/1/environ, /proc/1/comm and /proc/1/status.
// The supervisor records, before main, where the kernel put its argument and
// environment strings (the bytes those /proc files read); the jail's init
// erases them in its own copy of the memory before anything jailed runs.
#ifndef JCS_JAIL_INIT_IDENTITY_H_
#define JCS_JAIL_INIT_IDENTITY_H_

#include <cstddef>

namespace jcs::jail {

// The name the jail's init shows (comm and command line).
inline constexpr char kInitName[] = "init";

// A byte range [begin, end); empty when nothing was recorded.
struct ByteRange {
  char* begin = nullptr;
  char* end = nullptr;
  size_t size() const { return begin != nullptr ? end - begin : 0; }
};

// The argument strings (argv[0] .. the last argument's NUL) and the
// environment strings of this process as they were at startup.
ByteRange RecordedArguments();
ByteRange RecordedEnvironment();

// In the jail's init only (it owns a private copy of the supervisor's
// memory): zeroes the recorded argument and environment strings, makes the
// command line read as kInitName and names the thread kInitName.
// Async-signal-safe: no allocation, no locks.
void HideSupervisorIdentity();

}  // namespace jcs::jail

#endif  // JCS_JAIL_INIT_IDENTITY_H_
