// Counts heap allocations of the calling thread (malloc/calloc/realloc, which also serve
// operator new and BoringSSL's OPENSSL_malloc), so core_bench can report allocs/op.
// Interposes glibc's allocator in this executable only; forwards to __libc_*.
#include "alloc_count.h"

#include <cstddef>
#include <cstdint>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
}

namespace {
__attribute__((tls_model("initial-exec"))) thread_local uint64_t t_allocs = 0;
}  // namespace

extern "C" {
void* malloc(size_t n) {
  ++t_allocs;
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  ++t_allocs;
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  ++t_allocs;
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
}

namespace sessiontoken::bench {
uint64_t ThreadAllocations() { return t_allocs; }
}  // namespace sessiontoken::bench
