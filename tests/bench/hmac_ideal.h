// A reference HMAC-SHA256 with precomputed inner/outer SHA-256 states copied by value
// (no heap, no EVP layer): what crypto::Hmac could cost. Bench-only; compiled against
// BoringSSL's headers in hmac_ideal.cc so that no other bench file sees them.
#ifndef SESSIONTOKEN_TESTS_BENCH_HMAC_IDEAL_H_
#define SESSIONTOKEN_TESTS_BENCH_HMAC_IDEAL_H_

#include <cstdint>
#include <initializer_list>
#include <memory>

#include "absl/strings/string_view.h"

namespace sessiontoken::bench {

class IdealHmacSha256 {
 public:
  explicit IdealHmacSha256(absl::string_view key);
  ~IdealHmacSha256();
  void Compute(std::initializer_list<absl::string_view> parts, uint8_t out[32]) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sessiontoken::bench

#endif  // SESSIONTOKEN_TESTS_BENCH_HMAC_IDEAL_H_
