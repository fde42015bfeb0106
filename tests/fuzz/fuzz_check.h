#pragma once

// A property a harness checks beyond "no crash": a violation aborts, so libFuzzer keeps the
// input and reports it like any crash.

#include <cstdio>
#include <cstdlib>

#define KILN_FUZZ_CHECK(condition)                                                            \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
