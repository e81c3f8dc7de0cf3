// Cryptographically secure randomness from BoringSSL's RAND_bytes (getrandom-backed).
#ifndef SESSIONTOKEN_SERVER_CRYPTO_RANDOM_H_
#define SESSIONTOKEN_SERVER_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>

#include "server/crypto/secret_bytes.h"

namespace sessiontoken::crypto {

// Fills [out, out+size) with random bytes. BoringSSL aborts rather than return weak bytes.
void RandomFill(void* out, size_t size);
// A fresh random secret of `size` bytes.
SecretBytes RandomSecret(size_t size);
// A uniformly random 32-bit value.
uint32_t RandomUint32();

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_RANDOM_H_
