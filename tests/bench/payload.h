// The benchmark payload shared by core_bench, loadgen and itsdangerous_bench.py: JSON text
// {"csrf":"<hex>"} of exactly n bytes, the shape of a small Flask session.
#ifndef SESSIONTOKEN_TESTS_BENCH_PAYLOAD_H_
#define SESSIONTOKEN_TESTS_BENCH_PAYLOAD_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace sessiontoken::bench {

inline std::string Payload(size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s = "{\"csrf\":\"";
  while (s.size() + 2 < n) {
    const uint32_t i = static_cast<uint32_t>(s.size());
    s.push_back(kHex[(i * 2654435761u) >> 28]);
  }
  s += "\"}";
  s.resize(n, ' ');
  return s;
}

}  // namespace sessiontoken::bench

#endif  // SESSIONTOKEN_TESTS_BENCH_PAYLOAD_H_
