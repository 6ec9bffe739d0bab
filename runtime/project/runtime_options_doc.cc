// Prints docs/runtime-options.md:
//   bazel run //runtime/project:runtime_options_doc > docs/runtime-options.md
#include <cstdio>

#include "runtime/project/runtime_options_reference.h"

int main() {
  fputs(jcs::runtime::RuntimeOptionsMarkdown().c_str(), stdout);
  return 0;
}
