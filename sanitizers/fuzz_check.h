// FUZZ_CHECK for libFuzzer targets: an invariant the parser documents that the
// input broke. Prints what failed and aborts, which libFuzzer reports as a
// crash (and saves the input) and the corpus replay test reports as a failure.
#ifndef JCS_TOOLS_FUZZ_CHECK_H_
#define JCS_TOOLS_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

#endif  // JCS_TOOLS_FUZZ_CHECK_H_
