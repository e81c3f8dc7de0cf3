// Hmac: HMAC-SHA256 / HMAC-SHA1 with a precomputed key schedule, so each MAC costs only the
// message blocks and allocates nothing. Thread-safe for concurrent Compute/Verify; Verify
// is constant-time.
#ifndef SESSIONTOKEN_SERVER_CRYPTO_HMAC_H_
#define SESSIONTOKEN_SERVER_CRYPTO_HMAC_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/crypto/constant_time.h"
#include "server/crypto/secret_bytes.h"

namespace sessiontoken::crypto {

enum class HashFunction { kSha1, kSha256 };

class Hmac {
 public:
  static constexpr size_t kMaxTagSize = 32;

  // Fails on an empty key. Only the precomputed inner/outer hash states are kept (they are
  // key-equivalent) and they are wiped when the object is destroyed.
  static absl::StatusOr<std::unique_ptr<Hmac>> New(HashFunction hash, absl::string_view key);

  virtual ~Hmac() = default;
  // Tag size in bytes: 32 for SHA-256, 20 for SHA-1.
  virtual size_t tag_size() const = 0;
  // Computes the MAC of the concatenation of `parts` into out[0, tag_size()).
  virtual void Compute(std::initializer_list<absl::string_view> parts, uint8_t* out) const = 0;
  // True iff `tag` is the MAC of the concatenation of `parts` (constant-time comparison).
  virtual bool Verify(std::initializer_list<absl::string_view> parts,
                      absl::string_view tag) const = 0;
};

// SHA-256 of `data` into out[0, 32).
void Sha256(absl::string_view data, uint8_t out[32]);

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_HMAC_H_
