#include "jail/init_identity.h"

#include <sys/prctl.h>

#include <cstring>

namespace jcs::jail {
namespace {

ByteRange g_arguments;
ByteRange g_environment;

// The strings of a NULL-terminated vector, which the kernel lays out back to
// back: from the first string to the last one's NUL.
ByteRange StringsOf(char** vector, int count) {
  if (vector == nullptr || count <= 0) return {};
  for (int i = 0; i < count; ++i) {
    if (vector[i] == nullptr) return {};
  }
  char* begin = vector[0];
  char* end = vector[count - 1] + strlen(vector[count - 1]) + 1;
  if (end <= begin) return {};  // not the kernel's layout: record nothing
  return {begin, end};
}

// glibc calls .init_array functions with main's argc, argv and envp, before
// main and before anything could have modified them.
void RecordStartup(int argc, char** argv, char** envp) {
  g_arguments = StringsOf(argv, argc);
  int envc = 0;
  while (envp != nullptr && envp[envc] != nullptr) ++envc;
  g_environment = StringsOf(envp, envc);
}

__attribute__((section(".init_array"),
               used)) void (*const kRecordStartup)(int, char**,
                                                   char**) = &RecordStartup;

}  // namespace

ByteRange RecordedArguments() { return g_arguments; }
ByteRange RecordedEnvironment() { return g_environment; }

void HideSupervisorIdentity() {
  if (g_arguments.size() > 0) memset(g_arguments.begin, 0, g_arguments.size());
  if (g_environment.size() > 0) {
    memset(g_environment.begin, 0, g_environment.size());
  }
  // All-NUL arguments would still show their length. The kernel reads a
  // command line whose last byte is not NUL the way setproctitle(3) leaves
  // it: from the start up to the first NUL. So "init", NULs, and a non-NUL
  // last byte read as exactly "init".
  if (g_arguments.size() > sizeof(kInitName)) {
    memcpy(g_arguments.begin, kInitName, sizeof(kInitName));
    g_arguments.end[-1] = ' ';
  }
  prctl(PR_SET_NAME, kInitName, 0, 0, 0);
}

}  // namespace jcs::jail
