// Heap allocations made so far by the calling thread (see alloc_count.cc).
#ifndef SESSIONTOKEN_TESTS_BENCH_ALLOC_COUNT_H_
#define SESSIONTOKEN_TESTS_BENCH_ALLOC_COUNT_H_

#include <cstdint>

namespace sessiontoken::bench {
uint64_t ThreadAllocations();
}  // namespace sessiontoken::bench

#endif  // SESSIONTOKEN_TESTS_BENCH_ALLOC_COUNT_H_
