// In its own translation unit on purpose: every caller (HMAC verification included) reaches
// it through the linker, so a test can count the calls (tests/unit/hygiene_test.cc wraps it
// with --wrap) without a test hook in production code.
#include "server/crypto/constant_time.h"

#include <openssl/mem.h>

namespace sessiontoken::crypto {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sessiontoken::crypto
