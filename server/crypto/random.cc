#include "server/crypto/random.h"

#include <openssl/rand.h>

namespace sessiontoken::crypto {

void RandomFill(void* out, size_t size) { RAND_bytes(static_cast<uint8_t*>(out), size); }

SecretBytes RandomSecret(size_t size) {
  SecretBytes s(size);
  RandomFill(s.data(), s.size());
  return s;
}

uint32_t RandomUint32() {
  uint32_t v;
  RandomFill(&v, sizeof(v));
  return v;
}

}  // namespace sessiontoken::crypto
