/* fuzz_check.h - the fuzzers' invariant check: a failed one aborts, which
 * libFuzzer reports as a crash with the input that caused it. */
#ifndef EVENTS_FUZZ_CHECK_H
#define EVENTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FZ_CHECK(cond)                                                                             \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);               \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
