// Shared helpers for the libFuzzer targets: a property check that is never compiled out.
#ifndef SESSIONTOKEN_TESTS_FUZZ_FUZZ_CHECK_H_
#define SESSIONTOKEN_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

// Aborts (libFuzzer reports a crash and saves the input) when a property does not hold.
// Unlike assert(), it stays on whatever NDEBUG says.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // SESSIONTOKEN_TESTS_FUZZ_FUZZ_CHECK_H_
